"""A fake Hyperliquid on 127.0.0.1: ``market_stream`` (public trades and candles, the
streaming fake) and :class:`FakeHyperliquid` (``/info``, signed ``/exchange``, the
``/ws`` user stream: what the adapter tests and ``rustybt venue serve hyperliquid`` use)."""

from rustybt.testing.venues.hyperliquid.server import (
    DEFAULT_PRIVATE_KEY,
    FakeHyperliquid,
    coin,
)

__all__ = ["DEFAULT_PRIVATE_KEY", "FakeHyperliquid", "coin"]
