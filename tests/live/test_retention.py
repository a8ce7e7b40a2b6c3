"""Retention: set-aside journals and audit logs stop piling up; limits are validated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rustybt.exceptions import ConfigError
from rustybt.live.retention import Retention, prune_state


def _touch(path: Path, age: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    stamp = 1_700_000_000 + age
    os.utime(path, (stamp, stamp))
    return path


def test_prune_keeps_the_newest_old_journals_and_audit_logs_of_that_strategy_only(tmp_path):
    journals = [_touch(tmp_path / "journal" / f"S.journal.{i}.old", i) for i in range(6)]
    current = _touch(tmp_path / "journal" / "S.journal", 100)
    logs = [_touch(tmp_path / "logs" / f"S-sess{i}.jsonl", i) for i in range(5)]
    other = _touch(tmp_path / "logs" / "S-X-sess0.jsonl", 0)  # strategy "S-X", not "S"
    other_journal = _touch(tmp_path / "journal" / "T.journal.1.old", 0)

    removed = prune_state(tmp_path, "S", Retention(old_journals=2, audit_logs=3))

    assert removed == journals[:4] + logs[:2]
    assert sorted(p.name for p in (tmp_path / "journal").iterdir()) == sorted(
        [current.name, journals[4].name, journals[5].name, other_journal.name]
    )
    assert {p.name for p in (tmp_path / "logs").iterdir()} == {
        other.name,
        *(p.name for p in logs[2:]),
    }


def test_prune_of_an_empty_or_missing_state_folder_removes_nothing(tmp_path):
    assert prune_state(tmp_path / "nothing", "S", Retention()) == []


@pytest.mark.parametrize("field", ["checkpoints", "old_journals", "audit_logs"])
@pytest.mark.parametrize("value", [0, -1, True, "3"])
def test_retention_counts_must_be_whole_numbers_of_at_least_one(field, value):
    with pytest.raises(ConfigError, match=f"keep_{field}"):
        Retention(**{field: value})
