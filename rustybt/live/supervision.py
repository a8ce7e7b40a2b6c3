"""Supervision of the engine's background work: no task dies unobserved, no feed goes
quiet unnoticed.

* :class:`TaskSupervisor` starts the engine's background tasks (market-data feed,
  reconciliation, checkpoints, the data watchdog) and watches each one end. A task
  that ends with an exception, or that stops while the engine still runs, is logged,
  reported to the engine (which raises an alert and, for a task new risk depends on,
  blocks it) and listed in ``get_status()["task_failures"]``.
* :class:`DataWatchdog` tracks when market data last arrived (wall clock). While the
  market is open and nothing has come for ``stale_after`` seconds (a multiple of the
  bar interval), it reports the feed stale; the first bar after that reports it back.

Both only observe and report: what a failure means for trading (a hold on the risk gate,
an alert) is the engine's decision, so it stays in one place.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from rustybt.calendars import calendar_tz

log = structlog.get_logger("rustybt.live")


class TaskSupervisor:
    """Named background tasks whose end is always seen."""

    def __init__(
        self,
        on_failure: Callable[[str, str, bool], None],
        stopping: Callable[[], bool],
    ) -> None:
        self._on_failure = on_failure
        self._stopping = stopping
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self._critical: dict[str, bool] = {}
        #: name -> what ended it, for every task that died while the engine ran.
        self.failures: dict[str, str] = {}

    def spawn(
        self, name: str, coro: Coroutine[Any, Any, Any], *, critical: bool = False
    ) -> asyncio.Task[Any]:
        """Run ``coro`` as task ``name``. ``critical``: new risk depends on it (the feed)."""
        task = asyncio.get_running_loop().create_task(coro, name=f"rustybt:{name}")
        self.tasks[name] = task
        self._critical[name] = critical
        task.add_done_callback(lambda t, n=name: self._done(n, t))
        return task

    def _done(self, name: str, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or self._stopping():
            return
        exc = task.exception()
        if exc is None:
            what = "stopped while the engine was running"
        else:
            what = f"{type(exc).__name__}: {exc}"
            log.error(
                "background_task_failed",
                task=name,
                error=what,
                traceback="".join(traceback.format_exception(exc)),
            )
        self.failures[name] = what
        self._on_failure(name, what, self._critical.get(name, False))

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                continue  # what we asked for
            except BaseException as exc:  # noqa: BLE001 - its failure was already reported
                log.debug("supervised_task_ended", error=f"{type(exc).__name__}: {exc}")
        self.tasks.clear()


class DataWatchdog:
    """Is market data flowing while the market is open?"""

    def __init__(
        self,
        stale_after_seconds: float,
        calendar: str,
        on_stale: Callable[[float], None],
        on_fresh: Callable[[], None],
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stale_after_seconds = stale_after_seconds
        self.calendar = calendar
        self._on_stale = on_stale
        self._on_fresh = on_fresh
        self._now = now
        self.last_data = now()
        self.stale = False

    def on_data(self) -> None:
        """A market data event arrived (called on every event: keep it cheap)."""
        self.last_data = self._now()
        if self.stale:
            self.stale = False
            self._on_fresh()

    def check(self, wall: datetime | None = None) -> bool:
        """Report the feed stale when due; True while it is stale."""
        if self.stale:
            return True
        quiet = self._now() - self.last_data
        if quiet < self.stale_after_seconds:
            return False
        if not market_open(self.calendar, wall or datetime.now(UTC)):
            # Nothing is expected while the market is closed; start counting at the open.
            self.last_data = self._now()
            return False
        self.stale = True
        self._on_stale(quiet)
        return True

    async def run(
        self,
        stopping: Callable[[], bool],
        replaying: Callable[[], bool] = lambda: False,
        scheduler: Any = None,
    ) -> None:
        """Check at a quarter of the limit (at most every 5 s) until ``stopping()``.

        A bundle replay is not a live feed (nothing is expected from the venue). It also
        watches the real-time ``scheduler``: one that stopped while the engine runs is
        reported as a failure of this task.
        """
        interval = max(0.01, min(self.stale_after_seconds / 4, 5.0))
        while not stopping():
            await asyncio.sleep(interval)
            if replaying():
                self.last_data = self._now()
                continue
            self.check()
            if scheduler is not None and not getattr(scheduler, "alive", True) and not stopping():
                raise RuntimeError("the real-time scheduler stopped while the engine runs")


def market_open(calendar: str, dt: datetime) -> bool:
    """Regular trading hours of ``calendar`` at ``dt``: 24/7 always; an exchange calendar
    Monday-Friday within its session (09:30-16:00 local for the equity calendars).

    Holidays are not known here: a quiet feed on a holiday is reported (fail safe).
    """
    if calendar in ("24/7", "24/7/365", "CRYPTO", "always_open"):
        return True
    local = dt.astimezone(calendar_tz(calendar))
    if local.weekday() >= 5:
        return False
    minutes = local.hour * 60 + local.minute
    return 9 * 60 + 30 <= minutes < 16 * 60


def bar_interval(portal: Any) -> timedelta:
    """The bar interval of the data: one day for daily bundles, one minute otherwise."""
    freq = str(getattr(portal, "data_frequency", "minute") or "minute").lower()
    return timedelta(days=1) if freq.startswith("d") else timedelta(minutes=1)
