"""Slippage models: adverse prices, adverse tick rounding, volume share impact."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rustybt.assets import Crypto, Equity, Future
from rustybt.exceptions import ConfigError
from rustybt.finance.decimal.slippage import (
    FixedBasisPointsSlippage,
    NoSlippage,
    VolumeShareSlippage,
    round_adverse,
)

D = Decimal
AAPL = Equity("AAPL")
BTC = Crypto("BTCUSDT")
ES = Future("ES")  # tick 0.25


def test_no_slippage_returns_an_on_tick_price_unchanged():
    assert NoSlippage().fill_price(D("100.25"), D(10), D(1000), AAPL) == D("100.25")
    assert NoSlippage().volume_limit is None


def test_off_tick_reference_price_is_rounded_against_the_trader():
    model = NoSlippage()
    assert model.fill_price(D("100.001"), D(1), D(0), AAPL) == D("100.01")
    assert model.fill_price(D("100.009"), D(-1), D(0), AAPL) == D("100.00")
    assert model.fill_price(D("4500.10"), D(1), D(0), ES) == D("4500.25")
    assert model.fill_price(D("4500.10"), D(-1), D(0), ES) == D("4500.00")


def test_sell_price_never_rounds_below_one_tick():
    assert round_adverse(D("0.004"), D(-1), AAPL) == D("0.01")


def test_spec_fixed_five_basis_points_buys_pay_more_and_sells_receive_less():
    model = FixedBasisPointsSlippage(D("5"))
    assert model.fill_price(D(100), D(10), D(0), AAPL) == D("100.05")
    assert model.fill_price(D(100), D(-10), D(0), AAPL) == D("99.95")
    assert model.volume_limit is None


def test_fixed_basis_points_rounds_buys_up_and_sells_down_to_tick():
    model = FixedBasisPointsSlippage(D("1"))
    # 123.45 × 1.0001 = 123.462345 -> 123.47; × 0.9999 = 123.437655 -> 123.43
    assert model.fill_price(D("123.45"), D(1), D(0), AAPL) == D("123.47")
    assert model.fill_price(D("123.45"), D(-1), D(0), AAPL) == D("123.43")


def test_fixed_basis_points_default_is_five_and_volume_limit_is_optional():
    model = FixedBasisPointsSlippage(volume_limit=D("0.1"))
    assert model.basis_points == D(5) and model.volume_limit == D("0.1")


def test_volume_share_impact_is_price_impact_times_volume_share_squared():
    model = VolumeShareSlippage(volume_limit=D("0.025"), price_impact=D("0.1"))
    # share 0.02 -> impact 0.1 × 0.0004 = 0.00004 -> 10000 × 1.00004 = 10000.4
    assert model.fill_price(D(10000), D(20), D(1000), AAPL) == D("10000.40")
    assert model.fill_price(D(10000), D(-20), D(1000), AAPL) == D("9999.60")


def test_volume_share_is_capped_at_the_volume_limit_and_zero_volume_counts_as_full():
    model = VolumeShareSlippage(volume_limit=D("0.025"), price_impact=D("0.1"))
    # 10000 × (1 + 0.1 × 0.025²) = 10000.625, rounded up to the 0.01 tick
    capped = D("10000.63")
    assert model.fill_price(D(10000), D(500), D(1000), BTC) == capped
    assert model.fill_price(D(10000), D(1), D(0), BTC) == capped


def test_volume_share_defaults_match_zipline():
    model = VolumeShareSlippage()
    assert model.volume_limit == D("0.025") and model.price_impact == D("0.1")


@pytest.mark.parametrize(
    "build",
    [
        lambda: FixedBasisPointsSlippage(D(-1)),
        lambda: FixedBasisPointsSlippage(D("NaN")),
        lambda: FixedBasisPointsSlippage(D(10000)),
        lambda: FixedBasisPointsSlippage(D(5), volume_limit=D(0)),
        lambda: FixedBasisPointsSlippage(D(5), volume_limit=D("1.5")),
        lambda: VolumeShareSlippage(volume_limit=D(-1)),
        lambda: VolumeShareSlippage(price_impact=D(-1)),
        lambda: VolumeShareSlippage(volume_limit=None, price_impact=D(1)),
        lambda: VolumeShareSlippage(price_impact="big"),
        lambda: NoSlippage(volume_limit=D("Infinity")),
    ],
)
def test_bad_constructor_arguments_raise_config_error(build):
    with pytest.raises(ConfigError):
        build()


def test_models_compare_by_value_and_show_parameters():
    assert FixedBasisPointsSlippage("5") == FixedBasisPointsSlippage(5.0)
    assert "basis_points=5" in repr(FixedBasisPointsSlippage(D(5)))
