"""Start-up recovery rules: what of the journal a checkpoint has already seen, where a
paper replay resumes, and the durable halt file.

The engine (``LiveTradingEngine._restore``) applies these rules; they live here so they
can be read, and tested, on their own (``docs/durability.md`` states them for users):

* :func:`journal_cut` — the journal sequence number up to which a checkpoint already
  contains the journal's effects. A journal is identified by the ``journal_id`` of its
  header: same id and fewer records than the checkpoint saw means the machine lost the
  unsynced tail (apply nothing the checkpoint saw, number new records above it); another
  id means a new journal (everything in it is new to the checkpoint).
* :func:`resume_point` — the last bar a paper replay's strategy processed: the newest of
  the checkpoint's bar and the journal's ``bar`` progress records after the cut.
* :class:`HaltStore` — tripped circuit breakers and manual halts, written and fsynced
  before a halt is acknowledged, read back at every start so a killed engine comes back
  halted until an operator resumes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from rustybt.exceptions import CheckpointCorrupted
from rustybt.live.journal import JournalState
from rustybt.live.models import StateCheckpoint
from rustybt.live.state_manager import write_file_atomic

__all__ = ["HaltStore", "JournalCut", "halt_path", "journal_cut", "resume_point"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class JournalCut:
    """Records with ``seq > after`` are new to the checkpoint; ``how`` says why."""

    after: int
    #: "continues" (the journal the checkpoint saw, possibly longer), "tail_lost" (that
    #: journal, shorter than the checkpoint saw), "new_journal" (another epoch),
    #: "unidentified" (a journal or checkpoint from before epochs; treated as tail_lost).
    how: str


def journal_cut(cp: StateCheckpoint, state: JournalState) -> JournalCut:
    """Which journal records ``cp`` has not seen (see the module docstring)."""
    extra = cp.extra or {}
    seen = int(extra.get("journal_seq", 0) or 0)
    cp_id = extra.get("journal_id")
    if cp_id and state.journal_id and cp_id != state.journal_id:
        return JournalCut(0, "new_journal")
    if state.last_seq >= seen:
        return JournalCut(seen, "continues")
    # Never "all of it" here: re-applying fills the checkpoint already holds would
    # double positions. What the tail held is recovered from the broker instead.
    return JournalCut(seen, "tail_lost" if cp_id and state.journal_id else "unidentified")


def resume_point(
    cp: StateCheckpoint, state: JournalState, cut: JournalCut
) -> tuple[datetime | None, dict[str, Any] | None]:
    """(last bar processed, the strategy variables encoded at that bar or None).

    The newest ``bar`` record after the cut wins over the checkpoint's ``last_bar_dt``;
    its variables (folded from full and delta records) are in the checkpoint's encoding
    (``encode_state_value``).
    """
    raw = (cp.extra or {}).get("last_bar_dt")
    last = datetime.fromisoformat(raw) if raw else None
    rec = state.last_bar
    if rec is None or rec["seq"] <= cut.after or not rec.get("dt"):
        return last, None
    dt = datetime.fromisoformat(str(rec["dt"]))
    if last is not None and dt <= last:
        return last, None
    return dt, state.bar_state


def halt_path(state_dir: Path | str, strategy_name: str) -> Path:
    """``<state_dir>/halts/<strategy>.json``."""
    return Path(state_dir) / "halts" / f"{strategy_name}.json"


class HaltStore:
    """The durable record of which circuit breakers are tripped or halted.

    ``save`` is blocking (write, fsync, rename, fsync the folder): call it in a worker
    thread. The file holds :meth:`CircuitBreakerManager.to_dict` of the tripped breakers
    only, so loading it never clears anything and trips every breaker it names.
    """

    def __init__(self, state_dir: Path | str, strategy_name: str) -> None:
        self.path = halt_path(state_dir, strategy_name)

    def save(self, breaker_state: dict[str, Any]) -> None:
        tripped = [b for b in breaker_state.get("breakers", []) if b.get("state") != "normal"]
        doc = {"version": breaker_state.get("version"), "breakers": tripped}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomic(self.path, json.dumps(doc, default=str).encode())

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is no file. A damaged file raises
        ``CheckpointCorrupted``: an unreadable halt must not start the engine unhalted."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise CheckpointCorrupted(
                f"halt file {self.path} is unreadable ({exc}); it may record a halt. Check "
                "with the operator, then delete it to start unhalted"
            ) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("breakers"), list):
            raise CheckpointCorrupted(
                f"halt file {self.path} is not a halt record; check it, then delete it"
            )
        return doc
