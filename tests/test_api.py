"""rustybt.api: zipline's module functions, including cost models, pipelines and the
trading controls it refuses rather than ignores."""

from __future__ import annotations

from decimal import Decimal

import pytest
import structlog

from rustybt import api, run_algorithm
from rustybt.algorithm import ScriptAlgorithm
from rustybt.exceptions import ConfigError, RustyBTError
from rustybt.finance import commission, slippage
from rustybt.pipeline import Pipeline
from rustybt.pipeline.factors import Returns

DAY = "2024-01-24"


def _run(initialize, handle_data=None, before_trading_start=None, end=DAY):
    fns = {"initialize": initialize}
    if handle_data is not None:
        fns["handle_data"] = handle_data
    if before_trading_start is not None:
        fns["before_trading_start"] = before_trading_start
    return run_algorithm(ScriptAlgorithm(fns), start=DAY, end=end)


def test_module_functions_set_costs_and_read_pipelines():
    seen = {}

    def initialize(context):
        context.asset = api.symbol("AAPL")
        api.set_commission(commission.PerTrade(cost=3))
        api.set_slippage(slippage.NoSlippage())
        api.attach_pipeline(Pipeline(columns={"ret": Returns(window_length=2)}), "p")
        context.done = False

    def before_trading_start(context, data):
        seen["rows"] = len(api.pipeline_output("p"))

    def handle_data(context, data):
        if not context.done:
            api.order(context.asset, 1)
            context.done = True

    result = _run(initialize, handle_data, before_trading_start)
    assert result.transactions[0]["commission"] == Decimal("3")
    assert seen["rows"] == 10


def test_set_benchmark_is_ignored_with_a_warning():
    with structlog.testing.capture_logs() as logs:
        _run(lambda context: api.set_benchmark(api.symbol("SPY")))
    assert any(e["event"] == "set_benchmark_ignored" for e in logs)


@pytest.mark.parametrize(
    "name",
    ["set_long_only", "set_max_leverage", "set_max_position_size", "set_do_not_order_list"],
)
def test_trading_controls_are_refused_with_the_risk_limits_hint(name):
    with pytest.raises(ConfigError, match="RiskLimits"):
        _run(lambda context: getattr(api, name)(1))


def test_api_outside_a_run_says_no_algorithm_is_running():
    with pytest.raises(RustyBTError, match="no algorithm is running"):
        api.set_commission(commission.PerShare())
