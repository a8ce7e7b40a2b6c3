"""Exposure limits in a running engine: the incremental exposure follows marks and fills."""

from __future__ import annotations

from decimal import Decimal

from rustybt.live.risk_limits import RiskLimits
from tests.live.test_engine import Counter, make_engine, run


class BuyTen(Counter):
    every = 1

    def handle_data(self, context, data):
        self.calls += 1
        self.order(self.aapl, 10)


async def test_gross_exposure_limit_stops_buying_once_positions_and_orders_reach_it():
    strategy = BuyTen()
    limit = Decimal("5000")
    engine = make_engine(
        strategy,
        start="2024-01-02 14:31",
        end="2024-01-02 14:50",
        risk_limits=RiskLimits(max_gross_exposure=limit),
    )
    await run(engine)
    st = engine.get_status()
    held = engine.ledger.positions[strategy.aapl]
    assert st["orders_submitted"] == 2  # 2 × 10 AAPL at ~185 fit under 5,000; a third does not
    assert st["rejects"] == st["market_events"] - 2
    assert held.amount == 20
    rejected = [o for o in engine.order_manager.orders.values() if o.status.value == "rejected"]
    assert all("max_gross_exposure" in o.reason for o in rejected)
    # The running exposure equals a fresh valuation at the last marks.
    gate = engine.risk_gate
    gate._exposure.refresh(engine.ledger.positions, engine.order_manager.open_book)
    assert gate._exposure.total == abs(held.amount) * held.last_price
