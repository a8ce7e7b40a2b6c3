"""Helpers for the streaming tests: each venue's adapter paired with its loopback fake."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from rustybt.assets import Crypto
from rustybt.live.streaming import (
    BinanceWebSocketAdapter,
    BybitWebSocketAdapter,
    HyperliquidWebSocketAdapter,
)
from rustybt.live.streaming.models import StreamConfig
from rustybt.testing.venues.binance.market_stream import BinanceMarketStream
from rustybt.testing.venues.bybit.market_stream import BybitMarketStream
from rustybt.testing.venues.hyperliquid.market_stream import HyperliquidMarketStream

BTC = Crypto("BTCUSDT", sid=11)
ETH = Crypto("ETHUSDT", sid=12)

# (adapter, fake, the fake's symbols)
VENUES = {
    "binance": (
        BinanceWebSocketAdapter,
        BinanceMarketStream,
        {"BTCUSDT": "42000", "ETHUSDT": "2300"},
    ),
    "bybit": (BybitWebSocketAdapter, BybitMarketStream, {"BTCUSDT": "42000", "ETHUSDT": "2300"}),
    "hyperliquid": (
        HyperliquidWebSocketAdapter,
        HyperliquidMarketStream,
        {"BTC": "42000", "ETH": "2300"},
    ),
}

FAST = StreamConfig(
    heartbeat_interval=0.2,
    heartbeat_timeout=0.8,
    reconnect_delay=0.05,
    max_reconnect_delay=0.2,
    max_reconnect_attempts=20,
    max_consecutive_errors=3,
    rest_timeout=3,
)


@pytest.fixture(params=sorted(VENUES))
def venue(request):
    return request.param


def make_fake(venue: str, **kw):
    _, fake_cls, symbols = VENUES[venue]
    kw.setdefault("rate", 40)
    return fake_cls(symbols, **kw)


def make_adapter(venue: str, fake, config: StreamConfig = FAST, **kw):
    adapter_cls = VENUES[venue][0]
    return adapter_cls(url=fake.url, config=config, rest_url=fake.rest_url, **kw)


async def wait_for(predicate, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def kline_of(fake, venue_symbol: str, start_ms: int):
    return fake.sim.klines[venue_symbol][start_ms]


__all__ = ["BTC", "ETH", "FAST", "Decimal", "kline_of", "make_adapter", "make_fake", "wait_for"]
