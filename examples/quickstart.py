"""The spec's Quick Start strategy: hold 95% of the portfolio in AAPL.

Runs unchanged in a backtest (`rustybt run -f examples/quickstart.py --bundle demo`)
and in paper trading (`rustybt live -f examples/quickstart.py --broker paper --bundle demo`).
"""

from rustybt.algorithm import TradingAlgorithm


class MyStrategy(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.rebalance_interval = 60  # minutes

    def handle_data(self, context, data):
        current_price = data.current(self.asset, "price")  # noqa: F841 (spec example)
        # Your trading logic here
        self.order_target_percent(self.asset, 0.95)
