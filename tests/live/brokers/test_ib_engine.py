"""The live engine trading through IBBrokerAdapter against the fake TWS on loopback."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from rustybt import TradingAlgorithm
from rustybt.live.brokers.ib_adapter import IBBrokerAdapter
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.engine import LiveTradingEngine
from rustybt.testing.venues.ib.server import FakeTWS
from tests.live.test_engine import portal, wait_until

D = Decimal


class HoldFive(TradingAlgorithm):
    """Keeps 5 AAPL, every bar (order_target nets out what is open)."""

    def initialize(self):
        self.aapl = self.symbol("AAPL")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        self.order_target(self.aapl, 5)


async def test_engine_trades_on_real_time_bars_and_blocks_risk_while_tws_is_away(tmp_path):
    tws = FakeTWS()
    await tws.start()
    broker = IBBrokerAdapter(port=tws.port, client_id=11, request_timeout=2, reconnect_delay=0.05)
    strategy = HoldFive()
    engine = LiveTradingEngine(
        strategy,
        broker,
        data_portal=portal(),
        circuit_breakers=CircuitBreakerManager(),
        control_socket=False,
        state_dir=tmp_path,
        stop_when_data_ends=False,
    )
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: engine.get_status()["reconciliation"] == "ok", "startup", 20)
        assert engine.ledger.cash == D("1000000")  # seeded from TWS's account values
        for _ in range(3):
            tws.push_bar("AAPL", "190", "190.5", "189.5", "190")
            await asyncio.sleep(0.15)
        await wait_until(lambda: engine.get_status()["fills"] == 1, "the fill", 10)
        assert engine.ledger.positions[strategy.aapl].amount == 5
        [order] = tws.orders.values()  # order_target never stacked a second order
        assert order.order_ref and order.total_quantity == 5

        await tws.drop_connections()
        await wait_until(lambda: not engine.get_status()["broker_connected"], "the drop", 10)
        status = engine.get_status()
        assert not status["can_trade"] and "broker connection down" in status["trading_blocked"]
        assert any(a.kind == "broker_disconnected" for a in engine.alerts)

        await wait_until(lambda: engine.get_status()["can_trade"], "reconnect + reconcile", 20)
        assert engine.get_status()["broker_connected"]
        assert engine.get_status()["reconciliation"] == "ok"
        assert len(tws.orders) == 1 and engine.ledger.positions[strategy.aapl].amount == 5
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 20)
        await tws.stop()
