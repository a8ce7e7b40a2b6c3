"""The float boundary: zipline-style scripts see floats at the API, money stays Decimal inside."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from rustybt import run_algorithm
from rustybt.algorithm import ScriptAlgorithm, TradingAlgorithm
from rustybt.exceptions import ConfigError

START, END = "2024-01-03", "2024-01-04 23:59:59"


def _script(**fns) -> ScriptAlgorithm:
    return ScriptAlgorithm(fns, name="script")


def test_script_sees_floats_from_data_portfolio_and_account():
    seen: dict = {}

    def initialize(context):
        context.asset = context.symbol("AAPL")
        context.other = context.symbol("MSFT")

    def handle_data(context, data):
        if "price" in seen:
            return
        seen["price"] = data.current(context.asset, "price")
        seen["fields"] = data.current(context.asset, ["open", "close"])
        seen["many"] = data.current([context.asset, context.other], "price")
        seen["history"] = data.history(context.asset, "price", 5, "1m")
        seen["frame"] = data.history([context.asset, context.other], "close", 5, "1m")
        seen["cash"] = context.portfolio.cash
        seen["starting_cash"] = context.portfolio.starting_cash
        seen["leverage"] = context.account.leverage
        seen["zero_position"] = context.portfolio.positions[context.asset].amount
        # olmar's arithmetic: a float array times starting_cash divided by a price
        seen["olmar"] = np.ones(2) / 2 * context.portfolio.starting_cash / seen["price"]

    algo = _script(initialize=initialize, handle_data=handle_data)
    result = run_algorithm(algo, start=START, end=END)
    assert type(seen["price"]) is float
    assert seen["fields"].dtype == np.float64 and seen["many"].dtype == np.float64
    assert seen["history"].dtype == np.float64 and len(seen["history"]) >= 1
    assert all(t == np.float64 for t in seen["frame"].dtypes)
    assert seen["cash"] == seen["starting_cash"] == 100000.0
    assert type(seen["leverage"]) is float
    assert seen["zero_position"] == 0
    assert seen["olmar"].dtype == np.float64
    # the ledger underneath is still exact
    assert isinstance(result.daily[-1]["cash"], Decimal)


def test_missing_price_is_nan_for_a_script_and_none_for_a_class():
    got = {}

    def initialize(context):
        context.asset = context.symbol("AAPL")

    def handle_data(context, data):
        got.setdefault("script", data.current(context.asset, "open"))

    # the first bar of the crypto clock comes before AAPL's first bar
    run_algorithm(
        _script(initialize=initialize, handle_data=handle_data),
        start=START,
        end=END,
        calendar="24/7",
    )
    assert math.isnan(got["script"])


def test_class_based_strategy_keeps_decimal_and_can_switch_to_floats():
    seen = {}

    class Exact(TradingAlgorithm):
        def initialize(self):
            self.asset = self.symbol("AAPL")

        def handle_data(self, context, data):
            values = (data.current(self.asset, "price"), context.portfolio.cash)
            seen.setdefault(type(self).__name__, values)

    class Floaty(Exact):
        numbers = "float"

    run_algorithm(Exact(), start=START, end=END)
    run_algorithm(Floaty(), start=START, end=END)
    assert all(isinstance(v, Decimal) for v in seen["Exact"])
    assert all(type(v) is float for v in seen["Floaty"])


def test_script_module_switch_keeps_decimal():
    seen = []

    def initialize(context):
        context.asset = context.symbol("AAPL")

    def handle_data(context, data):
        seen.append(data.current(context.asset, "price"))

    algo = ScriptAlgorithm(
        {"initialize": initialize, "handle_data": handle_data, "RUSTYBT_NUMBERS": "decimal"}
    )
    run_algorithm(algo, start=START, end="2024-01-03 23:59")
    assert seen and isinstance(seen[0], Decimal)


def test_unknown_number_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="number mode"):
        ScriptAlgorithm({"initialize": lambda c: None, "RUSTYBT_NUMBERS": "double"})


def test_numpy_amounts_and_float_prices_come_back_exact_and_on_tick():
    placed = {}

    def initialize(context):
        context.asset = context.symbol("AAPL")
        context.done = False

    def handle_data(context, data):
        if context.done:
            return
        price = data.current(context.asset, "price")
        # numpy amount, float limit price between ticks (0.1 + 0.2 style noise)
        placed["market"] = context.order(context.asset, np.float64(3.0))
        placed["int"] = context.order(context.asset, np.int64(2))
        placed["limit"] = context.order(
            context.asset, np.float32(4), limit_price=price * 0.5 + 0.0049999
        )
        placed["price"] = price
        context.done = True

    algo = _script(initialize=initialize, handle_data=handle_data)
    run_algorithm(algo, start=START, end=END)
    market = algo.get_order(placed["market"])
    assert market.amount == Decimal("3") and isinstance(market.amount, Decimal)
    assert algo.get_order(placed["int"]).amount == Decimal("2")
    limit = algo.get_order(placed["limit"])
    assert limit.amount == Decimal("4")
    expected = (Decimal(repr(placed["price"] * 0.5 + 0.0049999))).quantize(Decimal("0.01"))
    assert limit.limit_price == expected
    assert limit.limit_price % Decimal("0.01") == 0


def test_float_positions_read_like_zipline():
    seen = {}

    def initialize(context):
        context.asset = context.symbol("AAPL")

    def handle_data(context, data):
        positions = context.portfolio.positions
        if context.asset in positions:
            pos = positions[context.asset]
            seen.update(amount=pos.amount, cost=pos.cost_basis, keys=set(positions.keys()))
        elif not seen.get("ordered"):
            context.order(context.asset, 7)
            seen["ordered"] = True

    run_algorithm(_script(initialize=initialize, handle_data=handle_data), start=START, end=END)
    assert seen["amount"] == 7 and type(seen["amount"]) is int
    assert type(seen["cost"]) is float
    assert {a.symbol for a in seen["keys"]} == {"AAPL"}
    assert isinstance(pd.Series([seen["cost"]]).iloc[0], float)
