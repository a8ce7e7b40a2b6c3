"""Live market data over venue websockets (the spec's ``rustybt.live.streaming``).

``models`` (``StreamConfig``, ``TickData``, ``ConnectionState``), ``source`` (what the
engine asks of any stream), ``base`` (websocket connection keeping shared by every
venue), one module per venue, ``ib`` (Interactive Brokers real-time bars over the
broker's TWS connection), ``bar_builder`` (trades → bars closed on a timer) and
``supervisor`` (the engine-owned streams). See docs/streaming.md.
"""

from rustybt.live.streaming.base import WebSocketStreamAdapter
from rustybt.live.streaming.binance import BinanceWebSocketAdapter
from rustybt.live.streaming.bybit import BybitWebSocketAdapter
from rustybt.live.streaming.hyperliquid import HyperliquidWebSocketAdapter
from rustybt.live.streaming.ib import IBRealTimeBarStream
from rustybt.live.streaming.models import ConnectionState, StreamConfig, TickData

__all__ = [
    "BinanceWebSocketAdapter",
    "BybitWebSocketAdapter",
    "ConnectionState",
    "HyperliquidWebSocketAdapter",
    "IBRealTimeBarStream",
    "StreamConfig",
    "TickData",
    "WebSocketStreamAdapter",
]
