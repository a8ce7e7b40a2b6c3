"""Persistence of the paper venue: a snapshot plus an append-only log of changes.

``PaperBroker(state_path=...)`` stands for a venue that outlives the trading process, so
every change (an order received, a fill, a cancel) must be in the operating system
before the venue reports it. Rewriting the whole account on every change cost O(account)
per order on the event loop (56 ms at 4,000 orders). Here a change costs one ``write``
of one JSON line on an ``O_APPEND`` descriptor: O(change), a few microseconds, and it
survives SIGKILL like the order journal does (no fsync: the file stands for a remote
venue, whose state a machine crash of *our* host does not touch).

Files, next to ``state_path``:

* ``<state_path>`` — the snapshot: the whole account, plus ``applied_through``, the
  number of the last change it includes;
* ``<state_path>.log`` — changes after the snapshot, one JSON object per line, each
  with a strictly increasing ``n``;
* ``<state_path>.log.compacting`` — the previous log, while a worker thread folds it
  into a new snapshot.

Every ``compact_every`` changes the log is renamed to ``.compacting`` (one rename on the
loop) and a worker thread loads snapshot + that log into a scratch account, writes the
new snapshot atomically (fsynced, renamed) and deletes the old log. A crash at any point
leaves a loadable set: loading applies ``.compacting`` then ``.log``, skipping changes
numbered at or below the snapshot's ``applied_through``. A torn last line (killed
mid-write) is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog

from rustybt.live.state_manager import write_file_atomic

__all__ = ["ChangeLog"]

log = structlog.get_logger(__name__)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)  # Decimal: exact


class ChangeLog:
    """The append side and the compaction of one paper account's files."""

    def __init__(
        self, state_path: Path, compact_every: int = 5_000, *, read_live_log: bool = True
    ) -> None:
        self.state_path = state_path
        # The compaction worker reads only the frozen log: the live one is being appended.
        self._read_live_log = read_live_log
        self.log_path = state_path.with_name(state_path.name + ".log")
        self.compacting_path = state_path.with_name(state_path.name + ".log.compacting")
        self.compact_every = compact_every
        self._fd: int | None = None
        self._n = 0
        self._since_compaction = 0
        self._worker: threading.Thread | None = None
        self.compaction_error: BaseException | None = None

    # --- reading ------------------------------------------------------------------------
    def read_snapshot(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None

    def changes_after(self, applied_through: int) -> Iterator[dict[str, Any]]:
        """The changes not in the snapshot, in order (compacting log, then the log)."""
        paths = (
            (self.compacting_path, self.log_path)
            if self._read_live_log
            else (self.compacting_path,)
        )
        for path in paths:
            for rec in _read_lines(path):
                if rec["n"] > applied_through:
                    yield rec

    def resume_numbering(self, last_n: int) -> None:
        self._n = max(self._n, last_n)

    @property
    def last_n(self) -> int:
        return self._n

    # --- writing ------------------------------------------------------------------------
    def append(self, change: dict[str, Any]) -> None:
        """Write one change (one ``write``); it is in the OS when this returns."""
        if self._fd is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A line torn by a kill: cut it, so this change starts on a clean line.
                keep = _whole_lines(os.pread(fd, size, 0))
                os.ftruncate(fd, len(keep))
            self._fd = fd
        self._n += 1
        change["n"] = self._n
        line = json.dumps(change, default=_json_default, separators=(",", ":")) + "\n"
        data = line.encode()
        written = os.write(self._fd, data)
        if written != len(data):
            raise OSError(0, f"short write to {self.log_path} ({written} of {len(data)})")
        self._since_compaction += 1

    def due(self) -> bool:
        return self._since_compaction >= self.compact_every and not self.compacting

    @property
    def compacting(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def compact(self, build_snapshot: Callable[[], dict[str, Any]], wait: bool = False) -> None:
        """Fold the log into a new snapshot in a worker thread (``wait``: in this one).

        ``build_snapshot`` runs in the worker: it must read only the files (it loads a
        scratch account from snapshot + ``.compacting``), never the live account.
        """
        if self.compacting:
            if not wait:
                return
            self.join()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.compacting_path.exists():
            # A previous compaction did not finish (killed): fold both logs now.
            with open(self.compacting_path, "ab") as dst, contextlib.suppress(FileNotFoundError):
                dst.write(_whole_lines(self.log_path.read_bytes()))
            with contextlib.suppress(FileNotFoundError):
                self.log_path.unlink()
        elif self.log_path.exists():
            os.replace(self.log_path, self.compacting_path)
        else:
            return
        self._since_compaction = 0

        def work() -> None:
            try:
                snapshot = build_snapshot()
                write_file_atomic(self.state_path, json.dumps(snapshot).encode())
                self.compacting_path.unlink()
            except BaseException as exc:  # the log stays; loading still works
                self.compaction_error = exc
                log.error("paper_state_compaction_failed", error=f"{type(exc).__name__}: {exc}")

        if wait:
            work()
            return
        self._worker = threading.Thread(target=work, name="paper-state-compaction", daemon=True)
        self._worker.start()

    def join(self) -> None:
        worker = self._worker
        if worker is not None:
            worker.join()
            self._worker = None

    def close(self) -> None:
        self.join()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _whole_lines(data: bytes) -> bytes:
    cut = data.rfind(b"\n")
    return data[: cut + 1] if cut >= 0 else b""


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    lines = data.split(b"\n")
    tail = lines.pop()
    if tail:
        log.warning("paper_state_torn_line_ignored", path=str(path), bytes=len(tail))
    for i, raw in enumerate(lines, start=1):
        if not raw:
            continue
        try:
            rec = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"{path}: line {i} is corrupt ({exc})") from None
        yield rec
