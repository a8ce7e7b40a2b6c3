"""Fake Bybit v5 public market-data stream: ``/v5/public/spot`` websocket with
``op: subscribe`` / ``op: ping``, ``publicTrade.<symbol>`` and ``kline.1.<symbol>``
pushes in Bybit's layout, and ``GET /v5/market/kline``.

Standalone (:class:`BybitMarketStream`, its own ports) or mounted on the fake trading
venue's port with :func:`attach` (``rustybt venue serve bybit``).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from rustybt.testing.venues.market_sim import Client, Kline, MarketStreamServer, Trade, dec

if TYPE_CHECKING:
    from rustybt.testing.venues.bybit.server import FakeBybit


def _topic(arg: str) -> tuple[str, str] | None:
    if arg.startswith("publicTrade."):
        return "trade", arg[len("publicTrade.") :]
    if arg.startswith("kline.1."):
        return "kline_1m", arg[len("kline.1.") :]
    return None


class BybitMarketStream(MarketStreamServer):
    venue = "bybit"
    default_path = "/v5/public/spot"

    def on_message(self, client: Client, msg: Any, conn_no: int) -> list[str]:
        if not isinstance(msg, dict):
            return []
        op, req_id = msg.get("op"), msg.get("req_id", "")
        conn_id = f"fake-{id(client):x}"
        if op == "ping":
            reply = {"success": True, "ret_msg": "pong", "conn_id": conn_id, "op": "ping"}
            if req_id:
                reply["req_id"] = req_id
            return [json.dumps(reply)]
        if op in ("subscribe", "unsubscribe"):
            args = msg.get("args") or []
            topics = [_topic(a) if isinstance(a, str) else None for a in args]
            ok = bool(args) and all(t is not None for t in topics) and len(args) <= 10
            if ok:
                for t in topics:
                    if op == "subscribe":
                        client.subs.add(t)  # type: ignore[arg-type]
                    else:
                        client.subs.discard(t)  # type: ignore[arg-type]
                if op == "subscribe":
                    self.subscribe_log.append((conn_no, list(args)))
            reply = {
                "success": ok,
                "ret_msg": "" if ok else f"Invalid topic or too many args: {args}",
                "conn_id": conn_id,
                "req_id": req_id,
                "op": op,
            }
            return [json.dumps(reply)]
        return [
            json.dumps(
                {"success": False, "ret_msg": f"unknown op {op!r}", "conn_id": conn_id, "op": op}
            )
        ]

    def trade_frame(self, client: Client, t: Trade) -> str:
        data = {
            "T": t.time_ms,
            "s": t.symbol,
            "S": "Sell" if t.buyer_maker else "Buy",
            "v": dec(t.qty),
            "p": dec(t.price),
            "L": "ZeroPlusTick",
            "i": str(uuid.UUID(int=t.trade_id)),
            "BT": False,
        }
        frame = {
            "topic": f"publicTrade.{t.symbol}",
            "ts": int(time.time() * 1000),
            "type": "snapshot",
            "data": [data],
        }
        return json.dumps(frame)

    def kline_frame(self, client: Client, k: Kline, closed: bool) -> str:
        now = int(time.time() * 1000)
        data = {
            "start": k.start_ms,
            "end": k.end_ms - 1,
            "interval": "1",
            "open": dec(k.open),
            "close": dec(k.close),
            "high": dec(k.high),
            "low": dec(k.low),
            "volume": dec(k.volume),
            "turnover": dec((k.volume * k.close).quantize(k.close)),
            "confirm": closed,
            "timestamp": now,
        }
        frame = {"topic": f"kline.1.{k.symbol}", "data": [data], "ts": now, "type": "snapshot"}
        return json.dumps(frame)

    def rest(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        now = int(time.time() * 1000)
        if method != "GET" or path != "/v5/market/kline":
            return 404, {"retCode": 10404, "retMsg": "Not found", "result": {}, "time": now}
        symbol = query.get("symbol", "")
        if symbol not in self.sim.klines or query.get("interval") != "1":
            return 200, {
                "retCode": 10001,
                "retMsg": "params error: symbol or interval invalid",
                "result": {},
                "retExtInfo": {},
                "time": now,
            }
        start = int(query.get("start", 0))
        end = int(query.get("end", 2**62))
        limit = min(int(query.get("limit", 200)), 1000)
        rows = [
            [
                str(k.start_ms),
                dec(k.open),
                dec(k.high),
                dec(k.low),
                dec(k.close),
                dec(k.volume),
                dec((k.volume * k.close).quantize(k.close)),
            ]
            for k in self.sim.kline_range(symbol, start, end, limit)
            if k.start_ms <= now
        ]
        rows.reverse()  # Bybit lists newest first
        result = {"symbol": symbol, "category": query.get("category", "spot"), "list": rows}
        return 200, {
            "retCode": 0,
            "retMsg": "OK",
            "result": result,
            "retExtInfo": {},
            "time": now,
        }


def attach(
    fake: FakeBybit, *, rate: float = 10.0, bar_seconds: float = 60.0, seed: int = 7
) -> BybitMarketStream:
    """Serve Bybit's public stream on ``fake``'s own port (before it starts):
    ``/v5/public/spot`` and ``/v5/public/linear`` carry the fake's symbols; every trade
    moves the last price and every closed kline is the bar resting orders match against
    and what ``GET /v5/market/kline`` serves."""
    symbols = {sym: spec.price for sym, spec in fake.exchange.symbols.items()}
    stream = BybitMarketStream(symbols, rate=rate, bar_seconds=bar_seconds, seed=seed)
    stream.mount_on_venue(fake, ["/v5/public/spot", "/v5/public/linear"])
    return stream
