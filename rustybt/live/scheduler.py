"""TradingScheduler: cron, interval, one-off and exchange-aware (market open/close) callbacks.

Why it looks like this:

* **Callbacks run on the engine loop, in priority order.** A firing job does not call the
  strategy; it enqueues a :class:`~rustybt.live.events.ScheduledTriggerEvent`. The engine pops
  it after any fills and breaker trips and hands it to :meth:`TradingScheduler.execute`, which
  runs the callback, logs and counts any exception, and lets the scheduler go on.
  Without an ``event_queue`` (standalone use) the callback is run directly, with the same
  error handling.
* **One set of triggers for real and simulated time.** Real time uses APScheduler 3's
  ``AsyncIOScheduler``. With ``clock=SimulatedClock(...)`` no timer runs: advancing the clock
  fires every due job in time order, asking the *same* APScheduler trigger objects for their
  next fire time. Tests and backtests use this; they never sleep.
* **Exchange-aware times come from exchange_calendars** (holidays, early closes, DST) through
  :class:`rustybt.scheduling.RuleTrigger`, which is also what ``schedule_function`` uses, so
  live and backtest fire at the same instants.
* **One misfire policy, applied here in both modes** (``misfire_grace_seconds``, ``coalesce``);
  see ``docs/scheduler.md``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from apscheduler.events import EVENT_JOB_REMOVED
from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from rustybt.exceptions import JobNotFound, SchedulerError
from rustybt.live.events import ScheduledTriggerEvent
from rustybt.scheduling import (
    DateRule,
    RuleTrigger,
    TimeRule,
    _session_anchor,
    date_rules,
    resolve_calendar_name,
)

__all__ = ["SimulatedClock", "TradingScheduler", "TRIGGER_TYPES"]

log = structlog.get_logger(__name__)

TRIGGER_TYPES = ("cron", "interval", "date", "market_open", "market_close")

# Longest catch-up we expand run by run after a pause; beyond it the backlog is counted,
# not enumerated (a year-long pause of an every-minute job must not spin for seconds).
_MAX_CATCH_UP_RUNS = 10_000

_UNSET: Any = object()


# --- clock -------------------------------------------------------------------------------------
class SimulatedClock:
    """A controllable clock: time only moves when :meth:`advance_to` is called.

    Schedulers built with ``clock=SimulatedClock(start)`` fire their due jobs, in time order,
    as the clock advances; while a job fires, :meth:`now` reads that job's fire time.
    """

    def __init__(self, start: datetime) -> None:
        self._now = _require_aware(start, "SimulatedClock start")
        self._listeners: list[TradingScheduler] = []

    def now(self) -> datetime:
        return self._now

    def advance_to(self, dt: datetime) -> None:
        """Move time forward to ``dt``, firing every job due in between (in time order)."""
        dt = _require_aware(dt, "advance_to")
        if dt < self._now:
            raise SchedulerError(
                f"cannot move a simulated clock backwards (now {self._now.isoformat()}, "
                f"asked for {dt.isoformat()})"
            )
        for scheduler in list(self._listeners):
            scheduler._sweep_to(dt)
        self._now = dt

    def advance(self, delta: timedelta) -> None:
        """Move time forward by ``delta``."""
        self.advance_to(self._now + delta)

    def _attach(self, scheduler: TradingScheduler) -> None:
        self._listeners.append(scheduler)


# --- helpers -----------------------------------------------------------------------------------
def _require_aware(dt: Any, name: str) -> datetime:
    if not isinstance(dt, datetime):
        raise SchedulerError(f"{name} must be a datetime, got {dt!r}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise SchedulerError(
            f"{name}={dt!r} has no time zone; pass an aware datetime, "
            f"e.g. datetime(2024, 11, 29, 18, 0, tzinfo=ZoneInfo('UTC'))"
        )
    return dt


def _resolve_tz(value: Any, name: str = "timezone") -> tzinfo:
    if isinstance(value, tzinfo):
        return value
    if not isinstance(value, str) or not value.strip():
        raise SchedulerError(f"{name} must be an IANA zone name like 'America/New_York'")
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise SchedulerError(
            f"unknown time zone {value!r}: use an IANA name such as 'America/New_York', "
            f"'Europe/London', 'Asia/Tokyo' or 'UTC'"
        ) from None


def _tz_name(tz: tzinfo) -> str:
    return getattr(tz, "key", None) or str(tz)


@dataclass(slots=True, eq=False)
class _Job:
    job_id: str
    trigger: BaseTrigger
    callback: Callable[[], Any]
    description: str
    misfire_grace_seconds: float | None
    coalesce: bool
    seq: int
    paused: bool = False
    finished: bool = False
    next_run_time: datetime | None = None  # authoritative in simulated mode only
    fire_count: int = 0
    run_count: int = 0
    error_count: int = 0
    missed_count: int = 0
    last_error: str | None = None
    last_fire_time: datetime | None = field(default=None)


class _EnqueueExecutor(BaseExecutor):
    """APScheduler executor that hands due runs to the TradingScheduler on the loop thread.

    APScheduler's asyncio executor would run plain functions in a thread pool and drop the
    scheduled time; here firing only enqueues an event, so it runs inline on the loop and
    the misfire policy is the scheduler's own (identical to simulated mode).
    """

    def __init__(self, owner: TradingScheduler) -> None:
        super().__init__()
        self._owner = owner

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        try:
            self._owner._on_due(job.id, run_times, datetime.now(UTC))
        finally:
            self._run_job_success(job.id, [])


# --- scheduler ---------------------------------------------------------------------------------
class TradingScheduler:
    """Schedule strategy callbacks at times, intervals, or exchange open/close.

    Args:
        event_queue: the engine's queue; firing enqueues a ``ScheduledTriggerEvent``. ``None``
            runs callbacks directly (standalone use).
        timezone: default zone for cron/date jobs without their own ``timezone``.
        misfire_grace_seconds: a run found later than this after its scheduled time (engine
            paused, loop blocked, scheduler paused) is skipped and counted as missed. ``None``
            runs it however late.
        coalesce: when several runs of one job are overdue at once, fire only the latest.
        clock: a :class:`SimulatedClock` for simulated time; ``None`` for real time.
        on_error: optional ``f(job_id, exception)`` called after a callback raised (e.g. to feed
            an error-rate circuit breaker).
    """

    def __init__(
        self,
        event_queue: Any = None,
        timezone: str | tzinfo = "UTC",
        misfire_grace_seconds: float | None = 60,
        coalesce: bool = True,
        clock: SimulatedClock | None = None,
        on_error: Callable[[str, BaseException], Any] | None = None,
    ) -> None:
        self.timezone = _resolve_tz(timezone)
        self.misfire_grace_seconds = self._check_grace(misfire_grace_seconds)
        if not isinstance(coalesce, bool):
            raise SchedulerError(f"coalesce must be True or False, got {coalesce!r}")
        if clock is not None and not isinstance(clock, SimulatedClock):
            raise SchedulerError("clock must be a rustybt.live.scheduler.SimulatedClock or None")
        if put := getattr(event_queue, "put_nowait", None):
            self._put: Callable[[ScheduledTriggerEvent], Any] | None = put
        elif event_queue is None:
            self._put = None
        else:
            raise SchedulerError("event_queue must have put_nowait(event), e.g. an EventQueue")
        self.event_queue = event_queue
        self.coalesce = coalesce
        self.clock = clock
        self.on_error = on_error
        self.error_count = 0
        self.run_count = 0
        self.missed_count = 0
        self._jobs: dict[str, _Job] = {}
        self._finished: dict[str, _Job] = {}  # one-off jobs done firing; their events may be queued
        self._cancelled: dict[str, None] = {}  # insertion-ordered set, trimmed like _finished
        self._seq = itertools.count()
        self._started = False
        self._start_pending = False
        self._paused = False
        self._aps: AsyncIOScheduler | None = None
        if clock is None:
            self._aps = AsyncIOScheduler(
                timezone=self.timezone,
                executors={"default": _EnqueueExecutor(self)},
                # The misfire policy is applied by _on_due; APScheduler must hand over every
                # overdue run untouched.
                job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
            )
            self._aps.add_listener(self._on_aps_job_removed, EVENT_JOB_REMOVED)
        else:
            clock._attach(self)

    # --- lifecycle ----------------------------------------------------------------------------
    @property
    def simulated(self) -> bool:
        return self.clock is not None

    @property
    def running(self) -> bool:
        """True once started (and, in real time, attached to a running event loop)."""
        return self._started

    @property
    def alive(self) -> bool:
        """False once a started real-time scheduler has stopped firing (its APScheduler is
        no longer running) without :meth:`shutdown`; the engine's watchdog reports it."""
        if not self._started or self._aps is None:
            return True
        return bool(self._aps.running)

    @property
    def start_pending(self) -> bool:
        """True when :meth:`start` was called outside an event loop and is waiting for one."""
        return self._start_pending

    def now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    def _on_scheduler_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is getattr(self._aps, "_eventloop", None)
        except RuntimeError:
            return False

    def start(self) -> None:
        """Begin firing jobs. Idempotent.

        In real time APScheduler needs the running asyncio loop. Called outside one (e.g. at
        module level, as in the spec's example), the start is deferred: the engine, or a second
        ``start()`` call from inside the loop, completes it. Nothing fires before that.
        """
        if self._started:
            return
        if self._aps is None:
            # Like APScheduler, jobs added before start count from the start time.
            now = self.now()
            for job in list(self._jobs.values()):
                if not job.paused:
                    job.next_run_time = job.trigger.get_next_fire_time(None, now)
                    if job.next_run_time is None:
                        self._finish(job)
            self._started = True
            self._start_pending = False
            log.info("scheduler_started", mode="simulated", jobs=len(self._jobs))
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._start_pending = True
            log.info(
                "scheduler_start_deferred",
                reason="no running event loop; it starts when start() is called on the loop",
            )
            return
        self._aps.start(paused=self._paused)
        self._started = True
        self._start_pending = False
        log.info("scheduler_started", mode="realtime", jobs=len(self._jobs))

    def shutdown(self, wait: bool = False) -> None:
        """Stop firing. Queued trigger events stay queued. Idempotent."""
        aps = self._aps
        if aps is not None and aps.running:
            direct = getattr(type(aps)._shutdown, "__wrapped__", None)
            if direct is not None and self._on_scheduler_loop():
                # AsyncIOScheduler.shutdown only schedules itself for the next loop turn; on
                # the loop we stop now, so no timer can fire after shutdown() returns.
                direct(aps, wait)
            else:
                aps.shutdown(wait=wait)
        if self._started:
            log.info("scheduler_shutdown", jobs=len(self._jobs))
        self._started = False
        self._start_pending = False

    def pause(self) -> None:
        """Stop firing all jobs until :meth:`resume`; runs missed meanwhile follow the misfire
        policy on resume (e.g. an engine pause)."""
        self._paused = True
        if self._aps is not None and self._aps.running:
            self._aps.pause()

    def resume(self) -> None:
        """Undo :meth:`pause`: overdue runs are coalesced/skipped per the misfire policy."""
        if not self._paused:
            return
        self._paused = False
        if self._aps is not None:
            if self._aps.running:
                self._aps.resume()
        elif self._started:
            self._sweep_to(self.now())

    # --- adding jobs --------------------------------------------------------------------------
    def add_job(
        self,
        trigger: str | BaseTrigger,
        callback: Callable[[], Any],
        *,
        job_id: str | None = None,
        cron: str | None = None,
        timezone: str | tzinfo | None = None,
        interval_seconds: float | None = None,
        interval_minutes: float | None = None,
        interval_hours: float | None = None,
        interval_days: float | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        run_date: datetime | str | None = None,
        exchange: str | None = None,
        offset_minutes: int = 0,
        misfire_grace_seconds: float | None = _UNSET,
        coalesce: bool = _UNSET,
        replace_existing: bool = False,
    ) -> str:
        """Add a job and return its id.

        ``trigger`` is one of ``'cron'`` (``cron='0 12 * * 1-5'``, ``timezone``),
        ``'interval'`` (``interval_seconds/minutes/hours/days``, optional ``start_date``/
        ``end_date``), ``'date'`` (``run_date``), ``'market_open'`` / ``'market_close'``
        (``exchange``, ``offset_minutes``, ``timezone``), or an APScheduler trigger instance.
        Default ids are documented in docs/scheduler.md; a duplicate id raises
        :class:`SchedulerError` unless ``replace_existing=True``.
        """
        if not callable(callback):
            raise SchedulerError(
                f"callback must be callable (a function or lambda), got {callback!r}"
            )
        given = {
            "cron": cron,
            "interval_seconds": interval_seconds,
            "interval_minutes": interval_minutes,
            "interval_hours": interval_hours,
            "interval_days": interval_days,
            "start_date": start_date,
            "end_date": end_date,
            "run_date": run_date,
            "exchange": exchange,
        }
        if offset_minutes:
            given["offset_minutes"] = offset_minutes
        tz = self.timezone if timezone is None else _resolve_tz(timezone)
        if isinstance(trigger, BaseTrigger):
            self._reject_extra(f"{type(trigger).__name__} instance", given, allowed=())
            trig, desc, default_id = trigger, str(trigger), f"trigger:{trigger}"
        elif trigger == "cron":
            self._reject_extra("cron", given, allowed=("cron", "start_date", "end_date"))
            trig, desc, default_id = self._cron(
                cron, tz, timezone is not None, start_date, end_date
            )
        elif trigger == "interval":
            self._reject_extra(
                "interval",
                given,
                allowed=(
                    "interval_seconds",
                    "interval_minutes",
                    "interval_hours",
                    "interval_days",
                    "start_date",
                    "end_date",
                ),
            )
            trig, desc, default_id = self._interval(
                interval_seconds,
                interval_minutes,
                interval_hours,
                interval_days,
                start_date,
                end_date,
                tz,
            )
        elif trigger == "date":
            self._reject_extra("date", given, allowed=("run_date",))
            grace = (
                self.misfire_grace_seconds
                if misfire_grace_seconds is _UNSET
                else self._check_grace(misfire_grace_seconds)
            )
            trig, desc, default_id = self._date(run_date, tz, grace)
        elif trigger in ("market_open", "market_close"):
            self._reject_extra(trigger, given, allowed=("exchange", "offset_minutes"))
            trig, desc, default_id = self._market(
                trigger[len("market_") :], exchange or "NYSE", offset_minutes, tz
            )
        else:
            raise SchedulerError(
                f"unknown trigger {trigger!r}: use one of {', '.join(TRIGGER_TYPES)} "
                f"or an APScheduler trigger instance"
            )
        job_id = default_id if job_id is None else job_id
        return self._register(
            trig, callback, job_id, desc, misfire_grace_seconds, coalesce, replace_existing
        )

    def schedule_market_open(
        self,
        callback: Callable[[], Any],
        exchange: str = "NYSE",
        timezone: str | tzinfo | None = None,
        offset_minutes: int = 0,
        job_id: str | None = None,
        *,
        replace_existing: bool = False,
    ) -> str:
        """Run ``callback`` at each session open (+ ``offset_minutes``; negative = before).

        Default id ``market_open_<EXCHANGE>`` (plus ``_<+N>m`` with an offset).
        ``timezone`` only sets how next-run times are shown; the instant is the exchange's.
        """
        return self.add_job(
            "market_open",
            callback,
            job_id=job_id,
            exchange=exchange,
            timezone=timezone,
            offset_minutes=offset_minutes,
            replace_existing=replace_existing,
        )

    def schedule_market_close(
        self,
        callback: Callable[[], Any],
        exchange: str = "NYSE",
        timezone: str | tzinfo | None = None,
        offset_minutes: int = 0,
        job_id: str | None = None,
        *,
        replace_existing: bool = False,
    ) -> str:
        """Run ``callback`` at each session close (13:00 New York on NYSE early-close days,
        never on holidays) + ``offset_minutes`` (negative = before the close).

        Default id ``market_close_<EXCHANGE>`` (plus ``_<+N>m`` with an offset).
        """
        return self.add_job(
            "market_close",
            callback,
            job_id=job_id,
            exchange=exchange,
            timezone=timezone,
            offset_minutes=offset_minutes,
            replace_existing=replace_existing,
        )

    def schedule_rule(
        self,
        callback: Callable[[], Any],
        date_rule: DateRule | None = None,
        time_rule: TimeRule | None = None,
        calendar: str = "XNYS",
        job_id: str | None = None,
        *,
        replace_existing: bool = False,
    ) -> str:
        """Run ``callback`` on zipline-style rules (what ``schedule_function`` maps to in live).

        Fires at exactly :func:`rustybt.scheduling.fire_times` for the same rules. Defaults:
        every day, one minute after the open. Default id ``rule:<date_rule>:<time_rule>:<CAL>``.
        """
        from rustybt.scheduling import time_rules

        date_rule = date_rules.every_day() if date_rule is None else date_rule
        time_rule = time_rules.market_open() if time_rule is None else time_rule
        trig = RuleTrigger(date_rule, time_rule, calendar, timezone=self.timezone)
        default_id = f"rule:{date_rule!r}:{time_rule!r}:{trig.calendar}"
        return self._register(
            trig,
            callback,
            default_id if job_id is None else job_id,
            str(trig),
            _UNSET,
            _UNSET,
            replace_existing,
        )

    # --- managing jobs ------------------------------------------------------------------------
    def remove_job(self, job_id: str) -> None:
        """Remove a job; trigger events of it still queued are dropped, not run."""
        job = self._get(job_id)
        del self._jobs[job_id]
        if self._aps is not None:
            try:
                self._aps.remove_job(job_id)
            except JobLookupError:
                pass  # APScheduler already dropped an exhausted one-off job
        self._cancelled[job_id] = None
        _trim(self._cancelled)
        log.info("scheduled_job_removed", job_id=job_id, runs=job.run_count)

    def pause_job(self, job_id: str) -> None:
        """Stop a job firing until :meth:`resume_job`; runs due meanwhile are not made up."""
        job = self._get(job_id)
        job.paused = True
        job.next_run_time = None
        if self._aps is not None:
            self._aps.pause_job(job_id)

    def resume_job(self, job_id: str) -> None:
        """Resume a paused job from its next fire time after now."""
        job = self._get(job_id)
        if not job.paused:
            return
        job.paused = False
        if self._aps is not None:
            self._aps.resume_job(job_id)
        else:
            job.next_run_time = job.trigger.get_next_fire_time(None, self.now())
            if job.next_run_time is None:
                self._finish(job)

    def get_job(self, job_id: str) -> dict[str, Any]:
        """One job's description (see :meth:`list_jobs`)."""
        return self._describe(self._get(job_id))

    def list_jobs(self) -> list[dict[str, Any]]:
        """Each job as ``{'job_id', 'trigger', 'next_run_time' (tz-aware, None when paused),
        'paused', 'fire_count', 'run_count', 'error_count', 'missed_count', 'last_error'}``,
        in the order added."""
        return [self._describe(j) for j in sorted(self._jobs.values(), key=lambda j: j.seq)]

    # --- running callbacks --------------------------------------------------------------------
    def execute(self, event: ScheduledTriggerEvent) -> bool:
        """Run a trigger event's callback (the engine calls this on its loop).

        An exception is logged with its traceback and counted (``error_count`` here and per
        job) and ``on_error`` is told; it never propagates, so the engine and the scheduler go
        on. Returns True when the callback ran without raising. Events of removed or paused
        jobs are dropped. An ``async`` callback is run as a task on the running loop.
        """
        job = self._jobs.get(event.job_id) or self._finished.get(event.job_id)
        if job is None and event.job_id in self._cancelled:
            log.info("scheduled_trigger_dropped", job_id=event.job_id, reason="job removed")
            return False
        if job is not None and job.paused:
            log.info("scheduled_trigger_dropped", job_id=event.job_id, reason="job paused")
            return False
        self.run_count += 1
        if job is not None:
            job.run_count += 1
        try:
            result = event.callback()
            if inspect.isawaitable(result):
                return self._run_awaitable(result, job, event)
        except Exception as exc:
            self._record_error(job, event, exc)
            return False
        return True

    # --- simulated time -----------------------------------------------------------------------
    def advance_to(self, dt: datetime) -> None:
        """Simulated mode: move the clock to ``dt``, firing every due job in time order."""
        if self.clock is None:
            raise SchedulerError(
                "advance_to() needs a simulated clock: TradingScheduler(clock=SimulatedClock(t0))"
            )
        self.clock.advance_to(dt)

    def _sweep_to(self, target: datetime) -> None:
        if not self._jobs or not self._started or self._paused:
            return
        clock = self.clock
        assert clock is not None
        while True:
            due = [
                j
                for j in self._jobs.values()
                if not j.paused and j.next_run_time is not None and j.next_run_time <= target
            ]
            if not due:
                return
            job = min(due, key=lambda j: (j.next_run_time, j.seq))
            first = job.next_run_time
            assert first is not None
            now = max(first, clock._now)  # later than first only when catching up
            clock._now = now
            run_times, nxt = self._run_times_until(job, first, now)
            job.next_run_time = nxt
            if nxt is None:
                self._finish(job)
            self._on_due(job.job_id, run_times, now)

    def _run_times_until(
        self, job: _Job, first: datetime, now: datetime
    ) -> tuple[list[datetime], datetime | None]:
        """All run times of ``job`` from ``first`` up to ``now``, and the next one after."""
        runs = [first]
        nxt = job.trigger.get_next_fire_time(first, now)
        while nxt is not None and nxt <= now:
            if nxt <= runs[-1]:
                raise SchedulerError(f"trigger of job {job.job_id!r} does not move forward")
            if len(runs) >= _MAX_CATCH_UP_RUNS:
                # Too long a backlog to enumerate: keep only the runs still inside the grace
                # window (the policy would drop the older ones anyway) and count the rest.
                dropped = len(runs)
                job.missed_count += dropped
                self.missed_count += dropped
                log.warning("scheduled_backlog_truncated", job_id=job.job_id, dropped=dropped)
                grace = job.misfire_grace_seconds or 0.0
                runs = []
                nxt = job.trigger.get_next_fire_time(None, now - timedelta(seconds=grace))
                while nxt is not None and nxt <= now and len(runs) < _MAX_CATCH_UP_RUNS:
                    runs.append(nxt)
                    nxt = job.trigger.get_next_fire_time(nxt, now)
                break
            runs.append(nxt)
            nxt = job.trigger.get_next_fire_time(nxt, now)
        return runs, nxt

    # --- firing (both modes) ------------------------------------------------------------------
    def _on_due(self, job_id: str, run_times: list[datetime], now: datetime) -> None:
        """Apply the misfire policy to overdue ``run_times`` and fire what survives."""
        job = self._jobs.get(job_id) or self._finished.get(job_id)
        if job is None or not self._started or not run_times:
            return
        if job.coalesce and len(run_times) > 1:
            dropped = len(run_times) - 1
            job.missed_count += dropped
            self.missed_count += dropped
            log.info("scheduled_runs_coalesced", job_id=job_id, coalesced=dropped + 1)
            run_times = run_times[-1:]
        grace = job.misfire_grace_seconds
        for run_time in run_times:
            late = (now - run_time).total_seconds()
            if grace is not None and late > grace:
                job.missed_count += 1
                self.missed_count += 1
                log.warning(
                    "scheduled_run_missed",
                    job_id=job_id,
                    scheduled_time=run_time.isoformat(),
                    late_seconds=late,
                    misfire_grace_seconds=grace,
                )
                continue
            self._fire(job, run_time)

    def _fire(self, job: _Job, run_time: datetime) -> None:
        job.fire_count += 1
        job.last_fire_time = run_time
        event = ScheduledTriggerEvent(
            callback=job.callback, job_id=job.job_id, scheduled_time=run_time
        )
        if self._put is not None:
            self._put(event)
        elif self._aps is not None:
            # Off APScheduler's job-store lock, so a callback may add/remove jobs.
            asyncio.get_running_loop().call_soon(self.execute, event)
        else:
            self.execute(event)

    def _on_aps_job_removed(self, aps_event: Any) -> None:
        # APScheduler drops a job whose trigger is exhausted (a fired one-off); user removals
        # have already left self._jobs by the time this runs.
        job = self._jobs.get(aps_event.job_id)
        if job is not None:
            self._finish(job)

    def _finish(self, job: _Job) -> None:
        job.finished = True
        job.next_run_time = None
        if self._jobs.get(job.job_id) is job:
            del self._jobs[job.job_id]
            self._finished[job.job_id] = job
            _trim(self._finished)

    def _run_awaitable(self, awaitable: Any, job: _Job | None, event: Any) -> bool:
        async def _await() -> None:
            try:
                await awaitable
            except Exception as exc:
                self._record_error(job, event, exc)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            errors_before = self.error_count
            asyncio.run(_await())  # standalone simulated use: finish it now
            return self.error_count == errors_before
        loop.create_task(_await())
        return True

    def _record_error(self, job: _Job | None, event: Any, exc: BaseException) -> None:
        self.error_count += 1
        if job is not None:
            job.error_count += 1
            job.last_error = f"{type(exc).__name__}: {exc}"
        scheduled = getattr(event, "scheduled_time", None)
        log.error(
            "scheduled_job_failed",
            job_id=event.job_id,
            scheduled_time=scheduled.isoformat() if scheduled else None,
            error=f"{type(exc).__name__}: {exc}",
            error_count=self.error_count,
            exc_info=exc,
        )
        if self.on_error is not None:
            try:
                self.on_error(event.job_id, exc)
            except Exception:
                log.exception("scheduler_on_error_hook_failed", job_id=event.job_id)

    # --- internals ----------------------------------------------------------------------------
    @staticmethod
    def _check_grace(value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise SchedulerError(
                f"misfire_grace_seconds must be a number >= 0 or None (no limit), got {value!r}"
            )
        return float(value)

    @staticmethod
    def _reject_extra(kind: str, given: dict[str, Any], allowed: Iterable[str]) -> None:
        extra = sorted(k for k, v in given.items() if v is not None and k not in allowed)
        if extra:
            raise SchedulerError(
                f"{', '.join(extra)} {'does' if len(extra) == 1 else 'do'} not apply to the "
                f"{kind} trigger; "
                f"it takes: {', '.join(allowed) or 'nothing else'}"
            )

    def _cron(
        self,
        expr: Any,
        tz: tzinfo,
        tz_given: bool,
        start_date: datetime | None,
        end_date: datetime | None,
    ) -> tuple[BaseTrigger, str, str]:
        if not isinstance(expr, str) or not expr.strip():
            raise SchedulerError(
                "a cron trigger needs cron='<minute> <hour> <day> <month> <day_of_week>', "
                "e.g. cron='0 12 * * 1-5'"
            )
        expr = " ".join(expr.split())
        try:
            trig = CronTrigger.from_crontab(expr, timezone=tz)
            if start_date is not None or end_date is not None:
                fields = {f.name: str(f) for f in trig.fields}
                trig = CronTrigger(
                    **{k: fields[k] for k in ("minute", "hour", "day", "month", "day_of_week")},
                    start_date=start_date and _require_aware(start_date, "start_date"),
                    end_date=end_date and _require_aware(end_date, "end_date"),
                    timezone=tz,
                )
        except (ValueError, TypeError) as exc:
            raise SchedulerError(
                f"bad cron string {expr!r}: {exc}. Use 5 fields "
                f"'<minute> <hour> <day> <month> <day_of_week>', e.g. '0 12 * * 1-5'"
            ) from None
        suffix = f"@{_tz_name(tz)}" if tz_given else ""
        return trig, f"cron[{expr} {_tz_name(tz)}]", f"cron:{expr}{suffix}"

    def _interval(
        self,
        seconds: Any,
        minutes: Any,
        hours: Any,
        days: Any,
        start_date: datetime | None,
        end_date: datetime | None,
        tz: tzinfo,
    ) -> tuple[BaseTrigger, str, str]:
        parts = {"seconds": seconds, "minutes": minutes, "hours": hours, "days": days}
        total = timedelta(0)
        for name, value in parts.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise SchedulerError(f"interval_{name} must be a positive number, got {value!r}")
            total += timedelta(**{name: value})
        if total <= timedelta(0):
            raise SchedulerError(
                "an interval trigger needs interval_seconds, interval_minutes, interval_hours "
                "or interval_days, e.g. interval_minutes=15"
            )
        if start_date is not None:
            start = _require_aware(start_date, "start_date")
        else:
            # First run one interval from now, like APScheduler; explicit so that simulated
            # time never reads the wall clock.
            start = self.now() + total
        end = None if end_date is None else _require_aware(end_date, "end_date")
        trig = IntervalTrigger(
            seconds=total.total_seconds(), start_date=start, end_date=end, timezone=tz
        )
        secs = total.total_seconds()
        label = f"{int(secs)}s" if secs == int(secs) else f"{secs}s"
        return trig, f"interval[{label}]", f"interval:{label}"

    def _date(self, run_date: Any, tz: tzinfo, grace: float | None) -> tuple[BaseTrigger, str, str]:
        if run_date is None:
            raise SchedulerError("a date trigger needs run_date=<datetime>")
        if isinstance(run_date, str):
            try:
                run_date = datetime.fromisoformat(run_date)
            except ValueError:
                raise SchedulerError(
                    f"run_date {run_date!r} is not an ISO datetime like '2024-11-29T13:00:00-05:00'"
                ) from None
        if not isinstance(run_date, datetime):
            raise SchedulerError(f"run_date must be a datetime, got {run_date!r}")
        if run_date.tzinfo is None:
            run_date = run_date.replace(tzinfo=tz)  # naive: wall time in the job's zone
        late = (self.now() - run_date).total_seconds()
        if grace is not None and late > grace:
            raise SchedulerError(
                f"run_date {run_date.isoformat()} is already past (now {self.now().isoformat()}), "
                f"so the job would never run; pick a future time"
            )
        trig = DateTrigger(run_date=run_date, timezone=tz)
        iso = run_date.astimezone(UTC).isoformat()
        return trig, f"date[{run_date.isoformat()}]", f"date:{iso}"

    def _market(
        self, anchor: str, exchange: str, offset_minutes: Any, tz: tzinfo
    ) -> tuple[BaseTrigger, str, str]:
        code = resolve_calendar_name(exchange)
        if isinstance(offset_minutes, bool) or not isinstance(offset_minutes, int):
            raise SchedulerError(
                f"offset_minutes must be a whole number of minutes (negative = before), "
                f"got {offset_minutes!r}"
            )
        if abs(offset_minutes) >= 24 * 60:
            raise SchedulerError(f"offset_minutes={offset_minutes} must be under one day")
        trig = RuleTrigger(
            date_rules.every_day(), _session_anchor(anchor, offset_minutes), code, timezone=tz
        )
        name = exchange.strip().upper()
        suffix = f"_{offset_minutes:+d}m" if offset_minutes else ""
        desc = f"market_{anchor}[{code}{suffix.lstrip('_')} {_tz_name(tz)}]"
        return trig, desc, f"market_{anchor}_{name}{suffix}"

    def _register(
        self,
        trig: BaseTrigger,
        callback: Callable[[], Any],
        job_id: Any,
        desc: str,
        misfire_grace_seconds: Any,
        coalesce: Any,
        replace_existing: bool,
    ) -> str:
        if not callable(callback):
            raise SchedulerError(f"callback must be callable, got {callback!r}")
        if not isinstance(job_id, str) or not job_id.strip():
            raise SchedulerError(f"job_id must be a non-empty string, got {job_id!r}")
        grace = (
            self.misfire_grace_seconds
            if misfire_grace_seconds is _UNSET
            else self._check_grace(misfire_grace_seconds)
        )
        if coalesce is _UNSET:
            coalesce = self.coalesce
        elif not isinstance(coalesce, bool):
            raise SchedulerError(f"coalesce must be True or False, got {coalesce!r}")
        if job_id in self._jobs and not replace_existing:
            raise SchedulerError(
                f"a job with id {job_id!r} already exists; pass job_id='<another name>' "
                f"or replace_existing=True"
            )
        job = _Job(
            job_id=job_id,
            trigger=trig,
            callback=callback,
            description=desc,
            misfire_grace_seconds=grace,
            coalesce=coalesce,
            seq=next(self._seq),
        )
        now = self.now()
        first = trig.get_next_fire_time(None, now)
        if first is None:
            raise SchedulerError(f"job {job_id!r} ({desc}) would never fire")
        if self._aps is not None:
            self._aps.add_job(
                _never_called, trigger=trig, id=job_id, name=job_id, replace_existing=True
            )
        else:
            job.next_run_time = first
        old = self._jobs.get(job_id)
        if old is not None:
            job.seq = old.seq
        self._jobs[job_id] = job
        self._finished.pop(job_id, None)
        self._cancelled.pop(job_id, None)
        log.info("scheduled_job_added", job_id=job_id, trigger=desc, next_run_time=str(first))
        return job_id

    def _get(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            known = ", ".join(sorted(self._jobs)) or "none"
            raise JobNotFound(f"no scheduled job with id {job_id!r}; known ids: {known}")
        return job

    def _describe(self, job: _Job) -> dict[str, Any]:
        nrt: datetime | None
        if job.paused:
            nrt = None
        elif self._aps is None:
            nrt = job.next_run_time
        else:
            aps_job = self._aps.get_job(job.job_id)
            nrt = getattr(aps_job, "next_run_time", None) if aps_job is not None else None
            if nrt is None and aps_job is not None and not self._aps.running:
                nrt = job.trigger.get_next_fire_time(None, self.now())
        return {
            "job_id": job.job_id,
            "trigger": job.description,
            "next_run_time": nrt,
            "paused": job.paused,
            "fire_count": job.fire_count,
            "run_count": job.run_count,
            "error_count": job.error_count,
            "missed_count": job.missed_count,
            "last_error": job.last_error,
        }


_KEEP_DONE_JOBS = 1000


def _trim(records: dict[str, Any]) -> None:
    """Bound the memory of finished/removed ids (a strategy may add one-offs all day)."""
    while len(records) > _KEEP_DONE_JOBS:
        del records[next(iter(records))]


def _never_called() -> None:  # pragma: no cover - _EnqueueExecutor never calls job functions
    raise AssertionError("TradingScheduler jobs are fired by _EnqueueExecutor")
