"""Position and portfolio limits: each limit, its message, risk-reducing orders, config."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from rustybt.assets import Equity, Future
from rustybt.exceptions import ConfigError, RiskLimitExceeded
from rustybt.live.risk_limits import RiskLimits

D = Decimal
AAPL = Equity("AAPL")
MSFT = Equity("MSFT")
ES = Future("ES")


@dataclass
class Pos:
    amount: Decimal
    last_price: Decimal | None


@dataclass
class Open:
    asset: object
    open_amount: Decimal
    limit_price: Decimal | None = None


def check(limits, asset=AAPL, amount="100", price="10", positions=None, orders=(), pv="100000"):
    limits.check_order(asset, D(amount), D(price), positions or {}, list(orders), D(pv))


# --- no limits ------------------------------------------------------------------------------
def test_no_limits_accepts_anything_without_touching_inputs():
    class Explodes:
        def __iter__(self):
            raise AssertionError("open orders must not be read when no limit is set")

        def get(self, key):
            raise AssertionError("positions must not be read when no limit is set")

    RiskLimits().check_order(AAPL, D("1e9"), D("1e6"), Explodes(), Explodes(), D("0"))


# --- max_position_amount ------------------------------------------------------------------
def test_max_position_amount_message_names_position_open_orders_and_order():
    limits = RiskLimits(max_position_amount=D("1000"))
    with pytest.raises(RiskLimitExceeded) as exc:
        check(
            limits,
            positions={AAPL: Pos(D("900"), D("10"))},
            orders=[Open(AAPL, D("50"))],
        )
    msg = str(exc.value)
    assert msg.startswith(
        "max_position_amount for AAPL: position 900 + open buy orders 50 + this order 100 "
        "= 1050 > limit 1000"
    )
    assert "at most 50 more" in msg


def test_max_position_amount_exactly_at_limit_passes():
    limits = RiskLimits(max_position_amount=D("1000"))
    positions = {AAPL: Pos(D("900"), D("10"))}
    check(limits, amount="50", positions=positions, orders=[Open(AAPL, D("50"))])


def test_max_position_amount_applies_to_short_side():
    limits = RiskLimits(max_position_amount=D("100"))
    with pytest.raises(RiskLimitExceeded, match=r"\|-101\| = 101\) > limit 100"):
        check(limits, amount="-101")


def test_open_sells_are_not_netted_against_a_buy():
    # the standing sell may never fill, so the buy is checked without it
    limits = RiskLimits(max_position_amount=D("1000"))
    with pytest.raises(RiskLimitExceeded):
        check(
            limits,
            amount="300",
            positions={AAPL: Pos(D("900"), D("10"))},
            orders=[Open(AAPL, D("-500"), D("11"))],
        )


def test_per_asset_override_replaces_global_amount_limit():
    limits = RiskLimits(max_position_amount=D("1000"), per_asset={"aapl": D("10")})
    with pytest.raises(RiskLimitExceeded, match="limit 10;"):
        check(limits, amount="11")
    check(limits, asset=MSFT, amount="999")
    assert limits.position_amount_limit("AAPL") == D("10")
    assert limits.position_amount_limit("MSFT") == D("1000")


# --- value and percentage -------------------------------------------------------------------
def test_max_position_value_counts_multiplier():
    limits = RiskLimits(max_position_value=D("100000"))
    check(limits, asset=ES, amount="1", price="2000")  # 1 × 2000 × 50 = 100000: at the limit
    with pytest.raises(RiskLimitExceeded, match="multiplier 50 = 200000 > limit 100000"):
        check(limits, asset=ES, amount="2", price="2000")


def test_max_position_pct_of_portfolio_value():
    limits = RiskLimits(max_position_pct=D("0.25"))
    check(limits, amount="2500", price="10", pv="100000")  # exactly 25 %
    with pytest.raises(RiskLimitExceeded) as exc:
        check(limits, amount="2501", price="10", pv="100000")
    assert "25.01% of portfolio value 100000 > limit 25%" in str(exc.value)


def test_max_position_pct_with_non_positive_portfolio_value_refuses_new_risk():
    limits = RiskLimits(max_position_pct=D("0.25"))
    with pytest.raises(RiskLimitExceeded, match="portfolio value is 0"):
        check(limits, pv="0")


# --- exposure and leverage ------------------------------------------------------------------
def test_max_gross_exposure_sums_all_assets_positions_and_open_orders():
    limits = RiskLimits(max_gross_exposure=D("10000"))
    positions = {MSFT: Pos(D("-20"), D("100"))}  # |−2000|
    orders = [Open(MSFT, D("-10"), D("100")), Open(Equity("IBM"), D("10"), D("200"))]
    # MSFT worst case 3000 + IBM 2000 = 5000; this order 500 × 10 = 5000 → 10000 passes
    check(limits, amount="500", positions=positions, orders=orders)
    with pytest.raises(RiskLimitExceeded) as exc:
        check(limits, amount="501", positions=positions, orders=orders)
    assert str(exc.value) == (
        "max_gross_exposure: positions and open orders 5000 + this order on AAPL 5010 "
        "= 10010 > limit 10000"
    )


def test_max_leverage_gross_over_portfolio_value():
    limits = RiskLimits(max_leverage=D("2"))
    check(limits, amount="2000", price="10", pv="10000")  # 20000 / 10000 = 2: at the limit
    with pytest.raises(RiskLimitExceeded, match=r"= 2\.0010 > limit 2"):
        check(limits, amount="2001", price="10", pv="10000")


def test_exposure_refuses_when_an_open_order_cannot_be_valued():
    limits = RiskLimits(max_gross_exposure=D("1e9"))
    with pytest.raises(RiskLimitExceeded, match="cannot value MSFT"):
        check(limits, orders=[Open(MSFT, D("5"), None)])


# --- order-level limits -------------------------------------------------------------------
def test_max_order_value_applies_even_to_a_closing_sell():
    limits = RiskLimits(max_order_value=D("5000"))
    check(limits, amount="-500", price="10", positions={AAPL: Pos(D("1000"), D("10"))})
    with pytest.raises(RiskLimitExceeded, match=r"\|-501\| × 10 = 5010 > limit 5000"):
        check(limits, amount="-501", price="10", positions={AAPL: Pos(D("1000"), D("10"))})


def test_max_open_orders_counts_all_assets_and_this_order():
    limits = RiskLimits(max_open_orders=2)
    check(limits, orders=[Open(MSFT, D("1"))])
    with pytest.raises(RiskLimitExceeded, match="2 open \\+ this order = 3 > limit 2"):
        check(limits, orders=[Open(MSFT, D("1")), Open(AAPL, D("-1"))])


def test_allowed_assets_blocks_other_symbols():
    limits = RiskLimits(allowed_assets=frozenset({"msft"}))
    check(limits, asset=MSFT)
    with pytest.raises(RiskLimitExceeded, match="allowed_assets: AAPL is not allowed"):
        check(limits, asset=AAPL)


def test_allowed_assets_still_lets_an_existing_position_be_closed():
    limits = RiskLimits(allowed_assets=frozenset({"MSFT"}))
    check(limits, asset=AAPL, amount="-100", positions={AAPL: Pos(D("100"), D("10"))})


def test_long_only_rejects_a_sell_that_would_go_short_counting_open_sells():
    limits = RiskLimits(long_only=True)
    positions = {AAPL: Pos(D("100"), D("10"))}
    check(limits, amount="-50", positions=positions, orders=[Open(AAPL, D("-50"))])
    with pytest.raises(RiskLimitExceeded) as exc:
        check(limits, amount="-60", positions=positions, orders=[Open(AAPL, D("-50"))])
    assert str(exc.value) == (
        "long_only for AAPL: position 100 + open sell orders -50 + this order -60 = -10 < 0; "
        "sell at most 50"
    )


def test_long_only_never_blocks_a_buy():
    check(RiskLimits(long_only=True), amount="10", positions={AAPL: Pos(D("-5"), D("10"))})


# --- risk-reducing orders -------------------------------------------------------------------
def test_risk_reducing_sell_passes_even_when_position_is_over_every_limit():
    limits = RiskLimits(
        max_position_amount=D("10"),
        max_position_value=D("10"),
        max_position_pct=D("0.01"),
        max_gross_exposure=D("10"),
        max_leverage=D("0.1"),
    )
    positions = {AAPL: Pos(D("1000"), D("10")), MSFT: Pos(D("1000"), D("10"))}
    check(limits, amount="-400", positions=positions)
    check(limits, asset=MSFT, amount="-1000", positions=positions)


def test_covering_a_short_is_risk_reducing():
    limits = RiskLimits(max_position_amount=D("10"))
    check(limits, amount="50", positions={AAPL: Pos(D("-100"), D("10"))})


def test_a_sell_that_flips_beyond_the_limit_is_not_risk_reducing():
    limits = RiskLimits(max_position_amount=D("100"))
    positions = {AAPL: Pos(D("50"), D("10"))}
    check(limits, amount="-150", positions=positions)  # ends at -100: at the limit
    with pytest.raises(RiskLimitExceeded, match="at most 150 more"):
        check(limits, amount="-151", positions=positions)


def test_a_buy_on_top_of_pending_buys_that_covers_a_short_is_checked():
    # short 100 with a pending buy of 100: another buy of 50 could leave us long 50
    limits = RiskLimits(max_position_amount=D("40"))
    with pytest.raises(RiskLimitExceeded):
        check(
            limits,
            amount="50",
            positions={AAPL: Pos(D("-100"), D("10"))},
            orders=[Open(AAPL, D("100"), D("10"))],
        )


# --- configuration ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_position_amount": D("0")},
        {"max_position_amount": D("-1")},
        {"max_position_value": D("NaN")},
        {"max_gross_exposure": D("Infinity")},
        {"max_order_value": 100.0},
        {"max_position_pct": D("1.5")},
        {"max_leverage": True},
        {"max_open_orders": 0},
        {"max_open_orders": 2.5},
        {"allowed_assets": "AAPL"},
        {"allowed_assets": frozenset()},
        {"allowed_assets": frozenset({""})},
        {"long_only": "yes"},
        {"per_asset": {"AAPL": D("0")}},
        {"per_asset": [("AAPL", D("1"))]},
    ],
)
def test_bad_limits_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        RiskLimits(**kwargs)


def test_limits_are_immutable():
    limits = RiskLimits(max_open_orders=5)
    with pytest.raises(AttributeError):
        limits.max_open_orders = 6


def test_from_dict_reads_toml_style_values_and_round_trips():
    limits = RiskLimits.from_dict(
        {
            "max_position_amount": "1000",
            "max_position_pct": 0.1,
            "max_leverage": 2,
            "max_open_orders": 20,
            "allowed_assets": ["AAPL", "msft"],
            "long_only": True,
            "per_asset": {"AAPL": 500.5},
        }
    )
    assert limits.max_position_pct == D("0.1")
    assert limits.max_leverage == D("2")
    assert limits.allowed_assets == frozenset({"AAPL", "MSFT"})
    assert limits.per_asset == {"AAPL": D("500.5")}
    assert RiskLimits.from_dict(limits.to_dict()) == limits


def test_from_dict_rejects_unknown_keys_with_the_valid_list():
    with pytest.raises(ConfigError, match="unknown risk limit.*max_positon_amount.*valid keys"):
        RiskLimits.from_dict({"max_positon_amount": "10"})


def test_from_dict_rejects_non_mapping():
    with pytest.raises(ConfigError):
        RiskLimits.from_dict(["max_position_amount"])
