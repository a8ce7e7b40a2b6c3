"""Fake Binance spot market-data stream: ``/ws`` (and ``/stream?streams=``) websocket
with ``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS``, trade and kline events in
Binance's field layout, ping frames every 20 s, and ``GET /api/v3/klines``.

Standalone (:class:`BinanceMarketStream`, its own ports) or mounted on the fake trading
venue's port with :func:`attach` (``rustybt venue serve binance``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from rustybt.testing.venues.market_sim import Client, Kline, MarketStreamServer, Trade, dec

if TYPE_CHECKING:
    from rustybt.testing.venues.binance.server import FakeBinance

_STREAMS = {"trade": "trade", "kline_1m": "kline_1m"}


def _parse_stream(name: str) -> tuple[str, str] | None:
    sym, _, kind = name.partition("@")
    for channel, suffix in _STREAMS.items():
        if kind == suffix:
            return channel, sym.upper()
    return None


class BinanceMarketStream(MarketStreamServer):
    venue = "binance"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("server_ping_interval", 20)
        super().__init__(*args, **kwargs)

    def on_open(self, client: Client) -> None:
        if client.path.startswith("/stream"):
            client.combined = True
            query = client.path.partition("?")[2]
            for part in query.split("&"):
                if part.startswith("streams="):
                    for name in part[len("streams=") :].split("/"):
                        sub = _parse_stream(name)
                        if sub is not None:
                            client.subs.add(sub)
        elif client.path.startswith("/ws/"):
            sub = _parse_stream(client.path[len("/ws/") :])
            if sub is not None:
                client.subs.add(sub)

    def on_message(self, client: Client, msg: Any, conn_no: int) -> list[str]:
        if not isinstance(msg, dict) or "id" not in msg:
            return [json.dumps({"error": {"code": 3, "msg": "Invalid JSON: expected id"}})]
        method, rid, params = msg.get("method"), msg["id"], msg.get("params") or []
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            subs = [_parse_stream(p) if isinstance(p, str) else None for p in params]
            if any(s is None for s in subs):
                err = {"code": 2, "msg": f"Invalid request: unknown stream in {params}"}
                return [json.dumps({"error": err, "id": rid})]
            for s in subs:
                if method == "SUBSCRIBE":
                    client.subs.add(s)  # type: ignore[arg-type]
                else:
                    client.subs.discard(s)  # type: ignore[arg-type]
            if method == "SUBSCRIBE":
                self.subscribe_log.append((conn_no, list(params)))
            return [json.dumps({"result": None, "id": rid})]
        if method == "LIST_SUBSCRIPTIONS":
            names = sorted(f"{s.lower()}@{_STREAMS[c]}" for c, s in client.subs)
            return [json.dumps({"result": names, "id": rid})]
        err = {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}
        return [json.dumps({"error": err, "id": rid})]

    def _wrap(self, client: Client, stream: str, payload: dict[str, Any]) -> str:
        if client.combined:
            return json.dumps({"stream": stream, "data": payload})
        return json.dumps(payload)

    def trade_frame(self, client: Client, t: Trade) -> str:
        payload = {
            "e": "trade",
            "E": int(time.time() * 1000),
            "s": t.symbol,
            "t": t.trade_id,
            "p": dec(t.price),
            "q": dec(t.qty),
            "T": t.time_ms,
            "m": t.buyer_maker,
            "M": True,
        }
        return self._wrap(client, f"{t.symbol.lower()}@trade", payload)

    def _k(self, k: Kline, closed: bool) -> dict[str, Any]:
        return {
            "t": k.start_ms,
            "T": k.end_ms - 1,
            "s": k.symbol,
            "i": "1m",
            "f": 0,
            "L": 0,
            "o": dec(k.open),
            "c": dec(k.close),
            "h": dec(k.high),
            "l": dec(k.low),
            "v": dec(k.volume),
            "n": k.trades,
            "x": closed,
            "q": dec((k.volume * k.close).quantize(k.close)),
            "V": "0",
            "Q": "0",
            "B": "0",
        }

    def kline_frame(self, client: Client, k: Kline, closed: bool) -> str:
        payload = {
            "e": "kline",
            "E": int(time.time() * 1000),
            "s": k.symbol,
            "k": self._k(k, closed),
        }
        return self._wrap(client, f"{k.symbol.lower()}@kline_1m", payload)

    def rest(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if method != "GET" or path != "/api/v3/klines":
            return 404, {"code": -1, "msg": f"unknown endpoint {method} {path}"}
        symbol = query.get("symbol", "")
        if symbol not in self.sim.klines:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if query.get("interval") != "1m":
            return 400, {"code": -1120, "msg": "Invalid interval."}
        start = int(query.get("startTime", 0))
        end = int(query.get("endTime", 2**62))
        limit = min(int(query.get("limit", 500)), 1000)
        now = int(time.time() * 1000)
        rows = []
        for k in self.sim.kline_range(symbol, start, end, limit):
            if k.start_ms > now:
                continue
            rows.append(
                [
                    k.start_ms,
                    dec(k.open),
                    dec(k.high),
                    dec(k.low),
                    dec(k.close),
                    dec(k.volume),
                    k.end_ms - 1,
                    dec((k.volume * k.close).quantize(k.close)),
                    k.trades,
                    "0",
                    "0",
                    "0",
                ]
            )
        return 200, rows


def attach(
    fake: FakeBinance, *, rate: float = 10.0, bar_seconds: float = 60.0, seed: int = 7
) -> BinanceMarketStream:
    """Serve Binance's public market stream on ``fake``'s own port (before it starts).

    ``/ws``, ``/ws/<stream>`` (spot) and ``/stream?streams=`` carry trades and klines of
    the fake's symbols, starting at their prices. The stream *is* the venue's market: every
    trade moves the symbol's last price (what a market order fills at) and every closed
    kline is pushed as the bar resting orders match against, recorded with its own open
    and close times for ``GET /api/v3/klines`` (the REST backfill after a reconnect).
    """
    symbols = {sym: spec.price for sym, spec in fake.exchange.symbols.items()}
    stream = BinanceMarketStream(symbols, rate=rate, bar_seconds=bar_seconds, seed=seed)
    paths = ["/ws", "/stream"]
    if fake.market_type == "spot":
        paths.append("/ws/{stream}")  # futures: /ws/<listenKey> is the user stream
    stream.mount_on_venue(fake, paths)
    return stream
