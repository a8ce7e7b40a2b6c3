"""Order model: state machine, validation, fills, serialisation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rustybt.assets import Crypto, Equity
from rustybt.exceptions import IllegalOrderTransition, InvalidOrder
from rustybt.finance.order import (
    LimitOrder,
    MarketOrder,
    Order,
    OrderStatus,
    OrderType,
    StopLimitOrder,
    StopOrder,
    TimeInForce,
    is_terminal,
    prepare_order,
    to_decimal,
    validate_order,
)

D = Decimal
AAPL = Equity("AAPL")
BTC = Crypto("BTCUSDT")
T0 = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)


def make(amount: str = "100", **kw) -> Order:
    return Order("o-1", AAPL, D(amount), **kw)


# --- enums -----------------------------------------------------------------------
def test_open_statuses_are_new_submitted_unknown_and_partially_filled():
    open_ = {s for s in OrderStatus if s.is_open}
    assert open_ == {
        OrderStatus.NEW,
        OrderStatus.SUBMITTED,
        OrderStatus.UNKNOWN,
        OrderStatus.PARTIALLY_FILLED,
    }
    assert all(is_terminal(s) == s.is_terminal == (not s.is_open) for s in OrderStatus)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("market", OrderType.MARKET),
        ("LIMIT", OrderType.LIMIT),
        ("stop", OrderType.STOP),
        ("stop_limit", OrderType.STOP_LIMIT),
        ("stop-limit", OrderType.STOP_LIMIT),
        (" Stop Limit ", OrderType.STOP_LIMIT),
        (OrderType.LIMIT, OrderType.LIMIT),
        (LimitOrder(D("10")), OrderType.LIMIT),
    ],
)
def test_order_type_parse_accepts_common_spellings(text, expected):
    assert OrderType.parse(text) is expected


@pytest.mark.parametrize("bad", ["trailing_stop", "", None, 3])
def test_order_type_parse_rejects_unknown_types_listing_valid_ones(bad):
    with pytest.raises(InvalidOrder, match="stop_limit"):
        OrderType.parse(bad)


def test_time_in_force_values_are_lowercase_and_parse():
    assert [t.value for t in TimeInForce] == ["day", "gtc", "ioc", "fok"]
    assert TimeInForce.parse("GTC") is TimeInForce.GTC
    with pytest.raises(InvalidOrder):
        TimeInForce.parse("forever")


def test_enums_compare_equal_to_their_string_values():
    assert OrderStatus.FILLED == "filled"
    assert str(OrderType.STOP_LIMIT) == "stop_limit"


# --- execution styles ------------------------------------------------------------
def test_execution_styles_carry_type_and_decimal_prices():
    assert MarketOrder().order_type is OrderType.MARKET
    assert MarketOrder().limit_price is None and MarketOrder().stop_price is None
    lim = LimitOrder("10.5")
    assert (lim.order_type, lim.limit_price, lim.stop_price) == (OrderType.LIMIT, D("10.5"), None)
    stop = StopOrder(9)
    assert (stop.order_type, stop.stop_price) == (OrderType.STOP, D(9))
    sl = StopLimitOrder(limit_price=D("10.10"), stop_price=D("10.00"))
    assert (sl.order_type, sl.limit_price, sl.stop_price) == (
        OrderType.STOP_LIMIT,
        D("10.10"),
        D("10.00"),
    )


def test_execution_style_converts_floats_via_repr_not_binary_expansion():
    assert LimitOrder(0.1).limit_price == D("0.1")


@pytest.mark.parametrize("bad", [0, -1, "abc", float("nan"), float("inf"), None])
def test_limit_order_style_rejects_non_positive_or_non_numeric_price(bad):
    with pytest.raises(InvalidOrder):
        LimitOrder(bad)


# --- to_decimal ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [(D("1.5"), D("1.5")), (3, D(3)), ("2.25", D("2.25")), (0.1, D("0.1")), (-7, D(-7))],
)
def test_to_decimal_accepts_decimal_int_str_and_float_repr(value, expected):
    assert to_decimal("x", value) == expected


@pytest.mark.parametrize("bad", ["NaN", "inf", "-Infinity", "ten", True, None, [1], float("nan")])
def test_to_decimal_rejects_non_finite_and_non_numbers_naming_the_field(bad):
    with pytest.raises(InvalidOrder, match="qty"):
        to_decimal("qty", bad)


# --- validate_order -----------------------------------------------------------------
def test_validate_order_accepts_buys_and_sells_of_every_type():
    validate_order(AAPL, D(10), OrderType.MARKET)
    validate_order(AAPL, D(-10), "market")
    validate_order(AAPL, 10, "limit", limit_price=D("100.01"))
    validate_order(AAPL, "-10", OrderType.STOP, stop_price="99.50")
    validate_order(AAPL, D(5), "stop-limit", limit_price=D("101"), stop_price=D("100"))


def test_prepare_order_returns_normalised_decimals():
    assert prepare_order(AAPL, "5", "limit", limit_price=100) == (
        D(5),
        OrderType.LIMIT,
        D(100),
        None,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"amount": D("NaN")}, "not finite"),
        ({"amount": D("Infinity")}, "not finite"),
        ({"amount": float("-inf")}, "not finite"),
        ({"amount": D(0)}, "zero"),
        ({"amount": "lots"}, "not a number"),
        ({"amount": D("1.5")}, "lots"),
        ({"amount": D("1e20")}, "implausibly large"),
        ({"order_type": "limit"}, "needs a limit_price"),
        ({"order_type": "stop_limit", "stop_price": D(1)}, "needs a limit_price"),
        ({"order_type": "stop"}, "needs a stop_price"),
        ({"order_type": "stop_limit", "limit_price": D(1)}, "needs a stop_price"),
        ({"limit_price": D(1)}, "drop the limit price"),
        ({"stop_price": D(1)}, "drop the stop price"),
        ({"order_type": "limit", "stop_price": D(1), "limit_price": D(1)}, "drop the stop"),
        ({"order_type": "limit", "limit_price": D(0)}, "> 0"),
        ({"order_type": "limit", "limit_price": D(-5)}, "> 0"),
        ({"order_type": "limit", "limit_price": "nan"}, "not finite"),
        ({"order_type": "stop", "stop_price": D("100.005")}, "off tick"),
        ({"order_type": "limit", "limit_price": D("1e30")}, "implausibly large"),
        ({"order_type": "bracket"}, "unknown order type"),
    ],
)
def test_validate_order_rejects_bad_parameters_with_a_clear_message(kwargs, match):
    args = {"amount": D(10), "order_type": "market"} | kwargs
    with pytest.raises(InvalidOrder, match=match):
        validate_order(AAPL, **args)


def test_validate_order_rejects_a_non_asset():
    with pytest.raises(InvalidOrder, match="not an Asset"):
        validate_order("AAPL", D(1), "market")


def test_validate_order_lot_check_can_be_disabled_and_crypto_lots_are_fractional():
    validate_order(AAPL, D("1.5"), "market", check_lot=False)
    validate_order(BTC, D("0.00123"), "market")
    with pytest.raises(InvalidOrder, match="round_amount"):
        validate_order(BTC, D("0.000001"), "market")


def test_off_tick_message_suggests_the_rounded_price():
    with pytest.raises(InvalidOrder, match=r"100\.00|100\.01"):
        validate_order(AAPL, D(1), "limit", limit_price=D("100.005"))


# --- construction and views ----------------------------------------------------------
def test_new_order_defaults():
    o = Order("c-1", AAPL, D(-3), created_dt=T0)
    assert o.status is OrderStatus.NEW and o.is_open
    assert o.order_type is OrderType.MARKET and o.tif is TimeInForce.GTC
    assert o.filled == 0 and o.commission == 0 and o.avg_fill_price is None
    assert o.open_amount == D(-3)
    assert not o.is_buy and o.side == "sell"
    assert o.stop_reached is False and o.broker_order_id is None
    assert o.created_dt == o.updated_dt == T0


def test_order_has_slots_and_no_instance_dict():
    assert not hasattr(make(), "__dict__")


# --- state machine ------------------------------------------------------------------
LEGAL = {
    OrderStatus.NEW: {
        "submitted",
        "unknown",
        "rejected",
        "cancelled",
        "filled",
        "partially_filled",
    },
    # An unknown submit outcome moves on only with the broker's answer, never back to NEW.
    OrderStatus.UNKNOWN: {
        "submitted",
        "partially_filled",
        "filled",
        "cancelled",
        "rejected",
        "expired",
    },
    OrderStatus.SUBMITTED: {"partially_filled", "filled", "cancelled", "rejected", "expired"},
    OrderStatus.PARTIALLY_FILLED: {"partially_filled", "filled", "cancelled", "expired"},
    OrderStatus.FILLED: set(),
    OrderStatus.CANCELLED: set(),
    OrderStatus.REJECTED: set(),
    OrderStatus.EXPIRED: set(),
}


@pytest.mark.parametrize("start", list(OrderStatus))
@pytest.mark.parametrize("target", list(OrderStatus))
def test_transition_table_matches_the_documented_state_machine(start, target):
    o = make()
    o.status = start
    if target.value in LEGAL[start]:
        o.transition(target, "why")
        assert o.status is target and o.reason == "why"
    else:
        with pytest.raises(IllegalOrderTransition) as info:
            o.transition(target)
        assert "o-1" in str(info.value)
        assert start.value in str(info.value) and target.value in str(info.value)
        assert o.status is start


def test_cancel_reject_and_expire_record_reason_and_time():
    o = make()
    o.reject("insufficient funds", dt=T0)
    assert o.status is OrderStatus.REJECTED and o.reason == "insufficient funds"
    assert o.updated_dt == T0 and not o.is_open
    o2 = make()
    o2.cancel("user")
    assert o2.status is OrderStatus.CANCELLED
    o3 = make()
    o3.transition(OrderStatus.SUBMITTED)
    o3.expire("end of day")
    assert o3.status is OrderStatus.EXPIRED


def test_cancelling_a_filled_order_is_illegal():
    o = make("10")
    o.apply_fill(D(10), D(100))
    with pytest.raises(IllegalOrderTransition, match="terminal"):
        o.cancel()


def test_transition_to_unknown_status_is_rejected():
    with pytest.raises(IllegalOrderTransition, match="unknown status"):
        make().transition("done")


# --- fills --------------------------------------------------------------------------
def test_partial_fills_accumulate_with_volume_weighted_average_price():
    o = make("100")
    o.transition(OrderStatus.SUBMITTED)
    o.apply_fill(D(30), D("10.00"), D("0.15"), T0)
    assert o.status is OrderStatus.PARTIALLY_FILLED
    assert o.filled == 30 and o.open_amount == 70 and o.avg_fill_price == D("10.00")
    o.apply_fill(D(70), D("11.00"), D("0.35"))
    assert o.status is OrderStatus.FILLED and not o.is_open
    assert o.filled == 100 and o.open_amount == 0
    assert o.avg_fill_price == D("10.70")
    assert o.commission == D("0.50")
    assert o.updated_dt == T0


def test_sell_order_fills_with_negative_amounts():
    o = make("-50")
    o.apply_fill(D(-20), D(5))
    o.apply_fill(-30, "6")
    assert o.status is OrderStatus.FILLED and o.filled == D(-50)
    assert o.avg_fill_price == D("5.6")


def test_fill_before_ack_moves_new_straight_to_filled():
    o = make("5")
    o.apply_fill(D(5), D(1))
    assert o.status is OrderStatus.FILLED


def test_average_price_stays_exact_over_many_thirds():
    o = make("3")
    for price in ("1", "2", "2"):
        o.apply_fill(D(1), D(price))
    assert o.avg_fill_price * 3 == pytest.approx(D(5))
    assert o.to_dict()["fill_notional"] == "5"


@pytest.mark.parametrize(
    ("amount", "price", "commission", "match"),
    [
        (D(101), D(1), D(0), "does not fit"),
        (D(-1), D(1), D(0), "does not fit"),
        (D(0), D(1), D(0), "zero"),
        (D(1), D(0), D(0), "> 0"),
        (D(1), D(-1), D(0), "> 0"),
        (D(1), D("NaN"), D(0), "not finite"),
        (D("NaN"), D(1), D(0), "not finite"),
        (D(1), D(1), D(-1), ">= 0"),
    ],
)
def test_bad_fill_raises_and_leaves_the_order_unchanged(amount, price, commission, match):
    o = make("100")
    o.apply_fill(D(10), D(2), D("0.1"))
    before = o.to_dict()
    with pytest.raises(InvalidOrder, match=match):
        o.apply_fill(amount, price, commission)
    assert o.to_dict() == before


def test_fill_on_a_cancelled_order_is_an_illegal_transition_and_changes_nothing():
    o = make("100")
    o.cancel("user")
    before = o.to_dict()
    with pytest.raises(IllegalOrderTransition):
        o.apply_fill(D(1), D(1))
    assert o.to_dict() == before


# --- serialisation ---------------------------------------------------------------------
def test_to_dict_is_json_friendly_and_round_trips_losslessly():
    o = Order(
        "c-9",
        BTC,
        D("-0.5"),
        OrderType.STOP_LIMIT,
        D("42000.10"),
        D("42100.00"),
        TimeInForce.IOC,
        T0,
    )
    o.broker_order_id = "B-77"
    o.stop_reached = True
    o.apply_fill(D("-0.2"), D("42000.10"), D("0.84"), T0)
    data = json.loads(json.dumps(o.to_dict()))
    assert data["amount"] == "-0.5" and data["created_dt"] == T0.isoformat()
    back = Order.from_dict(data)
    assert back.to_dict() == o.to_dict()
    assert back.asset == BTC and back.status is OrderStatus.PARTIALLY_FILLED
    assert back.tif is TimeInForce.IOC and back.stop_reached is True


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("id"),
        lambda d: d.pop("asset"),
        lambda d: d.update(amount="NaN"),
        lambda d: d.update(status="done"),
        lambda d: d.update(order_type="bracket"),
        lambda d: d.update(created_dt="yesterday"),
    ],
)
def test_from_dict_rejects_malformed_records(mutate):
    data = make().to_dict()
    mutate(data)
    with pytest.raises(InvalidOrder, match="malformed order record"):
        Order.from_dict(data)
