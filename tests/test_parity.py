"""One kernel: the same strategy on the same bars orders the same way in backtest and paper.

DESIGN.md invariant 1. The paper broker runs with zero latency, zero slippage and zero
commission, so its fills must land on the same bars at the same prices as the backtest's
(market orders fill at the next bar's close).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from rustybt import run_algorithm
from rustybt.algorithm import TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.finance.decimal.commission import PerShareCommission
from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager

START, END = "2024-01-03", "2024-01-05 23:59:59"


class SmaCross(TradingAlgorithm):
    """Fast/slow SMA crossover on three equities, plus a limit order every 97 bars."""

    def initialize(self):
        self.assets = self.symbols("AAPL", "MSFT", "TSLA")
        self.bars_seen = 0
        self.order_dts = []

    def handle_data(self, context, data):
        self.bars_seen += 1
        for asset in self.assets:
            if not data.can_trade(asset):
                continue
            closes = data.history(asset, "close", 30, "1m")
            if len(closes) < 30:
                continue
            fast = sum(closes.iloc[-5:]) / 5
            slow = sum(closes) / 30
            held = (
                context.portfolio.positions[asset].amount
                if asset in (context.portfolio.positions)
                else 0
            )
            if fast > slow and held <= 0:
                self.order_target(asset, 20)
            elif fast < slow and held > 0:
                self.order_target(asset, 0)
        if self.bars_seen % 97 == 0:
            asset = self.assets[0]
            price = data.current(asset, "price")
            self.order(asset, 3, limit_price=(price - Decimal("0.05")).quantize(Decimal("0.01")))


def _orders(orders):
    return sorted(
        (
            o.asset.symbol,
            o.side,
            o.amount,
            o.order_type.value,
            o.limit_price,
            o.created_dt,
            o.filled,
            o.avg_fill_price,
            o.status.value,
        )
        for o in orders
    )


@pytest.mark.parametrize("with_costs", [False, True], ids=["zero_costs", "same_cost_models"])
def test_backtest_and_zero_latency_paper_trading_place_and_fill_identical_orders(with_costs):
    def models():
        if not with_costs:
            return None, None
        return FixedBasisPointsSlippage(Decimal("5")), PerShareCommission(Decimal("0.005"))

    slippage, commission = models()
    backtest = run_algorithm(
        SmaCross(),
        bundle="demo",
        start=START,
        end=END,
        slippage_model=slippage,
        commission_model=commission,
        allow_short=True,
    )

    portal = PolarsDataPortal(bundle_name="demo", data_frequency="minute")
    # Short selling allowed in both (the default, off, is the same in both too).
    slippage, commission = models()
    broker = PaperBroker(
        starting_cash=Decimal("100000"),
        order_latency_ms=0,
        allow_short=True,
        slippage_model=slippage,
        commission_model=commission,
    )
    engine = LiveTradingEngine(
        strategy=SmaCross(),
        broker_adapter=broker,
        data_portal=portal,
        circuit_breakers=CircuitBreakerManager(),
        start=START,
        end=END,
        control_socket=False,
    )
    asyncio.run(asyncio.wait_for(engine.run(), timeout=60))

    bt_orders = _orders(backtest.orders)
    live_orders = _orders(engine.order_manager.orders.values())
    assert len(bt_orders) >= 10, "the strategy must trade several times to prove anything"
    assert any(o[3] == "limit" for o in bt_orders)
    assert live_orders == bt_orders
    assert engine.ledger.cash == backtest.daily[-1]["cash"]
    assert engine.ledger.portfolio_value == backtest.daily[-1]["portfolio_value"]
    assert engine.ledger.fees_paid == backtest.summary.get("fees", engine.ledger.fees_paid)
    assert (engine.ledger.fees_paid > 0) is with_costs
    assert engine.get_status()["errors"] == 0
