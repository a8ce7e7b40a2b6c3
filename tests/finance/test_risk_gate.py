"""The risk gate judges every order at its worst-case price and enforces venue rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rustybt.assets import Crypto, Equity
from rustybt.exceptions import InvalidOrder
from rustybt.finance.blotter import Blotter
from rustybt.finance.ledger import Ledger
from rustybt.finance.order import OrderType
from rustybt.finance.risk_gate import RiskGate, worst_case_price
from rustybt.live.risk_limits import RiskLimits

D = Decimal
AAPL = Equity("AAPL", sid=1)
BTC = Crypto("BTCUSDT", sid=2)  # min notional 5 USDT, lot 0.00001


def blotter(limits=None) -> Blotter:
    return Blotter(Ledger(D("100000")), RiskGate(limits))


@pytest.mark.parametrize(
    ("amount", "otype", "limit", "stop", "last", "expected"),
    [
        (D(1), OrderType.MARKET, None, None, D(100), D(100)),
        (D(1), OrderType.MARKET, None, None, None, None),
        (D(1), OrderType.LIMIT, D(90), None, D(100), D(90)),  # never fills above 90
        (D(1), OrderType.LIMIT, D(120), None, D(100), D(120)),
        (D(-1), OrderType.LIMIT, D(1), None, D(100), D(100)),  # marketable sell limit
        (D(-1), OrderType.LIMIT, D(120), None, D(100), D(120)),
        (D(1), OrderType.STOP, None, D(1), D(100), D(100)),  # buy stop far below market
        (D(1), OrderType.STOP, None, D(105), D(100), D(105)),
        (D(-1), OrderType.STOP, None, D(95), D(100), D(100)),
        (D(1), OrderType.STOP_LIMIT, D(106), D(105), D(100), D(106)),
        (D(1), OrderType.LIMIT, D(90), None, None, D(90)),  # a limit needs no last price
    ],
)
def test_worst_case_price(amount, otype, limit, stop, last, expected):
    assert worst_case_price(amount, otype, limit, stop, last) == expected


def test_buy_stop_far_below_the_market_is_valued_at_the_market_for_max_order_value():
    # It triggers at once and fills near 100: 150 × 100 = 15,000 > 10,000. Valued at its
    # stop price (1) it used to slip through.
    b = blotter(RiskLimits(max_order_value=D(10000)))
    order = b.place(AAPL, D(150), OrderType.STOP, None, D(1), reference_price=D(100))
    assert order.status.value == "rejected" and "max_order_value" in order.reason
    assert "× 100 =" in order.reason


def test_marketable_sell_limit_opening_a_short_is_valued_at_the_market():
    b = blotter(RiskLimits(max_position_value=D(10000)))
    order = b.place(AAPL, D(-150), OrderType.LIMIT, D(1), None, reference_price=D(100))
    assert order.status.value == "rejected" and "max_position_value" in order.reason


def test_an_order_without_a_price_is_rejected_with_the_reason_not_raised():
    b = blotter()
    order = b.place(AAPL, D(1), OrderType.MARKET, reference_price=None)
    assert order.status.value == "rejected"
    assert "no market data for AAPL yet" in order.reason
    assert b.rejected_count == 1 and b.open_orders() == []


def test_min_notional_refuses_a_tiny_order_naming_the_rule_and_the_smallest_amount():
    # 0.0001 BTC at 4,200 = 0.42 USDT, under the 5 USDT minimum.
    b = blotter()
    order = b.place(BTC, D("0.0001"), OrderType.MARKET, reference_price=D(4200))
    assert order.status.value == "rejected"
    assert "min_notional" in order.reason and "5 USDT" in order.reason
    assert "smallest valid amount at this price is 0.00120" in order.reason
    ok = b.place(BTC, D("0.0012"), OrderType.MARKET, reference_price=D(4200))
    assert ok.is_open


def test_min_notional_uses_the_limit_price_of_a_limit_order():
    b = blotter()
    order = b.place(BTC, D("0.001"), OrderType.LIMIT, D(4000), reference_price=D(6000))
    assert order.status.value == "rejected" and "4000" in order.reason  # 4 USDT < 5


def test_validate_min_notional_raises_invalid_order_with_the_nearest_valid_amount():
    with pytest.raises(InvalidOrder, match=r"min_notional.*smallest valid amount .* 0\.00120"):
        BTC.validate_min_notional(D("0.0001"), D(4200))


def test_off_tick_and_off_lot_name_the_rule_and_the_nearest_valid_value():
    b = blotter()
    with pytest.raises(InvalidOrder, match=r"tick_size.*nearest valid price is 100\.00"):
        b.place(AAPL, D(1), OrderType.LIMIT, D("100.001"), reference_price=D(100))
    with pytest.raises(InvalidOrder, match=r"lot_size.*nearest valid amount .* 0\.00001"):
        b.place(BTC, D("0.000015"), OrderType.MARKET, reference_price=D(4200))
    assert b.orders == {}  # nothing recorded for bad parameters
