"""The live engine trading the fake Bybit (spot): what its final checkpoint holds."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from rustybt.algorithm import TradingAlgorithm
from rustybt.live.brokers.bybit_adapter import BybitBrokerAdapter
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.engine import LiveTradingEngine
from rustybt.testing.venues.bybit import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBybit
from tests.live.brokers.conformance import wait_for

D = Decimal


class BuyOnThird(TradingAlgorithm):
    def initialize(self):
        self.btc = self.symbol("BTCUSDT")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars == 3:
            self.order(self.btc, Decimal("0.01"))


async def test_a_fill_still_on_the_stream_when_the_engine_stops_is_in_the_final_checkpoint(
    tmp_path,
):
    """Bybit answers an order with its ids only; the fill follows on the private stream.
    When the session stops (``--max-bars``) between the two, shutdown asks the venue
    about its open orders and applies the fill before the final checkpoint. It used to
    checkpoint the order as open and the position without the fill (the crash
    harness's "position differs from the fake Bybit by 0.001" failures)."""
    async with FakeBybit("spot") as fake:
        adapter = BybitBrokerAdapter(
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            category="spot",
            base_url=fake.base_url,
            market_data_interval=0.05,
        )
        engine = LiveTradingEngine(
            strategy=BuyOnThird(),
            broker_adapter=adapter,
            circuit_breakers=CircuitBreakerManager(),
            state_dir=tmp_path,
            control_socket=False,
            stop_when_data_ends=False,
        )
        engine.stop_after_market_events = 3
        task = asyncio.create_task(engine.run())
        await wait_for(lambda: adapter.stream_up, 10)
        for close in ("50000", "50010"):
            fake.push_bar("BTCUSDT", close, close, close, close)
            await asyncio.sleep(0.15)
        # the fill is held on the stream until well after the engine has stopped
        fake.faults.stall_streams(30)
        fake.push_bar("BTCUSDT", "50020", "50020", "50020", "50020")
        await asyncio.wait_for(task, 20)
        assert len(fake.exchange.trades) == 1
    cp = engine.state_manager.load_checkpoint(engine.strategy_name)
    (pos,) = cp.ledger_state["positions"]
    assert D(pos["amount"]) == D("0.01")
    assert cp.pending_orders == []
