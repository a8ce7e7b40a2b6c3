"""Zipline-style module functions bound to the running algorithm.

A zipline script changes only its import line (``from rustybt.api import order,
symbol, record``) and runs unchanged: each function forwards to the algorithm that the
runtime is currently executing.
"""

from __future__ import annotations

from typing import Any

from rustybt.algorithm import get_current_algorithm
from rustybt.finance.execution import LimitOrder, MarketOrder, StopLimitOrder, StopOrder
from rustybt.scheduling import date_rules, time_rules

__all__ = [
    "attach_pipeline",
    "cancel_order",
    "continuous_future",
    "date_rules",
    "fetch_csv",
    "future_symbol",
    "get_datetime",
    "get_open_orders",
    "get_order",
    "LimitOrder",
    "MarketOrder",
    "order",
    "order_percent",
    "order_target",
    "order_target_percent",
    "order_target_value",
    "order_value",
    "pipeline_output",
    "record",
    "schedule_function",
    "set_asset_restrictions",
    "set_benchmark",
    "set_commission",
    "set_do_not_order_list",
    "set_long_only",
    "set_max_leverage",
    "set_max_order_count",
    "set_max_order_size",
    "set_max_position_size",
    "set_slippage",
    "sid",
    "StopLimitOrder",
    "StopOrder",
    "symbol",
    "symbols",
    "time_rules",
]


def _forward(name: str):
    def fn(*args: Any, **kwargs: Any) -> Any:
        return getattr(get_current_algorithm(), name)(*args, **kwargs)

    fn.__name__ = name
    fn.__doc__ = f"Forward to ``TradingAlgorithm.{name}`` of the running algorithm."
    return fn


symbol = _forward("symbol")
symbols = _forward("symbols")
sid = _forward("sid")
order = _forward("order")
order_value = _forward("order_value")
order_percent = _forward("order_percent")
order_target = _forward("order_target")
order_target_value = _forward("order_target_value")
order_target_percent = _forward("order_target_percent")
cancel_order = _forward("cancel_order")
get_open_orders = _forward("get_open_orders")
get_order = _forward("get_order")
record = _forward("record")
schedule_function = _forward("schedule_function")
get_datetime = _forward("get_datetime")
set_commission = _forward("set_commission")
set_slippage = _forward("set_slippage")
attach_pipeline = _forward("attach_pipeline")
pipeline_output = _forward("pipeline_output")


def set_benchmark(benchmark: Any) -> None:
    """Accepted for zipline scripts and ignored with a warning: a run has no benchmark, so
    the results frame carries no alpha/beta/benchmark columns. It changes no trade."""
    import structlog

    get_current_algorithm()  # same "no algorithm is running" error outside a run
    structlog.get_logger("rustybt").warning(
        "set_benchmark_ignored",
        benchmark=repr(benchmark),
        reason="benchmark-relative metrics are not computed",
    )


def _refused(name: str, hint: str):
    def fn(*args: Any, **kwargs: Any) -> Any:
        from rustybt.exceptions import ConfigError

        raise ConfigError(f"{name}() is not supported: {hint}")

    fn.__name__ = name
    fn.__doc__ = f"zipline's ``{name}``: not supported; raises ConfigError ({hint})."
    return fn


# zipline trading controls change what may trade, so they are refused, never ignored: the
# same limits exist as RiskLimits, checked on every order by the risk gate.
_LIMITS = (
    "pass risk_limits=RiskLimits(...) to run_algorithm / the engine (docs/circuit-breakers.md)"
)
set_long_only = _refused("set_long_only", f"use RiskLimits(long_only=True); {_LIMITS}")
set_max_leverage = _refused("set_max_leverage", f"use RiskLimits(max_leverage=...); {_LIMITS}")
set_max_position_size = _refused(
    "set_max_position_size", f"use RiskLimits(max_position_amount=...); {_LIMITS}"
)
set_max_order_size = _refused(
    "set_max_order_size", f"use RiskLimits(max_order_value=...); {_LIMITS}"
)
set_max_order_count = _refused(
    "set_max_order_count", f"use RiskLimits(max_open_orders=...); {_LIMITS}"
)
set_do_not_order_list = _refused(
    "set_do_not_order_list", f"use RiskLimits(allowed_assets=...); {_LIMITS}"
)
set_asset_restrictions = _refused(
    "set_asset_restrictions", f"use RiskLimits(allowed_assets=...); {_LIMITS}"
)
fetch_csv = _refused(
    "fetch_csv", "ingest the file into a bundle (rustybt ingest) and read it with data"
)
future_symbol = _refused(
    "future_symbol", "look futures up with symbol() in a bundle that holds them"
)
continuous_future = _refused("continuous_future", "roll futures explicitly in the strategy")
