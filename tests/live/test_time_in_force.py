"""Time in force (DAY, IOC, FOK) in the paper venue and in the backtest, and their parity."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from rustybt import TradingAlgorithm, run_algorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.events import OrderCancelEvent
from tests.live.test_paper_broker import AAPL, T0, bar, fills, make

D = Decimal


def cancels(events):
    return [e for e in events if isinstance(e, OrderCancelEvent)]


async def test_ioc_fills_what_the_next_bar_allows_and_cancels_the_rest():
    broker, events, _ = await make(volume_limit_pct=D("0.01"))
    await broker.submit_order(AAPL, D("50"), "market", time_in_force="ioc")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100", volume="2000")])
    assert fills(events)[0].amount == D("20")  # 1% of 2000
    assert "IOC" in cancels(events)[0].reason
    assert await broker.get_open_orders() == []


async def test_ioc_limit_that_is_not_marketable_is_cancelled_unfilled():
    broker, events, _ = await make()
    await broker.submit_order(AAPL, D("5"), "limit", limit_price=D("90"), time_in_force="ioc")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100")])
    assert fills(events) == []
    assert len(cancels(events)) == 1


async def test_fok_fills_completely_or_not_at_all():
    broker, events, _ = await make(volume_limit_pct=D("0.01"))
    await broker.submit_order(AAPL, D("50"), "market", time_in_force="fok")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100", volume="2000")])
    assert fills(events) == []  # 20 available, 50 wanted: nothing
    assert len(cancels(events)) == 1


async def test_day_order_expires_when_the_next_session_starts():
    broker, events, _ = await make()
    await broker.submit_order(AAPL, D("5"), "limit", limit_price=D("90"), time_in_force="day")
    broker.on_market_data([bar(T0 + timedelta(minutes=5), "100")])
    assert cancels(events) == []  # same session: still working
    broker.on_market_data([bar(T0 + timedelta(days=1), "89")])  # next session, marketable
    assert fills(events) == []
    assert "DAY" in cancels(events)[0].reason


async def test_unknown_time_in_force_is_rejected_at_submit():
    import pytest

    from rustybt.exceptions import InvalidOrder

    broker, _, _ = await make()
    with pytest.raises(InvalidOrder):
        await broker.submit_order(AAPL, D("5"), "market", time_in_force="forever")


class ImmediateOrders(TradingAlgorithm):
    """Places IOC and DAY limit orders that partly or never fill."""

    def initialize(self):
        self.asset = self.symbol("SPY")
        self.n = 0

    def handle_data(self, context, data):
        self.n += 1
        price = data.current(self.asset, "price")
        if self.n % 40 == 1:
            self.order(self.asset, 30, tif="ioc")
        if self.n % 40 == 2:
            below = self.asset.round_price(price * D("0.999"))
            self.order(self.asset, 10, limit_price=below, tif="day")
        if self.n % 40 == 3:
            self.order(self.asset, -10, tif="fok")


def _orders(orders):
    return [
        (o.asset.symbol, o.amount, o.order_type.value, o.tif.value, o.status.value, o.filled)
        for o in orders
    ]


def test_time_in_force_outcomes_match_between_backtest_and_paper():
    start, end = "2024-01-02", "2024-01-03 23:59"
    bt = ImmediateOrders()
    result = run_algorithm(
        bt, start=start, end=end, volume_limit_pct=D("0.0001"), capital_base=D("10000000")
    )

    live = ImmediateOrders()
    engine = LiveTradingEngine(
        strategy=live,
        broker_adapter=PaperBroker(
            starting_cash=D("10000000"), volume_limit_pct=D("0.0001"), allow_short=True
        ),
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        circuit_breakers=CircuitBreakerManager(),
        start=start,
        end=end,
        control_socket=False,
    )
    asyncio.run(engine.run())
    live_orders = sorted(
        engine.order_manager.orders.values(), key=lambda o: int(o.id.rsplit("-", 1)[1])
    )
    # A DAY order still working when the data ends is expired by the backtest's end of
    # day but stays open at the paper venue (which never sees the next session): compare
    # everything before the last session.
    last_day = result.end.date()

    def settled(orders):
        return [o for o in orders if o.created_dt.date() < last_day]

    assert len(result.orders) == len(live_orders)
    assert _orders(settled(result.orders)) == _orders(settled(live_orders))
    statuses = {o.status.value for o in result.orders}
    assert "cancelled" in statuses  # IOC/FOK remainders and expired DAY orders
