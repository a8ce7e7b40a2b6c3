"""A fake Binance on 127.0.0.1 that speaks Binance's real REST and user-data formats.

``market_stream`` (trade and kline_1m streams) is the streaming fake; ``FakeBinance``
(one instance per market type, ``spot`` or ``futures``) is what the
adapter tests, the chaos tests and the crash harness trade against, and what
``rustybt venue serve binance`` starts for users to rehearse against.
"""

from rustybt.testing.venues.binance.exchange import FakeExchange, SymbolSpec, VenueError
from rustybt.testing.venues.binance.faults import Faults
from rustybt.testing.venues.binance.server import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    FakeBinance,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "FakeBinance",
    "FakeExchange",
    "Faults",
    "SymbolSpec",
    "VenueError",
]
