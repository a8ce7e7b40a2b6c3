"""A strategy failing on every bar trips the error-rate breaker within the first bars,
whatever the bar size (issue #10 item 12): the consecutive-failures rule, in a replay
and on a live (pushed) stream."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rustybt import TradingAlgorithm
from rustybt.data.bar import Bar
from rustybt.live.circuit_breakers import CircuitBreakerManager, ErrorRateCircuitBreaker
from tests.live.test_engine import ONE_SESSION, make_engine, run, wait_until

D = Decimal


class Broken(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.calls = 0

    def handle_data(self, context, data):
        self.calls += 1
        raise RuntimeError("bug on every bar")


def default_error_rate() -> tuple[CircuitBreakerManager, ErrorRateCircuitBreaker]:
    breakers = CircuitBreakerManager()
    return breakers, breakers.add_breaker(ErrorRateCircuitBreaker(10, 300))


async def test_a_strategy_raising_on_every_minute_bar_trips_on_the_tenth_bar_of_a_replay():
    # 10 errors / 300 s of bar time never fills with one error per minute: the old code
    # ran the whole session (390 errors) with "circuit breakers OK".
    breakers, breaker = default_error_rate()
    strategy = Broken()
    engine = make_engine(strategy, circuit_breakers=breakers, **ONE_SESSION)
    await run(engine, timeout=60)
    assert breaker.is_tripped
    assert "10 consecutive errors" in breaker.get_trip_reason()
    assert engine.get_status()["strategy_errors"] == 10
    assert strategy.calls == 10  # then halted: no more strategy code
    assert engine.get_status()["market_events"] == 390


async def test_a_strategy_raising_on_every_hourly_bar_of_a_live_stream_trips_too():
    breakers, breaker = default_error_rate()
    strategy = Broken()
    engine = make_engine(
        strategy, circuit_breakers=breakers, replay=False, stop_when_data_ends=False
    )
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: engine.get_status()["reconciliation"] == "ok", "startup")
        t0 = datetime(2024, 1, 31, 14, 0, tzinfo=UTC)
        for i in range(12):  # hourly bars: any window of a few minutes sees one error
            engine.push_market_data(
                Bar(strategy.asset, t0 + timedelta(hours=i), *[D("190")] * 4, D("1e4"))
            )
        await wait_until(lambda: engine.get_status()["market_events"] == 12, "the bars")
        assert breaker.is_tripped
        assert strategy.calls == 10
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)


class SometimesBroken(TradingAlgorithm):
    """Fails on 9 bars of every 10: never 10 in a row."""

    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.calls = 0

    def handle_data(self, context, data):
        self.calls += 1
        if self.calls % 10:
            raise RuntimeError("flaky")


async def test_successes_between_errors_keep_the_consecutive_rule_quiet():
    breakers, breaker = default_error_rate()
    engine = make_engine(SometimesBroken(), circuit_breakers=breakers, **ONE_SESSION)
    await run(engine, timeout=60)
    assert not breaker.is_tripped
    assert engine.get_status()["strategy_errors"] == 390 - 39
