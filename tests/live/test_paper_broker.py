"""PaperBroker: latency on the engine clock, costs, order-type semantics, partial fills,
cancels, buying power, rejects as events, and the short-selling switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rustybt.assets import Equity
from rustybt.data.bar import Bar
from rustybt.exceptions import (
    BrokerConnectionError,
    ConfigError,
    InsufficientFundsError,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
)
from rustybt.finance.decimal.commission import PerShareCommission
from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.events import (
    OrderAckEvent,
    OrderCancelEvent,
    OrderFillEvent,
)

D = Decimal
T0 = datetime(2024, 1, 2, 14, 31, tzinfo=UTC)
AAPL = Equity("AAPL", sid=1)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def bar(dt, close, *, high=None, low=None, volume="1000000", asset=AAPL, open_=None):
    c = D(str(close))
    h = D(str(high)) if high is not None else c
    lo = D(str(low)) if low is not None else c
    o = D(str(open_)) if open_ is not None else c
    return Bar(asset, dt, o, max(h, o, c), min(lo, o, c), c, D(volume))


async def make(**kw):
    kw.setdefault("starting_cash", D("100000"))
    broker = PaperBroker(**kw)
    events: list = []
    clock = Clock()
    broker.set_order_event_handler(events.append)
    broker.set_clock(clock)
    await broker.connect()
    broker.on_market_data([bar(T0, "100")])  # the venue's first price
    return broker, events, clock


def kinds(events):
    return [type(e).__name__ for e in events]


def fills(events):
    return [e for e in events if isinstance(e, OrderFillEvent)]


async def test_market_buy_fills_at_next_bar_close_with_slippage_and_commission():
    broker, events, clock = await make(
        slippage_model=FixedBasisPointsSlippage(D("5")),
        commission_model=PerShareCommission(D("0.005")),
    )
    bid = await broker.submit_order(AAPL, D("100"), "market", client_order_id="c-1")
    assert kinds(events) == ["OrderAckEvent"]
    assert events[0].client_order_id == "c-1" and events[0].broker_order_id == bid

    broker.on_market_data([bar(T0 + timedelta(minutes=1), "200")])
    (fill,) = fills(events)
    assert fill.price == D("200.10")  # 200 * (1 + 5 bps), on tick
    assert fill.amount == D("100")
    assert fill.commission == D("0.500")
    assert fill.is_final and fill.client_order_id == "c-1"
    info = await broker.get_account_info()
    assert info["cash"] == D("100000") - D("20010") - D("0.5")
    (pos,) = await broker.get_positions()
    assert pos["amount"] == D("100") and pos["average_price"] == D("200.10")
    assert await broker.get_open_orders() == []


async def test_sell_slippage_moves_price_down():
    broker, events, clock = await make(
        slippage_model=FixedBasisPointsSlippage(D("10")), allow_short=True
    )
    await broker.submit_order(AAPL, D("-10"), "market")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100")])
    assert fills(events)[0].price == D("99.90")
    assert fills(events)[0].amount == D("-10")


async def test_latency_holds_order_until_engine_clock_passes_it():
    broker, events, clock = await make(order_latency_ms=100)
    await broker.submit_order(AAPL, D("1"), "market")
    broker.on_market_data([bar(T0 + timedelta(milliseconds=50), "101")])
    assert fills(events) == []  # still "on the wire"
    broker.on_market_data([bar(T0 + timedelta(milliseconds=100), "102")])
    assert fills(events)[0].price == D("102")


async def test_latency_jitter_is_seeded_reproducible_and_bounded():
    async def eligible_times(seed):
        broker, _, _ = await make(order_latency_ms=100, latency_jitter_pct=D("0.2"), seed=seed)
        for _ in range(30):
            await broker.submit_order(AAPL, D("1"), "market")
        return [t - T0 for t in broker._eligible_at.values()]

    a, b, c = await eligible_times(7), await eligible_times(7), await eligible_times(8)
    assert a == b
    assert a != c
    assert all(timedelta(milliseconds=80) <= d <= timedelta(milliseconds=120) for d in a)
    assert len(set(a)) > 5  # it really jitters


async def test_limit_buy_waits_for_price_and_never_fills_above_limit():
    broker, events, clock = await make(slippage_model=FixedBasisPointsSlippage(D("50")))
    await broker.submit_order(AAPL, D("10"), "limit", limit_price=D("99.00"))
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100", low="99.50")])
    assert fills(events) == []
    broker.on_market_data([bar(T0 + timedelta(minutes=2), "99.50", low="98.90")])
    (fill,) = fills(events)
    assert fill.price == D("99.00")  # slippage capped at the limit


async def test_limit_sell_fills_at_close_when_better_than_limit():
    broker, events, clock = await make(allow_short=True)
    await broker.submit_order(AAPL, D("-5"), "limit", limit_price=D("101"))
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100.50", high="100.90")])
    assert fills(events) == []
    broker.on_market_data([bar(T0 + timedelta(minutes=2), "102", high="102.50")])
    assert fills(events)[0].price == D("102")


async def test_stop_buy_triggers_on_high_and_fills_at_the_stop_price():
    broker, events, clock = await make()
    await broker.submit_order(AAPL, D("3"), "stop", stop_price=D("105"))
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "104", high="104.99")])
    assert fills(events) == []
    broker.on_market_data([bar(T0 + timedelta(minutes=2), "104.50", high="105.20", open_="104")])
    assert fills(events)[0].price == D("105")  # the stop, not the close


async def test_stop_buy_gapping_through_the_stop_fills_at_the_open():
    broker, events, clock = await make()
    await broker.submit_order(AAPL, D("3"), "stop", stop_price=D("105"))
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "104", open_="108", high="109")])
    assert fills(events)[0].price == D("108")


async def test_stop_sell_triggers_on_low():
    broker, events, clock = await make(allow_short=True)
    await broker.submit_order(AAPL, D("-3"), "stop", stop_price=D("95"))
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "96", low="95.01")])
    assert fills(events) == []
    broker.on_market_data([bar(T0 + timedelta(minutes=2), "94", low="93", open_="96")])
    assert fills(events)[0].price == D("95")  # the stop, not the close


async def test_stop_limit_becomes_a_limit_once_triggered():
    broker, events, clock = await make()
    await broker.submit_order(
        AAPL, D("2"), "stop_limit", limit_price=D("105.50"), stop_price=D("105")
    )
    # Trigger bar: stop reached but the close is above the limit and low above it too.
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "107", high="107", low="105.60")])
    assert fills(events) == []
    # The stop stays triggered: the next bar that trades through the limit fills it.
    broker.on_market_data([bar(T0 + timedelta(minutes=2), "105.40", high="105.8", low="105.3")])
    assert fills(events)[0].price == D("105.40")


async def test_volume_cap_partially_fills_and_remainder_fills_on_later_bars():
    broker, events, clock = await make(volume_limit_pct=D("0.025"))
    await broker.submit_order(AAPL, D("60"), "market", client_order_id="big")
    for i, close in enumerate(("100", "101", "102"), start=1):
        broker.on_market_data([bar(T0 + timedelta(minutes=i), close, volume="1000")])
    got = fills(events)
    assert [f.amount for f in got] == [D("25"), D("25"), D("10")]
    assert [f.is_final for f in got] == [False, False, True]
    assert len({f.fill_id for f in got}) == 3
    (pos,) = await broker.get_positions()
    assert pos["amount"] == D("60")
    assert await broker.get_open_orders() == []


async def test_zero_volume_bar_gives_no_fill_under_a_volume_cap():
    broker, events, clock = await make(volume_limit_pct=D("0.1"))
    await broker.submit_order(AAPL, D("5"), "market")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100", volume="0")])
    assert fills(events) == []
    assert len(await broker.get_open_orders()) == 1


async def test_cancel_removes_open_order_and_emits_cancel_event():
    broker, events, clock = await make()
    bid = await broker.submit_order(AAPL, D("5"), "limit", limit_price=D("50"), client_order_id="x")
    await broker.cancel_order(bid)
    assert kinds(events) == ["OrderAckEvent", "OrderCancelEvent"]
    assert events[1].client_order_id == "x" and events[1].broker_order_id == bid
    assert await broker.get_open_orders() == []
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "40", low="40")])
    assert fills(events) == []
    await broker.cancel_order(bid)  # cancelling a closed order is a no-op
    assert kinds(events).count("OrderCancelEvent") == 1
    with pytest.raises(OrderNotFound, match="no order"):
        await broker.cancel_order("paper-999")


async def test_cancel_after_partial_fill_keeps_the_filled_part():
    broker, events, clock = await make(volume_limit_pct=D("0.01"))
    bid = await broker.submit_order(AAPL, D("30"), "market")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100", volume="1000")])
    await broker.cancel_order(bid)
    (pos,) = await broker.get_positions()
    assert pos["amount"] == D("10")
    info = await broker.get_order_by_client_id(bid)
    assert info["status"] == "cancelled" and info["filled"] == D("10")


async def test_insufficient_funds_at_submit_costs_a_limit_order_at_its_limit():
    broker, events, clock = await make(starting_cash=D("10000"))
    # Market at the last price 100: 101 shares need 10100 > 10000.
    with pytest.raises(InsufficientFundsError, match="Reduce the amount"):
        await broker.submit_order(AAPL, D("101"), "market")
    # A limit below the market is costed at the limit: 110 x 90 = 9900 fits.
    await broker.submit_order(AAPL, D("110"), "limit", limit_price=D("90"))
    # Open buy orders reserve cash: 2 more at 90 would need 180 > 100 left.
    with pytest.raises(InsufficientFundsError, match="reserved"):
        await broker.submit_order(AAPL, D("2"), "limit", limit_price=D("90"))
    assert len(broker.submissions) == 1
    assert kinds(events) == ["OrderAckEvent"]


async def test_fill_that_costs_more_than_cash_fills_what_cash_allows_and_cancels_the_rest():
    broker, events, clock = await make(starting_cash=D("1000"))
    await broker.submit_order(AAPL, D("9"), "market", client_order_id="gap")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "150")])  # gap up: 1350 > 1000
    assert kinds(events) == ["OrderAckEvent", "OrderFillEvent", "OrderCancelEvent"]
    assert events[1].amount == D("6") and events[1].price == D("150")  # 900 fits
    assert "insufficient funds" in events[2].reason
    assert (await broker.get_account_info())["cash"] == D("100")
    info = await broker.get_order_by_client_id("gap")
    assert info["status"] == "cancelled" and info["filled"] == D("6")


async def test_fill_with_no_cash_for_even_one_lot_is_rejected_as_an_event():
    broker, events, clock = await make(starting_cash=D("1000"))
    await broker.submit_order(AAPL, D("9"), "market", client_order_id="gap")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "1500")])  # 1 share > 1000
    assert kinds(events) == ["OrderAckEvent", "OrderRejectEvent"]
    assert "insufficient funds" in events[1].reason
    assert (await broker.get_account_info())["cash"] == D("1000")


async def test_partly_filled_order_short_of_cash_keeps_its_fills_and_cancels_the_remainder():
    # The old code rejected a partly filled order here: IllegalOrderTransition.
    broker, events, clock = await make(starting_cash=D("10000"), volume_limit_pct=D("0.5"))
    await broker.submit_order(AAPL, D("90"), "market", client_order_id="p")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100", volume="100")])  # 50 fill
    broker.on_market_data([bar(T0 + timedelta(minutes=2), "200", volume="100")])  # 40 > cash
    assert kinds(events) == [
        "OrderAckEvent",
        "OrderFillEvent",
        "OrderFillEvent",
        "OrderCancelEvent",
    ]
    assert [e.amount for e in events[1:3]] == [D("50"), D("25")]  # 5000 left: 25 at 200
    info = await broker.get_order_by_client_id("p")
    assert info["status"] == "cancelled" and info["filled"] == D("75")
    assert (await broker.get_account_info())["cash"] == D("0")


async def test_short_sale_is_refused_at_submit_unless_allowed():
    # A definitive refusal raises from submit_order (as the backtest refuses it at once),
    # so the strategy sees the rejected order before its next line runs.
    broker, events, clock = await make()
    with pytest.raises(OrderRejected, match="allow_short=True"):
        await broker.submit_order(AAPL, D("-5"), "market", client_order_id="s1")
    assert await broker.get_open_orders() == []
    assert await broker.get_order_by_client_id("s1") is None

    broker2, events2, _ = await make(allow_short=True)
    await broker2.submit_order(AAPL, D("-5"), "market")
    broker2.on_market_data([bar(T0 + timedelta(minutes=1), "100")])
    assert kinds(events2) == ["OrderAckEvent", "OrderFillEvent"]
    (pos,) = await broker2.get_positions()
    assert pos["amount"] == D("-5")


async def test_selling_what_is_held_is_not_a_short():
    broker, events, clock = await make()
    await broker.submit_order(AAPL, D("5"), "market")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100")])
    await broker.submit_order(AAPL, D("-3"), "market")
    await broker.submit_order(AAPL, D("-2"), "market")
    with pytest.raises(OrderRejected, match="short"):
        await broker.submit_order(AAPL, D("-1"), "market")  # 5 held, 5 already being sold
    assert kinds(events).count("OrderAckEvent") == 3


@pytest.mark.parametrize(
    ("amount", "order_type", "limit", "stop", "match"),
    [
        (D("NaN"), "market", None, None, "amount"),
        (D("Infinity"), "market", None, None, "amount"),
        (D("0"), "market", None, None, "amount"),
        (D("1"), "limit", D("0"), None, "limit_price"),
        (D("1"), "limit", D("-1"), None, "limit_price"),
        (D("1"), "stop", None, D("0"), "stop_price"),
        (D("1"), "limit", D("100.001"), None, "tick"),
        (D("1"), "limit", None, None, "limit"),
        (D("1"), "iceberg", None, None, "iceberg"),
    ],
)
async def test_bad_order_parameters_raise_invalid_order_and_record_nothing(
    amount, order_type, limit, stop, match
):
    broker, events, clock = await make()
    with pytest.raises(InvalidOrder, match=match):
        await broker.submit_order(AAPL, amount, order_type, limit_price=limit, stop_price=stop)
    assert events == [] and broker.submissions == []


async def test_order_without_any_price_yet_is_refused_with_a_clear_error():
    broker = PaperBroker()
    await broker.connect()
    with pytest.raises(OrderRejected, match="no price for AAPL"):
        await broker.submit_order(AAPL, D("1"), "market")


async def test_duplicate_client_order_id_is_refused():
    broker, events, clock = await make()
    await broker.submit_order(AAPL, D("1"), "market", client_order_id="dup")
    with pytest.raises(OrderRejected, match="duplicate client order id"):
        await broker.submit_order(AAPL, D("1"), "market", client_order_id="dup")


async def test_calls_before_connect_raise_connection_error():
    broker = PaperBroker()
    with pytest.raises(BrokerConnectionError, match="connect"):
        await broker.get_account_info()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"starting_cash": "-1"}, "starting_cash"),
        ({"starting_cash": "abc"}, "starting_cash"),
        ({"order_latency_ms": -5}, "order_latency_ms"),
        ({"latency_jitter_pct": D("1.5")}, "latency_jitter_pct"),
        ({"volume_limit_pct": D("0")}, "volume_limit_pct"),
        ({"slippage_model": 5}, "SlippageModel"),
    ],
)
def test_bad_broker_configuration_raises_config_error(kw, match):
    with pytest.raises(ConfigError, match=match):
        PaperBroker(**kw)


async def test_persistent_paper_account_survives_a_new_broker_object(tmp_path):
    path = tmp_path / "venue.json"
    broker, events, clock = await make(state_path=path)
    await broker.submit_order(AAPL, D("4"), "market", client_order_id="p-1")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100")])
    await broker.submit_order(AAPL, D("1"), "limit", limit_price=D("50"), client_order_id="p-2")

    again = PaperBroker(state_path=path)
    await again.connect()
    (pos,) = await again.get_positions()
    assert pos["amount"] == D("4")
    (open_order,) = await again.get_open_orders()
    assert open_order["client_order_id"] == "p-2"
    assert (await again.get_order_by_client_id("p-1"))["status"] == "filled"
    assert again.submissions == ["p-1", "p-2"]
    with pytest.raises(OrderRejected, match="duplicate"):
        await again.submit_order(AAPL, D("1"), "market", client_order_id="p-1")


async def test_every_event_carries_both_ids():
    broker, events, clock = await make(volume_limit_pct=D("0.5"))
    bid = await broker.submit_order(AAPL, D("10"), "market", client_order_id="ids")
    broker.on_market_data([bar(T0 + timedelta(minutes=1), "100", volume="10")])
    await broker.cancel_order(bid)
    assert [type(e) for e in events] == [OrderAckEvent, OrderFillEvent, OrderCancelEvent]
    assert all(e.client_order_id == "ids" and e.broker_order_id == bid for e in events)
