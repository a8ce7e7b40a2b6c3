"""The spec's "Quick Start - Paper Trading" example, run as written (bundle 'demo').

The example's code is below verbatim except ``bundle_name='quandl'`` → ``'demo'``. It is
executed as a module would be; its ``main()`` is then awaited with a timeout instead of
through the ``__main__`` guard, so a hang fails the test instead of the suite. The replay
covers the demo bundle's 20 sessions of AAPL minute bars at max speed (about a second).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

SPEC_QUICK_START = """
import asyncio
from decimal import Decimal
from rustybt.algorithm import TradingAlgorithm
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import (
    CircuitBreakerManager,
    DrawdownCircuitBreaker,
    DailyLossCircuitBreaker
)
from rustybt.finance.decimal.commission import PerShareCommission
from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage
from rustybt.data.polars.data_portal import PolarsDataPortal

# Define your strategy (same as backtest!)
class MyStrategy(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol('AAPL')
        self.rebalance_interval = 60  # minutes

    def handle_data(self, context, data):
        current_price = data.current(self.asset, 'price')
        # Your trading logic here
        self.order_target_percent(self.asset, 0.95)

# Set up paper broker with realistic simulation
paper_broker = PaperBroker(
    starting_cash=Decimal("100000"),
    commission_model=PerShareCommission(Decimal("0.005")),  # $0.005/share
    slippage_model=FixedBasisPointsSlippage(Decimal("5")),  # 5 basis points
    order_latency_ms=100,  # 100ms simulated latency
    volume_limit_pct=Decimal("0.025")  # Max 2.5% of bar volume
)

# Set up data portal for historical data access
data_portal = PolarsDataPortal(
    bundle_name='demo',
    data_frequency='minute'
)

# ⚠️ CRITICAL: Set up circuit breakers (ALWAYS!)
circuit_breakers = CircuitBreakerManager()
circuit_breakers.add_breaker(
    DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10"))  # 10% max drawdown
)
circuit_breakers.add_breaker(
    DailyLossCircuitBreaker(max_daily_loss=Decimal("5000"))   # $5K max daily loss
)

# Initialize live trading engine
engine = LiveTradingEngine(
    strategy=MyStrategy(),
    broker_adapter=paper_broker,
    data_portal=data_portal,
    checkpoint_interval_seconds=60,     # Save state every minute
    reconciliation_interval_seconds=300  # Reconcile positions every 5 minutes
)

# Run engine (async)
async def main():
    try:
        await engine.run()
    except KeyboardInterrupt:
        print("Shutting down gracefully...")
        await engine.shutdown()

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_quick_start_paper_trading_runs_as_written(_isolated_root):
    ns: dict = {"__name__": "spec_quick_start"}
    exec(compile(SPEC_QUICK_START, "spec-quick-start", "exec"), ns)
    engine = ns["engine"]
    asyncio.run(asyncio.wait_for(ns["main"](), timeout=120))

    status = engine.get_status()
    assert status["running"] is False and status["fatal_error"] is None
    assert status["market_events"] == 7800  # 20 sessions x 390 minutes of AAPL
    assert status["orders_submitted"] >= 1 and status["fills"] >= 1
    assert status["errors"] == 0
    aapl = engine.strategy.asset
    pos = engine.ledger.positions[aapl]
    # ~95% of the portfolio in AAPL, paid for with slippage and commission.
    assert Decimal("0.90") < pos.amount * pos.last_price / engine.ledger.portfolio_value < 1
    assert engine.ledger.fees_paid > 0
    broker_pos = {p["asset"]: p["amount"] for p in asyncio.run(_positions(ns["paper_broker"]))}
    assert broker_pos == {aapl: pos.amount}  # the engine agrees with its venue
    # The example builds `circuit_breakers` but does not pass them to the engine, so the
    # engine installed its safe default set (with a warning) rather than run unprotected.
    assert engine.using_default_breakers is True
    assert status["can_trade"] is True
    assert engine.state_manager.list_checkpoints("MyStrategy")  # final checkpoint
    assert (_isolated_root / "state" / "logs").is_dir()


async def _positions(broker):
    await broker.connect()
    return await broker.get_positions()
