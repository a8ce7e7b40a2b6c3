"""Binance spot public market data: the ``<symbol>@trade`` and ``<symbol>@kline_1m``
streams, and ``GET /api/v3/klines`` to fill gaps.

Wire format (Binance "WebSocket Streams" docs): subscribe with
``{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}``, answered by
``{"result": null, "id": 1}``. On a raw ``/ws`` connection events arrive bare; on a
combined ``/stream`` connection they are wrapped as ``{"stream": ..., "data": ...}``.
Trade event: ``e`` "trade", ``E`` event time, ``s`` symbol, ``t`` trade id, ``p`` price,
``q`` quantity, ``T`` trade time, ``m`` buyer is maker. Kline event: ``e`` "kline",
``k`` = {``t`` open time, ``T`` close time, ``s``, ``i`` interval, ``o`` ``c`` ``h``
``l`` ``v``, ``x`` closed}. The server pings every 20 s and the client answers (the
``websockets`` library does); our heartbeat is a ping frame, whose pong counts as traffic.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection

from rustybt.exceptions import MalformedVenueMessage
from rustybt.live.streaming.base import WebSocketStreamAdapter, ms_to_dt
from rustybt.live.streaming.models import KlineData, TickData, parse_decimal

_CHANNEL = {"trade": "trade", "kline_1m": "kline_1m"}


class BinanceWebSocketAdapter(WebSocketStreamAdapter):
    """Binance spot trades and 1-minute klines over ``wss://stream.binance.com:9443/ws``."""

    venue = "binance"
    DEFAULT_URL = "wss://stream.binance.com:9443/ws"
    DEFAULT_REST_URL = "https://api.binance.com"

    def _subscribe_frames(self, subs: dict[str, list[str]]) -> list[tuple[Any, dict[str, Any]]]:
        params = [f"{s.lower()}@{_CHANNEL[ch]}" for ch, syms in subs.items() for s in syms]
        if not params:
            return []
        rid = self._next_id()
        return [(rid, {"method": "SUBSCRIBE", "params": params, "id": rid})]

    async def _heartbeat(self, ws: ClientConnection) -> None:
        waiter = await ws.ping()
        waiter.add_done_callback(lambda f: f.cancelled() or self._pong())

    def _parse(self, msg: Any) -> list[TickData | KlineData] | None:
        if not isinstance(msg, dict):
            raise MalformedVenueMessage(f"expected a JSON object, got {type(msg).__name__}")
        if "data" in msg and "stream" in msg:
            msg = msg["data"]
            if not isinstance(msg, dict):
                raise MalformedVenueMessage("combined stream 'data' is not an object")
        event = msg.get("e")
        if event == "trade":
            ts = ms_to_dt(msg["T"], "trade time T")
            return [
                TickData(
                    msg["s"],
                    parse_decimal(msg["p"], "trade price p"),
                    parse_decimal(msg["q"], "trade quantity q"),
                    ts,
                    "binance",
                    None,
                    str(msg["t"]),
                    "sell" if msg.get("m") else "buy",
                )
            ]
        if event == "kline":
            return [self._kline(msg["k"])]
        if "id" in msg and ("result" in msg or "error" in msg):
            err = msg.get("error")
            self._ack(msg["id"], None if err is None else f"{err}")
            return None
        raise MalformedVenueMessage(f"unknown Binance event {event!r}")

    def _kline(self, k: dict[str, Any]) -> KlineData:
        return KlineData(
            k["s"],
            ms_to_dt(k["t"], "kline open time t"),
            ms_to_dt(k["T"] + 1, "kline close time T"),
            parse_decimal(k["o"], "kline open o"),
            parse_decimal(k["h"], "kline high h"),
            parse_decimal(k["l"], "kline low l"),
            parse_decimal(k["c"], "kline close c"),
            parse_decimal(k["v"], "kline volume v"),
            bool(k["x"]),
            "binance",
        )

    def _kline_request(
        self, symbol: str, start_ms: int, end_ms: int
    ) -> tuple[str, str, dict[str, Any], Any]:
        params = {
            "symbol": symbol,
            "interval": "1m",
            "startTime": start_ms,
            "endTime": end_ms,
            "limit": 1000,
        }
        return "GET", "/api/v3/klines", params, None

    def _parse_rest_klines(self, symbol: str, payload: Any) -> list[KlineData]:
        # [open time, open, high, low, close, volume, close time, quote volume, trades, ...]
        if not isinstance(payload, list):
            raise MalformedVenueMessage(f"Binance klines: expected a list, got {payload!r:.200}")
        out = []
        for row in payload:
            if not isinstance(row, list) or len(row) < 7:
                raise MalformedVenueMessage(f"Binance kline row {row!r:.200} is malformed")
            out.append(
                KlineData(
                    symbol,
                    ms_to_dt(row[0]),
                    ms_to_dt(row[6] + 1),
                    parse_decimal(row[1], "open"),
                    parse_decimal(row[2], "high"),
                    parse_decimal(row[3], "low"),
                    parse_decimal(row[4], "close"),
                    parse_decimal(row[5], "volume"),
                    True,
                    "binance",
                )
            )
        return out
