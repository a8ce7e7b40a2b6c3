"""RustyBT: one trading strategy as a backtest, paper trading and live, with no code change.

``TradingAlgorithm`` is the strategy API; ``run_algorithm`` backtests it; the live
engine lives in :mod:`rustybt.live`. The names load on first use, so ``import rustybt``
(and ``rustybt --version`` or a refused option) does not pay for polars and pandas.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rustybt.algorithm import TradingAlgorithm
    from rustybt.backtest.runner import BacktestResult, run_algorithm

__all__ = ["BacktestResult", "TradingAlgorithm", "run_algorithm"]
__version__ = "0.1.0"

_LAZY = {
    "TradingAlgorithm": "rustybt.algorithm",
    "BacktestResult": "rustybt.backtest.runner",
    "run_algorithm": "rustybt.backtest.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rustybt' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
