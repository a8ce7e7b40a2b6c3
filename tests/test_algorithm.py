"""The strategy API: the spec's class form, zipline-style scripts, order sizing helpers."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import pytest

from rustybt import TradingAlgorithm, run_algorithm
from rustybt.cli.strategy_file import load_strategy
from rustybt.exceptions import RustyBTError, StrategyLoadError

START = END = "2024-01-02"


def test_spec_quickstart_strategy_runs_in_a_backtest_on_demo():
    class MyStrategy(TradingAlgorithm):
        def initialize(self):
            self.asset = self.symbol("AAPL")
            self.rebalance_interval = 60  # minutes

        def handle_data(self, context, data):
            current_price = data.current(self.asset, "price")
            assert isinstance(current_price, Decimal)
            self.order_target_percent(self.asset, 0.95)

    algo = MyStrategy()
    result = run_algorithm(algo, bundle="demo", start=START, end=END)
    pos = algo.portfolio.positions[algo.asset]
    weight = pos.market_value / algo.portfolio.portfolio_value
    assert Decimal("0.9") < weight <= Decimal("0.96")
    assert result.summary["orders"] >= 1


ZIPLINE_SCRIPT = textwrap.dedent(
    """
    from rustybt.api import order_target, record, symbol, get_open_orders

    def initialize(context):
        context.asset = symbol('MSFT')
        context.i = 0

    def handle_data(context, data):
        context.i += 1
        price = data.current(context.asset, 'price')
        record(price=price)
        if context.i == 5:
            order_target(context.asset, 20)
        if context.i == 50:
            order_target(context.asset, 0)
    """
)


def test_zipline_style_script_runs_unchanged_apart_from_the_import(tmp_path):
    path = tmp_path / "algo.py"
    path.write_text(ZIPLINE_SCRIPT)
    algo = load_strategy(path)
    result = run_algorithm(algo, start=START, end=END)
    assert [o.amount for o in result.orders] == [Decimal(20), Decimal(-20)]
    assert algo.portfolio.positions[algo.asset].amount == 0
    assert "price" in result.recorded[-1]


def test_api_functions_outside_a_running_algorithm_raise_clearly():
    from rustybt.api import order

    with pytest.raises(RustyBTError, match="no algorithm is running"):
        order(None, 1)


def test_strategy_file_with_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("def initialize(context):\n    x = (\n")
    with pytest.raises(StrategyLoadError, match=r"broken\.py:\d+"):
        load_strategy(path)


def test_strategy_file_without_strategy_is_rejected(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("X = 1\n")
    with pytest.raises(StrategyLoadError, match="no strategy"):
        load_strategy(path)


def test_missing_strategy_file_is_rejected(tmp_path):
    with pytest.raises(StrategyLoadError, match="does not exist"):
        load_strategy(tmp_path / "missing.py")


def test_strategy_file_that_raises_on_import_is_rejected(tmp_path):
    path = tmp_path / "raises.py"
    path.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(StrategyLoadError, match="boom"):
        load_strategy(path)


def test_order_value_and_percent_round_down_to_whole_lots():
    class Sizer(TradingAlgorithm):
        def initialize(self):
            self.asset = self.symbol("AAPL")
            self.ids = []

        def handle_data(self, context, data):
            if not self.ids:
                price = data.current(self.asset, "price")
                self.ids.append(self.order_value(self.asset, price * Decimal("3.7")))
                self.ids.append(self.order_percent(self.asset, Decimal("0.000001")))

    algo = Sizer()
    run_algorithm(algo, start=START, end=END)
    first = algo.get_order(algo.ids[0])
    assert first.amount == 3
    assert algo.ids[1] is None  # less than one share: nothing to trade


def test_crypto_amounts_keep_fractional_lots():
    class Btc(TradingAlgorithm):
        def initialize(self):
            self.asset = self.symbol("BTCUSDT")
            self.oid = None

        def handle_data(self, context, data):
            if self.oid is None:
                self.oid = self.order_value(self.asset, Decimal("1000"))

    algo = Btc()
    run_algorithm(algo, start=START, end=END)
    amount = algo.get_order(algo.oid).amount
    assert 0 < amount < 1
    assert amount == algo.asset.round_amount(amount)


def test_get_state_captures_public_simple_attributes_only():
    class S(TradingAlgorithm):
        pass

    s = S()
    s.count = 3
    s.threshold = Decimal("1.5")
    s.callback = lambda: None
    s._private = 1
    state = s.get_state()
    assert state == {"count": 3, "threshold": Decimal("1.5")}
