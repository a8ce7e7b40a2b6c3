"""Trade BTCUSDT on Binance (or the local fake) with a short/long price average crossover.

It keeps its own window of the last prices (no bundle needed) and holds 0.01 BTC while
the 3-bar average is above the 8-bar one. Rehearse it against the fake venue:

    rustybt venue serve binance --port 8080 &
    BINANCE_API_KEY=fake-binance-key BINANCE_API_SECRET=fake-binance-secret \\
        rustybt live -f examples/binance_fake.py --broker binance --venue-url http://127.0.0.1:8080
"""

from collections import deque
from decimal import Decimal

from rustybt.algorithm import TradingAlgorithm

SIZE = Decimal("0.01")


class BinanceCrossover(TradingAlgorithm):
    def initialize(self):
        self.btc = self.symbol("BTCUSDT")
        self.prices = deque(maxlen=8)

    def handle_data(self, context, data):
        self.prices.append(Decimal(str(data.current(self.btc, "price"))))
        if len(self.prices) < self.prices.maxlen:
            return
        fast = sum(list(self.prices)[-3:]) / 3
        slow = sum(self.prices) / len(self.prices)
        self.order_target(self.btc, SIZE if fast > slow else 0)
