"""Ledger: average-cost accounting, atomic fills, views, state replacement, properties."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rustybt.assets import Crypto, Equity, Future
from rustybt.exceptions import CheckpointCorrupted, InvalidOrder
from rustybt.finance.ledger import Ledger, Position, Positions

D = Decimal
AAPL = Equity("AAPL")
MSFT = Equity("MSFT")
BTC = Crypto("BTCUSDT")
ES = Future("ES")  # multiplier 50


def snapshot(ledger: Ledger) -> dict:
    return ledger.to_dict()


# --- basic accounting -----------------------------------------------------------------
def test_buy_moves_cash_into_a_position_at_cost_plus_commission():
    led = Ledger(D("10000"))
    led.apply_fill(AAPL, D(10), D("100.50"), D("1.25"))
    assert led.cash == D("10000") - D("1005.00") - D("1.25")
    pos = led.positions[AAPL]
    assert (pos.amount, pos.cost_basis, pos.last_price) == (D(10), D("100.50"), D("100.50"))
    assert led.fees_paid == D("1.25")
    assert led.realized_pnl == 0
    assert led.portfolio_value == D("10000") - D("1.25")
    assert led.pnl == D("-1.25")


def test_adding_to_a_position_re_averages_the_cost_basis():
    led = Ledger(D("10000"))
    led.apply_fill(AAPL, D(10), D(100))
    led.apply_fill(AAPL, D(30), D(104))
    assert led.positions[AAPL].cost_basis == D(103)
    assert led.positions[AAPL].amount == 40


def test_reducing_realizes_price_pnl_against_average_cost_and_keeps_basis():
    led = Ledger(D("10000"))
    led.apply_fill(AAPL, D(10), D(100))
    led.apply_fill(AAPL, D(-4), D(110), D(1))
    pos = led.positions[AAPL]
    assert pos.amount == 6 and pos.cost_basis == D(100)
    assert pos.realized_pnl == D(40) and led.realized_pnl == D(40)
    # realized is price PnL only; the fee is in fees_paid and in pnl.
    assert led.fees_paid == D(1)
    assert led.pnl == led.realized_pnl + led.unrealized_pnl - led.fees_paid


def test_closing_a_position_removes_it_and_realizes_everything():
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(5), D(10))
    led.apply_fill(AAPL, D(-5), D(12))
    assert AAPL not in led.positions
    assert led.realized_pnl == D(10)
    assert led.cash == D(1010)
    assert led.positions_value == 0 and led.unrealized_pnl == 0


def test_fill_crossing_through_zero_realizes_closed_part_and_opens_rest_at_fill_price():
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(10), D(100))
    led.apply_fill(AAPL, D(-25), D(90))
    pos = led.positions[AAPL]
    assert pos.amount == D(-15)
    assert pos.cost_basis == D(90)
    assert led.realized_pnl == D(-100)
    assert pos.realized_pnl == D(-100)


def test_short_position_profits_when_price_falls():
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(-10), D(50))
    assert led.cash == D(1500)
    led.update_price(AAPL, D(40))
    assert led.positions[AAPL].market_value == D(-400)
    assert led.positions[AAPL].unrealized_pnl == D(100)
    assert led.portfolio_value == D(1100)
    led.apply_fill(AAPL, D(10), D(40))
    assert led.realized_pnl == D(100) and led.cash == D(1100)


def test_future_multiplier_scales_cash_value_and_pnl():
    led = Ledger(D("100000"))
    led.apply_fill(ES, D(2), D("4500.25"))
    assert led.cash == D("100000") - D("2") * D("4500.25") * 50
    led.update_price(ES, D("4510.25"))
    assert led.positions[ES].unrealized_pnl == D(1000)
    led.apply_fill(ES, D(-1), D("4510.25"))
    assert led.realized_pnl == D(500)


def test_partial_closes_in_thirds_realize_exactly_the_round_trip_pnl():
    led = Ledger(D("1000"))
    for price in ("1", "2", "2"):
        led.apply_fill(AAPL, D(1), D(price))
    for _ in range(3):
        led.apply_fill(AAPL, D(-1), D(3))
    assert led.realized_pnl == D(9) - D(5)
    assert led.cash == D(1004)


def test_crypto_fractional_amounts_are_exact():
    led = Ledger(D("1000"))
    led.apply_fill(BTC, D("0.00123"), D("42000.10"), D("0.05166012"))
    assert led.cash == D("1000") - D("0.00123") * D("42000.10") - D("0.05166012")
    assert isinstance(led.portfolio_value, Decimal)


# --- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("asset", "amount", "price", "commission", "match"),
    [
        (AAPL, D("NaN"), D(1), D(0), "not finite"),
        (AAPL, D("Infinity"), D(1), D(0), "not finite"),
        (AAPL, D(0), D(1), D(0), "zero"),
        (AAPL, D(1), D(0), D(0), "> 0"),
        (AAPL, D(1), D(-3), D(0), "> 0"),
        (AAPL, D(1), D("NaN"), D(0), "not finite"),
        (AAPL, D(1), D(1), D(-1), ">= 0"),
        (AAPL, D(1), D(1), D("sNaN"), "not finite"),
        ("AAPL", D(1), D(1), D(0), "not an Asset"),
        (AAPL, "x", D(1), D(0), "not a number"),
    ],
)
def test_bad_fill_raises_invalid_order_and_leaves_ledger_unchanged(
    asset, amount, price, commission, match
):
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(3), D(10))
    before = snapshot(led)
    with pytest.raises(InvalidOrder, match=match):
        led.apply_fill(asset, amount, price, commission)
    assert snapshot(led) == before


def test_negative_starting_cash_is_rejected():
    with pytest.raises(InvalidOrder):
        Ledger(D(-1))


def test_update_price_marks_positions_and_ignores_assets_not_held():
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(3), D(10))
    led.update_price(AAPL, D(12))
    led.update_price(MSFT, D(99))
    assert led.positions[AAPL].last_price == D(12)
    assert MSFT not in led.positions
    assert led.portfolio_value == D(1006)


def test_mark_all_marks_every_position_like_update_price_and_keeps_those_without_a_price():
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(3), D(10))
    led.apply_fill(MSFT, D(2), D(20))
    seen = []
    led.mark_listener = lambda asset, old, new: seen.append((asset.symbol, old, new))
    led.mark_all({AAPL: D(12)}.get)  # no price for MSFT: kept at its last mark
    assert led.positions[AAPL].last_price == D(12)
    assert led.positions[MSFT].last_price == D(20)
    assert seen == [("AAPL", D(10), D(12))]
    same = led.positions[AAPL].last_price
    led.mark_all({AAPL: same, MSFT: D(21)}.get)  # the same close again: nothing moves
    assert seen[1:] == [("MSFT", D(20), D(21))]
    assert led.portfolio_value == D(1000) - D(70) + D(36) + D(42)


@pytest.mark.parametrize("bad", [D(0), D(-1), D("NaN"), D("Infinity"), "abc"])
def test_mark_all_rejects_bad_marks_like_update_price(bad):
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(3), D(10))
    with pytest.raises(InvalidOrder):
        led.mark_all({AAPL: bad}.get)
    assert led.positions[AAPL].last_price == D(10)


@pytest.mark.parametrize("bad", [D(0), D(-1), D("NaN"), D("Infinity"), "abc"])
def test_update_price_rejects_bad_marks_for_held_assets(bad):
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(3), D(10))
    with pytest.raises(InvalidOrder):
        led.update_price(AAPL, bad)
    assert led.positions[AAPL].last_price == D(10)


# --- exposure and leverage --------------------------------------------------------------
def test_exposure_and_leverage_count_shorts_in_gross_but_net_them_in_net():
    led = Ledger(D("10000"))
    led.apply_fill(AAPL, D(10), D(100))
    led.apply_fill(MSFT, D(-5), D(200))
    assert led.gross_exposure == D(2000)
    assert led.net_exposure == D(0)
    assert led.portfolio_value == D(10000)
    assert led.leverage == D("0.2")
    assert led.net_leverage == 0


def test_leverage_is_zero_when_portfolio_value_is_not_positive():
    led = Ledger(D("100"))
    led.apply_fill(AAPL, D(10), D(100))
    led.update_price(AAPL, D("0.01"))
    assert led.portfolio_value < 0
    assert led.leverage == 0


def test_returns_is_pnl_over_starting_cash_and_zero_without_capital():
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(1), D(100))
    led.update_price(AAPL, D(150))
    assert led.returns == D("0.05")
    assert Ledger(D(0)).returns == 0


# --- zipline views ------------------------------------------------------------------------
def test_portfolio_view_is_live_and_missing_positions_are_zero_without_insertion():
    led = Ledger(D("1000"))
    portfolio = led.portfolio
    led.apply_fill(AAPL, D(2), D(100))
    assert portfolio.cash == D(800)
    assert portfolio.portfolio_value == D(1000)
    assert portfolio.positions_value == D(200)
    assert portfolio.starting_cash == D(1000)
    assert portfolio.capital_used == D(-200)
    assert portfolio.positions[AAPL].amount == 2
    ghost = portfolio.positions[MSFT]
    assert ghost.amount == 0 and ghost.cost_basis == 0 and ghost.last_sale_price == 0
    assert MSFT not in portfolio.positions and len(portfolio.positions) == 1
    led.update_price(AAPL, D(110))
    assert portfolio.pnl == D(20) and portfolio.returns == D("0.02")
    assert portfolio.current_portfolio_weights == {AAPL: D(220) / D(1020)}
    assert isinstance(portfolio.positions, Positions)


def test_account_view_reports_cash_leverage_and_exposures():
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(5), D(100))
    acct = led.account
    assert acct.settled_cash == acct.buying_power == D(500)
    assert acct.total_positions_value == D(500)
    assert acct.net_liquidation == D(1000)
    assert acct.leverage == D("0.5") and acct.net_leverage == D("0.5")
    assert acct.gross_exposure == acct.net_exposure == D(500)


def test_position_exposes_zipline_last_sale_price_alias():
    pos = Position(AAPL, D(3), D(10), D(12))
    assert pos.last_sale_price == D(12)
    assert pos.market_value == D(36) and pos.unrealized_pnl == D(6)


# --- set_state -------------------------------------------------------------------------------
def test_set_state_replaces_cash_and_positions_and_keeps_views_live():
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(3), D(10))
    held = led.portfolio.positions
    broker_pos = Position(MSFT, D(-4), D("25.5"), D(26))
    led.set_state(D("2000"), [broker_pos, Position(BTC, D(0), D(1))])
    assert led.cash == D(2000)
    assert set(led.positions) == {MSFT}
    assert held is led.positions and MSFT in held
    assert led.positions[MSFT].cost_basis == D("25.5")
    # a copy: mutating the caller's object does not touch the ledger
    broker_pos.amount = D(1)
    assert led.positions[MSFT].amount == D(-4)


def test_set_state_defaults_last_price_to_cost_basis():
    led = Ledger(D("0"))
    led.set_state(D("0"), [Position(AAPL, D(2), D(50))])
    assert led.positions[AAPL].last_price == D(50)
    assert led.portfolio_value == D(100)


@pytest.mark.parametrize(
    ("cash", "positions", "match"),
    [
        (D("NaN"), [], "not finite"),
        (D(1), [Position(AAPL, D(1), D(1)), Position(AAPL, D(2), D(1))], "two positions"),
        (D(1), [Position(AAPL, D(1), D(1), D(0))], "> 0"),
        (D(1), [Position(AAPL, D("NaN"), D(1), D(1))], "not finite"),
        (D(1), ["AAPL"], "not a Position"),
    ],
)
def test_set_state_rejects_bad_state_and_changes_nothing(cash, positions, match):
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(3), D(10))
    before = snapshot(led)
    with pytest.raises(InvalidOrder, match=match):
        led.set_state(cash, positions)
    assert snapshot(led) == before


# --- persistence ------------------------------------------------------------------------------
def test_to_dict_round_trips_losslessly_through_json_even_with_inexact_cost_basis():
    led = Ledger(D("1000"))
    for price in ("1", "2", "2"):
        led.apply_fill(AAPL, D(1), D(price), D("0.01"))
    led.apply_fill(ES, D(-1), D("4500.25"))
    led.apply_fill(BTC, D("0.5"), D("30000"))
    led.apply_fill(BTC, D("-0.2"), D("31000"))
    data = json.loads(json.dumps(led.to_dict()))
    back = Ledger.from_dict(data)
    assert back.to_dict() == led.to_dict()
    assert back.positions == led.positions
    for price in ("3", "3", "3"):
        led.apply_fill(AAPL, D(-1), D(price))
        back.apply_fill(AAPL, D(-1), D(price))
    assert back.realized_pnl == led.realized_pnl
    assert back.to_dict() == led.to_dict()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("cash"),
        lambda d: d.update(cash="lots"),
        lambda d: d.update(starting_cash=None),
        lambda d: d["positions"][0].pop("asset"),
        lambda d: d["positions"][0].update(amount="NaN"),
        lambda d: d["positions"][0].update(asset={"asset_class": "bond", "symbol": "X"}),
        lambda d: d.update(positions=[1]),
    ],
)
def test_from_dict_rejects_corrupt_records_with_checkpoint_corrupted(mutate):
    led = Ledger(D("1000"))
    led.apply_fill(AAPL, D(3), D(10))
    data = led.to_dict()
    mutate(data)
    with pytest.raises(CheckpointCorrupted):
        Ledger.from_dict(data)


# --- properties ----------------------------------------------------------------------------
ASSETS = [AAPL, MSFT, BTC, ES]


@st.composite
def decimals(draw, min_value: str, max_value: str) -> Decimal:
    places = draw(st.integers(2, 8))
    return draw(
        st.decimals(
            min_value=D(min_value),
            max_value=D(max_value),
            places=places,
            allow_nan=False,
            allow_infinity=False,
        )
    )


@st.composite
def fills(draw):
    asset = draw(st.sampled_from(ASSETS))
    amount = draw(decimals("0.01", "5000"))
    sign = draw(st.sampled_from([1, -1]))
    price = draw(decimals("0.01", "50000"))
    commission = draw(st.one_of(st.just(D(0)), decimals("0", "50")))
    return asset, amount * sign, price, commission


@settings(max_examples=200, deadline=None)
@given(st.lists(fills(), min_size=1, max_size=25))
def test_marked_at_the_fill_price_a_fill_changes_portfolio_value_by_minus_commission(seq):
    led = Ledger(D("1000000"))
    for asset, amount, price, commission in seq:
        led.update_price(asset, price)
        before = led.portfolio_value
        led.apply_fill(asset, amount, price, commission)
        assert led.portfolio_value == before - commission


@settings(max_examples=200, deadline=None)
@given(st.lists(fills(), min_size=1, max_size=25))
def test_pnl_is_realized_plus_unrealized_minus_fees_and_everything_is_decimal(seq):
    led = Ledger(D("1000000"))
    fees = D(0)
    for asset, amount, price, commission in seq:
        led.apply_fill(asset, amount, price, commission)
        fees += commission
        assert led.pnl == led.realized_pnl + led.unrealized_pnl - led.fees_paid
    assert led.fees_paid == fees
    values = [led.cash, led.portfolio_value, led.pnl, led.realized_pnl, led.leverage]
    values += [p.cost_basis for p in led.positions.values()]
    assert all(type(v) is Decimal for v in values)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ASSETS), st.lists(fills(), min_size=1, max_size=20), decimals("0.01", "1"))
def test_closing_a_position_realizes_exactly_the_sum_of_price_pnl(asset, seq, close_price):
    led = Ledger(D("1000000"))
    trade_cash = D(0)  # Σ −amount × price: the price PnL of a round trip
    for _, amount, price, commission in seq:
        led.apply_fill(asset, amount, price, commission)
        trade_cash -= amount * price
    held = led.positions[asset].amount
    if held:
        led.apply_fill(asset, -held, close_price)
        trade_cash += held * close_price
    assert asset not in led.positions
    assert led.realized_pnl == trade_cash * asset.multiplier
    assert led.cash == D("1000000") + trade_cash * asset.multiplier - led.fees_paid
    assert led.pnl == led.realized_pnl - led.fees_paid
