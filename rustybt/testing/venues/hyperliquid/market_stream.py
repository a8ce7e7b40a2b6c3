"""Fake Hyperliquid market-data stream: ``/ws`` websocket with ``method: subscribe``
(``trades``, ``candle`` 1m) and ``method: ping``, pushes on the ``trades`` and
``candle`` channels in Hyperliquid's layout, and ``POST /info`` ``candleSnapshot``.

Hyperliquid names markets by coin (``BTC``); the fake is given coins as its symbols.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from rustybt.testing.venues.market_sim import Client, Kline, MarketStreamServer, Trade, dec


class HyperliquidMarketStream(MarketStreamServer):
    venue = "hyperliquid"

    def __init__(self, symbols: dict[str, Decimal | str] | None = None, **kwargs: Any) -> None:
        # Hyperliquid pushes the candle in progress with every trade.
        kwargs.setdefault("kline_every", 1)
        super().__init__(symbols or {"BTC": "42000", "ETH": "2300"}, **kwargs)

    def on_message(self, client: Client, msg: Any, conn_no: int) -> list[str]:
        if not isinstance(msg, dict):
            return []
        method = msg.get("method")
        if method == "ping":
            return ['{"channel":"pong"}']
        if method in ("subscribe", "unsubscribe"):
            sub = msg.get("subscription")
            key = None
            if isinstance(sub, dict) and sub.get("coin") in self.sim.klines:
                if sub.get("type") == "trades":
                    key = ("trade", sub["coin"])
                elif sub.get("type") == "candle" and sub.get("interval") == "1m":
                    key = ("kline_1m", sub["coin"])
            if key is None:
                return [json.dumps({"channel": "error", "data": f"Invalid subscription {sub}"})]
            if method == "subscribe":
                client.subs.add(key)
                self.subscribe_log.append((conn_no, [json.dumps(sub, sort_keys=True)]))
            else:
                client.subs.discard(key)
            return [
                json.dumps(
                    {
                        "channel": "subscriptionResponse",
                        "data": {"method": method, "subscription": sub},
                    }
                )
            ]
        return [json.dumps({"channel": "error", "data": f"unknown method {method!r}"})]

    def trade_frame(self, client: Client, t: Trade) -> str:
        data = {
            "coin": t.symbol,
            "side": "A" if t.buyer_maker else "B",
            "px": dec(t.price),
            "sz": dec(t.qty),
            "hash": f"0x{t.trade_id:064x}",
            "time": t.time_ms,
            "tid": t.trade_id,
            "users": ["0x" + "1" * 40, "0x" + "2" * 40],
        }
        return json.dumps({"channel": "trades", "data": [data]})

    def _candle(self, k: Kline) -> dict[str, Any]:
        return {
            "t": k.start_ms,
            "T": k.end_ms - 1,
            "s": k.symbol,
            "i": "1m",
            "o": dec(k.open),
            "c": dec(k.close),
            "h": dec(k.high),
            "l": dec(k.low),
            "v": dec(k.volume),
            "n": k.trades,
        }

    def kline_frame(self, client: Client, k: Kline, closed: bool) -> str:
        # The venue has no 'closed' flag: the last in-progress update of a candle is final.
        return json.dumps({"channel": "candle", "data": self._candle(k)})

    def rest(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if method != "POST" or path != "/info" or not isinstance(body, dict):
            return 404, {"error": f"unknown endpoint {method} {path}"}
        if body.get("type") != "candleSnapshot":
            return 400, {"error": f"unsupported info type {body.get('type')!r}"}
        req = body.get("req") or {}
        coin = req.get("coin")
        if coin not in self.sim.klines or req.get("interval") != "1m":
            return 400, {"error": "invalid coin or interval"}
        start, end = int(req.get("startTime", 0)), int(req.get("endTime", 2**62))
        now = int(time.time() * 1000)
        return 200, [
            self._candle(k)
            for k in self.sim.kline_range(coin, start, end, 5000)
            if k.start_ms <= now
        ]
