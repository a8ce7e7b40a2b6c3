"""One engine per strategy and state directory: an exclusive ``fcntl.flock``.

The journal, checkpoints, halt file and control socket of a strategy all live in one
state directory, keyed by the strategy name. Two engines on the same pair would write
one journal (two sequences interleaved), take each other's control socket and restore
from each other's checkpoints. :class:`StateDirLock` makes the second one refuse at
start-up with :class:`~rustybt.exceptions.StateDirLocked`, naming the PID that holds it.

Why ``flock`` on a file and not a PID file alone: the kernel releases the lock when the
holder dies, however it dies (SIGKILL, OOM kill), so a stale lock is taken over by the
next start without guessing whether a PID is still alive or was reused. The PID written
into the file is only there to name the holder in the error message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

import structlog

from rustybt.exceptions import StateDirLocked

__all__ = ["StateDirLock", "lock_path"]

log = structlog.get_logger(__name__)


def lock_path(state_dir: Path | str, strategy_name: str) -> Path:
    """``<state_dir>/locks/<strategy>.lock``."""
    return Path(state_dir) / "locks" / f"{strategy_name}.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StateDirLock:
    """Exclusive lock on (state directory, strategy name), held for an engine's life."""

    def __init__(self, state_dir: Path | str, strategy_name: str) -> None:
        self.state_dir = Path(state_dir)
        self.strategy_name = strategy_name
        self.path = lock_path(self.state_dir, strategy_name)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``StateDirLocked`` naming the holder's PID (idempotent)."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"PID {holder}" if holder is not None else "another process"
            raise StateDirLocked(
                f"strategy {self.strategy_name!r} in {self.state_dir} is already run by "
                f"{who}; stop that engine first, or give this one another --state-dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        previous = _read_pid(fd)
        if previous is not None and previous != os.getpid():
            # The kernel dropped the dead holder's lock; say so, it means a crash.
            log.warning(
                "state_dir_lock_taken_over",
                path=str(self.path),
                previous_pid=previous,
                previous_alive=_pid_alive(previous),
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (idempotent). The file stays: removing it would race a new holder."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> StateDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0)
    except OSError:
        return None
    text = raw.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
