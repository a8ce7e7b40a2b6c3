"""Data failures are never silent (issue #10 item 7): a malformed tick or an adapter error
is counted and skipped, a dead feed or a quiet feed while the market is open blocks new
risk and alerts, and no background task dies unobserved."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rustybt import TradingAlgorithm
from rustybt.data.bar import Bar
from rustybt.exceptions import BrokerConnectionError
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager, ErrorRateCircuitBreaker
from tests.live.test_engine import make_engine, wait_until

D = Decimal
T0 = datetime(2024, 1, 31, 14, 31, tzinfo=UTC)


class StreamingBroker(PaperBroker):
    """A venue with a market-data stream: ``script`` items are handed out one by one; an
    exception instance in it is raised by the adapter instead."""

    simulated = False

    def __init__(self, script, **kw) -> None:
        super().__init__(**kw)
        self.script = list(script)

    async def get_next_market_data(self):
        await asyncio.sleep(0)
        if not self.script:
            return None
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


class Counting(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.prices = []

    def handle_data(self, context, data):
        self.prices.append(data.current(self.asset, "price"))


def tick(price: str, i: int) -> dict:
    return {"symbol": "AAPL", "price": price, "timestamp": T0 + timedelta(seconds=i)}


async def test_a_malformed_tick_and_an_adapter_error_are_counted_and_skipped():
    # The old pump died on the first bad message: data stopped, can_trade stayed True.
    broker = StreamingBroker(
        [
            tick("190", 0),
            {"symbol": "AAPL", "price": "NaN", "timestamp": T0},  # malformed
            BrokerConnectionError("stream hiccup"),  # adapter error
            tick("191", 1),
        ],
        starting_cash=D("100000"),
    )
    breakers = CircuitBreakerManager()
    errors = breakers.add_breaker(ErrorRateCircuitBreaker(100, 300, max_consecutive=100))
    strategy = Counting()
    engine = make_engine(
        strategy, broker, circuit_breakers=breakers, replay=False, stop_when_data_ends=False
    )
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: len(getattr(strategy, "prices", ())) == 2, "both good ticks")
        assert strategy.prices == [D("190"), D("191")]
        status = engine.get_status()
        assert status["data_errors"] == 2
        assert len(errors._times) == 2  # the error-rate breaker was told of both
        assert status["task_failures"] == {} and status["can_trade"] is True
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)


async def test_a_dead_feed_blocks_new_risk_alerts_and_shows_in_the_status():
    broker = StreamingBroker([BrokerConnectionError("venue gone")] * 5, starting_cash=D("1e5"))
    strategy = Counting()
    engine = make_engine(strategy, broker, replay=False, stop_when_data_ends=False)
    engine.feed.max_consecutive_errors = 3
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: engine.get_status()["task_failures"], "the dead feed", 10)
        status = engine.get_status()
        assert "feed" in status["task_failures"]
        assert "venue gone" in status["task_failures"]["feed"]
        assert status["can_trade"] is False and "feed" in status["trading_blocked"]
        await wait_until(lambda: any(a.kind == "task_failed" for a in engine.alerts), "alert")
        assert status["data_errors"] == 3
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)


class CryptoIdle(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("BTCUSDT")  # 24/7: the market is always open
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1


async def test_no_data_for_the_configured_bars_while_open_blocks_new_risk_until_data_returns():
    strategy = CryptoIdle()
    # One-minute bars, 0.005 bars = 0.3 s of silence.
    engine = make_engine(strategy, replay=False, stop_when_data_ends=False, stale_data_bars=0.005)
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: engine.get_status()["reconciliation"] == "ok", "startup")
        p = D("42000")
        engine.push_market_data(Bar(strategy.asset, T0, p, p, p, p, D("1")))
        await wait_until(lambda: engine.get_status()["data_stale"], "the stale feed", 5)
        status = engine.get_status()
        assert status["can_trade"] is False
        assert "no market data" in status["holds"]["data_stale"]
        await wait_until(
            lambda: any(a.kind == "market_data_stale" for a in engine.alerts), "the alert"
        )
        engine.push_market_data(Bar(strategy.asset, T0 + timedelta(minutes=1), p, p, p, p, D("1")))
        await wait_until(lambda: not engine.get_status()["data_stale"], "data again")
        assert engine.get_status()["can_trade"] is True
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)


def test_stale_data_bars_must_be_positive():
    import pytest

    from rustybt.exceptions import ConfigError

    with pytest.raises(ConfigError, match="stale_data_bars"):
        make_engine(Counting(), stale_data_bars=0)


async def test_a_real_time_scheduler_that_stops_firing_is_reported_and_blocks_new_risk():
    strategy = CryptoIdle()
    engine = make_engine(strategy, replay=False, stop_when_data_ends=False, stale_data_bars=0.01)
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: engine.get_status()["reconciliation"] == "ok", "startup")
        assert engine.scheduler.alive
        # The scheduler's APScheduler stops behind the engine's back (e.g. it crashed).
        engine.scheduler._aps.shutdown(wait=False)
        await wait_until(lambda: "watchdog" in engine.get_status()["task_failures"], "report", 5)
        status = engine.get_status()
        assert "scheduler stopped" in status["task_failures"]["watchdog"]
        assert status["can_trade"] is False and "task:watchdog" in status["holds"]
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)
