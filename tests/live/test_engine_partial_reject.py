"""A venue refusing the rest of a partly filled order (issue #10 item 9): the engine ends
with the order partly filled and its remainder cancelled, and keeps running."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rustybt import TradingAlgorithm
from rustybt.data.bar import Bar
from rustybt.finance.order import OrderStatus
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.events import OrderFillEvent, OrderRejectEvent
from tests.live.test_engine import make_engine, wait_until

D = Decimal
T0 = datetime(2024, 1, 31, 14, 31, tzinfo=UTC)


class BuyOnce(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.n = 0

    def handle_data(self, context, data):
        self.n += 1
        if self.n == 1:
            self.order(self.asset, 90)


def bar(asset, i, price, volume="100"):
    p = D(price)
    return Bar(asset, T0 + timedelta(minutes=i), p, p, p, p, D(volume))


async def _engine(broker):
    strategy = BuyOnce()
    engine = make_engine(strategy, broker, replay=False, stop_when_data_ends=False)
    task = asyncio.create_task(engine.run())
    await wait_until(lambda: engine.get_status()["reconciliation"] == "ok", "startup")
    return strategy, engine, task


async def test_paper_venue_short_of_cash_mid_order_leaves_it_partly_filled_and_cancelled():
    broker = PaperBroker(starting_cash=D("10000"), volume_limit_pct=D("0.5"))
    strategy, engine, task = await _engine(broker)
    try:
        a = strategy.asset
        engine.push_market_data(bar(a, 0, "100"))  # buy 90 (9,000 of 10,000)
        engine.push_market_data(bar(a, 1, "100"))  # 50 fill (volume cap)
        engine.push_market_data(bar(a, 2, "200"))  # 40 more would cost 8,000 > 5,000
        engine.push_market_data(bar(a, 3, "200"))
        await wait_until(lambda: engine.get_status()["market_events"] == 4, "the bars")
        (order,) = engine.order_manager.orders.values()
        await wait_until(lambda: not order.is_open, "the order to close")
        assert order.status is OrderStatus.CANCELLED and order.filled == D("75")
        status = engine.get_status()
        assert status["running"] and status["fatal_error"] is None
        assert engine.ledger.positions[a].amount == D("75")
        assert broker.ledger.positions[a].amount == D("75")
        assert engine.ledger.cash == broker.ledger.cash == D("0")
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)


async def test_a_venue_reject_after_a_partial_fill_cancels_the_remainder_and_the_engine_runs_on():
    broker = PaperBroker(starting_cash=D("100000"))
    strategy, engine, task = await _engine(broker)
    try:
        a = strategy.asset
        engine.push_market_data(bar(a, 0, "100", volume="1e6"))
        await wait_until(lambda: engine.order_manager.orders, "the order")
        (order,) = engine.order_manager.orders.values()
        await wait_until(lambda: order.broker_order_id is not None, "the ack")
        # The venue reports a partial fill, then refuses the rest (e.g. margin).
        q = engine.event_queue
        q.put_nowait(
            OrderFillEvent(order.id, order.broker_order_id, a, D("30"), D("100"), D("0"), "f1", T0)
        )
        q.put_nowait(OrderRejectEvent(order.id, order.broker_order_id, "margin exceeded", T0))
        await wait_until(lambda: not order.is_open, "the reject")
        assert order.status is OrderStatus.CANCELLED and order.filled == D("30")
        assert "margin exceeded" in order.reason
        engine.push_market_data(bar(a, 1, "100", volume="1e6"))
        await wait_until(lambda: strategy.n == 2, "the next bar")
        assert engine.get_status()["fatal_error"] is None
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)
