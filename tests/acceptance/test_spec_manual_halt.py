"""The spec's "Manual Emergency Halt" (Common Patterns 2), run as written against a
running engine.

The example adds its manual breaker to ``breakers``, the coordinator built in Common
Patterns 1 (a ``CircuitBreakerManager`` with a 5% drawdown breaker), which the engine was
given. The test checks the example's three promises: the engine halts immediately, all
pending orders are cancelled, positions are left as they are.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager, DrawdownCircuitBreaker

SPEC_MANUAL_HALT = """
from rustybt.live.circuit_breakers import ManualCircuitBreaker

# Add manual breaker to coordinator
manual_breaker = ManualCircuitBreaker()
breakers.add_breaker(manual_breaker)

# In case of emergency (e.g., via admin dashboard or CLI)
manual_breaker.trigger_halt(
    reason="Unexpected market conditions",
    operator="trader_john"
)

# Engine will halt immediately
# All pending orders cancelled
# Positions left as-is (not closed)
"""


class Holder(TradingAlgorithm):
    """Buys 100 AAPL, keeps a far limit buy resting, and tries to buy 1 more every bar."""

    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.calls = 0
        self.resting = None
        self.later = []

    def handle_data(self, context, data):
        self.calls += 1
        if self.calls == 1:
            self.order(self.asset, 100)
            self.resting = self.order(self.asset, 10, limit_price=Decimal("1.00"))
        elif self.calls > 5:
            self.later.append(self.order(self.asset, 1))


async def _wait(predicate, what, timeout=10.0):
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_manual_emergency_halt_runs_as_written_against_a_running_engine():
    # Common Patterns 1's coordinator, given to the engine.
    breakers = CircuitBreakerManager()
    breakers.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.05")))  # 5% max
    strategy = Holder()
    broker = PaperBroker(starting_cash=Decimal("100000"))
    engine = LiveTradingEngine(
        strategy=strategy,
        broker_adapter=broker,
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        circuit_breakers=breakers,
        control_socket=False,
        stop_when_data_ends=False,
        start="2024-01-03 14:31",
        end="2024-01-03 14:35",
    )
    task = asyncio.create_task(engine.run())
    try:
        await _wait(
            lambda: getattr(strategy, "calls", 0) == 5 and not engine.feed.replaying, "replay"
        )
        resting = engine.order_manager.get_order(strategy.resting)
        assert resting.is_open
        held = engine.ledger.positions[strategy.asset].amount
        assert held == 100
        sent = len(broker.submissions)

        exec(compile(SPEC_MANUAL_HALT, "spec-manual-halt", "exec"), {"breakers": breakers})

        # Halted immediately: the very next check refuses trading.
        assert breakers.can_trade() is False
        assert engine.get_status()["can_trade"] is False
        assert breakers.get_trip_reasons() == [
            "manual halt by trader_john: Unexpected market conditions"
        ]
        # All pending orders cancelled (at the venue too).
        await _wait(lambda: not resting.is_open, "cancel")
        assert resting.status.value == "cancelled"
        assert await broker.get_open_orders() == []
        # Positions left as-is, while market data keeps flowing.
        t = datetime(2024, 1, 3, 14, 40, tzinfo=UTC)
        for i in range(3):
            engine.push_market_data({"symbol": "AAPL", "price": f"18{i}.00", "timestamp": t})
        await _wait(lambda: engine.get_status()["market_events"] == 8, "bars after the halt")
        assert engine.ledger.positions[strategy.asset].amount == held
        assert (await broker.get_positions())[0]["amount"] == held
        # Halted: the strategy is not called at all, so it cannot trade.
        assert strategy.calls == 5 and strategy.later == []
        assert len(broker.submissions) == sent
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)
