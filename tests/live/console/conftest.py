"""A paper session with the console attached, for the console's tests."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import pytest

from rustybt import TradingAlgorithm
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import (
    CircuitBreakerManager,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ManualCircuitBreaker,
)
from rustybt.live.console.server import ConsoleServer
from rustybt.live.engine import LiveTradingEngine
from tests.live.test_engine import portal, wait_until


class EveryTenBars(TradingAlgorithm):
    """Buys 1 AAPL every 10 bars: orders, fills and a moving portfolio value."""

    def initialize(self):
        self.aapl = self.symbol("AAPL")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars % 10 == 0:
            self.order(self.aapl, 1)


def _breakers() -> CircuitBreakerManager:
    manager = CircuitBreakerManager()
    manager.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10")))
    manager.add_breaker(DailyLossCircuitBreaker(max_daily_loss=Decimal("5000")))
    manager.add_breaker(ManualCircuitBreaker())
    return manager


@pytest.fixture
async def session(tmp_path):
    """(engine, console, http client) around a one-day paper session replaying at 3000x."""
    engine = LiveTradingEngine(
        EveryTenBars(),
        PaperBroker(starting_cash="100000"),
        data_portal=portal(),
        circuit_breakers=_breakers(),
        control_socket=False,
        state_dir=tmp_path,
        speed="3000x",  # one session of minute bars in about 8 s
        start="2024-01-03",
        end="2024-01-03 23:59",
        stop_when_data_ends=False,
    )
    console = ConsoleServer(engine, port=0, event_interval=0.05)
    await console.start()
    task = asyncio.create_task(engine.run())
    client = aiohttp.ClientSession(base_url=console.url.rstrip("/"))
    try:
        await wait_until(lambda: engine.get_status()["fills"] >= 1, "first fill", 30)
        yield engine, console, client
    finally:
        await client.close()
        await engine.shutdown()
        await asyncio.wait_for(task, 20)
        await console.stop()


def auth(console: ConsoleServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {console.token}"}


async def settled(engine: LiveTradingEngine) -> dict:
    """Wait for the replay to end (nothing moves any more), pause; the frozen status."""

    def done() -> bool:
        position, total = engine.get_status()["replay_progress"]
        return position == total

    await wait_until(done, "the replay to end", 60)
    await engine.pause()
    await asyncio.sleep(0.05)
    return engine.get_status()
