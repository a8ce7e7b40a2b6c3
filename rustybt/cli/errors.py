"""The one error path of every ``rustybt`` command: what reaches the user, and the exit code.

A user mistake (a typed :class:`~rustybt.exceptions.RustyBTError` saying what to fix) is one
``error: ...`` line and exit 2. A run that fails on a typed error after it started is one
``error: ...`` line and exit 1. Anything else is a bug: one line naming it and the file the
full traceback was written to, exit 1 — never a traceback on the screen. A strategy that
raises is reported at its own ``file:line``. SIGINT and SIGTERM say "interrupted" and exit
130 and 143 (128 + the signal number, as shells report it).

Commands wrap their body in :func:`front_door`; nothing else prints errors.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import typer
from rich.console import Console
from rich.markup import escape

from rustybt.exceptions import (
    CheckpointMismatch,
    ConfigError,
    DataError,
    InvalidOrder,
    RustyBTError,
    SchedulerError,
    StateDirLocked,
    StrategyLoadError,
    SymbolNotFound,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143

# Typed errors that mean "what you asked for cannot be done as given": bad option or config
# value, missing file or bundle, malformed data, a symbol or date the data does not have.
USER_MISTAKES: tuple[type[RustyBTError], ...] = (
    ConfigError,
    StrategyLoadError,
    SymbolNotFound,
    DataError,
    StateDirLocked,
    SchedulerError,
    CheckpointMismatch,
    InvalidOrder,
)

err_console = Console(stderr=True, soft_wrap=True)
KEEP_CRASH_REPORTS = 20  # newest full-traceback files kept in $RUSTYBT_ROOT/logs


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; a BaseException so library ``except Exception`` lets it by."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def one_line(text: str) -> str:
    """Redacted, single-line text (a wrapped or multi-line message is not one line)."""
    from rustybt.live.audit import SECRETS

    return " ".join(SECRETS.redact(str(text)).split())


def print_error(message: str) -> None:
    """The ``error: ...`` line on stderr (never wrapped, never markup-interpreted)."""
    err_console.print(f"[bold red]error:[/] {escape(one_line(message))}", markup=True)


def exit_with(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``message`` as the error line; return the Exit to raise."""
    print_error(message)
    return typer.Exit(code)


def crash_dir() -> Path:
    from rustybt.data.bundles import rustybt_root

    return rustybt_root() / "logs"


def write_traceback(exc: BaseException) -> Path:
    """Write ``exc``'s full traceback (secrets masked) to a file; return its path."""
    from rustybt.live.audit import SECRETS

    text = SECRETS.redact("".join(traceback.format_exception(exc)))
    name = f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.txt"
    for folder in (crash_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            _prune_crash_reports(folder, keep=KEEP_CRASH_REPORTS)
            return path
        except OSError:
            continue
    raise OSError("no writable folder for the traceback")  # pragma: no cover


def _prune_crash_reports(folder: Path, keep: int) -> None:
    reports = sorted(folder.glob("crash-*.txt"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    for old in reports[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()


def strategy_frame(tb: TracebackType | None, algofile: Path | None) -> str | None:
    """``file:line in function`` of the innermost frame inside the strategy file, if any."""
    if algofile is None:
        return None
    target = os.path.realpath(algofile)
    where = None
    for frame, lineno in traceback.walk_tb(tb):
        if os.path.realpath(frame.f_code.co_filename) == target:
            where = f"{Path(algofile).name}:{lineno} in {frame.f_code.co_name}"
    return where


def describe_failure(exc: BaseException, algofile: Path | None = None) -> str:
    """The one line for an unexpected exception: the strategy's line, or an internal error."""
    try:
        path = write_traceback(exc)
        saved = f"full traceback in {path}"
    except OSError:
        saved = "the traceback could not be saved"
    where = strategy_frame(exc.__traceback__, algofile)
    what = f"{type(exc).__name__}: {exc}"
    if where is not None:
        return f"the strategy raised {what} at {where}; fix the strategy ({saved})"
    return f"internal error {what}; please report it with the traceback ({saved})"


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Interrupted` (as SIGINT raises KeyboardInterrupt)."""

    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. an embedding app): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def front_door(what: str, algofile: Path | None = None) -> Iterator[None]:
    """Run a command body: map every way it can end to one line and an honest exit code.

    ``what`` is the interrupt message's tail ("backtest stopped; no results were written");
    ``algofile`` lets a strategy's own exception be reported at its file and line.
    """
    try:
        with sigterm_raises():
            yield
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except KeyboardInterrupt:
        raise exit_with(f"interrupted (SIGINT): {what}", EXIT_SIGINT) from None
    except Interrupted as exc:
        raise exit_with(f"interrupted ({exc.name}): {what}", exc.exit_code) from None
    except USER_MISTAKES as exc:
        where = strategy_frame(exc.__traceback__, algofile)
        suffix = f" (at {where})" if where else ""
        raise exit_with(f"{exc}{suffix}", EXIT_USAGE) from None
    except RustyBTError as exc:
        raise exit_with(str(exc), EXIT_FAILED) from None
    except Exception as exc:
        raise exit_with(describe_failure(exc, algofile), EXIT_FAILED) from None
