"""Safety in the running engine: the risk gate (position limits, then circuit breakers),
what a trip does (cancel pending, keep positions, refuse new orders, keep processing),
a crash scenario, the default breakers, and a restart after a trip."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from structlog.testing import capture_logs

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import (
    CircuitBreakerManager,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
)
from rustybt.live.risk_limits import RiskLimits

D = Decimal
DAY = "2024-01-03"
ONE_SESSION = {"start": DAY, "end": f"{DAY} 23:59:59"}
TINY = {"start": f"{DAY} 14:31", "end": f"{DAY} 14:35"}


def make_engine(strategy, broker=None, breakers=None, **kw) -> LiveTradingEngine:
    kw.setdefault("control_socket", False)
    return LiveTradingEngine(
        strategy=strategy,
        broker_adapter=broker or PaperBroker(starting_cash=D("100000")),
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        circuit_breakers=breakers if breakers is not None else CircuitBreakerManager(),
        **kw,
    )


async def run(engine, timeout: float = 30) -> None:
    await asyncio.wait_for(engine.run(), timeout)


async def wait_until(predicate, what: str, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def audit(engine) -> list[dict]:
    return [json.loads(line) for line in engine.audit.path.read_text().splitlines()]


def manual_breakers() -> tuple[CircuitBreakerManager, ManualCircuitBreaker]:
    manager = CircuitBreakerManager()
    manual = ManualCircuitBreaker()
    manager.add_breaker(manual)
    return manager, manual


# --- the risk gate -------------------------------------------------------------------------
class Probe(TradingAlgorithm):
    """On bar 2: a big order (breaks the position limit) and a small one."""

    def initialize(self):
        self.aapl = self.symbol("AAPL")
        self.calls = 0
        self.results = {}

    def handle_data(self, context, data):
        self.calls += 1
        if self.calls == 2:
            self.results["big"] = self.order(self.aapl, 50)
            self.results["small"] = self.order(self.aapl, 5)


async def test_position_limits_are_checked_before_breakers_and_rejects_carry_the_reason():
    class HaltThenProbe(Probe):
        def handle_data(self, context, data):
            if self.calls == 1:
                self.breaker.trigger_halt(reason="test", operator="qa")
            super().handle_data(context, data)

    breakers, manual = manual_breakers()
    strategy = HaltThenProbe()
    strategy.breaker = manual
    limits = RiskLimits(max_position_amount=D("10"))
    engine = make_engine(strategy, breakers=breakers, risk_limits=limits, **TINY)
    await run(engine)
    assert strategy.calls == 2  # halted during its second call: not called after
    assert strategy.results == {"big": None, "small": None}  # refused orders return None
    big, small = engine.order_manager.orders.values()
    assert big.status.value == small.status.value == "rejected"
    assert "10" in big.reason and "circuit breakers" not in big.reason  # the limit first
    assert small.reason.startswith("circuit breakers tripped: manual halt by qa: test")
    assert engine.broker.submissions == []
    assert engine.get_status()["rejects"] == 2
    decisions = [e for e in audit(engine) if e["event"] == "risk_decision"]
    assert [d["decision"] for d in decisions] == ["reject", "reject"]


async def test_without_a_breaker_manager_the_safe_default_set_is_installed_with_a_warning():
    with capture_logs() as logs:
        engine = LiveTradingEngine(
            strategy=Probe(),
            broker_adapter=PaperBroker(),
            data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
            control_socket=False,
        )
    names = [b.name for b in engine.circuit_breakers.breakers]
    assert {"manual", "drawdown", "daily_loss", "order_rate", "error_rate"} <= set(names)
    assert engine.using_default_breakers is True
    (warning,) = [e for e in logs if e["event"] == "default_circuit_breakers_installed"]
    assert warning["log_level"] == "warning"


async def test_order_rate_breaker_refuses_the_order_that_trips_it():
    class Spammer(TradingAlgorithm):
        def initialize(self):
            self.aapl = self.symbol("AAPL")
            self.placed = []

        def handle_data(self, context, data):
            for _ in range(4):
                self.placed.append(self.order(self.aapl, 1))

    breakers = CircuitBreakerManager()
    breakers.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=3, window_seconds=60))
    strategy = Spammer()
    engine = make_engine(strategy, breakers=breakers, **TINY)
    await run(engine)
    assert len(engine.broker.submissions) == 3  # never more than the limit at the venue
    assert strategy.placed[3:] == [None] * (len(strategy.placed) - 3)
    assert engine.get_status()["can_trade"] is False


async def test_repeated_strategy_errors_trip_the_error_rate_breaker():
    class Broken(TradingAlgorithm):
        def initialize(self):
            self.aapl = self.symbol("AAPL")

        def handle_data(self, context, data):
            raise RuntimeError("bug")

    breakers = CircuitBreakerManager()
    breakers.add_breaker(ErrorRateCircuitBreaker(max_errors=3, window_seconds=300))
    engine = make_engine(Broken(), breakers=breakers, **TINY)
    with capture_logs() as logs:
        await run(engine)
    assert engine.get_status()["strategy_errors"] == 3  # tripped: not called any more
    assert engine.get_status()["can_trade"] is False
    assert any(e["event"] == "circuit_breakers_tripped" for e in logs)


# --- what a trip does, in a crash --------------------------------------------------------------
class CrashVictim(TradingAlgorithm):
    """Buys ~90% AAPL on its first bar, keeps a far limit buy resting, and tries to buy
    one more share on every bar (so a halted engine is asked to trade all the time)."""

    def initialize(self):
        self.aapl = self.symbol("AAPL")
        self.calls = 0
        self.results = []
        self.resting = None

    def handle_data(self, context, data):
        self.calls += 1
        price = data.current(self.aapl, "price")
        if self.calls == 1:
            self.order(self.aapl, int(D("90000") / price))
            return
        if self.resting is None:
            limit = (price * D("0.5")).quantize(D("0.01"))
            self.resting = self.order(self.aapl, 1, limit_price=limit)
        self.results.append(self.order(self.aapl, 1))


async def test_crash_trips_drawdown_breaker_cancels_pending_orders_and_stops_submissions():
    breakers = CircuitBreakerManager()
    breakers.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=D("0.10")))
    strategy = CrashVictim()
    broker = PaperBroker(starting_cash=D("100000"))
    engine = make_engine(strategy, broker, breakers, stop_when_data_ends=False, **TINY)
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: engine.get_status()["market_events"] == 5, "replay")
        await wait_until(lambda: not engine.feed.replaying, "end of replay")
        held = engine.ledger.positions[strategy.aapl].amount
        assert held > 400
        resting = engine.order_manager.get_order(strategy.resting)
        assert resting.is_open
        submitted_before = len(broker.submissions)

        # The crash: AAPL falls 25% over six pushed minutes.
        price = data_price = engine.executor.data.last_price(strategy.aapl)
        t = datetime(2024, 1, 3, 14, 36, tzinfo=UTC)
        path = []
        for i in range(6):
            price = (price * D("0.95")).quantize(D("0.01"))
            path.append(price)
            with capture_logs() as logs:
                engine.push_market_data(
                    {"symbol": "AAPL", "price": price, "volume": 50_000, "timestamp": t}
                )
                await wait_until(
                    lambda n=i: engine.get_status()["market_events"] == 6 + n, "crash tick"
                )
                await asyncio.sleep(0.02)  # let the trip event and cancels run
            t += timedelta(minutes=1)
            if not engine.get_status()["can_trade"]:
                break
        assert path[-1] <= data_price * D("0.90")
        status = engine.get_status()
        assert status["can_trade"] is False
        assert status["circuit_breakers"]["drawdown"]["state"] == "tripped"
        tripped_log = [e for e in logs if e["event"] == "circuit_breakers_tripped"]
        assert tripped_log and tripped_log[0]["breaker_types"] == ["drawdown"]

        await wait_until(lambda: not resting.is_open, "pending order cancelled")
        assert resting.status.value == "cancelled"
        assert engine.ledger.positions[strategy.aapl].amount >= held  # positions left as-is
        frozen = len(broker.submissions)
        assert frozen >= submitted_before
        calls_at_trip = strategy.calls

        # Market data keeps flowing; a halted engine runs no strategy code; nothing
        # reaches the venue.
        for _ in range(3):
            price = price * D("1.01")
            engine.push_market_data(
                {"symbol": "AAPL", "price": price.quantize(D("0.01")), "timestamp": t}
            )
            t += timedelta(minutes=1)
        skipped = engine.stats["strategy_calls_skipped"]
        await wait_until(
            lambda: engine.stats["strategy_calls_skipped"] == skipped + 3, "post-trip bars"
        )
        assert strategy.calls == calls_at_trip
        assert len(broker.submissions) == frozen
        assert engine.ledger.positions[strategy.aapl].last_price == price.quantize(D("0.01"))
        assert await broker.get_open_orders() == []
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)
    kinds = [e["event"] for e in audit(engine)]
    assert "circuit_breakers_tripped" in kinds and "halt_cancel_all" in kinds


async def test_manual_halt_cancels_the_rest_of_a_partial_fill_and_keeps_the_filled_part():
    class Big(TradingAlgorithm):
        def initialize(self):
            self.jpm = self.symbol("JPM")
            self.calls = 0

        def handle_data(self, context, data):
            self.calls += 1
            if self.calls == 1:
                self.big = self.order(self.jpm, 100_000)
            if self.calls == 4:
                self.halt_dt = context.get_datetime()
                self.breaker.trigger_halt(reason="fat finger", operator="desk")

    breakers, manual = manual_breakers()
    strategy = Big()
    strategy.breaker = manual
    broker = PaperBroker(starting_cash=D("100000000"), volume_limit_pct=D("0.025"))
    engine = make_engine(strategy, broker, breakers, **ONE_SESSION)
    engine.stop_after_market_events = 10
    await run(engine)
    order = engine.order_manager.get_order(strategy.big)
    assert order.status.value == "cancelled"
    assert 0 < order.filled < order.amount
    assert engine.ledger.positions[strategy.jpm].amount == order.filled
    assert strategy.calls == 4  # halted on its 4th call: market data went on, not the strategy
    assert engine.get_status()["market_events"] == 10
    assert len(broker.submissions) == 1


# --- restart after a trip ------------------------------------------------------------------------
async def test_a_restart_after_a_trip_stays_tripped(tmp_path):
    venue, state = tmp_path / "venue.json", tmp_path / "state"

    class HaltOnThree(Probe):
        def handle_data(self, context, data):
            self.calls += 1
            self.results[self.calls] = self.order(self.aapl, 1)
            if self.calls == 3:
                self.breaker.trigger_halt(reason="investigating", operator="ops")

    breakers, manual = manual_breakers()
    first = HaltOnThree()
    first.breaker = manual
    engine = make_engine(
        first, PaperBroker(state_path=venue), breakers, state_dir=state, **ONE_SESSION
    )
    engine.stop_after_market_events = 5
    await run(engine)
    sent = list(engine.broker.submissions)
    assert len(sent) == 3 and engine.get_status()["can_trade"] is False
    assert first.calls == 3  # halted on its third call

    breakers2, manual2 = manual_breakers()
    second = HaltOnThree()
    second.breaker = manual2
    again = make_engine(
        second, PaperBroker(state_path=venue), breakers2, state_dir=state, **ONE_SESSION
    )
    again.stop_after_market_events = 5
    await run(again)
    assert manual2.is_tripped and manual2.halted_by == "ops"
    assert again.get_status()["can_trade"] is False
    # The strategy's own state came back too (calls 1-3 ran before the restart), and the
    # engine restarted halted: the strategy is not called at all.
    assert second.calls == 3
    assert again.get_status()["strategy_calls_skipped"] == 5
    assert again.broker.submissions == sent  # nothing new reached the venue
