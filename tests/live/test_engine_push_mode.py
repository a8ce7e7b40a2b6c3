"""Paper trading on pushed data with the bundle as history only (``replay=False``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rustybt import TradingAlgorithm
from rustybt.data.bar import Bar
from tests.live.test_engine import make_engine, wait_until

D = Decimal


class Warm(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.windows: list[int] = []
        self.bought = False

    def handle_data(self, context, data):
        self.windows.append(len(data.history(self.asset, "price", 60, "1m")))
        if not self.bought:
            self.bought = True
            self.order(self.asset, 5)


async def test_pushed_bars_trade_with_warm_history_and_fill_on_the_market_data_clock():
    strategy = Warm()
    engine = make_engine(strategy, replay=False, stop_when_data_ends=False)
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: engine.get_status()["reconciliation"] == "ok", "startup")
        assert not engine.feed.replaying
        # Bars from the past (after the bundle's last day): the paper venue measures its
        # latency on the market-data clock, so they fill like live ticks would.
        t0 = datetime(2024, 1, 31, 14, 31, tzinfo=UTC)
        for i in range(3):
            price = D("190") + i
            engine.push_market_data(
                Bar(strategy.asset, t0 + timedelta(minutes=i), price, price, price, price, D("1e6"))
            )
        await wait_until(lambda: engine.get_status()["fills"] == 1, "the buy to fill")
        assert engine.ledger.positions[strategy.asset].amount == 5
        assert strategy.windows[0] == 60  # warm from the bundle on the first pushed bar
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)
