"""RustyBT: one trading strategy as a backtest, paper trading and live, with no code change.

``TradingAlgorithm`` is the strategy API; ``run_algorithm`` backtests it; the live
engine lives in :mod:`rustybt.live`.
"""

from rustybt.algorithm import TradingAlgorithm
from rustybt.backtest.runner import BacktestResult, run_algorithm

__all__ = ["BacktestResult", "TradingAlgorithm", "run_algorithm"]
__version__ = "0.1.0"
