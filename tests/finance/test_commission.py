"""Commission models: per share (with per-order minimum), per trade, per dollar, maker/taker."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rustybt.assets import Crypto, Equity, Future
from rustybt.exceptions import ConfigError
from rustybt.finance.decimal.commission import (
    CommissionModel,
    MakerTakerFee,
    NoCommission,
    PerDollarCommission,
    PerShareCommission,
    PerTradeCommission,
)
from rustybt.finance.order import Order, OrderType

D = Decimal
AAPL = Equity("AAPL")
BTC = Crypto("BTCUSDT")
ES = Future("ES")


def order(amount: str = "100", asset=AAPL, order_type=OrderType.MARKET, **kw) -> Order:
    return Order("o-1", asset, D(amount), order_type, **kw)


def fill_all(model: CommissionModel, o: Order, pieces: list[tuple[str, str]]) -> list[Decimal]:
    """Charge and apply each (amount, price) fill the way the simulator's caller does."""
    charged = []
    for amount, price in pieces:
        fee = model.calculate(o, D(price), D(amount))
        o.apply_fill(D(amount), D(price), fee)
        charged.append(fee)
    return charged


def test_spec_per_share_commission_charges_half_a_cent_per_share():
    model = PerShareCommission(D("0.005"))
    assert model.calculate(order(), D(100), D(100)) == D("0.500")
    assert model.calculate(order("-100"), D(100), D(-100)) == D("0.500")


def test_per_share_default_cost_is_a_tenth_of_a_cent():
    assert PerShareCommission().calculate(order(), D(1), D(1000)) == D(1)


def test_per_share_minimum_is_charged_once_per_order_across_partial_fills():
    model = PerShareCommission(D("0.005"), min_trade_cost=D(1))
    o = order("1000")
    fees = fill_all(model, o, [("50", "10"), ("50", "10"), ("100", "10"), ("800", "10")])
    # 50 shares -> minimum $1; still under the minimum at 100 shares; then per share.
    assert fees == [D(1), D(0), D(0), D(4)]
    assert o.commission == D(5) == D("0.005") * 1000


def test_per_share_result_is_rounded_half_even_to_eight_places():
    model = PerShareCommission(D("0.000000015"))
    assert model.calculate(order("3"), D(1), D(1)) == D("0.00000002")
    assert model.calculate(order("3"), D(1), D(3)) == D("0.00000004")


def test_per_trade_commission_is_charged_on_the_first_fill_only():
    model = PerTradeCommission(D("4.95"))
    o = order("100")
    assert fill_all(model, o, [("10", "5"), ("90", "5")]) == [D("4.95"), D(0)]


def test_per_dollar_commission_is_basis_points_of_notional_including_multiplier():
    model = PerDollarCommission(D(10))
    assert model.calculate(order(), D("50.00"), D(-200)) == D(10)
    assert model.calculate(order("1", asset=ES), D(4000), D(1)) == D(200)


def test_maker_taker_charges_limit_orders_maker_and_market_stop_orders_taker():
    model = MakerTakerFee(maker_bps=D(2), taker_bps=D(5))
    limit = order("1", BTC, OrderType.LIMIT, limit_price=D(30000))
    stop_limit = order("1", BTC, OrderType.STOP_LIMIT, limit_price=D(30000), stop_price=D(1))
    market = order("1", BTC)
    stop = order("-1", BTC, OrderType.STOP, stop_price=D(1))
    assert model.calculate(limit, D(30000), D(1)) == D(6)
    assert model.calculate(stop_limit, D(30000), D(1)) == D(6)
    assert model.calculate(market, D(30000), D(1)) == D(15)
    assert model.calculate(stop, D(30000), D(-1)) == D(15)


def test_maker_taker_fee_on_fractional_crypto_is_exact_and_rounded_to_eight_places():
    model = MakerTakerFee(D("1"), D("7.5"))
    fee = model.calculate(order("0.00123", BTC), D("42000.17"), D("0.00123"))
    assert fee == D("0.03874516")  # 0.0387451568... half-even at 8 places
    assert type(fee) is Decimal


def test_no_commission_is_zero():
    assert NoCommission().calculate(order(), D(1), D(1)) == 0


@pytest.mark.parametrize(
    "build",
    [
        lambda: PerShareCommission(D(-1)),
        lambda: PerShareCommission(D("NaN")),
        lambda: PerShareCommission(D("0.01"), min_trade_cost=D("-1")),
        lambda: PerShareCommission("cheap"),
        lambda: PerTradeCommission(D("Infinity")),
        lambda: PerDollarCommission(D(-5)),
        lambda: MakerTakerFee(D(-1), D(5)),
        lambda: MakerTakerFee(D(1), float("nan")),
        lambda: PerShareCommission(True),
    ],
)
def test_bad_constructor_arguments_raise_config_error(build):
    with pytest.raises(ConfigError):
        build()


def test_models_accept_strings_and_float_reprs_and_compare_by_value():
    assert PerShareCommission("0.005") == PerShareCommission(0.005)
    assert PerShareCommission(D("0.005")).cost == D("0.005")
    assert "0.005" in repr(PerShareCommission(D("0.005")))
