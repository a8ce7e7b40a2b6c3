"""zipline's results frame: analyze(context, perf) and run_algorithm's functional form."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rustybt import BacktestResult, run_algorithm
from rustybt.algorithm import TradingAlgorithm
from rustybt.exceptions import ConfigError

START, END = "2024-01-03", "2024-01-05 23:59:59"
ZIPLINE_COLUMNS = {
    "portfolio_value",
    "returns",
    "pnl",
    "capital_used",
    "starting_cash",
    "ending_cash",
    "starting_value",
    "ending_value",
    "positions",
    "orders",
    "transactions",
    "longs_count",
    "shorts_count",
    "gross_leverage",
    "algorithm_period_return",
    "max_drawdown",
    "sharpe",
    "trading_days",
}


def _initialize(context):
    context.asset = context.symbol("AAPL")
    context.n = 0


def _handle_data(context, data):
    context.n += 1
    if context.n in (1, 500):
        context.order(context.asset, 10)
    context.record(price=data.current(context.asset, "price"))


def test_functional_run_algorithm_returns_the_zipline_frame_with_float_columns():
    seen = {}

    def analyze(context, perf):
        seen["perf"] = perf

    perf = run_algorithm(
        start=START,
        end=END,
        initialize=_initialize,
        handle_data=_handle_data,
        analyze=analyze,
        capital_base=100000,
        bundle="demo",
        data_frequency="minute",
    )
    assert isinstance(perf, pd.DataFrame)
    assert seen["perf"].equals(perf)  # analyze got the same frame
    assert ZIPLINE_COLUMNS | {"price"} <= set(perf.columns)
    assert len(perf) == 3  # one row per session
    assert str(perf.index.tz) == "UTC"
    for col in ("portfolio_value", "returns", "pnl", "capital_used", "ending_cash", "price"):
        assert perf[col].dtype == np.float64, col
    # the two fills: day 1 (order at bar 1) and day 2 (order at bar 500)
    fills = [t for day in perf.transactions for t in day]
    assert [t["amount"] for t in fills] == [10, 10]
    assert all(t["sid"].symbol == "AAPL" for t in fills)
    # capital used is the cash spent on those fills, day by day
    spent = -sum(t["amount"] * t["price"] + t["commission"] for t in fills)
    assert perf.capital_used.sum() == pytest.approx(spent)
    assert perf.ending_cash.iloc[-1] == pytest.approx(100000 + spent)
    assert perf.positions.iloc[-1][0]["amount"] == 20
    assert [len(o) for o in perf.orders] == [1, 1, 0]
    assert perf.trading_days.tolist() == [1, 2, 3]


def test_class_strategy_gets_backtest_result_which_offers_the_frame_in_decimal_too():
    class Buy(TradingAlgorithm):
        def initialize(self):
            _initialize(self)

        def handle_data(self, context, data):
            _handle_data(self, data)

    result = run_algorithm(Buy(), start=START, end=END)
    assert isinstance(result, BacktestResult)
    exact = result.zipline_frame(floats=False)
    assert isinstance(exact.portfolio_value.iloc[-1], Decimal)
    assert exact.portfolio_value.iloc[-1] == result.daily[-1]["portfolio_value"]
    floats = result.zipline_frame()
    assert floats.portfolio_value.iloc[-1] == float(result.daily[-1]["portfolio_value"])


def test_functional_form_can_keep_decimal():
    perf = run_algorithm(
        start=START, end=END, initialize=_initialize, handle_data=_handle_data, numbers="decimal"
    )
    assert isinstance(perf.pnl.iloc[0], Decimal)


def test_run_algorithm_without_strategy_or_functions_is_a_config_error():
    with pytest.raises(ConfigError, match="initialize"):
        run_algorithm(start=START, end=END)


ANALYZE_SCRIPT = textwrap.dedent(
    """
    from rustybt.api import order, record, symbol

    def initialize(context):
        context.asset = symbol("AAPL")

    def handle_data(context, data):
        order(context.asset, 1)
        record(AAPL=data.current(context.asset, "price"))

    def analyze(context=None, results=None):
        import matplotlib
        import matplotlib.pyplot as plt

        ax1 = plt.subplot(211)
        results.portfolio_value.plot(ax=ax1)
        ax2 = plt.subplot(212, sharex=ax1)
        results.AAPL.plot(ax=ax2)
        trans = results[[t != [] for t in results.transactions]]
        assert len(trans) == len(results)
        plt.show()
        print("ANALYZED", matplotlib.get_backend(), len(results))
    """
)


def test_rustybt_run_calls_analyze_with_matplotlib_headless(tmp_path):
    script = tmp_path / "plotter.py"
    script.write_text(ANALYZE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "rustybt"), "run", "-f", str(script), "--start",
         "2024-01-03", "--end", "2024-01-04", "--no-progress", "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "analyzed agg 2" in proc.stdout.lower()
