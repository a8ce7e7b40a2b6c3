"""The live engine trading the fake Binance: connection state blocks risk and reconciles."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from rustybt.algorithm import TradingAlgorithm
from rustybt.live.brokers.binance_adapter import BinanceBrokerAdapter
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.engine import LiveTradingEngine
from rustybt.live.models import ReconciliationStrategy
from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance
from tests.live.brokers.conformance import wait_for

D = Decimal


class BuyOnce(TradingAlgorithm):
    def initialize(self):
        self.btc = self.symbol("BTCUSDT")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars == 1:
            self.order(self.btc, Decimal("0.01"))


async def test_engine_blocks_new_risk_while_the_stream_is_down_and_reconciles_after(tmp_path):
    async with FakeBinance("spot") as fake:
        adapter = BinanceBrokerAdapter(
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            base_url=fake.base_url,
            poll_interval=0.1,
            reconnect_delay=0.5,
            market_data_interval=0.05,
        )
        engine = LiveTradingEngine(
            strategy=BuyOnce(),
            broker_adapter=adapter,
            reconciliation_strategy=ReconciliationStrategy.HALT_AND_ALERT,
            circuit_breakers=CircuitBreakerManager(),
            state_dir=tmp_path,
            control_socket=False,
            stop_when_data_ends=False,
        )
        task = asyncio.create_task(engine.run())
        try:
            await wait_for(lambda: adapter.stream_up and engine.reconciliation_state == "ok", 10)
            fake.push_bar("BTCUSDT", "50000", "50010", "49990", "50000")
            await wait_for(lambda: engine.ledger.positions, 10)
            assert engine.ledger.positions[adapter.asset("BTCUSDT")].amount == D("0.01")
            reconciled = engine.stats["reconciliations"]

            fake.faults.drop_streams()
            await wait_for(lambda: not engine.broker_connected, 10)
            assert "user stream dropped" in engine.risk_gate.blocked_reason
            assert any(a.kind == "broker_disconnected" for a in engine.alerts)
            assert engine.risk_gate.check(adapter.asset("BTCUSDT"), D("1"), D("1"), {}, [], D("1"))

            await wait_for(lambda: engine.broker_connected, 10)
            await wait_for(lambda: engine.stats["reconciliations"] > reconciled, 10)
            assert engine.risk_gate.blocked_reason is None
            assert engine.reconciliation_state == "ok"
            assert fake.exchange.received == [
                engine.order_manager.orders[k].id for k in engine.order_manager.orders
            ]
        finally:
            await engine.shutdown()
            await asyncio.wait_for(task, 10)


class BuyOnThird(TradingAlgorithm):
    def initialize(self):
        self.btc = self.symbol("BTCUSDT")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars == 3:
            self.order(self.btc, Decimal("0.01"))


async def test_a_fill_received_as_the_engine_stops_is_in_the_final_checkpoint(tmp_path):
    """The last bar's market order is answered (with its fill) while the engine stops:
    shutdown applies the fill before the final checkpoint (it used to be dropped until
    the next restart's recovery)."""
    async with FakeBinance("spot") as fake:
        adapter = BinanceBrokerAdapter(
            DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=fake.base_url, market_data_interval=0.05
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
        for close in ("50000", "50010", "50020"):
            fake.push_bar("BTCUSDT", close, close, close, close)
            await asyncio.sleep(0.15)
        await asyncio.wait_for(task, 20)
    assert len(fake.exchange.trades) == 1
    cp = engine.state_manager.load_checkpoint(engine.strategy_name)
    (pos,) = cp.ledger_state["positions"]
    assert D(pos["amount"]) == D("0.01")


async def test_an_order_accepted_then_timed_out_stays_unknown_then_resolves_once(tmp_path):
    """Binance accepts the order but the answer never arrives in time: the engine keeps it
    UNKNOWN (not rejected, not resent) and settles it from the venue by client order id."""
    from rustybt.finance.order import OrderStatus

    async with FakeBinance("spot") as fake:
        adapter = BinanceBrokerAdapter(
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            base_url=fake.base_url,
            request_timeout=0.5,
            market_data_interval=0.05,
        )
        engine = LiveTradingEngine(
            strategy=BuyOnce(),
            broker_adapter=adapter,
            circuit_breakers=CircuitBreakerManager(),
            state_dir=tmp_path,
            control_socket=False,
            stop_when_data_ends=False,
        )
        task = asyncio.create_task(engine.run())
        try:
            await wait_for(lambda: adapter.stream_up and engine.reconciliation_state == "ok", 10)
            fake.faults.accept_then_timeout(1, seconds=1.5, match="POST /api/v3/order")
            fake.push_bar("BTCUSDT", "50000", "50000", "50000", "50000")
            await wait_for(lambda: bool(engine.order_manager.orders), 10)
            (order,) = engine.order_manager.orders.values()
            await wait_for(lambda: order.status is OrderStatus.FILLED, 15)
            assert fake.exchange.received == [order.id]  # sent once, never resent
            assert engine.ledger.positions[order.asset].amount == D("0.01")
            assert engine.order_manager.fill_count == 1
        finally:
            await engine.shutdown()
            await asyncio.wait_for(task, 10)
