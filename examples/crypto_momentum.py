"""Momentum on crypto, 24/7: hold BTCUSDT/ETHUSDT while their last hour's return is strong.

Every 15 minutes, each pair's 60-minute return is compared with a threshold: above
``ENTER`` the pair gets 45 % of the portfolio, below ``EXIT`` it is sold. Crypto amounts
are fractional (lot size 0.00001); ``order_target_percent`` rounds them down to whole lots,
and the venue's minimum notional (5 USDT on the demo pairs) is the reason very small
rebalances are skipped rather than sent.

    rustybt run  -f examples/crypto_momentum.py --bundle demo --start 2024-01-06 --end 2024-01-07
    rustybt live -f examples/crypto_momentum.py --broker paper --bundle demo --speed max
"""

from decimal import Decimal

from rustybt.algorithm import TradingAlgorithm

LOOKBACK = 60  # minutes
EVERY = 15  # minutes between decisions
ENTER = Decimal("0.002")  # +0.2 % over the last hour: get in
EXIT = Decimal("-0.001")  # -0.1 % over the last hour: get out
WEIGHT = Decimal("0.45")


class CryptoMomentum(TradingAlgorithm):
    def initialize(self):
        self.pairs = self.symbols("BTCUSDT", "ETHUSDT")
        self.held = {pair.symbol: False for pair in self.pairs}
        self.minutes = 0

    def handle_data(self, context, data):
        self.minutes += 1
        if self.minutes % EVERY:
            return
        for pair in self.pairs:
            if not data.can_trade(pair):
                continue
            prices = data.history(pair, "price", LOOKBACK + 1, "1m")
            if len(prices) <= LOOKBACK:
                continue  # not warm yet
            momentum = prices.iloc[-1] / prices.iloc[0] - 1
            held = self.held[pair.symbol]
            if not held and momentum > ENTER:
                self.order_target_percent(pair, WEIGHT)
                self.held[pair.symbol] = True
            elif held and momentum < EXIT:
                self.order_target_percent(pair, 0)
                self.held[pair.symbol] = False
            self.record(**{f"momentum_{pair.symbol}": momentum})
