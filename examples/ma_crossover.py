"""Moving-average crossover on equities: long while the 10-minute SMA is above the 30-minute SMA.

Each of AAPL, MSFT and SPY gets a third of the portfolio (a little less, to leave room for
fees and slippage) while its fast average is above its slow one, and nothing otherwise.
Orders go out only when the signal flips, so the strategy trades a few times a day, not
every minute.

The same file runs everywhere, unchanged:

    rustybt run  -f examples/ma_crossover.py --bundle demo --start 2024-01-02 --end 2024-01-03
    rustybt live -f examples/ma_crossover.py --broker paper --bundle demo --speed max
    rustybt live --config examples/live.toml
"""

from decimal import Decimal

from rustybt.algorithm import TradingAlgorithm

FAST = 10
SLOW = 30
WEIGHT = Decimal("0.32")  # per asset; 3 × 32 % leaves cash for fees and slippage


def sma(values) -> Decimal:
    """Mean of Decimal values (prices stay Decimal end to end)."""
    return sum(values, Decimal(0)) / len(values)


class MovingAverageCrossover(TradingAlgorithm):
    def initialize(self):
        self.assets = self.symbols("AAPL", "MSFT", "SPY")
        # Plain str -> bool: captured by get_state(), so a restart keeps the signals.
        self.long = {asset.symbol: False for asset in self.assets}

    def handle_data(self, context, data):
        for asset in self.assets:
            if not data.can_trade(asset):
                continue  # no bar for this asset this minute
            prices = data.history(asset, "price", SLOW, "1m")
            if len(prices) < SLOW:
                continue  # not warm yet
            fast = sma(prices.iloc[-FAST:])
            slow = sma(prices)
            want_long = fast > slow
            if want_long != self.long[asset.symbol]:
                # order_target_percent nets out open orders, so it never stacks orders
                # while a fill is still on its way (live and paper).
                target = WEIGHT if want_long else Decimal(0)
                self.order_target_percent(asset, target)
                self.long[asset.symbol] = want_long
        self.record(**{f"long_{s}": v for s, v in self.long.items()})
