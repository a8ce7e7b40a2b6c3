"""Hyperliquid public market data: the ``trades`` and ``candle`` (interval ``1m``)
subscriptions, and ``POST /info`` ``candleSnapshot`` to fill gaps.

Wire format (Hyperliquid "WebSocket" docs): subscribe with
``{"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}}`` (candles:
``{"type": "candle", "coin": "BTC", "interval": "1m"}``), answered by
``{"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription":
...}}``. Heartbeat ``{"method": "ping"}`` → ``{"channel": "pong"}``. Pushes:
``{"channel": "trades", "data": [{coin, side, px, sz, hash, time, tid, users}]}`` and
``{"channel": "candle", "data": {t, T, s, i, o, c, h, l, v, n}}``. The venue names
perpetuals by coin (``BTC``): a RustyBT asset ``BTCUSDT``/``BTC-USD`` maps to ``BTC``.
"""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from rustybt.assets import Asset
from rustybt.exceptions import MalformedVenueMessage
from rustybt.live.streaming.base import WebSocketStreamAdapter, ms_to_dt
from rustybt.live.streaming.models import KlineData, TickData, parse_decimal

_QUOTES = ("USDT", "USDC", "USD")


def _sub(channel: str, coin: str) -> dict[str, Any]:
    if channel == "trade":
        return {"type": "trades", "coin": coin}
    return {"type": "candle", "coin": coin, "interval": "1m"}


def _key(sub: dict[str, Any]) -> str:
    return json.dumps(sub, sort_keys=True)


class HyperliquidWebSocketAdapter(WebSocketStreamAdapter):
    """Hyperliquid trades and 1-minute candles over ``wss://api.hyperliquid.xyz/ws``."""

    venue = "hyperliquid"
    DEFAULT_URL = "wss://api.hyperliquid.xyz/ws"
    DEFAULT_REST_URL = "https://api.hyperliquid.xyz"

    def venue_symbol(self, asset: Asset | str) -> str:
        symbol = asset.symbol if isinstance(asset, Asset) else str(asset)
        s = symbol.strip().upper().replace("/", "").replace("-", "")
        for q in _QUOTES:
            if s.endswith(q) and len(s) > len(q):
                return s[: -len(q)]
        return s

    def _subscribe_frames(self, subs: dict[str, list[str]]) -> list[tuple[Any, dict[str, Any]]]:
        frames = []
        for ch, coins in subs.items():
            for coin in coins:
                sub = _sub(ch, coin)
                frames.append((_key(sub), {"method": "subscribe", "subscription": sub}))
        return frames

    async def _heartbeat(self, ws: ClientConnection) -> None:
        await ws.send('{"method":"ping"}')

    def _parse(self, msg: Any) -> list[TickData | KlineData] | None:
        if not isinstance(msg, dict):
            raise MalformedVenueMessage(f"expected a JSON object, got {type(msg).__name__}")
        channel = msg.get("channel")
        data = msg.get("data")
        if channel == "trades":
            if not isinstance(data, list):
                raise MalformedVenueMessage("Hyperliquid trades data is not a list")
            return [
                TickData(
                    t["coin"],
                    parse_decimal(t["px"], "trade px"),
                    parse_decimal(t["sz"], "trade sz"),
                    ms_to_dt(t["time"], "trade time"),
                    "hyperliquid",
                    None,
                    str(t["tid"]),
                    "buy" if t.get("side") == "B" else "sell",
                )
                for t in data
            ]
        if channel == "candle":
            if not isinstance(data, dict):
                raise MalformedVenueMessage("Hyperliquid candle data is not an object")
            # The venue pushes the candle in progress on every trade; it is final once a
            # candle with a later open time arrives. Mark it closed when its end passed.
            return [self._candle(data, closed=None)]
        if channel == "pong":
            self._pong()
            return None
        if channel == "subscriptionResponse":
            sub = (data or {}).get("subscription") if isinstance(data, dict) else None
            if isinstance(sub, dict):
                self._ack(_key(sub))
            return None
        if channel == "error":
            raise MalformedVenueMessage(f"Hyperliquid error: {data!r:.200}")
        raise MalformedVenueMessage(f"unknown Hyperliquid channel {channel!r}")

    def _candle(self, c: dict[str, Any], closed: bool | None) -> KlineData:
        start = ms_to_dt(c["t"], "candle open time t")
        end = ms_to_dt(c["T"] + 1, "candle close time T")
        return KlineData(
            c["s"],
            start,
            end,
            parse_decimal(c["o"], "candle open o"),
            parse_decimal(c["h"], "candle high h"),
            parse_decimal(c["l"], "candle low l"),
            parse_decimal(c["c"], "candle close c"),
            parse_decimal(c["v"], "candle volume v"),
            bool(closed),
            "hyperliquid",
        )

    def _kline_request(
        self, symbol: str, start_ms: int, end_ms: int
    ) -> tuple[str, str, dict[str, Any], Any]:
        body = {
            "type": "candleSnapshot",
            "req": {"coin": symbol, "interval": "1m", "startTime": start_ms, "endTime": end_ms},
        }
        return "POST", "/info", {}, body

    def _parse_rest_klines(self, symbol: str, payload: Any) -> list[KlineData]:
        if not isinstance(payload, list):
            raise MalformedVenueMessage(f"Hyperliquid candleSnapshot: {payload!r:.200}")
        return [self._candle(c, closed=True) for c in payload]
