"""Bybit v5 public market data: ``publicTrade.<symbol>`` and ``kline.1.<symbol>`` topics,
and ``GET /v5/market/kline`` to fill gaps.

Wire format (Bybit v5 "WebSocket Public" docs): subscribe with
``{"req_id": "1", "op": "subscribe", "args": ["publicTrade.BTCUSDT", "kline.1.BTCUSDT"]}``,
answered by ``{"success": true, "ret_msg": ..., "conn_id": ..., "req_id": "1",
"op": "subscribe"}``. Heartbeat: ``{"req_id": ..., "op": "ping"}``, answered with
``"op": "ping"`` (spot: ``ret_msg`` "pong") or ``"op": "pong"``. Pushes carry ``topic``,
``type``, ``ts`` and ``data``: a trade list of {``T`` time, ``s``, ``S`` side, ``v``
size, ``p`` price, ``i`` trade id, ``BT``}; a kline list of {``start``, ``end``,
``interval``, ``open``, ``close``, ``high``, ``low``, ``volume``, ``turnover``,
``confirm``, ``timestamp``}. REST klines come newest first as
``[start, open, high, low, close, volume, turnover]`` strings.
"""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from rustybt.exceptions import ConfigError, MalformedVenueMessage
from rustybt.live.streaming.base import WebSocketStreamAdapter, ms_to_dt
from rustybt.live.streaming.models import KlineData, TickData, parse_decimal

_TOPIC = {"trade": "publicTrade", "kline_1m": "kline.1"}
_CATEGORIES = ("spot", "linear", "inverse")


class BybitWebSocketAdapter(WebSocketStreamAdapter):
    """Bybit v5 public trades and 1-minute klines (spot by default)."""

    venue = "bybit"
    DEFAULT_URL = "wss://stream.bybit.com/v5/public/spot"
    DEFAULT_REST_URL = "https://api.bybit.com"

    def __init__(self, *args: Any, category: str = "spot", **kwargs: Any) -> None:
        if category not in _CATEGORIES:
            raise ConfigError(f"category={category!r}; use one of {', '.join(_CATEGORIES)}")
        if not args and kwargs.get("url") is None:
            # Each category has its own public stream: perpetuals' trades are not spot's.
            kwargs["url"] = self.default_url(category=category)
        super().__init__(*args, **kwargs)
        self.category = category

    @classmethod
    def default_url(cls, **options: Any) -> str:
        """``wss://stream.bybit.com/v5/public/<category>`` (spot unless ``category=``)."""
        return f"wss://stream.bybit.com/v5/public/{options.get('category') or 'spot'}"

    def _subscribe_frames(self, subs: dict[str, list[str]]) -> list[tuple[Any, dict[str, Any]]]:
        args = [f"{_TOPIC[ch]}.{s}" for ch, syms in subs.items() for s in syms]
        frames = []
        # Bybit spot takes at most 10 args per request.
        for i in range(0, len(args), 10):
            rid = f"sub-{self._next_id()}"
            frames.append((rid, {"req_id": rid, "op": "subscribe", "args": args[i : i + 10]}))
        return frames

    async def _heartbeat(self, ws: ClientConnection) -> None:
        await ws.send(json.dumps({"req_id": f"ping-{self._next_id()}", "op": "ping"}))

    def _parse(self, msg: Any) -> list[TickData | KlineData] | None:
        if not isinstance(msg, dict):
            raise MalformedVenueMessage(f"expected a JSON object, got {type(msg).__name__}")
        topic = msg.get("topic")
        if topic is None:
            op = msg.get("op")
            if op in ("ping", "pong"):
                self._pong()
                return None
            if op == "subscribe":
                ok = msg.get("success", False)
                self._ack(msg.get("req_id"), None if ok else str(msg.get("ret_msg")))
                return None
            raise MalformedVenueMessage(f"Bybit frame without topic or known op: {op!r}")
        data = msg["data"]
        if not isinstance(data, list):
            raise MalformedVenueMessage(f"Bybit {topic} data is not a list")
        if topic.startswith("publicTrade."):
            return [
                TickData(
                    t["s"],
                    parse_decimal(t["p"], "trade price p"),
                    parse_decimal(t["v"], "trade size v"),
                    ms_to_dt(t["T"], "trade time T"),
                    "bybit",
                    None,
                    str(t["i"]),
                    "buy" if t.get("S") == "Buy" else "sell",
                )
                for t in data
            ]
        if topic.startswith("kline."):
            symbol = topic.rsplit(".", 1)[1]
            return [
                KlineData(
                    symbol,
                    ms_to_dt(k["start"], "kline start"),
                    ms_to_dt(k["end"] + 1, "kline end"),
                    parse_decimal(k["open"], "kline open"),
                    parse_decimal(k["high"], "kline high"),
                    parse_decimal(k["low"], "kline low"),
                    parse_decimal(k["close"], "kline close"),
                    parse_decimal(k["volume"], "kline volume"),
                    bool(k["confirm"]),
                    "bybit",
                )
                for k in data
            ]
        raise MalformedVenueMessage(f"unexpected Bybit topic {topic!r}")

    def _kline_request(
        self, symbol: str, start_ms: int, end_ms: int
    ) -> tuple[str, str, dict[str, Any], Any]:
        params = {
            "category": self.category,
            "symbol": symbol,
            "interval": "1",
            "start": start_ms,
            "end": end_ms,
            "limit": 1000,
        }
        return "GET", "/v5/market/kline", params, None

    def _parse_rest_klines(self, symbol: str, payload: Any) -> list[KlineData]:
        if not isinstance(payload, dict) or payload.get("retCode") != 0:
            raise MalformedVenueMessage(f"Bybit kline request failed: {payload!r:.200}")
        rows = payload["result"]["list"]
        step = None
        out = []
        for row in rows:
            if not isinstance(row, list) or len(row) < 6:
                raise MalformedVenueMessage(f"Bybit kline row {row!r:.200} is malformed")
            out.append(
                KlineData(
                    symbol,
                    ms_to_dt(row[0], "kline start"),
                    ms_to_dt(row[0], "kline start"),  # end fixed below
                    parse_decimal(row[1], "open"),
                    parse_decimal(row[2], "high"),
                    parse_decimal(row[3], "low"),
                    parse_decimal(row[4], "close"),
                    parse_decimal(row[5], "volume"),
                    True,
                    "bybit",
                )
            )
        out.sort(key=lambda k: k.start)
        # Rows carry only start times: interval "1" is one minute on the real venue; a
        # fake may run faster, so take the spacing of the rows when there are two.
        from datetime import timedelta

        if len(out) >= 2:
            step = out[1].start - out[0].start
        for k in out:
            k.end = k.start + (step or timedelta(minutes=1))
        return out
