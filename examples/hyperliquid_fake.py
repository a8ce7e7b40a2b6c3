"""Trade the BTC perpetual on Hyperliquid (or the local fake) with a price average crossover.

Hyperliquid names markets by coin, so the symbol is ``BTC``. It keeps its own window of
the last prices (no bundle needed) and holds 0.01 BTC while the 3-bar average is above
the 8-bar one. Rehearse it against the fake venue (its throwaway test key is printed
when it starts; never use a real wallet's key with a fake):

    rustybt venue serve hyperliquid --port 8082 &
    HYPERLIQUID_PRIVATE_KEY=0x4c4c...4c (64 hex digits, as printed) \\
        rustybt live -f examples/hyperliquid_fake.py --broker hyperliquid \\
        --venue-url http://127.0.0.1:8082
"""

from collections import deque
from decimal import Decimal

from rustybt.algorithm import TradingAlgorithm

SIZE = Decimal("0.01")


class HyperliquidCrossover(TradingAlgorithm):
    def initialize(self):
        self.btc = self.symbol("BTC")
        self.prices = deque(maxlen=8)

    def handle_data(self, context, data):
        self.prices.append(Decimal(str(data.current(self.btc, "price"))))
        if len(self.prices) < self.prices.maxlen:
            return
        fast = sum(list(self.prices)[-3:]) / 3
        slow = sum(self.prices) / len(self.prices)
        self.order_target(self.btc, SIZE if fast > slow else 0)
