"""TradingScheduler on a controllable clock (and briefly in real time, never waiting minutes)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from rustybt.exceptions import JobNotFound, SchedulerError
from rustybt.live.events import EventQueue, ScheduledTriggerEvent
from rustybt.live.scheduler import SimulatedClock, TradingScheduler
from rustybt.scheduling import date_rules, fire_times, time_rules

NY = ZoneInfo("America/New_York")


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _sim(start: datetime, **kwargs) -> tuple[TradingScheduler, SimulatedClock, EventQueue]:
    clock = SimulatedClock(start)
    queue = EventQueue()
    scheduler = TradingScheduler(event_queue=queue, clock=clock, **kwargs)
    scheduler.start()
    return scheduler, clock, queue


def _drain(queue: EventQueue) -> list[ScheduledTriggerEvent]:
    events = []
    while (event := queue.get_nowait()) is not None:
        events.append(event)
    return events


class _Recorder:
    def __init__(self, clock: SimulatedClock | None = None) -> None:
        self.calls: list[datetime | None] = []
        self.clock = clock

    def __call__(self) -> None:
        self.calls.append(self.clock.now() if self.clock else None)


# --- firing times -----------------------------------------------------------------------------
def test_cron_job_fires_at_noon_new_york_across_the_spring_dst_change():
    scheduler, clock, queue = _sim(_utc(2024, 3, 8))
    scheduler.add_job(
        trigger="cron", callback=lambda: None, cron="0 12 * * *", timezone="America/New_York"
    )
    clock.advance_to(_utc(2024, 3, 13))
    fired = [e.scheduled_time for e in _drain(queue)]
    assert [t.astimezone(UTC).hour for t in fired] == [17, 17, 16, 16, 16]  # EST then EDT
    assert {t.astimezone(NY).strftime("%H:%M") for t in fired} == {"12:00"}
    assert [t.astimezone(NY).day for t in fired] == [8, 9, 10, 11, 12]


def test_cron_job_fires_at_local_time_across_the_autumn_dst_change():
    scheduler, clock, queue = _sim(_utc(2024, 11, 1))
    scheduler.add_job("cron", lambda: None, cron="30 9 * * *", timezone="America/New_York")
    clock.advance_to(_utc(2024, 11, 5))
    fired = [e.scheduled_time.astimezone(UTC) for e in _drain(queue)]
    assert fired == [
        _utc(2024, 11, 1, 13, 30),
        _utc(2024, 11, 2, 13, 30),
        _utc(2024, 11, 3, 14, 30),
        _utc(2024, 11, 4, 14, 30),
    ]


def test_market_close_fires_at_1300_new_york_on_early_close_and_not_on_thanksgiving():
    scheduler, clock, queue = _sim(_utc(2024, 11, 26))
    scheduler.schedule_market_close(lambda: None, exchange="NYSE", timezone="America/New_York")
    clock.advance_to(_utc(2024, 12, 1))
    local = [e.scheduled_time.astimezone(NY) for e in _drain(queue)]
    assert [t.strftime("%m-%d %H:%M") for t in local] == [
        "11-26 16:00",
        "11-27 16:00",
        "11-29 13:00",
    ]


def test_market_open_with_negative_offset_fires_before_the_open():
    scheduler, clock, queue = _sim(_utc(2024, 11, 29))
    job_id = scheduler.schedule_market_open(lambda: None, exchange="XNYS", offset_minutes=-15)
    assert job_id == "market_open_XNYS_-15m"
    clock.advance_to(_utc(2024, 12, 3))
    fired = [e.scheduled_time.astimezone(NY).strftime("%m-%d %H:%M") for e in _drain(queue)]
    assert fired == ["11-29 09:15", "12-02 09:15"]


def test_crypto_market_open_fires_every_day_at_midnight_utc():
    scheduler, clock, queue = _sim(_utc(2024, 11, 29, 1))
    scheduler.schedule_market_open(lambda: None, exchange="CRYPTO")
    clock.advance_to(_utc(2024, 12, 2, 12))
    fired = [e.scheduled_time for e in _drain(queue)]
    assert fired == [_utc(2024, 11, 30), _utc(2024, 12, 1), _utc(2024, 12, 2)]


def test_interval_job_fires_every_fifteen_minutes_from_its_start():
    t0 = _utc(2024, 5, 1, 9)
    scheduler, clock, queue = _sim(t0)
    scheduler.add_job(trigger="interval", callback=lambda: None, interval_minutes=15)
    clock.advance_to(t0 + timedelta(hours=1, minutes=5))
    fired = [e.scheduled_time for e in _drain(queue)]
    assert fired == [t0 + timedelta(minutes=15 * k) for k in range(1, 5)]


def test_interval_units_add_up():
    t0 = _utc(2024, 5, 1)
    scheduler, clock, queue = _sim(t0)
    job_id = scheduler.add_job("interval", lambda: None, interval_hours=1, interval_minutes=30)
    assert job_id == "interval:5400s"
    assert scheduler.get_job(job_id)["next_run_time"] == t0 + timedelta(minutes=90)


def test_date_job_fires_once_and_then_leaves_the_job_list():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    cb = _Recorder(clock)
    job_id = scheduler.add_job("date", cb, run_date=_utc(2024, 5, 1, 12), job_id="once")
    clock.advance_to(_utc(2024, 5, 3))
    events = _drain(queue)
    assert [e.scheduled_time for e in events] == [_utc(2024, 5, 1, 12)]
    assert job_id not in [j["job_id"] for j in scheduler.list_jobs()]
    assert scheduler.execute(events[0]) is True  # still runs although the job is done firing
    assert len(cb.calls) == 1


def test_jobs_due_at_the_same_time_fire_in_the_order_added_and_events_carry_job_ids():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    scheduler.add_job("cron", lambda: None, cron="0 10 * * *", job_id="b")
    scheduler.add_job("cron", lambda: None, cron="0 10 * * *", job_id="a")
    scheduler.add_job("cron", lambda: None, cron="0 9 * * *", job_id="c")
    clock.advance_to(_utc(2024, 5, 1, 23))
    assert [e.job_id for e in _drain(queue)] == ["c", "b", "a"]


def test_triggers_enqueue_events_and_callbacks_run_only_when_executed():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    cb = _Recorder()
    scheduler.add_job("interval", cb, interval_hours=1)
    scheduler.advance_to(_utc(2024, 5, 1, 3))
    events = _drain(queue)
    assert len(events) == 3 and all(isinstance(e, ScheduledTriggerEvent) for e in events)
    assert cb.calls == []
    for event in events:
        assert scheduler.execute(event) is True
    assert len(cb.calls) == 3
    assert scheduler.get_job("interval:3600s")["run_count"] == 3


def test_without_event_queue_callbacks_run_directly_at_their_fire_time():
    clock = SimulatedClock(_utc(2024, 5, 1))
    scheduler = TradingScheduler(clock=clock)
    scheduler.start()
    cb = _Recorder(clock)
    scheduler.add_job("cron", cb, cron="*/20 * * * *")
    clock.advance_to(_utc(2024, 5, 1, 1))
    # Added exactly on a fire instant, it fires at that instant (APScheduler semantics).
    assert cb.calls == [_utc(2024, 5, 1, 0, m) for m in (0, 20, 40)] + [_utc(2024, 5, 1, 1)]
    assert clock.now() == _utc(2024, 5, 1, 1)


def test_nothing_fires_before_start():
    clock = SimulatedClock(_utc(2024, 5, 1))
    queue = EventQueue()
    scheduler = TradingScheduler(event_queue=queue, clock=clock)
    scheduler.add_job("interval", lambda: None, interval_minutes=10)
    clock.advance_to(_utc(2024, 5, 1, 1, 5))
    assert queue.qsize() == 0
    scheduler.start()  # the backlog is not made up: counting resumes from now
    clock.advance_to(_utc(2024, 5, 1, 1, 10))
    assert [e.scheduled_time for e in _drain(queue)] == [_utc(2024, 5, 1, 1, 10)]


# --- job management ---------------------------------------------------------------------------
def test_list_jobs_reports_ids_tz_aware_next_run_times_and_counters():
    scheduler, clock, queue = _sim(_utc(2024, 11, 29, 12, 30))
    scheduler.schedule_market_close(lambda: None, timezone="America/New_York")
    scheduler.add_job("cron", lambda: None, cron="0 * * * *")
    jobs = scheduler.list_jobs()
    assert [j["job_id"] for j in jobs] == ["market_close_NYSE", "cron:0 * * * *"]
    close = jobs[0]["next_run_time"]
    assert close.tzinfo is not None and close.astimezone(NY) == datetime(
        2024, 11, 29, 13, 0, tzinfo=NY
    )
    assert jobs[1]["next_run_time"] == _utc(2024, 11, 29, 13)
    assert {k: jobs[0][k] for k in ("paused", "fire_count", "run_count", "error_count")} == {
        "paused": False, "fire_count": 0, "run_count": 0, "error_count": 0,
    }  # fmt: skip


def test_remove_job_removes_it_and_drops_its_queued_triggers():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    cb = _Recorder()
    scheduler.add_job("cron", cb, cron="0 * * * *", job_id="hourly")
    clock.advance_to(_utc(2024, 5, 1, 1))
    queued = _drain(queue)
    scheduler.remove_job("hourly")
    assert scheduler.list_jobs() == []
    clock.advance_to(_utc(2024, 5, 1, 5))
    assert queue.qsize() == 0
    assert scheduler.execute(queued[0]) is False
    assert cb.calls == []
    with pytest.raises(JobNotFound, match="hourly"):
        scheduler.remove_job("hourly")


def test_pause_job_stops_firing_and_resume_continues_from_now_without_backfill():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    scheduler.add_job("cron", lambda: None, cron="0 * * * *", job_id="hourly")
    scheduler.pause_job("hourly")
    assert scheduler.get_job("hourly") | {} == scheduler.get_job("hourly")
    assert scheduler.get_job("hourly")["paused"] is True
    assert scheduler.get_job("hourly")["next_run_time"] is None
    clock.advance_to(_utc(2024, 5, 1, 5, 30))
    assert queue.qsize() == 0
    scheduler.resume_job("hourly")
    assert scheduler.get_job("hourly")["next_run_time"] == _utc(2024, 5, 1, 6)
    clock.advance_to(_utc(2024, 5, 1, 7))
    assert [e.scheduled_time for e in _drain(queue)] == [_utc(2024, 5, 1, 6), _utc(2024, 5, 1, 7)]
    with pytest.raises(JobNotFound):
        scheduler.pause_job("nope")
    with pytest.raises(JobNotFound):
        scheduler.resume_job("nope")


def test_duplicate_job_id_is_refused_unless_replace_existing():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    scheduler.add_job("cron", lambda: None, cron="0 * * * *", job_id="x")
    with pytest.raises(SchedulerError, match="already exists"):
        scheduler.add_job("interval", lambda: None, interval_minutes=5, job_id="x")
    assert scheduler.get_job("x")["trigger"].startswith("cron")  # unchanged
    scheduler.add_job(
        "interval", lambda: None, interval_minutes=5, job_id="x", replace_existing=True
    )
    assert scheduler.get_job("x")["trigger"] == "interval[300s]"
    assert len(scheduler.list_jobs()) == 1


def test_default_job_ids_are_stable_and_collide_only_for_identical_schedules():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    assert scheduler.add_job("cron", lambda: None, cron="0  12 * * 1-5") == "cron:0 12 * * 1-5"
    assert (
        scheduler.add_job("cron", lambda: None, cron="0 12 * * 1-5", timezone="America/New_York")
        == "cron:0 12 * * 1-5@America/New_York"
    )
    assert scheduler.schedule_market_close(lambda: None) == "market_close_NYSE"
    assert (
        scheduler.schedule_market_close(lambda: None, offset_minutes=5) == "market_close_NYSE_+5m"
    )
    assert scheduler.add_job("date", lambda: None, run_date=_utc(2024, 6, 1)) == (
        "date:2024-06-01T00:00:00+00:00"
    )
    with pytest.raises(SchedulerError, match="job_id="):
        scheduler.add_job("cron", lambda: None, cron="0 12 * * 1-5")


# --- failures and the misfire policy ----------------------------------------------------------
def test_callback_that_raises_is_logged_counted_and_scheduler_goes_on():
    clock = SimulatedClock(_utc(2024, 5, 1, 0, 10))
    seen: list[tuple[str, BaseException]] = []
    scheduler = TradingScheduler(
        clock=clock, on_error=lambda job_id, exc: seen.append((job_id, exc))
    )
    scheduler.start()
    good = _Recorder(clock)

    def boom() -> None:
        raise RuntimeError("strategy bug")

    scheduler.add_job("cron", boom, cron="0 * * * *", job_id="bad")
    scheduler.add_job("cron", good, cron="30 * * * *", job_id="good")
    with capture_logs() as logs:
        clock.advance_to(_utc(2024, 5, 1, 3))
    failures = [e for e in logs if e["event"] == "scheduled_job_failed"]
    assert len(failures) == 3
    assert failures[0]["job_id"] == "bad" and failures[0]["log_level"] == "error"
    assert isinstance(failures[0]["exc_info"], RuntimeError)  # rendered with its traceback
    assert scheduler.error_count == 3
    bad = scheduler.get_job("bad")
    assert bad["error_count"] == 3 and bad["run_count"] == 3
    assert bad["last_error"] == "RuntimeError: strategy bug"
    assert len(good.calls) == 3  # the other job kept running
    assert [job_id for job_id, _ in seen] == ["bad"] * 3
    assert scheduler.get_job("bad")["next_run_time"] == _utc(2024, 5, 1, 4)


def test_execute_catches_errors_for_events_from_the_engine_queue():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    scheduler.add_job("interval", lambda: 1 / 0, interval_minutes=1, job_id="div")
    clock.advance_to(_utc(2024, 5, 1, 0, 2))
    results = [scheduler.execute(e) for e in _drain(queue)]
    assert results == [False, False]
    assert scheduler.get_job("div")["error_count"] == 2


def test_async_callback_runs_and_its_error_is_counted():
    clock = SimulatedClock(_utc(2024, 5, 1))
    scheduler = TradingScheduler(clock=clock)
    scheduler.start()
    ran: list[int] = []

    async def ok() -> None:
        ran.append(1)

    async def bad() -> None:
        raise ValueError("async bug")

    scheduler.add_job("interval", ok, interval_minutes=1, job_id="ok")
    scheduler.add_job("interval", bad, interval_minutes=1, job_id="bad")
    clock.advance_to(_utc(2024, 5, 1, 0, 1))
    assert ran == [1]
    assert scheduler.get_job("bad")["error_count"] == 1


def test_runs_missed_while_paused_are_coalesced_into_one_when_within_grace():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1, 0, 5), misfire_grace_seconds=60)
    scheduler.add_job("cron", lambda: None, cron="0 * * * *", job_id="hourly")
    scheduler.pause()  # e.g. the engine was paused
    clock.advance_to(_utc(2024, 5, 1, 3, 0, 30))
    assert queue.qsize() == 0
    scheduler.resume()
    events = _drain(queue)
    assert [e.scheduled_time for e in events] == [_utc(2024, 5, 1, 3)]  # latest only, 30 s late
    assert scheduler.get_job("hourly")["missed_count"] == 2
    assert scheduler.get_job("hourly")["next_run_time"] == _utc(2024, 5, 1, 4)


def test_runs_later_than_the_grace_period_are_skipped_and_counted_as_missed():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1, 0, 5), misfire_grace_seconds=60)
    scheduler.add_job("cron", lambda: None, cron="0 * * * *", job_id="hourly")
    scheduler.pause()
    clock.advance_to(_utc(2024, 5, 1, 3, 30))
    with capture_logs() as logs:
        scheduler.resume()
    assert queue.qsize() == 0
    assert scheduler.get_job("hourly")["missed_count"] == 3
    assert scheduler.missed_count == 3
    assert any(e["event"] == "scheduled_run_missed" for e in logs)
    clock.advance_to(_utc(2024, 5, 1, 4))
    assert [e.scheduled_time for e in _drain(queue)] == [_utc(2024, 5, 1, 4)]


def test_without_coalesce_and_grace_every_missed_run_is_made_up_in_order():
    scheduler, clock, queue = _sim(
        _utc(2024, 5, 1, 0, 5), misfire_grace_seconds=None, coalesce=False
    )
    scheduler.add_job("cron", lambda: None, cron="0 * * * *", job_id="hourly")
    scheduler.pause()
    clock.advance_to(_utc(2024, 5, 1, 3, 30))
    scheduler.resume()
    assert [e.scheduled_time for e in _drain(queue)] == [_utc(2024, 5, 1, h) for h in (1, 2, 3)]
    assert scheduler.get_job("hourly")["missed_count"] == 0


def test_per_job_misfire_policy_overrides_the_scheduler_default():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1, 0, 5), misfire_grace_seconds=0)
    scheduler.add_job(
        "cron",
        lambda: None,
        cron="0 * * * *",
        job_id="lenient",
        misfire_grace_seconds=None,
        coalesce=False,
    )
    scheduler.add_job("cron", lambda: None, cron="0 * * * *", job_id="strict")
    scheduler.pause()
    clock.advance_to(_utc(2024, 5, 1, 2, 10))
    scheduler.resume()
    assert [e.job_id for e in _drain(queue)] == ["lenient", "lenient"]


def test_a_very_long_backlog_is_truncated_but_the_run_inside_the_grace_window_still_fires():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1, 0, 0, 30), misfire_grace_seconds=60)
    scheduler.add_job("cron", lambda: None, cron="* * * * *", job_id="every_minute")
    scheduler.pause()
    clock.advance_to(_utc(2024, 5, 9, 0, 0, 30))  # 8 days = 11,520 missed minutes
    with capture_logs() as logs:
        scheduler.resume()
    assert [e.scheduled_time for e in _drain(queue)] == [_utc(2024, 5, 9)]
    assert scheduler.get_job("every_minute")["missed_count"] >= 10_000
    assert any(e["event"] == "scheduled_backlog_truncated" for e in logs)
    assert scheduler.get_job("every_minute")["next_run_time"] == _utc(2024, 5, 9, 0, 1)


# --- bad input --------------------------------------------------------------------------------
def test_bad_cron_string_names_the_cron_and_the_problem():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    with pytest.raises(SchedulerError, match=r"bad cron string '0 25 \* \* \*'.*5 fields"):
        scheduler.add_job("cron", lambda: None, cron="0 25 * * *")
    with pytest.raises(SchedulerError, match="bad cron string 'every hour'"):
        scheduler.add_job("cron", lambda: None, cron="every hour")
    with pytest.raises(SchedulerError, match="needs cron="):
        scheduler.add_job("cron", lambda: None)
    assert scheduler.list_jobs() == []


def test_unknown_exchange_gives_a_clear_error():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    with pytest.raises(SchedulerError, match=r"unknown exchange 'NYSEE'.*XNYS.*24/7"):
        scheduler.schedule_market_close(lambda: None, exchange="NYSEE")
    assert scheduler.list_jobs() == []


def test_unknown_time_zone_gives_a_clear_error():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    with pytest.raises(
        SchedulerError, match=r"unknown time zone 'America/NewYork'.*America/New_York"
    ):
        scheduler.add_job("cron", lambda: None, cron="0 12 * * *", timezone="America/NewYork")
    with pytest.raises(SchedulerError, match="unknown time zone"):
        scheduler.schedule_market_open(lambda: None, timezone="Mars/Olympus")
    with pytest.raises(SchedulerError, match="unknown time zone"):
        TradingScheduler(timezone="Nowhere/Land")
    assert scheduler.list_jobs() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trigger": "weekly"}, "unknown trigger 'weekly'"),
        ({"trigger": "interval"}, "needs interval_seconds"),
        ({"trigger": "interval", "interval_minutes": 0}, "positive"),
        ({"trigger": "interval", "interval_minutes": -5}, "positive"),
        ({"trigger": "interval", "interval_minutes": 5, "cron": "* * * * *"}, "cron do"),
        ({"trigger": "cron", "cron": "* * * * *", "interval_minutes": 5}, "interval_minutes"),
        ({"trigger": "date"}, "needs run_date"),
        ({"trigger": "date", "run_date": "tomorrow"}, "not an ISO datetime"),
        ({"trigger": "date", "run_date": datetime(2024, 4, 1, tzinfo=UTC)}, "already past"),
        ({"trigger": "market_open", "offset_minutes": 1.5}, "whole number"),
        ({"trigger": "cron", "cron": "* * * * *", "job_id": ""}, "job_id"),
        ({"trigger": "cron", "cron": "* * * * *", "misfire_grace_seconds": -1}, "misfire"),
    ],
)
def test_bad_add_job_arguments_raise_scheduler_error_and_add_nothing(kwargs, message):
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    with pytest.raises(SchedulerError, match=message):
        scheduler.add_job(callback=lambda: None, **kwargs)
    assert scheduler.list_jobs() == []


def test_non_callable_callback_is_refused():
    scheduler, clock, queue = _sim(_utc(2024, 5, 1))
    with pytest.raises(SchedulerError, match="callable"):
        scheduler.add_job("cron", "rebalance", cron="0 * * * *")


def test_simulated_clock_refuses_naive_times_and_going_backwards():
    with pytest.raises(SchedulerError, match="no time zone"):
        SimulatedClock(datetime(2024, 5, 1))
    clock = SimulatedClock(_utc(2024, 5, 1))
    with pytest.raises(SchedulerError, match="backwards"):
        clock.advance_to(_utc(2024, 4, 30))
    with pytest.raises(SchedulerError, match="no time zone"):
        clock.advance_to(datetime(2024, 5, 2))
    assert clock.now() == _utc(2024, 5, 1)


def test_advance_to_needs_a_simulated_clock():
    with pytest.raises(SchedulerError, match="SimulatedClock"):
        TradingScheduler().advance_to(_utc(2024, 5, 1))


# --- backtest / live parity -------------------------------------------------------------------
RULES = [
    (date_rules.every_day(), time_rules.market_open()),
    (date_rules.every_day(), time_rules.market_close(minutes=30)),
    (date_rules.week_start(), time_rules.market_open(hours=1)),
    (date_rules.week_end(), time_rules.market_close()),
    (date_rules.month_start(days_offset=1), time_rules.market_open(minutes=45)),
    (date_rules.month_end(), time_rules.market_close(hours=2)),
]


@pytest.mark.parametrize(("date_rule", "time_rule"), RULES, ids=lambda r: repr(r))
def test_scheduler_fires_exactly_the_backtest_fire_times_for_a_month_with_an_early_close(
    date_rule, time_rule
):
    start, end = _utc(2024, 11, 1), _utc(2024, 12, 31, 23, 59)
    expected = fire_times(date_rule, time_rule, "XNYS", start, end)
    assert datetime(2024, 11, 29, 17, 59, tzinfo=UTC) in fire_times(
        date_rules.every_day(), time_rules.market_close(), "XNYS", start, end
    )
    scheduler, clock, queue = _sim(start)
    scheduler.schedule_rule(lambda: None, date_rule, time_rule, calendar="XNYS")
    # Advance the way an engine would, in uneven steps; the result must not depend on them.
    t = start
    while t < end:
        t = min(t + timedelta(hours=7, minutes=13), end)
        clock.advance_to(t)
    assert [e.scheduled_time for e in _drain(queue)] == expected
    assert expected  # every rule fires at least once in two months


def test_scheduler_every_minute_rule_matches_backtest_minutes_on_the_early_close_day():
    start = _utc(2024, 11, 29)
    expected = fire_times(
        date_rules.every_day(),
        time_rules.every_minute(),
        "XNYS",
        date(2024, 11, 29),
        date(2024, 11, 29),
    )
    scheduler, clock, queue = _sim(start)
    scheduler.schedule_rule(lambda: None, date_rules.every_day(), time_rules.every_minute())
    clock.advance_to(_utc(2024, 11, 30))
    assert [e.scheduled_time for e in _drain(queue)] == expected
    assert len(expected) == 210


def test_schedule_rule_default_is_every_day_one_minute_after_open():
    scheduler, clock, queue = _sim(_utc(2024, 11, 29))
    job_id = scheduler.schedule_rule(lambda: None)
    assert job_id == "rule:every_day():market_open():XNYS"
    assert scheduler.get_job(job_id)["next_run_time"] == _utc(2024, 11, 29, 14, 31)


# --- real time (short, bounded waits; never minutes) ------------------------------------------
def test_start_outside_an_event_loop_is_deferred_until_called_on_the_loop():
    queue = EventQueue()
    scheduler = TradingScheduler(event_queue=queue)
    scheduler.start()
    assert scheduler.start_pending and not scheduler.running
    scheduler.add_job("cron", lambda: None, cron="0 12 * * *", job_id="noon")
    nrt = scheduler.get_job("noon")["next_run_time"]
    assert nrt is not None and nrt.tzinfo is not None

    async def main() -> None:
        scheduler.start()
        assert scheduler.running and not scheduler.start_pending
        assert scheduler.get_job("noon")["next_run_time"] == nrt
        scheduler.shutdown()

    asyncio.run(main())
    assert not scheduler.running


async def test_realtime_interval_job_enqueues_trigger_events_on_the_loop():
    queue = EventQueue()
    queue.bind_loop(asyncio.get_running_loop())
    scheduler = TradingScheduler(event_queue=queue)
    scheduler.start()
    cb = _Recorder()
    try:
        scheduler.add_job("interval", cb, interval_seconds=0.05, job_id="fast")
        event = await queue.get(timeout=10)
        assert isinstance(event, ScheduledTriggerEvent) and event.job_id == "fast"
        assert event.scheduled_time is not None and event.scheduled_time.tzinfo is not None
        assert cb.calls == []  # the engine runs it, not the timer
        assert scheduler.execute(event) is True
        assert len(cb.calls) == 1
    finally:
        scheduler.shutdown()
    scheduler.shutdown()  # idempotent


async def test_realtime_one_off_job_runs_directly_without_a_queue_and_errors_are_counted():
    scheduler = TradingScheduler()
    scheduler.start()
    done = asyncio.Event()

    def boom() -> None:
        done.set()
        raise RuntimeError("late bug")

    try:
        run_at = datetime.now(UTC) + timedelta(milliseconds=50)
        scheduler.add_job("date", boom, run_date=run_at, job_id="once")
        await asyncio.wait_for(done.wait(), timeout=10)
        await asyncio.sleep(0)
        assert scheduler.error_count == 1
        assert scheduler.list_jobs() == []  # a fired one-off is gone
    finally:
        scheduler.shutdown()


async def test_realtime_list_pause_resume_and_remove():
    scheduler = TradingScheduler(event_queue=EventQueue(), timezone="America/New_York")
    scheduler.start()
    try:
        scheduler.schedule_market_close(lambda: None, job_id="close")
        scheduler.add_job("interval", lambda: None, interval_hours=1, job_id="hourly")
        jobs = {j["job_id"]: j for j in scheduler.list_jobs()}
        assert set(jobs) == {"close", "hourly"}
        assert all(j["next_run_time"].tzinfo is not None for j in jobs.values())
        assert jobs["close"]["next_run_time"] > datetime.now(UTC)
        scheduler.pause_job("hourly")
        assert scheduler.get_job("hourly")["next_run_time"] is None
        scheduler.resume_job("hourly")
        assert scheduler.get_job("hourly")["next_run_time"] is not None
        scheduler.remove_job("close")
        assert [j["job_id"] for j in scheduler.list_jobs()] == ["hourly"]
        with pytest.raises(JobNotFound):
            scheduler.remove_job("close")
    finally:
        scheduler.shutdown()


async def test_realtime_shutdown_on_the_loop_stops_firing_at_once():
    queue = EventQueue()
    scheduler = TradingScheduler(event_queue=queue)
    scheduler.start()
    scheduler.add_job("interval", lambda: None, interval_seconds=0.01, job_id="fast")
    scheduler.shutdown()
    assert not scheduler.running
    await asyncio.sleep(0.05)  # several intervals: nothing may fire after shutdown
    assert queue.qsize() == 0
