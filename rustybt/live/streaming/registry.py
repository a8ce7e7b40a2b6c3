"""Stream adapters by venue name, for the CLI and config files (``--venue binance``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from rustybt.exceptions import ConfigError
from rustybt.live.streaming.base import WebSocketStreamAdapter
from rustybt.live.streaming.binance import BinanceWebSocketAdapter
from rustybt.live.streaming.bybit import BybitWebSocketAdapter
from rustybt.live.streaming.hyperliquid import HyperliquidWebSocketAdapter
from rustybt.live.streaming.models import StreamConfig

STREAM_ADAPTERS: dict[str, type[WebSocketStreamAdapter]] = {
    "binance": BinanceWebSocketAdapter,
    "bybit": BybitWebSocketAdapter,
    "hyperliquid": HyperliquidWebSocketAdapter,
}


def make_stream(
    venue: str,
    *,
    venue_url: str | None = None,
    url: str | None = None,
    rest_url: str | None = None,
    config: StreamConfig | None = None,
    **options: Any,
) -> WebSocketStreamAdapter:
    """The market-data stream of ``venue`` (its public endpoints unless overridden).

    ``venue_url="http://host:port"`` points REST and websocket at one host (a proxy or a
    local fake), paths unchanged: REST at ``http://host:port``, the stream at
    ``ws://host:port`` + the venue's stream path (``/ws`` on Binance,
    ``/v5/public/<category>`` on Bybit). ``options`` go to the adapter (Bybit's
    ``category=``).
    """
    cls = STREAM_ADAPTERS.get(str(venue).lower())
    if cls is None:
        raise ConfigError(
            f"no market-data stream for venue {venue!r}; available: {', '.join(STREAM_ADAPTERS)}"
        )
    if venue_url is not None:
        v = str(venue_url).rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ConfigError(
                f"venue URL {venue_url!r} must be http://host:port (or https://), "
                "e.g. http://127.0.0.1:8080"
            )
        rest_url = rest_url or v
        url = url or "ws" + v[len("http") :] + urlsplit(cls.default_url(**options)).path
    return cls(url=url, config=config, rest_url=rest_url, **options)
