"""pause() and halts stop all strategy code, scheduled functions included (issue #10
item 10): a paused or halted engine never trades from schedule_function or a scheduler
job, while market data, fills and breakers go on."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rustybt import TradingAlgorithm
from rustybt.scheduling import date_rules, time_rules
from tests.live.test_engine import TINY, make_engine, run
from tests.live.test_engine_safety import manual_breakers

D = Decimal


class ScheduledBuyer(TradingAlgorithm):
    """Buys 1 AAPL from a function scheduled every minute; handle_data only counts."""

    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.bars = 0
        self.scheduled = 0
        self.schedule_function(self.buy, date_rules.every_day(), time_rules.every_minute())

    def buy(self, context, data):
        self.scheduled += 1
        self.order(self.asset, 1)

    def handle_data(self, context, data):
        self.bars += 1


@pytest.mark.parametrize("how", ["pause", "manual-halt"])
async def test_a_paused_or_halted_engine_runs_no_strategy_code_at_all(how):
    strategy = ScheduledBuyer()
    breakers, manual = manual_breakers()
    engine = make_engine(strategy, circuit_breakers=breakers, **TINY)
    if how == "pause":
        await engine.pause()
    else:
        manual.trigger_halt(reason="operator halt", operator="ops")
    await run(engine)
    status = engine.get_status()
    assert status["market_events"] == 5  # data still flowed
    assert strategy.bars == 0 and strategy.scheduled == 0
    assert status["orders_submitted"] == 0 and not engine.order_manager.orders
    assert status["strategy_calls_skipped"] >= 10  # 5 bars + 5 scheduled triggers


async def test_scheduler_jobs_added_by_the_user_are_skipped_while_paused():
    strategy = ScheduledBuyer()
    engine = make_engine(strategy, **TINY)
    calls = []
    from datetime import UTC, datetime

    from rustybt.live.scheduler import SimulatedClock, TradingScheduler

    engine.scheduler = TradingScheduler(
        event_queue=engine.event_queue,
        clock=SimulatedClock(datetime(2024, 1, 3, 14, 31, tzinfo=UTC)),
    )
    engine.scheduler.add_job(
        trigger="interval", callback=lambda: calls.append(1), interval_minutes=1
    )
    await engine.pause()
    await run(engine)
    assert calls == [] and strategy.scheduled == 0
