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
    "cancel_order",
    "date_rules",
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
    "record",
    "schedule_function",
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
