"""How many old files a state folder keeps: set-aside journals, audit logs, crash reports.

Every fresh start sets the previous journal aside as ``<strategy>.journal.<time>.old`` and
every session writes its own audit log ``logs/<strategy>-<session>.jsonl``; without a limit
they pile up with every run. :func:`prune_state` deletes the oldest beyond the counts in a
:class:`Retention` (checkpoints have their own limit, ``StateManager(keep=...)``, applied
on every save). ``rustybt live`` prunes after each session; call it yourself when you drive
the engine from Python. Only files of the named strategy are touched, and the current
journal and the newest files are never deleted.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from rustybt.exceptions import ConfigError


@dataclass(frozen=True)
class Retention:
    """How many files of each kind to keep per strategy (each at least 1).

    ``checkpoints`` is passed to ``StateManager(keep=...)``; the other two are applied by
    :func:`prune_state`.
    """

    checkpoints: int = 5
    old_journals: int = 5
    audit_logs: int = 20

    def __post_init__(self) -> None:
        for name in ("checkpoints", "old_journals", "audit_logs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"keep_{name}={value!r} must be a whole number >= 1 (how many to keep)"
                )


def _oldest_first(files: list[Path]) -> list[Path]:
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def _drop_oldest(files: list[Path], keep: int) -> list[Path]:
    removed = []
    for path in _oldest_first(files)[: max(len(files) - keep, 0)]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def prune_state(state_dir: Path | str, strategy: str, retention: Retention) -> list[Path]:
    """Delete ``strategy``'s oldest set-aside journals and audit logs beyond the limits.

    Returns the deleted paths (oldest first per kind).
    """
    root = Path(state_dir)
    journals = list((root / "journal").glob(f"{strategy}.journal.*.old"))
    logs = [
        p
        for p in (root / "logs").glob(f"{strategy}-*.jsonl")
        # "<strategy>-<session>.jsonl": skip another strategy whose name extends this one
        if "-" not in p.stem[len(strategy) + 1 :]
    ]
    return _drop_oldest(journals, retention.old_journals) + _drop_oldest(logs, retention.audit_logs)
