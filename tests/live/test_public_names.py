"""`rustybt.live` lists and exports its public names; the strategy API documents itself."""

from __future__ import annotations

import importlib
import inspect

import rustybt.live as live
from rustybt.algorithm import TradingAlgorithm


def test_live_all_lists_the_public_names_and_each_resolves_to_its_defining_module():
    for name in (
        "LiveTradingEngine",
        "PaperBroker",
        "BrokerAdapter",
        "CircuitBreakerManager",
        "RiskLimits",
        "StateManager",
        "TradingScheduler",
        "ReconciliationStrategy",
        "Retention",
        "prune_state",
    ):
        assert name in live.__all__
    for name in live.__all__:
        value = getattr(live, name)
        module = importlib.import_module(value.__module__)
        assert getattr(module, name) is value, name
    assert set(live.__all__) <= set(dir(live))


def test_core_strategy_methods_have_docstrings_and_real_signatures():
    for name in (
        "symbol",
        "symbols",
        "sid",
        "get_datetime",
        "record",
        "schedule_function",
        "order",
        "order_value",
        "order_percent",
        "order_target",
        "order_target_value",
        "order_target_percent",
        "cancel_order",
        "get_open_orders",
        "get_order",
        "get_state",
        "set_state",
    ):
        method = getattr(TradingAlgorithm, name)
        assert inspect.getdoc(method), f"{name} has no docstring"
        kinds = {p.kind for p in inspect.signature(method).parameters.values()}
        if name != "record":  # record(**values): the names are the user's own
            assert inspect.Parameter.VAR_KEYWORD not in kinds, f"{name} hides parameters in **kw"
    order_params = list(inspect.signature(TradingAlgorithm.order).parameters)[3:]
    for name in ("order_value", "order_percent", "order_target", "order_target_percent"):
        params = list(inspect.signature(getattr(TradingAlgorithm, name)).parameters)
        assert params[3:] == order_params, name
