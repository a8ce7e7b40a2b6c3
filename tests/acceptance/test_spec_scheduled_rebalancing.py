"""The spec's "Example - Scheduled Rebalancing" (section 5, Trading Scheduler), run as written.

One change, as the issue says: ``job_id='market_close_rebalance'`` is passed to
``schedule_market_close`` so that the example's ``remove_job('market_close_rebalance')`` names
a job that exists. ``engine`` is a real :class:`LiveTradingEngine` (paper broker over the
demo bundle), as a user would have built it before scheduling jobs on its queue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from rustybt import TradingAlgorithm
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.events import ScheduledTriggerEvent
from rustybt.live.scheduler import SimulatedClock

NY = ZoneInfo("America/New_York")


def _Engine() -> LiveTradingEngine:
    from rustybt.data.polars.data_portal import PolarsDataPortal

    class Idle(TradingAlgorithm):
        pass

    return LiveTradingEngine(
        strategy=Idle(),
        broker_adapter=PaperBroker(starting_cash=Decimal("100000")),
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        circuit_breakers=CircuitBreakerManager(),
    )


class _Strategy:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def rebalance_portfolio(self) -> None:
        self.calls.append("rebalance_portfolio")

    def check_risk(self) -> None:
        self.calls.append("check_risk")

    def rebalance_intraday(self) -> None:
        self.calls.append("rebalance_intraday")

    def update_signals(self) -> None:
        self.calls.append("update_signals")


async def test_spec_example_runs_as_written_and_remove_job_removes_the_close_job():
    engine, strategy = _Engine(), _Strategy()

    # --- the spec's example, verbatim apart from job_id ------------------------------------
    from rustybt.live.scheduler import TradingScheduler

    # Initialize scheduler
    scheduler = TradingScheduler(event_queue=engine.event_queue)
    scheduler.start()

    # Schedule rebalancing at market close (NYSE)
    scheduler.schedule_market_close(
        callback=lambda: strategy.rebalance_portfolio(),
        exchange="NYSE",
        timezone="America/New_York",
        job_id="market_close_rebalance",
    )

    # Schedule risk check every hour
    scheduler.add_job(
        trigger="cron",
        callback=lambda: strategy.check_risk(),
        cron="0 * * * *",  # Every hour on the hour
    )

    # Schedule intraday rebalance at specific time
    scheduler.add_job(
        trigger="cron",
        callback=lambda: strategy.rebalance_intraday(),
        cron="0 12 * * 1-5",  # 12:00 PM, Monday-Friday
        timezone="America/New_York",
    )

    # Schedule interval-based callback
    scheduler.add_job(
        trigger="interval",
        callback=lambda: strategy.update_signals(),
        interval_minutes=15,  # Every 15 minutes
    )

    jobs_before = {j["job_id"]: j for j in scheduler.list_jobs()}

    # Remove callback
    scheduler.remove_job("market_close_rebalance")
    # --- end of the example --------------------------------------------------------------

    try:
        assert scheduler.running
        assert set(jobs_before) == {
            "market_close_rebalance",
            "cron:0 * * * *",
            "cron:0 12 * * 1-5@America/New_York",
            "interval:900s",
        }
        now = datetime.now(UTC)
        for job in jobs_before.values():
            assert job["next_run_time"].tzinfo is not None
            assert job["next_run_time"] > now
        close = jobs_before["market_close_rebalance"]["next_run_time"].astimezone(NY)
        assert close.strftime("%H:%M") in {"16:00", "13:00"}  # regular or early close
        assert "market_close_rebalance" not in [j["job_id"] for j in scheduler.list_jobs()]
        assert len(scheduler.list_jobs()) == 3
    finally:
        scheduler.shutdown()


def test_spec_example_on_a_simulated_clock_enqueues_trigger_events_for_the_engine():
    engine, strategy = _Engine(), _Strategy()
    # Friday after Thanksgiving 2024: NYSE closes early at 13:00 New York time.
    clock = SimulatedClock(datetime(2024, 11, 29, 14, 5, tzinfo=UTC))  # 09:05 New York

    from rustybt.live.scheduler import TradingScheduler

    scheduler = TradingScheduler(event_queue=engine.event_queue, clock=clock)
    scheduler.start()
    scheduler.schedule_market_close(
        callback=lambda: strategy.rebalance_portfolio(),
        exchange="NYSE",
        timezone="America/New_York",
        job_id="market_close_rebalance",
    )
    scheduler.add_job(trigger="cron", callback=lambda: strategy.check_risk(), cron="0 * * * *")
    scheduler.add_job(
        trigger="cron",
        callback=lambda: strategy.rebalance_intraday(),
        cron="0 12 * * 1-5",
        timezone="America/New_York",
    )
    scheduler.add_job(
        trigger="interval", callback=lambda: strategy.update_signals(), interval_minutes=15
    )

    clock.advance_to(datetime(2024, 11, 29, 18, 30, tzinfo=UTC))  # 13:30 New York

    events = []
    while (event := engine.event_queue.get_nowait()) is not None:
        events.append(event)
    assert all(isinstance(e, ScheduledTriggerEvent) for e in events)
    times = [e.scheduled_time for e in events]
    assert times == sorted(times)
    by_job: dict[str, list[str]] = {}
    for e in events:
        by_job.setdefault(e.job_id, []).append(e.scheduled_time.astimezone(NY).strftime("%H:%M"))
    assert by_job["market_close_rebalance"] == ["13:00"]
    assert by_job["cron:0 * * * *"] == ["10:00", "11:00", "12:00", "13:00"]
    assert by_job["cron:0 12 * * 1-5@America/New_York"] == ["12:00"]
    assert len(by_job["interval:900s"]) == 17  # 09:20 ... 13:20

    for event in events:  # what the engine's loop does with each trigger
        assert scheduler.execute(event)
    assert strategy.calls.count("rebalance_portfolio") == 1
    assert strategy.calls.count("check_risk") == 4
    assert strategy.calls.count("rebalance_intraday") == 1
    assert strategy.calls.count("update_signals") == 17

    scheduler.remove_job("market_close_rebalance")
    clock.advance_to(datetime(2024, 12, 2, 22, tzinfo=UTC))  # past Monday's 16:00 close
    later = []
    while (event := engine.event_queue.get_nowait()) is not None:
        later.append(event.job_id)
    assert "market_close_rebalance" not in later
    assert "cron:0 * * * *" in later
