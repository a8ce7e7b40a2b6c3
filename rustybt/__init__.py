"""RustyBT: one trading strategy, four modes (backtest, paper, shadow, live), no code change.

``TradingAlgorithm`` is the strategy API; ``run_algorithm`` backtests it; the live
engine lives in :mod:`rustybt.live`.
"""

from rustybt.algorithm import TradingAlgorithm
from rustybt.backtest.runner import BacktestResult, run_algorithm

__all__ = ["BacktestResult", "TradingAlgorithm", "run_algorithm"]
__version__ = "0.1.0"
