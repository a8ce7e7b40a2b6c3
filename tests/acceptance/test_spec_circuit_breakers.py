"""The spec's "Example - Complete Circuit Breaker Setup", run as written, then the same
breakers protecting a running engine.

The example calls ``await broker.submit_order(asset, amount, 'market')`` at module level
inside an ``if``; as a user would, the test wraps the example in an ``async def`` and
supplies ``broker`` (a connected PaperBroker that has seen one AAPL price), ``asset``,
``amount`` and ``logger``. The spec's "Import" block for the module precedes it (the
example uses the breaker classes it imports).
"""

from __future__ import annotations

import asyncio
import textwrap
from datetime import UTC, datetime
from decimal import Decimal

import structlog

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.bar import Bar
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker

SPEC_IMPORT = """
from rustybt.live.circuit_breakers import (
    CircuitBreakerManager,
    DrawdownCircuitBreaker,
    DailyLossCircuitBreaker,
    OrderRateCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    CircuitBreakerState
)
"""

SPEC_SETUP = """
from decimal import Decimal
from rustybt.live.circuit_breakers import CircuitBreakerManager

# Create coordinator
breakers = CircuitBreakerManager()

# 1. Drawdown breaker (RECOMMENDED) - Halt at 10% drawdown
breakers.add_breaker(
    DrawdownCircuitBreaker(
        max_drawdown_pct=Decimal("0.10"),  # Halt at 10% drawdown
        lookback_days=30                    # From 30-day peak
    )
)

# 2. Daily loss limit (RECOMMENDED) - Halt at $5K daily loss
breakers.add_breaker(
    DailyLossCircuitBreaker(
        max_daily_loss=Decimal("5000")  # Halt at $5K daily loss
    )
)

# 3. Order rate limit (prevents runaway algorithms)
breakers.add_breaker(
    OrderRateCircuitBreaker(
        max_orders_per_minute=10,        # Max 10 orders/min
        window_seconds=60
    )
)

# 4. Error rate limit (halts on repeated errors)
breakers.add_breaker(
    ErrorRateCircuitBreaker(
        max_errors=5,                    # Halt after 5 errors
        window_seconds=300               # In 5-minute window
    )
)

# 5. Manual halt capability (for emergencies)
manual_breaker = ManualCircuitBreaker()
breakers.add_breaker(manual_breaker)

# Check if breakers allow trading
if breakers.can_trade():
    # Submit orders
    await broker.submit_order(asset, amount, 'market')
else:
    # Breakers tripped, do not trade
    reasons = breakers.get_trip_reasons()
    logger.error("trading_halted", reasons=reasons)
"""


def _wrapped() -> str:
    body = textwrap.indent(SPEC_SETUP, "    ")
    return (
        SPEC_IMPORT
        + "\nasync def example(broker, asset, amount, logger):\n"
        + body
        + "\n    return breakers, manual_breaker\n"
    )


async def _setup(halt_first: bool = False):
    portal = PolarsDataPortal(bundle_name="demo", data_frequency="minute")
    asset = portal.asset_finder.lookup_symbol("AAPL")
    broker = PaperBroker(starting_cash=Decimal("100000"))
    await broker.connect()
    p = Decimal("185.00")
    broker.on_market_data([Bar(asset, datetime(2024, 1, 2, 14, 31, tzinfo=UTC), p, p, p, p, 1)])
    ns: dict = {}
    exec(compile(_wrapped(), "spec-breakers", "exec"), ns)
    return ns, broker, asset


async def test_complete_circuit_breaker_setup_runs_as_written_and_submits_when_clear():
    ns, broker, asset = await _setup()
    breakers, manual = await ns["example"](broker, asset, Decimal("10"), structlog.get_logger())
    assert [b.breaker_type.value for b in breakers.breakers] == [
        "drawdown",
        "daily_loss",
        "order_rate",
        "error_rate",
        "manual",
    ]
    assert breakers.can_trade() and breakers.get_trip_reasons() == []
    (order,) = await broker.get_open_orders()
    assert order["amount"] == Decimal("10") and order["order_type"] == "market"
    assert ns["CircuitBreakerState"].NORMAL.value == "normal"


async def test_the_else_branch_logs_the_reasons_and_sends_nothing():
    ns, broker, asset = await _setup()
    logs: list = []

    class Logger:
        def error(self, event, **kw):
            logs.append((event, kw))

    # Run the example once to get its breakers, halt, and run the check again.
    breakers, manual = await ns["example"](broker, asset, Decimal("1"), Logger())
    manual.trigger_halt(reason="spec test", operator="qa")
    before = len(broker.submissions)
    if breakers.can_trade():  # the example's check, against the same coordinator
        await broker.submit_order(asset, Decimal("1"), "market")
    else:
        Logger().error("trading_halted", reasons=breakers.get_trip_reasons())
    assert len(broker.submissions) == before
    assert logs == [("trading_halted", {"reasons": ["manual halt by qa: spec test"]})]


class Runaway(TradingAlgorithm):
    """A runaway algorithm: twelve orders on every (one-minute) bar."""

    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.calls = 0

    def handle_data(self, context, data):
        self.calls += 1
        for _ in range(12):
            self.order(self.asset, 1)


async def test_the_spec_breakers_passed_to_an_engine_stop_a_runaway_algorithm():
    ns, scratch, asset = await _setup()  # the example needs a broker; the engine gets its own
    breakers, manual = await ns["example"](scratch, asset, Decimal("1"), structlog.get_logger())
    strategy = Runaway()
    broker = PaperBroker(starting_cash=Decimal("100000"))
    engine = LiveTradingEngine(
        strategy=strategy,
        broker_adapter=broker,
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        circuit_breakers=breakers,
        control_socket=False,
        start="2024-01-03 14:31",
        end="2024-01-03 14:45",
    )
    assert engine.using_default_breakers is False
    await asyncio.wait_for(engine.run(), 30)
    status = engine.get_status()
    assert status["circuit_breakers"]["order_rate"]["state"] == "tripped"
    assert status["can_trade"] is False
    assert len(broker.submissions) == 10  # max 10 orders per minute, never more
    # The order that tripped it (the 11th of the first bar) and the rest of that bar's
    # orders are refused; a halted engine then runs no strategy code at all.
    assert strategy.calls == 1
    assert status["rejects"] == 12 - 10
    assert status["strategy_calls_skipped"] == 14
