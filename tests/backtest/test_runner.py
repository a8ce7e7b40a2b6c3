"""Backtests through run_algorithm: timing rules, results, and bad input."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from rustybt import TradingAlgorithm, run_algorithm
from rustybt.exceptions import (
    BundleNotFound,
    ConfigError,
    DataNotFound,
    InvalidOrder,
    SymbolNotFound,
)
from rustybt.finance.decimal.commission import PerShareCommission
from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage

START, END = "2024-01-02", "2024-01-03"


class BuyOnce(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.bought_at = None
        self.seen = []

    def handle_data(self, context, data):
        self.seen.append(self.get_datetime())
        if self.bought_at is None:
            self.bought_at = self.get_datetime()
            self.order(self.asset, 10)


def test_market_order_fills_at_the_next_bars_close_not_the_current_bar():
    algo = BuyOnce()
    result = run_algorithm(algo, start=START, end=END)
    (txn,) = result.transactions
    assert txn["dt"] == algo.seen[1]  # placed on bar 0, filled on bar 1
    second_bar_close = result_close(algo.seen[1])
    assert txn["price"] == second_bar_close
    assert txn["amount"] == Decimal("10")


def result_close(dt):
    from rustybt.data.polars.data_portal import PolarsDataPortal

    portal = PolarsDataPortal("demo", "minute")
    return portal.get_spot_value(portal.asset_finder.lookup_symbol("AAPL"), "close", dt)


def test_clock_covers_only_the_strategys_assets_sessions():
    algo = BuyOnce()
    run_algorithm(algo, start=START, end=END)
    # Two NYSE sessions of 390 minutes; the 24/7 crypto minutes of the bundle do not wake it.
    assert len(algo.seen) == 780
    assert all(13 <= dt.hour <= 21 for dt in algo.seen)


def test_ledger_is_exact_decimal_after_costs():
    algo = BuyOnce()
    result = run_algorithm(
        algo,
        start=START,
        end=END,
        commission_model=PerShareCommission(Decimal("0.005"), min_trade_cost=Decimal("1")),
        slippage_model=FixedBasisPointsSlippage(Decimal("5")),
    )
    (txn,) = result.transactions
    assert txn["commission"] == Decimal("1")  # the per-order minimum
    pos = algo.portfolio.positions[algo.asset]
    assert algo.portfolio.cash == Decimal("100000") - txn["price"] * 10 - Decimal("1")
    assert pos.amount == 10
    assert isinstance(result.summary["ending_value"], Decimal)
    assert result.summary["fees"] == Decimal("1")


def test_results_are_saved_as_parquet_with_exact_values(tmp_path):
    result = run_algorithm(BuyOnce(), start=START, end=END, output_dir=tmp_path)
    daily = pl.read_parquet(tmp_path / "daily.parquet")
    txns = pl.read_parquet(tmp_path / "transactions.parquet")
    orders = pl.read_parquet(tmp_path / "orders.parquet")
    assert daily.height == 2
    assert Decimal(daily["portfolio_value"][-1]) == result.summary["ending_value"]
    assert txns.height == 1 and orders.height == 1


class Crossover(TradingAlgorithm):
    def initialize(self):
        self.assets = self.symbols("AAPL", "MSFT")

    def handle_data(self, context, data):
        for asset in self.assets:
            hist = data.history(asset, "price", 30, "1m")
            if len(hist) < 30:
                continue
            fast = sum(hist.iloc[-10:], Decimal(0)) / 10
            slow = sum(hist, Decimal(0)) / 30
            held = self.portfolio.positions[asset].amount
            if fast > slow and held == 0:
                self.order_target(asset, 100)
            elif fast < slow and held > 0:
                self.order_target(asset, 0)


def test_crossover_trades_both_ways_and_order_target_never_stacks_orders():
    algo = Crossover()
    result = run_algorithm(algo, start=START, end=START)
    assert result.summary["orders"] > 4
    for asset in algo.assets:
        amount = algo.portfolio.positions[asset].amount
        assert amount in (0, 100)
    assert all(o.amount in (Decimal(100), Decimal(-100)) for o in result.orders)


class Scheduled(TradingAlgorithm):
    def initialize(self):
        from rustybt.scheduling import date_rules, time_rules

        self.asset = self.symbol("SPY")
        self.fired = []
        self.schedule_function(
            self.rebalance, date_rules.every_day(), time_rules.market_close(minutes=30)
        )

    def rebalance(self, context, data):
        self.fired.append(self.get_datetime())


def test_schedule_function_fires_once_per_session_at_the_rule_time():
    algo = Scheduled()
    run_algorithm(algo, start=START, end=END)
    assert [dt.strftime("%Y-%m-%d %H:%M") for dt in algo.fired] == [
        "2024-01-02 20:30",
        "2024-01-03 20:30",
    ]


# --- bad input -----------------------------------------------------------------------
class OrdersBadly(TradingAlgorithm):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.errors = []

    def initialize(self):
        self.asset = self.symbol("AAPL")

    def handle_data(self, context, data):
        for call in (
            lambda: self.order(self.asset, Decimal("NaN")),
            lambda: self.order(self.asset, float("inf")),
            lambda: self.order(self.asset, 5, limit_price=Decimal("0")),
            lambda: self.order(self.asset, 5, limit_price=Decimal("-1")),
            lambda: self.order(self.asset, 5, stop_price=Decimal("-3")),
            lambda: self.order(self.asset, 5, limit_price=Decimal("150.005")),
        ):
            try:
                call()
            except InvalidOrder as exc:
                self.errors.append(str(exc))
        self.zero = self.order(self.asset, 0)
        self.stop_run()

    def stop_run(self):
        raise _Stop


class _Stop(Exception):
    pass


def test_bad_order_parameters_raise_invalid_order_with_a_fix_and_place_nothing():
    algo = OrdersBadly()
    with pytest.raises(_Stop):
        run_algorithm(algo, start=START, end=START)
    assert len(algo.errors) == 6
    assert any("off tick" in e and "round_price" in e for e in algo.errors)
    assert algo.zero is None  # a zero amount is a documented no-op
    assert algo.get_open_orders() == {}


def test_negative_amount_is_a_sell_not_an_error():
    class Short(TradingAlgorithm):
        def initialize(self):
            self.asset = self.symbol("AAPL")
            self.oid = None

        def handle_data(self, context, data):
            if self.oid is None:
                self.oid = self.order(self.asset, -5)

    algo = Short()
    run_algorithm(algo, start=START, end=START, allow_short=True)
    assert algo.get_order(algo.oid).amount == Decimal("-5")
    assert algo.portfolio.positions[algo.asset].amount == -5


def test_short_sale_is_rejected_by_default_like_the_paper_broker():
    class Short(TradingAlgorithm):
        def initialize(self):
            self.asset = self.symbol("AAPL")
            self.results = []

        def handle_data(self, context, data):
            if not self.results:
                self.results.append(self.order(self.asset, -5))
                self.results.append("went on")

    algo = Short()
    result = run_algorithm(algo, start=START, end=START)
    assert algo.results == [None, "went on"]
    (rejected,) = result.orders
    assert rejected.status.value == "rejected" and "short selling is disabled" in rejected.reason
    assert algo.asset not in algo.portfolio.positions


def test_buy_beyond_cash_is_rejected_and_cash_never_goes_negative():
    class Spend(TradingAlgorithm):
        def initialize(self):
            self.asset = self.symbol("AAPL")

        def handle_data(self, context, data):
            self.order(self.asset, 10)  # ~1,850 each bar against 10,000 of cash

    result = run_algorithm(Spend(), start=START, end=START, capital_base="10000")
    assert all(row["cash"] >= 0 for row in result.daily)
    reasons = [o.reason for o in result.orders if o.status.value == "rejected"]
    assert reasons and all("buying power" in r or "insufficient" in r for r in reasons)


def test_unknown_symbol_names_the_symbol_and_lists_known_ones():
    class Unknown(TradingAlgorithm):
        def initialize(self):
            self.symbol("NOPE")

    with pytest.raises(SymbolNotFound, match="NOPE.*AAPL"):
        run_algorithm(Unknown(), start=START, end=END)


def test_order_before_any_market_data_is_rejected_and_the_run_goes_on():
    class Early(TradingAlgorithm):
        def initialize(self):
            self.oid = self.order(self.symbol("AAPL"), 1)
            self.after = True

    algo = Early()
    result = run_algorithm(algo, start=START, end=START)
    assert algo.oid is None and algo.after
    (rejected,) = result.orders
    assert rejected.status.value == "rejected"
    assert "no market data for AAPL" in rejected.reason


def test_missing_bundle_says_how_to_make_one():
    with pytest.raises(BundleNotFound, match="rustybt ingest"):
        run_algorithm(BuyOnce(), bundle="nope")


def test_start_after_end_is_a_config_error():
    with pytest.raises(ConfigError, match="after"):
        run_algorithm(BuyOnce(), start=END, end=START)


def test_dates_outside_the_bundle_name_its_range():
    with pytest.raises(DataNotFound):
        run_algorithm(BuyOnce(), start="2020-01-01", end="2020-02-01")


@pytest.mark.parametrize("capital", ["0", "-5", "abc", "NaN"])
def test_bad_capital_base_is_rejected(capital):
    with pytest.raises(ConfigError):
        run_algorithm(BuyOnce(), start=START, end=END, capital_base=capital)
