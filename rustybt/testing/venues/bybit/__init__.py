"""A fake Bybit v5 on 127.0.0.1: ``market_stream`` (public trades and klines, the
streaming fake) and :class:`FakeBybit` (REST + private websocket, what the adapter
tests and ``rustybt venue serve bybit`` use)."""

from rustybt.testing.venues.bybit.server import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    BybitError,
    FakeBybit,
)

__all__ = ["DEFAULT_API_KEY", "DEFAULT_API_SECRET", "BybitError", "FakeBybit"]
