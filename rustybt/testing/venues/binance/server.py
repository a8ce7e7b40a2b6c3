"""The fake Binance server: Binance's REST paths and user-data streams on 127.0.0.1.

:class:`FakeBinance` serves one market type (``spot`` or ``futures``) over a real
aiohttp HTTP/WebSocket server, speaking Binance's documented formats:

* REST, spot ``/api/v3/...`` and USDⓈ-M futures ``/fapi/v1|v2|v3/...``: exchangeInfo
  (PRICE_FILTER, LOT_SIZE, NOTIONAL / MIN_NOTIONAL), account, order create / query by
  ``orderId`` or ``origClientOrderId`` / cancel, openOrders, myTrades (``userTrades``),
  klines, ticker price, time, ping.
* Signed endpoints check ``X-MBX-APIKEY``, ``timestamp`` within ``recvWindow`` and the
  HMAC-SHA256 ``signature`` over the query string followed by the body; errors are
  Binance's ``{"code": ..., "msg": ...}`` with Binance's HTTP statuses (400, 401, 404,
  429 / 418 with ``Retry-After``, 5xx). Request weight is counted per minute and
  reported in ``X-MBX-USED-WEIGHT-1M``; over the limit answers 429 (-1003).
* User data, spot: the WebSocket API at ``/ws-api/v3`` with
  ``userDataStream.subscribe.signature``; events arrive wrapped as
  ``{"subscriptionId": N, "event": {...}}`` (``executionReport``,
  ``outboundAccountPosition``). Futures: ``POST/PUT/DELETE /fapi/v1/listenKey``, then a
  websocket at ``/ws/<listenKey>`` or ``/private/ws?listenKey=<key>``
  (``ORDER_TRADE_UPDATE``, ``ACCOUNT_UPDATE``).
* Admin (not Binance): ``POST /_fake/fault``, ``POST /_fake/bar``, ``GET /_fake/state``
  so tests in another process can drive it; in-process tests use the Python API
  (:attr:`FakeBinance.exchange`, :attr:`FakeBinance.faults`).

Market streams (``trade``, ``kline_1m``) belong to ``market_stream.py`` beside this file;
its ``attach(fake)`` mounts them on this server's port (``serve`` does), so one
``--venue-url`` reaches trading and market data alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import secrets
import time
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from rustybt.testing.venues.binance.exchange import (
    DEFAULT_SYMBOLS,
    FakeExchange,
    SymbolSpec,
    VenueError,
    VenueOrder,
    VenueTrade,
    _fmt,
)
from rustybt.testing.venues.binance.faults import Faults

_ZERO = Decimal(0)
DEFAULT_API_KEY = "fake-binance-key"
DEFAULT_API_SECRET = "fake-binance-secret"

# Request weights as Binance documents them (the ones the adapter uses); a
# ``"METHOD path"`` key overrides the path's weight for that method.
_WEIGHTS = {
    "/api/v3/exchangeInfo": 20,
    "/api/v3/account": 20,
    "/api/v3/order": 1,
    "GET /api/v3/order": 4,
    "/api/v3/openOrders": 6,
    "/api/v3/allOrders": 20,
    "/api/v3/myTrades": 20,
    "/api/v3/klines": 2,
    "/fapi/v1/exchangeInfo": 1,
    "/fapi/v2/account": 5,
    "/fapi/v3/account": 5,
    "/fapi/v2/positionRisk": 5,
    "/fapi/v3/positionRisk": 5,
    "/fapi/v1/order": 1,
    "/fapi/v1/openOrders": 1,
    "/fapi/v1/allOrders": 5,
    "/fapi/v1/userTrades": 5,
}


def _err(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status, headers=headers)


class FakeBinance:
    """One fake Binance venue (one market type) on ``127.0.0.1``.

    ``async with FakeBinance() as venue:`` starts it on a free port; ``venue.base_url``
    and ``venue.ws_url`` are what an adapter's ``base_url=``/``ws_url=`` take.
    """

    def __init__(
        self,
        market_type: str = "spot",
        *,
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        symbols: Iterable[SymbolSpec] = DEFAULT_SYMBOLS,
        balances: dict[str, Decimal] | None = None,
        weight_limit: int = 6000,
        host: str = "127.0.0.1",
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fake venue listens on loopback only (127.0.0.1)")
        self.market_type = market_type
        self.exchange = FakeExchange(market_type, tuple(symbols), balances)
        self.exchange.on_event = self._publish
        self.faults = Faults()
        self.faults._drop = self._drop_streams
        self.faults._stall = self._stall_streams
        self.faults._garbage = self._garbage
        self.api_key = api_key
        self._secret = api_secret.encode()
        self.host = host
        self.port = port
        self.weight_limit = weight_limit
        self._weight: deque[tuple[float, int]] = deque()
        self._weight_sum = 0
        # ORDERS rate limits as exchangeInfo states them: (seconds, limit, header, label)
        self.order_limits: list[tuple[int, int, str, str]] = (
            [(10, 100, "10S", "10 SECOND"), (86400, 200000, "1D", "1 DAY")]
            if market_type == "spot"
            else [(10, 300, "10S", "10 SECOND"), (60, 1200, "1M", "1 MINUTE")]
        )
        self._orders_sent: deque[float] = deque()
        self._streams: set[web.WebSocketResponse] = set()
        self._sub_ids = itertools.count(0)
        self._stall_until = 0.0
        self._held: list[dict[str, Any]] = []
        self._listen_keys: set[str] = set()
        self._klines: dict[str, list[list[Any]]] = {s: [] for s in self.exchange.symbols}
        self._runner: web.AppRunner | None = None
        self._walk_task: asyncio.Task[None] | None = None
        self.requests: list[str] = []  # "METHOD path" of every REST request, for tests
        self.bar_listeners: list[Any] = []  # market_stream hook: called with each kline
        self.market_stream: Any = None  # market_stream.attach(self): the public stream
        self.app = self._build_app()

    # --- lifecycle ---
    async def start(self) -> FakeBinance:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._walk_task is not None:
            self._walk_task.cancel()
        for ws in list(self._streams):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBinance:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    # --- market ---
    def push_bar(
        self,
        symbol: str,
        open_: Decimal | str,
        high: Decimal | str,
        low: Decimal | str,
        close: Decimal | str,
        volume: Decimal | str | None = None,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> None:
        """A new one-minute bar: resting orders match against it; klines record it.

        ``start_ms``/``end_ms`` (end exclusive) place it in time; by default it is the
        minute that just ended."""
        o, h, lo, c = (Decimal(str(x)) for x in (open_, high, low, close))
        vol = Decimal(str(volume)) if volume is not None else None
        self.exchange.push_bar(symbol, o, h, lo, c, vol)
        spec = self.exchange.symbols[symbol]
        now = int(time.time() * 1000)
        if start_ms is None or end_ms is None:
            start_ms, end_ms = now - 60_000, now
        kline = [
            start_ms,
            _fmt(o),
            _fmt(h),
            _fmt(lo),
            _fmt(c),
            _fmt(vol if vol is not None else spec.liquidity),
            end_ms - 1,
            "0",
            0,
            "0",
            "0",
            "0",
        ]
        rows = self._klines[symbol]
        rows.append(kline)
        del rows[:-1000]
        for listener in list(self.bar_listeners):
            listener(symbol, kline)

    def start_random_walk(
        self, interval: float = 1.0, seed: int = 0, steps: int | None = None
    ) -> None:
        """Push a seeded random-walk bar per symbol every ``interval`` seconds (for
        ``venue serve``); ``steps`` bounds it."""
        rng = random.Random(seed)

        async def walk() -> None:
            n = 0
            while steps is None or n < steps:
                await asyncio.sleep(interval)
                n += 1
                for sym, spec in self.exchange.symbols.items():
                    o = spec.price
                    moves = [o * Decimal(1 + rng.gauss(0, 0.001)) for _ in range(3)]
                    c = max(
                        spec.tick_size,
                        (moves[-1] / spec.tick_size).quantize(Decimal(1)) * spec.tick_size,
                    )
                    h = max(
                        [o, c]
                        + [
                            (m / spec.tick_size).quantize(Decimal(1)) * spec.tick_size
                            for m in moves
                        ]
                    )
                    lo = min(
                        [o, c]
                        + [
                            (m / spec.tick_size).quantize(Decimal(1)) * spec.tick_size
                            for m in moves
                        ]
                    )
                    self.push_bar(sym, o, h, max(lo, spec.tick_size), c)

        self._walk_task = asyncio.get_running_loop().create_task(walk())

    # --- streams ---
    def _publish(self, event: dict[str, Any]) -> None:
        if time.monotonic() < self._stall_until:
            self._held.append(event)
            return
        self._send_all(event)

    def _send_all(self, event: dict[str, Any]) -> None:
        for ws in list(self._streams):
            sub = getattr(ws, "_fake_sub", None)
            payload = {"subscriptionId": sub, "event": event} if sub is not None else event
            if not ws.closed:
                asyncio.ensure_future(self._send(ws, json.dumps(payload)))

    @staticmethod
    async def _send(ws: web.WebSocketResponse, text: str) -> None:
        try:
            await ws.send_str(text)
        except (ConnectionError, RuntimeError):
            pass

    def _drop_streams(self) -> int:
        n = 0
        for ws in list(self._streams):
            transport = ws._req.transport if ws._req is not None else None  # type: ignore[attr-defined]
            if transport is not None:
                transport.abort()  # no close frame: the way a connection really dies
                n += 1
            self._streams.discard(ws)
        return n

    def _stall_streams(self, seconds: float) -> None:
        self._stall_until = time.monotonic() + seconds

        async def release() -> None:
            await asyncio.sleep(seconds)
            held, self._held = self._held, []
            for event in held:
                self._send_all(event)

        asyncio.get_running_loop().create_task(release())

    def _garbage(self, n: int) -> None:
        for ws in list(self._streams):
            for i in range(n):
                asyncio.ensure_future(self._send(ws, f"\x00garbage frame {i} {{not json"))

    # --- app ---
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_post("/_fake/fault", self._admin_fault)
        r.add_post("/_fake/bar", self._admin_bar)
        r.add_get("/_fake/state", self._admin_state)
        if self.market_type == "spot":
            p = "/api/v3"
            r.add_get(f"{p}/ping", self._ping)
            r.add_get(f"{p}/time", self._time)
            r.add_get(f"{p}/exchangeInfo", self._exchange_info)
            r.add_get(f"{p}/account", self._spot_account)
            r.add_post(f"{p}/order", self._order_new)
            r.add_get(f"{p}/order", self._order_get)
            r.add_delete(f"{p}/order", self._order_cancel)
            r.add_get(f"{p}/openOrders", self._open_orders)
            r.add_get(f"{p}/allOrders", self._all_orders)
            r.add_get(f"{p}/myTrades", self._my_trades)
            r.add_get(f"{p}/klines", self._klines_route)
            r.add_get(f"{p}/ticker/price", self._ticker)
            r.add_get("/ws-api/v3", self._ws_api)
        else:
            p = "/fapi/v1"
            r.add_get(f"{p}/ping", self._ping)
            r.add_get(f"{p}/time", self._time)
            r.add_get(f"{p}/exchangeInfo", self._exchange_info)
            for v in ("v2", "v3"):
                r.add_get(f"/fapi/{v}/account", self._futures_account)
                r.add_get(f"/fapi/{v}/balance", self._futures_balance)
                r.add_get(f"/fapi/{v}/positionRisk", self._futures_positions)
            r.add_post(f"{p}/order", self._order_new)
            r.add_get(f"{p}/order", self._order_get)
            r.add_delete(f"{p}/order", self._order_cancel)
            r.add_get(f"{p}/openOrders", self._open_orders)
            r.add_get(f"{p}/allOrders", self._all_orders)
            r.add_get(f"{p}/userTrades", self._my_trades)
            r.add_get(f"{p}/klines", self._klines_route)
            r.add_get(f"{p}/ticker/price", self._ticker)
            r.add_get(f"{p}/leverageBracket", self._leverage_bracket)
            r.add_post(f"{p}/listenKey", self._listen_key_new)
            r.add_put(f"{p}/listenKey", self._listen_key_keep)
            r.add_delete(f"{p}/listenKey", self._listen_key_delete)
            r.add_get("/ws/{key}", self._listen_stream)
            r.add_get("/private/ws", self._listen_stream)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_fake/") or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        self.requests.append(f"{request.method} {path}")
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        rule = self.faults.take(request.method, path)
        if rule is not None and rule.kind == "5xx":
            return _err(
                rule.status, -1000, "Unknown error, please check your request or try again later."
            )
        if rule is not None and rule.kind == "429":
            retry = str(max(1, round(rule.seconds)))
            if rule.status == 418:
                until = int((time.time() + max(1.0, rule.seconds)) * 1000)
                return _err(
                    418,
                    -1003,
                    f"Way too much request weight used; IP banned until {until}. "
                    "Please use WebSocket Streams for live updates to avoid bans.",
                    {"Retry-After": retry},
                )
            return _err(
                429,
                -1003,
                "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
                "Please use WebSocket Streams for live updates to avoid polling the API.",
                {"Retry-After": retry},
            )
        used = self._count_weight(request.method, path)
        if used > self.weight_limit:
            return _err(
                429,
                -1003,
                f"Too much request weight used; current limit is {self.weight_limit} request "
                "weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                "polling the API.",
                {"Retry-After": "60", "X-MBX-USED-WEIGHT-1M": str(used)},
            )
        order_counts: dict[str, str] = {}
        if request.method == "POST" and path in ("/api/v3/order", "/fapi/v1/order"):
            order_counts, over = self._count_order()
            if over is not None:
                limit, label = over
                return _err(
                    429,
                    -1015,
                    f"Too many new orders; current limit is {limit} orders per {label}.",
                    {
                        "Retry-After": "10",
                        "X-MBX-USED-WEIGHT-1M": str(used),
                        **order_counts,
                    },
                )
        try:
            response = await handler(request)
        except VenueError as exc:
            response = _err(exc.status, exc.code, exc.msg)
        except web.HTTPException:
            raise
        response.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        response.headers.update(order_counts)
        if rule is not None and rule.kind == "timeout":
            # Processed, then the answer never comes in time.
            await asyncio.sleep(rule.seconds)
        return response

    def _count_order(self) -> tuple[dict[str, str], tuple[int, str] | None]:
        """Count one new order in every ORDERS window: the ``X-MBX-ORDER-COUNT-*``
        headers, and the first window now over its limit (if any)."""
        now = time.monotonic()
        self._orders_sent.append(now)
        headers: dict[str, str] = {}
        over = None
        for seconds, limit, suffix, label in self.order_limits:
            n = sum(1 for t in self._orders_sent if t > now - seconds)
            headers[f"X-MBX-ORDER-COUNT-{suffix}"] = str(n)
            if n > limit and over is None:
                over = (limit, label)
        longest = max(w[0] for w in self.order_limits)
        while self._orders_sent and self._orders_sent[0] <= now - longest:
            self._orders_sent.popleft()
        return headers, over

    def _count_weight(self, method: str, path: str) -> int:
        now = time.monotonic()
        w = self._weight
        while w and w[0][0] < now - 60:
            self._weight_sum -= w.popleft()[1]
        cost = _WEIGHTS.get(f"{method} {path}", _WEIGHTS.get(path, 1))
        w.append((now, cost))
        self._weight_sum += cost
        return self._weight_sum

    # --- auth ---
    async def _params(self, request: web.Request, signed: bool) -> dict[str, str]:
        query = request.query_string
        body = (await request.text()) if request.can_read_body else ""
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        if not signed:
            return params
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise VenueError(401, -2014, "API-key format invalid.")
        if key != self.api_key:
            raise VenueError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        self._check_signature(params, _strip_signature(query) + _strip_signature(body))
        return params

    def _check_signature(self, params: dict[str, str], payload: str) -> None:
        ts = params.get("timestamp")
        if not ts:
            raise VenueError(
                400,
                -1102,
                "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
            )
        try:
            ts_ms = int(ts)
            # recvWindow may carry a fraction (microsecond precision).
            window = Decimal(params.get("recvWindow", "5000"))
        except (ValueError, ArithmeticError):
            raise VenueError(
                400, -1100, "Illegal characters found in parameter 'timestamp'."
            ) from None
        now = int(time.time() * 1000)
        if window > 60000:
            raise VenueError(400, -1131, "recvWindow must be less than 60000")
        if ts_ms >= now + 1000:
            raise VenueError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - ts_ms > window:
            raise VenueError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        sig = params.get("signature")
        if not sig:
            raise VenueError(
                400,
                -1102,
                "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
            )
        want = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig.lower()):
            raise VenueError(400, -1022, "Signature for this request is not valid.")

    # --- REST handlers ---
    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": int(time.time() * 1000)})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        now = int(time.time() * 1000)
        limits = [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.weight_limit,
            },
        ]
        intervals = {"S": "SECOND", "M": "MINUTE", "D": "DAY"}
        for _, limit, suffix, _ in self.order_limits:
            limits.append(
                {
                    "rateLimitType": "ORDERS",
                    "interval": intervals[suffix[-1]],
                    "intervalNum": int(suffix[:-1]),
                    "limit": limit,
                }
            )
        syms = [self._symbol_info(s) for s in self.exchange.symbols.values()]
        body: dict[str, Any] = {
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": limits,
            "exchangeFilters": [],
            "symbols": syms,
        }
        if self.market_type == "futures":
            body["assets"] = [
                {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}
            ]
            body["futuresType"] = "U_MARGINED"
        return web.json_response(body)

    def _symbol_info(self, s: SymbolSpec) -> dict[str, Any]:
        price_filter = {
            "filterType": "PRICE_FILTER",
            "minPrice": _fmt(s.min_price),
            "maxPrice": _fmt(s.max_price),
            "tickSize": _fmt(s.tick_size),
        }
        lot = {
            "filterType": "LOT_SIZE",
            "minQty": _fmt(s.min_qty),
            "maxQty": _fmt(s.max_qty),
            "stepSize": _fmt(s.step_size),
        }
        if self.market_type == "spot":
            return {
                "symbol": s.symbol,
                "status": "TRADING",
                "baseAsset": s.base,
                "baseAssetPrecision": 8,
                "quoteAsset": s.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": [
                    "LIMIT",
                    "LIMIT_MAKER",
                    "MARKET",
                    "STOP_LOSS",
                    "STOP_LOSS_LIMIT",
                    "TAKE_PROFIT",
                    "TAKE_PROFIT_LIMIT",
                ],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "otoAllowed": True,
                "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True,
                "cancelReplaceAllowed": True,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    price_filter,
                    lot,
                    {
                        "filterType": "NOTIONAL",
                        "minNotional": _fmt(s.min_notional),
                        "applyMinToMarket": True,
                        "maxNotional": "9000000.00000000",
                        "applyMaxToMarket": False,
                        "avgPriceMins": 5,
                    },
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            }
        return {
            "symbol": s.symbol,
            "pair": s.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "status": "TRADING",
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": s.base,
            "quoteAsset": s.quote,
            "marginAsset": "USDT",
            "pricePrecision": 2,
            "quantityPrecision": 5,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                price_filter,
                lot,
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": _fmt(s.min_qty),
                    "maxQty": _fmt(s.max_qty),
                    "stepSize": _fmt(s.step_size),
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": str(s.min_notional)},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": [
                "LIMIT",
                "MARKET",
                "STOP",
                "STOP_MARKET",
                "TAKE_PROFIT",
                "TAKE_PROFIT_MARKET",
                "TRAILING_STOP_MARKET",
            ],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }

    async def _spot_account(self, request: web.Request) -> web.Response:
        await self._params(request, signed=True)
        ex = self.exchange
        now = int(time.time() * 1000)
        assets = sorted(set(ex.free) | set(ex.locked))
        return web.json_response(
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": "0.00100000",
                    "taker": "0.00100000",
                    "buyer": "0.00000000",
                    "seller": "0.00000000",
                },
                "canTrade": True,
                "canWithdraw": False,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": now,
                "accountType": "SPOT",
                "balances": [
                    {
                        "asset": a,
                        "free": _fmt(ex.free.get(a, _ZERO)),
                        "locked": _fmt(ex.locked.get(a, _ZERO)),
                    }
                    for a in assets
                ],
                "permissions": ["SPOT"],
                "uid": 354937868,
            }
        )

    def _position_rows(self) -> list[dict[str, Any]]:
        ex = self.exchange
        now = int(time.time() * 1000)
        rows = []
        for sym, (amt, entry) in sorted(ex.positions.items()):
            mark = ex.symbols[sym].price
            rows.append(
                {
                    "symbol": sym,
                    "positionSide": "BOTH",
                    "positionAmt": str(amt),
                    "entryPrice": str(entry),
                    "breakEvenPrice": str(entry),
                    "markPrice": str(mark),
                    "unRealizedProfit": str((mark - entry) * amt),
                    "liquidationPrice": "0",
                    "isolatedMargin": "0",
                    "notional": str(mark * amt),
                    "marginAsset": "USDT",
                    "isolatedWallet": "0",
                    "initialMargin": str(abs(mark * amt) / ex.leverage),
                    "maintMargin": "0",
                    "positionInitialMargin": str(abs(mark * amt) / ex.leverage),
                    "openOrderInitialMargin": "0",
                    "adl": 0,
                    "bidNotional": "0",
                    "askNotional": "0",
                    "updateTime": now,
                }
            )
        return rows

    async def _futures_account(self, request: web.Request) -> web.Response:
        await self._params(request, signed=True)
        ex = self.exchange
        wallet = ex.free.get("USDT", _ZERO)
        upnl = ex._unrealized()
        avail = ex._available_margin()
        return web.json_response(
            {
                "totalInitialMargin": str(wallet + upnl - avail),
                "totalMaintMargin": "0",
                "totalWalletBalance": str(wallet),
                "totalUnrealizedProfit": str(upnl),
                "totalMarginBalance": str(wallet + upnl),
                "totalPositionInitialMargin": "0",
                "totalOpenOrderInitialMargin": "0",
                "totalCrossWalletBalance": str(wallet),
                "totalCrossUnPnl": str(upnl),
                "availableBalance": str(avail),
                "maxWithdrawAmount": str(avail),
                "assets": [
                    {
                        "asset": "USDT",
                        "walletBalance": str(wallet),
                        "unrealizedProfit": str(upnl),
                        "marginBalance": str(wallet + upnl),
                        "maintMargin": "0",
                        "initialMargin": "0",
                        "positionInitialMargin": "0",
                        "openOrderInitialMargin": "0",
                        "crossWalletBalance": str(wallet),
                        "crossUnPnl": str(upnl),
                        "availableBalance": str(avail),
                        "maxWithdrawAmount": str(avail),
                        "updateTime": int(time.time() * 1000),
                    }
                ],
                "positions": [
                    {
                        "symbol": p["symbol"],
                        "positionSide": "BOTH",
                        "positionAmt": p["positionAmt"],
                        "unrealizedProfit": p["unRealizedProfit"],
                        "isolatedMargin": "0",
                        "notional": p["notional"],
                        "isolatedWallet": "0",
                        "initialMargin": p["initialMargin"],
                        "maintMargin": "0",
                        "updateTime": p["updateTime"],
                    }
                    for p in self._position_rows()
                ],
            }
        )

    async def _leverage_bracket(self, request: web.Request) -> web.Response:
        await self._params(request, signed=True)
        bracket = {
            "bracket": 1,
            "initialLeverage": 125,
            "notionalCap": 50000,
            "notionalFloor": 0,
            "maintMarginRatio": 0.004,
            "cum": 0.0,
        }
        return web.json_response(
            [
                {"symbol": s, "notionalCoef": 1.0, "brackets": [bracket]}
                for s in self.exchange.symbols
            ]
        )

    async def _futures_balance(self, request: web.Request) -> web.Response:
        await self._params(request, signed=True)
        ex = self.exchange
        wallet = ex.free.get("USDT", _ZERO)
        return web.json_response(
            [
                {
                    "accountAlias": "SgsR",
                    "asset": "USDT",
                    "balance": str(wallet),
                    "crossWalletBalance": str(wallet),
                    "crossUnPnl": str(ex._unrealized()),
                    "availableBalance": str(ex._available_margin()),
                    "maxWithdrawAmount": str(ex._available_margin()),
                    "marginAvailable": True,
                    "updateTime": int(time.time() * 1000),
                }
            ]
        )

    async def _futures_positions(self, request: web.Request) -> web.Response:
        p = await self._params(request, signed=True)
        rows = self._position_rows()
        if p.get("symbol"):
            rows = [r for r in rows if r["symbol"] == p["symbol"]]
        return web.json_response(rows)

    def _order_json(self, o: VenueOrder) -> dict[str, Any]:
        """An order as ``GET /order`` and ``openOrders`` show it."""
        if self.market_type == "spot":
            return {
                "symbol": o.spec.symbol,
                "orderId": o.order_id,
                "orderListId": -1,
                "clientOrderId": o.client_order_id,
                "price": _fmt(o.price),
                "origQty": _fmt(o.qty),
                "executedQty": _fmt(o.executed),
                "cummulativeQuoteQty": _fmt(o.cum_quote),
                "status": o.status,
                "timeInForce": o.tif,
                "type": o.type,
                "side": o.side,
                "stopPrice": _fmt(o.stop_price),
                "icebergQty": _fmt(_ZERO),
                "time": o.time,
                "updateTime": o.update_time,
                "isWorking": o.type in ("LIMIT", "MARKET") or o.core.stop_reached,
                "workingTime": o.time,
                "origQuoteOrderQty": _fmt(_ZERO),
                "selfTradePreventionMode": "EXPIRE_MAKER",
            }
        return {
            "avgPrice": str(o.avg_price),
            "clientOrderId": o.client_order_id,
            "cumQuote": str(o.cum_quote),
            "cumQty": str(o.executed),
            "executedQty": str(o.executed),
            "orderId": o.order_id,
            "origQty": str(o.qty),
            "origType": o.type,
            "price": str(o.price),
            "reduceOnly": o.reduce_only,
            "side": o.side,
            "positionSide": "BOTH",
            "status": o.status,
            "stopPrice": str(o.stop_price),
            "closePosition": False,
            "symbol": o.spec.symbol,
            "time": o.time,
            "timeInForce": o.tif,
            "type": o.type,
            "updateTime": o.update_time,
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_TAKER",
            "goodTillDate": 0,
        }

    async def _order_new(self, request: web.Request) -> web.Response:
        p = await self._params(request, signed=True)
        if (p.get("newOrderRespType") or "ACK").upper() not in ("ACK", "RESULT", "FULL"):
            raise VenueError(
                400, -1100, "Illegal characters found in parameter 'newOrderRespType'."
            )
        order = self.exchange.new_order(p)
        if self.market_type != "spot":
            return web.json_response(self._order_json(order))
        return web.json_response(self._spot_new_order_json(order, p.get("newOrderRespType")))

    def _spot_new_order_json(self, o: VenueOrder, resp_type: str | None) -> dict[str, Any]:
        """``POST /api/v3/order``'s answer in the documented ACK / RESULT / FULL shape."""
        # Binance: MARKET and LIMIT answer FULL by default, every other type ACK.
        kind = (resp_type or ("FULL" if o.type in ("MARKET", "LIMIT") else "ACK")).upper()
        out: dict[str, Any] = {
            "symbol": o.spec.symbol,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_order_id,
            "transactTime": o.time,
        }
        if kind == "ACK":
            return out
        out.update(
            {
                "price": _fmt(o.price),
                "origQty": _fmt(o.qty),
                "executedQty": _fmt(o.executed),
                "origQuoteOrderQty": _fmt(_ZERO),
                "cummulativeQuoteQty": _fmt(o.cum_quote),
                "status": o.status,
                "timeInForce": o.tif,
                "type": o.type,
                "side": o.side,
                "workingTime": o.time if o.type in ("LIMIT", "MARKET") else -1,
                "selfTradePreventionMode": "EXPIRE_MAKER",
            }
        )
        if o.stop_price:
            out["stopPrice"] = _fmt(o.stop_price)
        if kind == "FULL":
            out["fills"] = [
                {
                    "price": _fmt(t.price),
                    "qty": _fmt(t.qty),
                    "commission": _fmt(t.commission),
                    "commissionAsset": t.commission_asset,
                    "tradeId": t.trade_id,
                }
                for t in self.exchange.trades
                if t.order_id == o.order_id
            ]
        return out

    async def _order_get(self, request: web.Request) -> web.Response:
        p = await self._params(request, signed=True)
        spec = self.exchange.spec(p.get("symbol"))
        order = self.exchange.find(spec.symbol, p.get("orderId"), p.get("origClientOrderId"))
        return web.json_response(self._order_json(order))

    async def _order_cancel(self, request: web.Request) -> web.Response:
        p = await self._params(request, signed=True)
        order = self.exchange.cancel(
            p.get("symbol") or "",
            p.get("orderId"),
            p.get("origClientOrderId"),
            p.get("newClientOrderId") if self.market_type == "spot" else None,
        )
        out = self._order_json(order)
        if self.market_type == "spot":
            out["origClientOrderId"] = order.client_order_id
            out["clientOrderId"] = order.cancel_client_id
            out["transactTime"] = order.update_time
        return web.json_response(out)

    async def _open_orders(self, request: web.Request) -> web.Response:
        p = await self._params(request, signed=True)
        symbol = p.get("symbol") or None
        if symbol:
            self.exchange.spec(symbol)
        return web.json_response([self._order_json(o) for o in self.exchange.open_orders(symbol)])

    async def _all_orders(self, request: web.Request) -> web.Response:
        """``GET /api/v3/allOrders`` (spot) and ``/fapi/v1/allOrders`` (USDⓈ-M): the
        account's orders of one symbol (active, canceled or filled), oldest first; from
        ``orderId`` on when given, else the most recent ``limit`` (default 500, max 1000),
        as Binance documents."""
        p = await self._params(request, signed=True)
        spec = self.exchange.spec(p.get("symbol"))
        orders = sorted(
            (o for o in self.exchange.orders.values() if o.spec.symbol == spec.symbol),
            key=lambda o: o.order_id,
        )
        if p.get("startTime"):
            orders = [o for o in orders if o.time >= int(p["startTime"])]
        if p.get("endTime"):
            orders = [o for o in orders if o.time <= int(p["endTime"])]
        limit = min(int(p.get("limit") or 500), 1000)
        if p.get("orderId"):
            orders = [o for o in orders if o.order_id >= int(p["orderId"])][:limit]
        else:
            orders = orders[-limit:]
        return web.json_response([self._order_json(o) for o in orders])

    async def _my_trades(self, request: web.Request) -> web.Response:
        p = await self._params(request, signed=True)
        spec = self.exchange.spec(p.get("symbol"))
        trades: list[VenueTrade] = [t for t in self.exchange.trades if t.symbol == spec.symbol]
        if p.get("orderId"):
            trades = [t for t in trades if str(t.order_id) == p["orderId"]]
        if p.get("fromId"):
            trades = [t for t in trades if t.trade_id >= int(p["fromId"])]
        if p.get("startTime"):
            trades = [t for t in trades if t.time >= int(p["startTime"])]
        limit = min(int(p.get("limit") or 500), 1000)
        trades = trades[:limit]
        if self.market_type == "spot":
            rows = [
                {
                    "symbol": t.symbol,
                    "id": t.trade_id,
                    "orderId": t.order_id,
                    "orderListId": -1,
                    "price": _fmt(t.price),
                    "qty": _fmt(t.qty),
                    "quoteQty": _fmt(t.qty * t.price),
                    "commission": _fmt(t.commission),
                    "commissionAsset": t.commission_asset,
                    "time": t.time,
                    "isBuyer": t.side == "BUY",
                    "isMaker": t.maker,
                    "isBestMatch": True,
                }
                for t in trades
            ]
        else:
            rows = [
                {
                    "buyer": t.side == "BUY",
                    "commission": str(t.commission),
                    "commissionAsset": t.commission_asset,
                    "id": t.trade_id,
                    "maker": t.maker,
                    "orderId": t.order_id,
                    "price": str(t.price),
                    "qty": str(t.qty),
                    "quoteQty": str(t.qty * t.price),
                    "realizedPnl": str(t.realized_pnl),
                    "side": t.side,
                    "positionSide": "BOTH",
                    "symbol": t.symbol,
                    "time": t.time,
                }
                for t in trades
            ]
        return web.json_response(rows)

    async def _klines_route(self, request: web.Request) -> web.Response:
        p = await self._params(request, signed=False)
        spec = self.exchange.spec(p.get("symbol"))
        if p.get("interval") != "1m":
            raise VenueError(400, -1120, "Invalid interval.")
        rows = self._klines[spec.symbol]
        if p.get("startTime"):
            rows = [k for k in rows if k[0] >= int(p["startTime"])]
        limit = min(int(p.get("limit") or 500), 1000)
        return web.json_response(rows[-limit:] if not p.get("startTime") else rows[:limit])

    async def _ticker(self, request: web.Request) -> web.Response:
        p = await self._params(request, signed=False)
        spec = self.exchange.spec(p.get("symbol"))
        body: dict[str, Any] = {"symbol": spec.symbol, "price": _fmt(spec.price)}
        if self.market_type == "futures":
            body["time"] = int(time.time() * 1000)
        return web.json_response(body)

    # --- futures listenKey ---
    async def _listen_key_new(self, request: web.Request) -> web.Response:
        # Binance: an account has one listenKey; asking again returns the active one
        # (and extends it) rather than minting a second.
        self._api_key_only(request)
        if not self._listen_keys:
            self._listen_keys.add(secrets.token_hex(32))
        return web.json_response({"listenKey": next(iter(self._listen_keys))})

    async def _listen_key_keep(self, request: web.Request) -> web.Response:
        self._api_key_only(request)
        if not self._listen_keys:
            raise VenueError(400, -1125, "This listenKey does not exist.")
        return web.json_response({"listenKey": next(iter(self._listen_keys))})

    async def _listen_key_delete(self, request: web.Request) -> web.Response:
        # Closing the key closes its stream.
        self._api_key_only(request)
        self._listen_keys.clear()
        if self.market_type == "futures":
            for ws in list(self._streams):
                self._streams.discard(ws)
                await ws.close()
        return web.json_response({})

    def _api_key_only(self, request: web.Request) -> None:
        key = request.headers.get("X-MBX-APIKEY")
        if key != self.api_key:
            raise VenueError(401, -2015, "Invalid API-key, IP, or permissions for action.")

    async def _listen_stream(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info.get("key") or request.query.get("listenKey", "")
        if key not in self._listen_keys:
            return _err(400, -1125, "This listenKey does not exist.")
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._streams.add(ws)
        try:
            async for _msg in ws:
                pass
        finally:
            self._streams.discard(ws)
        return ws

    # --- spot WebSocket API ---
    async def _ws_api(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._ws_api_request(ws, msg.data)
        finally:
            self._streams.discard(ws)
        return ws

    async def _ws_api_request(self, ws: web.WebSocketResponse, text: str) -> None:
        limits = [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.weight_limit,
                "count": 2,
            }
        ]
        try:
            req = json.loads(text)
            rid = req.get("id")
            method = req["method"]
            params = dict(req.get("params") or {})
        except (ValueError, KeyError, AttributeError, TypeError):
            await ws.send_json(
                {
                    "id": None,
                    "status": 400,
                    "error": {"code": -1000, "msg": "Invalid JSON request."},
                }
            )
            return

        def error(status: int, code: int, msg: str) -> dict[str, Any]:
            return {
                "id": rid,
                "status": status,
                "error": {"code": code, "msg": msg},
                "rateLimits": limits,
            }

        if method == "ping":
            await ws.send_json({"id": rid, "status": 200, "result": {}, "rateLimits": limits})
        elif method == "time":
            await ws.send_json(
                {
                    "id": rid,
                    "status": 200,
                    "result": {"serverTime": int(time.time() * 1000)},
                    "rateLimits": limits,
                }
            )
        elif method == "userDataStream.subscribe.signature":
            if params.get("apiKey") != self.api_key:
                await ws.send_json(
                    error(401, -2015, "Invalid API-key, IP, or permissions for action.")
                )
                return
            sig = str(params.pop("signature", ""))
            payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
            try:
                self._check_signature(
                    {**{k: str(v) for k, v in params.items()}, "signature": sig}, payload
                )
            except VenueError as exc:
                await ws.send_json(error(exc.status, exc.code, exc.msg))
                return
            sub = next(self._sub_ids)
            ws._fake_sub = sub  # type: ignore[attr-defined]
            self._streams.add(ws)
            await ws.send_json(
                {"id": rid, "status": 200, "result": {"subscriptionId": sub}, "rateLimits": limits}
            )
        elif method == "userDataStream.unsubscribe":
            self._streams.discard(ws)
            await ws.send_json({"id": rid, "status": 200, "result": {}, "rateLimits": limits})
        else:
            await ws.send_json(error(400, -1100, f"Unknown method '{method}'."))

    # --- admin ---
    async def _admin_fault(self, request: web.Request) -> web.Response:
        try:
            self.faults.apply(await request.json())
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _admin_bar(self, request: web.Request) -> web.Response:
        b = await request.json()
        try:
            self.push_bar(b["symbol"], b["open"], b["high"], b["low"], b["close"], b.get("volume"))
        except (KeyError, ArithmeticError) as exc:
            return web.json_response({"error": f"bad bar: {exc}"}, status=400)
        except VenueError as exc:
            return _err(exc.status, exc.code, exc.msg)
        return web.json_response({"ok": True})

    async def _admin_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    def state(self) -> dict[str, Any]:
        """The venue's books as JSON (for tests and harnesses in another process)."""
        ex = self.exchange
        return {
            "market_type": self.market_type,
            "received": list(ex.received),
            "balances": {a: str(v) for a, v in ex.free.items()},
            "locked": {a: str(v) for a, v in ex.locked.items()},
            "positions": {s: [str(a), str(e)] for s, (a, e) in ex.positions.items()},
            "prices": {s: str(sp.price) for s, sp in ex.symbols.items()},
            "orders": [
                {
                    "orderId": o.order_id,
                    "clientOrderId": o.client_order_id,
                    "symbol": o.spec.symbol,
                    "side": o.side,
                    "status": o.status,
                    "origQty": str(o.qty),
                    "executedQty": str(o.executed),
                }
                for o in ex.orders.values()
            ],
            "trades": len(ex.trades),
        }


async def serve(
    port: int, *, interval: float = 1.0, seed: int = 0, market_type: str = "spot"
) -> None:
    """Run a fake Binance on 127.0.0.1:``port`` until cancelled (``rustybt venue serve``):
    its public market stream (``/ws``, ``/stream``) makes seeded random-walk trades and
    closes one kline per symbol every ``interval`` seconds; each closed kline is the bar
    resting orders match against and what ``/api/v3/klines`` serves."""
    import sys

    if market_type not in ("spot", "futures"):
        raise ValueError(f"market_type must be 'spot' or 'futures', got {market_type!r}")
    from rustybt.testing.venues.binance.market_stream import attach

    fake = FakeBinance(market_type, port=port)
    # The public market stream on the same port; its closed bars are the venue's bars.
    attach(fake, bar_seconds=interval, seed=seed)
    await fake.start()
    print(
        f"fake Binance {market_type} on {fake.base_url} (ws {fake.ws_url}, market stream "
        f"{fake.ws_url}/ws, one kline every {interval:g} s); key "
        f"{DEFAULT_API_KEY!r} secret {DEFAULT_API_SECRET!r}; Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def _strip_signature(raw: str) -> str:
    """``raw`` without its ``signature=`` parameter (what Binance signs)."""
    if not raw:
        return ""
    parts = [p for p in raw.split("&") if not p.startswith("signature=")]
    return "&".join(parts)
