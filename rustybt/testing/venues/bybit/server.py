"""The fake Bybit server: Bybit's v5 REST paths and private websocket on 127.0.0.1.

:class:`FakeBybit` serves one category (``linear`` USDT perpetuals or ``spot``) of a
unified trading account over a real aiohttp server, in Bybit's documented formats:

* Every REST answer is the v5 envelope ``{"retCode", "retMsg", "result", "retExtInfo",
  "time"}``; errors are HTTP 200 with Bybit's retCodes (10001 params, 10002 timestamp,
  10003 API key, 10004 signature, 10006 rate limit, 110001 order not exists, 110007 /
  170131 insufficient balance, 110072 duplicate orderLinkId, 110094 order value...).
* Signed endpoints check ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP`` within
  ``X-BAPI-RECV-WINDOW`` and ``X-BAPI-SIGN`` = HMAC-SHA256(secret, timestamp + key +
  recv_window + query string (GET) or JSON body (POST)).
* Routes: ``/v5/market/time``, ``/v5/market/instruments-info``, ``/v5/market/kline``,
  ``/v5/asset/coin/query-info``, ``/v5/order/create``, ``/v5/order/cancel``,
  ``/v5/order/realtime``, ``/v5/order/history``, ``/v5/execution/list``,
  ``/v5/account/wallet-balance``, ``/v5/position/list``.
* Private websocket ``/v5/private``: ``{"op": "auth", "args": [key, expires, sign]}``
  (sign = HMAC-SHA256 of ``"GET/realtime" + expires``), ``subscribe`` to ``order`` /
  ``execution`` / ``wallet`` / ``position``, ``ping``; pushes ``{"id", "topic",
  "creationTime", "data": [...]}``.
* Admin (not Bybit): ``POST /_fake/fault``, ``POST /_fake/bar``, ``GET /_fake/state``.

Matching, accounts and instrument rules are the shared fake exchange's
(:class:`~rustybt.testing.venues.binance.exchange.FakeExchange`, which runs the kernel's
fill rules); this module translates Bybit requests into it and its results into
Bybit's wire format. Lifecycle, fault injection (the shared :class:`Faults`) and the
admin routes are the shared :class:`~rustybt.testing.venues.aiohttp_venue.AiohttpVenue`'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from rustybt.testing.venues.aiohttp_venue import AiohttpVenue
from rustybt.testing.venues.binance.exchange import (
    DEFAULT_SYMBOLS,
    FakeExchange,
    SymbolSpec,
    VenueError,
    VenueOrder,
    VenueTrade,
)

_ZERO = Decimal(0)
DEFAULT_API_KEY = "fake-bybit-key"
DEFAULT_API_SECRET = "fake-bybit-secret"

_STATUS = {
    "NEW": "New",
    "PARTIALLY_FILLED": "PartiallyFilled",
    "FILLED": "Filled",
    "CANCELED": "Cancelled",
    "EXPIRED": "Cancelled",
    "REJECTED": "Rejected",
}


class BybitError(Exception):
    """A Bybit error answer: HTTP 200 with ``retCode`` / ``retMsg``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _now_ms() -> int:
    return int(time.time() * 1000)


def _envelope(result: Any, code: int = 0, msg: str = "OK") -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": _now_ms()}


def _s(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value else "0"
    return text


class FakeBybit(AiohttpVenue):
    """One fake Bybit venue (one category) on ``127.0.0.1``; ``base_url``/``ws_url`` are
    what an adapter's ``base_url=``/``ws_url=`` take."""

    def __init__(
        self,
        category: str = "linear",
        *,
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        symbols: Iterable[SymbolSpec] = DEFAULT_SYMBOLS,
        balances: dict[str, Decimal] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self._init_venue(host, port)
        if category not in ("linear", "spot"):
            raise ValueError(f"category must be 'linear' or 'spot', got {category!r}")
        self.category = category
        self.exchange = FakeExchange(
            "futures" if category == "linear" else "spot", tuple(symbols), balances
        )
        self.exchange.on_event = self._on_exchange_event
        self.api_key = api_key
        self._secret = api_secret.encode()
        self._klines: dict[str, list[list[str]]] = {s: [] for s in self.exchange.symbols}
        self._exec_ids: dict[int, str] = {}  # trade id -> execId
        self.requests: list[str] = []  # "METHOD path" of every REST request, for tests
        self.ws_ops: list[str] = []  # every private websocket op received, for tests
        self.market_stream: Any = None  # market_stream.attach(self): the public stream
        self.app = self._build_app()

    def exec_id(self, trade: VenueTrade) -> str:
        """Bybit's execId (a UUID) for one of the exchange's trades."""
        eid = self._exec_ids.get(trade.trade_id)
        if eid is None:
            eid = str(uuid.uuid5(uuid.NAMESPACE_OID, f"bybit-exec-{trade.trade_id}"))
            self._exec_ids[trade.trade_id] = eid
        return eid

    def fill_ids(self) -> list[str]:
        """The execId of every trade the venue made (what the adapter's fill ids are)."""
        return [self.exec_id(t) for t in self.exchange.trades]

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
        """A new one-minute bar: resting orders match against it; klines record it
        (opening at ``start_ms``; by default the minute that just ended)."""
        o, h, lo, c = (Decimal(str(x)) for x in (open_, high, low, close))
        vol = Decimal(str(volume)) if volume is not None else None
        self.exchange.push_bar(symbol, o, h, lo, c, vol)
        spec = self.exchange.symbols[symbol]
        v = vol if vol is not None else spec.liquidity
        # one row per pushed bar (the fake's minute is as long as its bar interval)
        start = _now_ms() - 60_000 if start_ms is None else start_ms
        rows = self._klines[symbol]
        rows.append([str(start), _s(o), _s(h), _s(lo), _s(c), _s(v), _s(v * c)])
        del rows[:-1000]

    # --- rows in Bybit's layout ---
    def _order_row(self, o: VenueOrder) -> dict[str, Any]:
        status = _STATUS.get(o.status, "New")
        if o.status in ("CANCELED", "EXPIRED") and o.executed > 0:
            status = "PartiallyFilledCanceled"
        market = o.type == "MARKET"
        return {
            "orderId": str(o.order_id),
            "orderLinkId": o.client_order_id,
            "blockTradeId": "",
            "symbol": o.spec.symbol,
            "price": _s(o.price),
            "qty": _s(o.qty),
            "side": "Buy" if o.side == "BUY" else "Sell",
            "isLeverage": "",
            "positionIdx": 0,
            "orderStatus": status,
            "cancelType": "CancelByUser" if o.status == "CANCELED" else "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": _s(o.avg_price) if o.executed else "",
            "leavesQty": _s(o.qty - o.executed if o.is_open else _ZERO),
            "leavesValue": _s((o.qty - o.executed) * o.price if o.is_open else _ZERO),
            "cumExecQty": _s(o.executed),
            "cumExecValue": _s(o.cum_quote),
            "cumExecFee": _s(
                sum((t.commission for t in self.exchange.trades if t.order_id == o.order_id), _ZERO)
            ),
            "timeInForce": "IOC" if market else {"GTC": "GTC"}.get(o.tif, o.tif),
            "orderType": "Market" if market else "Limit",
            "stopOrderType": "",
            "orderIv": "",
            "triggerPrice": "",
            "takeProfit": "",
            "stopLoss": "",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": _s(o.spec.price),
            "reduceOnly": o.reduce_only,
            "closeOnTrigger": False,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "createdTime": str(o.time),
            "updatedTime": str(o.update_time),
            "category": self.category,
        }

    def _exec_row(self, t: VenueTrade) -> dict[str, Any]:
        o = self.exchange.orders[t.order_id]
        row = {
            "category": self.category,
            "symbol": t.symbol,
            "execFee": _s(t.commission),
            "execId": self.exec_id(t),
            "execPrice": _s(t.price),
            "execQty": _s(t.qty),
            "execType": "Trade",
            "execValue": _s(t.qty * t.price),
            "isMaker": t.maker,
            "feeRate": _s(self.exchange.taker_fee),
            "tradeIv": "",
            "markIv": "",
            "blockTradeId": "",
            "markPrice": _s(o.spec.price),
            "indexPrice": "",
            "underlyingPrice": "",
            "leavesQty": _s(o.qty - self._executed_through(o, t)),
            "orderId": str(o.order_id),
            "orderLinkId": o.client_order_id,
            "orderPrice": _s(o.price),
            "orderQty": _s(o.qty),
            "orderType": "Market" if o.type == "MARKET" else "Limit",
            "stopOrderType": "UNKNOWN",
            "side": "Buy" if t.side == "BUY" else "Sell",
            "execTime": str(t.time),
            "isLeverage": "0",
            "closedSize": "",
            "seq": t.trade_id,
        }
        if self.category == "spot":
            row["feeCurrency"] = t.commission_asset
        return row

    def _executed_through(self, o: VenueOrder, t: VenueTrade) -> Decimal:
        done = _ZERO
        for tid in o.trades:
            trade = next(x for x in self.exchange.trades if x.trade_id == tid)
            done += trade.qty
            if tid == t.trade_id:
                break
        return done

    # --- streams ---
    def _on_exchange_event(self, event: dict[str, Any]) -> None:
        body = event.get("o") if event.get("e") == "ORDER_TRADE_UPDATE" else event
        if event.get("e") not in ("ORDER_TRADE_UPDATE", "executionReport"):
            self._publish("wallet", self._wallet_row())
            if self.category == "linear":
                for row in self._position_rows():
                    self._publish("position", row)
            return
        order = self.exchange.orders.get(int(body["i"]))
        if order is None:
            return
        if body.get("x") == "TRADE":
            trade = next(t for t in self.exchange.trades if t.trade_id == int(body["t"]))
            self._publish("execution", self._exec_row(trade))
        self._publish("order", self._order_row(order))

    def frame(self, channel: str, data: Any) -> str:
        return json.dumps(
            {"id": uuid.uuid4().hex, "topic": channel, "creationTime": _now_ms(), "data": [data]}
        )

    # --- app ---
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        self._admin_routes(r)
        r.add_get("/v5/market/time", self._time)
        r.add_get("/v5/market/instruments-info", self._instruments)
        r.add_get("/v5/market/kline", self._kline)
        r.add_get("/v5/asset/coin/query-info", self._coin_info)
        r.add_post("/v5/order/create", self._order_create)
        r.add_post("/v5/order/cancel", self._order_cancel)
        r.add_get("/v5/order/realtime", self._order_realtime)
        r.add_get("/v5/order/history", self._order_history)
        r.add_get("/v5/execution/list", self._executions)
        r.add_get("/v5/account/wallet-balance", self._wallet)
        r.add_get("/v5/position/list", self._positions)
        r.add_get("/v5/private", self._private_ws)
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
            return web.Response(status=rule.status, text="<html>503 Service Unavailable</html>")
        if rule is not None and rule.kind == "429":
            if rule.status == 418:
                # Bybit's IP limit: HTTP 403 "access too frequent"
                return web.Response(status=403, text="access too frequent")
            reset = _now_ms() + int(rule.seconds * 1000)
            return web.json_response(
                _envelope({}, 10006, "Too many visits. Exceeded the API Rate Limit."),
                headers={
                    "X-Bapi-Limit-Status": "0",
                    "X-Bapi-Limit": "10",
                    "X-Bapi-Limit-Reset-Timestamp": str(reset),
                },
            )
        try:
            response = await handler(request)
        except BybitError as exc:
            response = web.json_response(_envelope({}, exc.code, exc.msg))
        if rule is not None and rule.kind == "timeout":
            await asyncio.sleep(rule.seconds)  # processed, then the answer comes too late
        return response

    # --- auth ---
    async def _params(self, request: web.Request, signed: bool) -> dict[str, Any]:
        query = request.query_string
        body = (await request.text()) if request.can_read_body else ""
        params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                raise BybitError(10001, "params error: request body is not JSON") from None
            if not isinstance(parsed, dict):
                raise BybitError(10001, "params error: request body must be a JSON object")
            params.update(parsed)
        if signed:
            self._check_signature(request, query if request.method == "GET" else body)
        return params

    def _check_signature(self, request: web.Request, payload: str) -> None:
        h = request.headers
        key = h.get("X-BAPI-API-KEY")
        ts = h.get("X-BAPI-TIMESTAMP")
        sign = h.get("X-BAPI-SIGN")
        window = h.get("X-BAPI-RECV-WINDOW", "5000")
        if not key or key != self.api_key:
            raise BybitError(10003, "API key is invalid.")
        try:
            ts_ms, window_ms = int(ts or ""), int(window)
        except ValueError:
            raise BybitError(10002, "invalid request, please check your timestamp") from None
        now = _now_ms()
        if ts_ms > now + 1000 or now - ts_ms > window_ms:
            raise BybitError(
                10002,
                f"invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{ts_ms}],server_timestamp[{now}],recv_window[{window_ms}]",
            )
        want = hmac.new(
            self._secret, f"{ts_ms}{key}{window}{payload}".encode(), hashlib.sha256
        ).hexdigest()
        if not sign or not hmac.compare_digest(want, sign.lower()):
            raise BybitError(10004, "error sign! origin_string[...]")

    def _category(self, params: dict[str, Any]) -> str:
        cat = params.get("category")
        if cat != self.category:
            raise BybitError(10001, f"params error: category {cat!r} is not served here")
        return cat

    def _spec(self, params: dict[str, Any], required: bool = True) -> SymbolSpec | None:
        sym = params.get("symbol")
        if not sym:
            if required:
                raise BybitError(10001, "params error: symbol invalid")
            return None
        spec = self.exchange.symbols.get(str(sym))
        if spec is None:
            raise BybitError(10001, "params error: symbol invalid")
        return spec

    # --- REST handlers ---
    async def _time(self, request: web.Request) -> web.Response:
        now = time.time_ns()
        return web.json_response(_envelope({"timeSecond": str(now // 10**9), "timeNano": str(now)}))

    async def _instruments(self, request: web.Request) -> web.Response:
        params = await self._params(request, signed=False)
        cat = params.get("category")
        rows = (
            []
            if cat != self.category
            else [self._instrument(s) for s in self.exchange.symbols.values()]
        )
        return web.json_response(
            _envelope({"category": cat or "", "list": rows, "nextPageCursor": ""})
        )

    def _instrument(self, s: SymbolSpec) -> dict[str, Any]:
        if self.category == "spot":
            return {
                "symbol": s.symbol,
                "baseCoin": s.base,
                "quoteCoin": s.quote,
                "innovation": "0",
                "status": "Trading",
                "marginTrading": "none",
                "stTag": "0",
                "lotSizeFilter": {
                    "basePrecision": _s(s.step_size),
                    "quotePrecision": "0.00000001",
                    "minOrderQty": _s(s.min_qty),
                    "maxOrderQty": _s(s.max_qty),
                    "minOrderAmt": _s(s.min_notional),
                    "maxOrderAmt": "2000000",
                },
                "priceFilter": {"tickSize": _s(s.tick_size)},
                "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
            }
        return {
            "symbol": s.symbol,
            "contractType": "LinearPerpetual",
            "status": "Trading",
            "baseCoin": s.base,
            "quoteCoin": s.quote,
            "launchTime": "1585526400000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": str(max(0, -s.tick_size.normalize().as_tuple().exponent)),
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {
                "minPrice": _s(s.min_price),
                "maxPrice": _s(s.max_price),
                "tickSize": _s(s.tick_size),
            },
            "lotSizeFilter": {
                "maxOrderQty": _s(s.max_qty),
                "minOrderQty": _s(s.min_qty),
                "qtyStep": _s(s.step_size),
                "postOnlyMaxOrderQty": _s(s.max_qty),
                "maxMktOrderQty": _s(s.max_qty),
                "minNotionalValue": _s(s.min_notional),
            },
            "unifiedMarginTrade": True,
            "fundingInterval": 480,
            "settleCoin": s.quote,
            "copyTrading": "both",
            "upperFundingRate": "0.00375",
            "lowerFundingRate": "-0.00375",
            "isPreListing": False,
            "preListingInfo": None,
        }

    async def _kline(self, request: web.Request) -> web.Response:
        params = await self._params(request, signed=False)
        spec = self._spec(params)
        assert spec is not None
        try:
            limit = min(1000, int(params.get("limit", 200)))
        except ValueError:
            raise BybitError(10001, "params error: limit invalid") from None
        try:
            first = int(params.get("start", 0))
            last = int(params.get("end", 2**62))
        except ValueError:
            raise BybitError(10001, "params error: start/end invalid") from None
        rows = [r for r in self._klines[spec.symbol] if first <= int(r[0]) <= last]
        rows = list(reversed(rows[-limit:]))  # newest first, as Bybit
        return web.json_response(
            _envelope({"category": params.get("category"), "symbol": spec.symbol, "list": rows})
        )

    async def _coin_info(self, request: web.Request) -> web.Response:
        await self._params(request, signed=True)
        coins = sorted({c for s in self.exchange.symbols.values() for c in (s.base, s.quote)})
        rows = [{"name": c, "coin": c, "remainAmount": "1000000", "chains": []} for c in coins]
        return web.json_response(_envelope({"rows": rows}))

    async def _order_create(self, request: web.Request) -> web.Response:
        params = await self._params(request, signed=True)
        self._category(params)
        spec = self._spec(params)
        assert spec is not None
        side = params.get("side")
        if side not in ("Buy", "Sell"):
            raise BybitError(10001, "params error: side invalid")
        otype = params.get("orderType")
        if otype not in ("Market", "Limit"):
            raise BybitError(10001, "params error: orderType invalid")
        link = str(params.get("orderLinkId") or "")
        if len(link) > 36:
            raise BybitError(10001, "params error: orderLinkId is too long (max 36)")
        if link and self.exchange.by_client.get((spec.symbol, link)) is not None:
            raise BybitError(110072, "OrderLinkedID is duplicate")
        qty = str(params.get("qty") or "")
        unit = params.get("marketUnit") or ("quoteCoin" if side == "Buy" else "baseCoin")
        if self.category == "spot" and otype == "Market" and unit == "quoteCoin":
            # Bybit: a spot market Buy's qty is quote coin by default; buy what it pays for
            try:
                qty = str((Decimal(qty) / spec.price // spec.step_size) * spec.step_size)
            except ArithmeticError:
                raise BybitError(170130, "Data sent for paramter 'qty' is not valid.") from None
        p = {
            "symbol": spec.symbol,
            "side": side.upper(),
            "type": otype.upper(),
            "quantity": qty,
            "newClientOrderId": link,
        }
        if otype == "Limit":
            p["price"] = str(params.get("price") or "")
            p["timeInForce"] = str(params.get("timeInForce") or "GTC").upper()
            if p["timeInForce"] not in ("GTC", "IOC", "FOK"):
                raise BybitError(10001, "params error: timeInForce invalid")
        if params.get("reduceOnly") in (True, "true"):
            p["reduceOnly"] = "true"
        try:
            order = self.exchange.new_order(p)
        except VenueError as exc:
            raise self._translate(exc) from None
        return web.json_response(
            _envelope({"orderId": str(order.order_id), "orderLinkId": order.client_order_id})
        )

    def _translate(self, exc: VenueError) -> BybitError:
        spot = self.category == "spot"
        if exc.code in (-2019,) or (exc.code == -2010 and "insufficient" in exc.msg.lower()):
            if spot:
                return BybitError(170131, "Insufficient balance.")
            return BybitError(110007, "ab not enough for new order")
        if exc.code in (-2013, -2011):
            if spot:
                return BybitError(170213, "Order does not exist.")
            return BybitError(110001, "order not exists or too late to cancel")
        if exc.code in (-4164,) or "NOTIONAL" in exc.msg:
            return BybitError(110094, "Order does not meet minimum order value")
        if exc.code in (-4014,) or "PRICE_FILTER" in exc.msg:
            return BybitError(10001, "params error: price invalid (not a multiple of tickSize)")
        if exc.code in (-1111,) or "LOT_SIZE" in exc.msg:
            return BybitError(10001, "params error: Qty invalid (not a multiple of qtyStep)")
        if exc.code == -1121:
            return BybitError(10001, "params error: symbol invalid")
        return BybitError(10001, f"params error: {exc.msg}")

    def _find(self, spec: SymbolSpec, params: dict[str, Any]) -> VenueOrder | None:
        oid = params.get("orderId")
        link = params.get("orderLinkId")
        if oid:
            try:
                order = self.exchange.orders.get(int(oid))
            except ValueError:
                return None
        elif link:
            key = self.exchange.by_client.get((spec.symbol, str(link)))
            order = self.exchange.orders.get(key) if key is not None else None
        else:
            raise BybitError(10001, "params error: orderId or orderLinkId is required")
        if order is None or order.spec.symbol != spec.symbol:
            return None
        return order

    async def _order_cancel(self, request: web.Request) -> web.Response:
        params = await self._params(request, signed=True)
        self._category(params)
        spec = self._spec(params)
        assert spec is not None
        order = self._find(spec, params)
        if order is None or not order.is_open:
            raise self._translate(VenueError(400, -2011, "Unknown order sent."))
        self.exchange.cancel(spec.symbol, str(order.order_id), None)
        return web.json_response(
            _envelope({"orderId": str(order.order_id), "orderLinkId": order.client_order_id})
        )

    async def _order_realtime(self, request: web.Request) -> web.Response:
        params = await self._params(request, signed=True)
        self._category(params)
        spec = self._spec(params, required=False)
        if (
            spec is None
            and self.category == "linear"
            and not (params.get("settleCoin") or params.get("baseCoin"))
        ):
            raise BybitError(10001, "params error: symbol, settleCoin or baseCoin is required")
        include_closed = str(params.get("openOnly", "0")) == "1"
        orders = [
            o
            for o in self.exchange.orders.values()
            if (spec is None or o.spec.symbol == spec.symbol) and (o.is_open or include_closed)
        ]
        if spec is not None and (params.get("orderId") or params.get("orderLinkId")):
            found = self._find(spec, params)
            orders = [o for o in orders if o is found]
        rows = [self._order_row(o) for o in sorted(orders, key=lambda o: -o.order_id)]
        return web.json_response(
            _envelope({"category": self.category, "list": rows[:50], "nextPageCursor": ""})
        )

    async def _order_history(self, request: web.Request) -> web.Response:
        params = await self._params(request, signed=True)
        self._category(params)
        spec = self._spec(params, required=False)
        orders = [
            o
            for o in self.exchange.orders.values()
            if not o.is_open and (spec is None or o.spec.symbol == spec.symbol)
        ]
        if spec is not None and (params.get("orderId") or params.get("orderLinkId")):
            found = self._find(spec, params)
            orders = [o for o in orders if o is found]
        rows = [self._order_row(o) for o in sorted(orders, key=lambda o: -o.order_id)]
        return web.json_response(
            _envelope({"category": self.category, "list": rows[:50], "nextPageCursor": ""})
        )

    async def _executions(self, request: web.Request) -> web.Response:
        params = await self._params(request, signed=True)
        self._category(params)
        spec = self._spec(params, required=False)
        oid = params.get("orderId")
        trades = [
            t
            for t in self.exchange.trades
            if (spec is None or t.symbol == spec.symbol)
            and (not oid or str(t.order_id) == str(oid))
        ]
        rows = [self._exec_row(t) for t in reversed(trades)]
        return web.json_response(
            _envelope({"category": self.category, "list": rows[:100], "nextPageCursor": ""})
        )

    def _wallet_row(self) -> dict[str, Any]:
        ex = self.exchange
        coins = []
        for c in sorted(set(ex.free) | set(ex.locked)):
            total = ex.free.get(c, _ZERO) + ex.locked.get(c, _ZERO)
            coins.append(
                {
                    "coin": c,
                    "walletBalance": _s(total),
                    "equity": _s(total),
                    "locked": _s(ex.locked.get(c, _ZERO)),
                    "unrealisedPnl": _s(ex._unrealized() if c == "USDT" else _ZERO),
                    "cumRealisedPnl": "0",
                    "usdValue": _s(
                        total
                        * (
                            ex.symbols.get(f"{c}USDT").price
                            if f"{c}USDT" in ex.symbols
                            else Decimal(1)
                        )
                    ),
                    "borrowAmount": "0",
                    "marginCollateral": True,
                    "collateralSwitch": True,
                }
            )
        if self.category == "linear":
            wallet = ex.free.get("USDT", _ZERO)
            equity = wallet + ex._unrealized()
            available = ex._available_margin()
        else:
            wallet = ex.free.get("USDT", _ZERO) + ex.locked.get("USDT", _ZERO)
            equity = wallet + sum(
                (
                    (ex.free.get(s.base, _ZERO) + ex.locked.get(s.base, _ZERO)) * s.price
                    for s in ex.symbols.values()
                ),
                _ZERO,
            )
            available = ex.free.get("USDT", _ZERO)
        return {
            "accountType": "UNIFIED",
            "totalEquity": _s(equity),
            "totalWalletBalance": _s(wallet),
            "totalMarginBalance": _s(equity),
            "totalAvailableBalance": _s(available),
            "totalPerpUPL": _s(ex._unrealized() if self.category == "linear" else _ZERO),
            "totalInitialMargin": "0",
            "totalMaintenanceMargin": "0",
            "accountIMRate": "0",
            "accountMMRate": "0",
            "accountLTV": "0",
            "coin": coins,
        }

    async def _wallet(self, request: web.Request) -> web.Response:
        params = await self._params(request, signed=True)
        if params.get("accountType") != "UNIFIED":
            raise BybitError(10001, "params error: accountType only support UNIFIED")
        return web.json_response(_envelope({"list": [self._wallet_row()]}))

    def _position_rows(self) -> list[dict[str, Any]]:
        ex = self.exchange
        rows = []
        for sym, (amt, entry) in sorted(ex.positions.items()):
            price = ex.symbols[sym].price
            rows.append(
                {
                    "positionIdx": 0,
                    "symbol": sym,
                    "side": "Buy" if amt > 0 else "Sell",
                    "size": _s(abs(amt)),
                    "avgPrice": _s(entry),
                    "positionValue": _s(abs(amt) * entry),
                    "leverage": _s(ex.leverage),
                    "markPrice": _s(price),
                    "unrealisedPnl": _s((price - entry) * amt),
                    "cumRealisedPnl": "0",
                    "positionStatus": "Normal",
                    "tradeMode": 0,
                    "createdTime": "0",
                    "updatedTime": str(_now_ms()),
                    "category": "linear",
                }
            )
        return rows

    async def _positions(self, request: web.Request) -> web.Response:
        params = await self._params(request, signed=True)
        if params.get("category") != "linear" or self.category != "linear":
            raise BybitError(10001, "params error: category only support linear here")
        spec = self._spec(params, required=False)
        rows = [r for r in self._position_rows() if spec is None or r["symbol"] == spec.symbol]
        return web.json_response(
            _envelope({"category": "linear", "list": rows, "nextPageCursor": ""})
        )

    # --- private websocket ---
    async def _private_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        conn_id = uuid.uuid4().hex
        authed = False
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    continue
                op = req.get("op") if isinstance(req, dict) else None
                self.ws_ops.append(str(op))
                reply: dict[str, Any] = {"req_id": req.get("req_id", ""), "conn_id": conn_id}
                if op == "auth":
                    ok, why = self._check_ws_auth(req.get("args") or [])
                    authed = ok
                    reply.update({"success": ok, "ret_msg": why, "op": "auth"})
                    if ok:
                        self._streams.setdefault(ws, set())
                elif op == "subscribe":
                    topics = [str(t) for t in req.get("args") or []]
                    known = {"order", "execution", "wallet", "position"}
                    ok = authed and all(t in known for t in topics)
                    if ok:
                        self._streams.setdefault(ws, set()).update(topics)
                    reply.update(
                        {
                            "success": ok,
                            "ret_msg": "" if ok else "Request not authorized or unknown topic",
                            "op": "subscribe",
                        }
                    )
                elif op == "ping":
                    reply.update({"success": True, "ret_msg": "pong", "op": "pong"})
                else:
                    reply.update({"success": False, "ret_msg": f"error:invalid op {op}", "op": op})
                await ws.send_str(json.dumps(reply))
        finally:
            self._streams.pop(ws, None)
        return ws

    def _check_ws_auth(self, args: list[Any]) -> tuple[bool, str]:
        if len(args) != 3:
            return False, "error:params invalid"
        key, expires, sign = (str(a) for a in args)
        if key != self.api_key:
            return False, "error:USVC1111"
        try:
            if int(expires) < _now_ms():
                return False, "error:Params Error: expires is expired"
        except ValueError:
            return False, "error:params invalid"
        want = hmac.new(self._secret, f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sign.lower()):
            return False, "error:signature verification failed"
        return True, ""

    def state(self) -> dict[str, Any]:
        """The venue's books as JSON (for tests and harnesses in another process)."""
        ex = self.exchange
        return {
            "category": self.category,
            "received": list(ex.received),
            "balances": {a: str(v) for a, v in ex.free.items()},
            "locked": {a: str(v) for a, v in ex.locked.items()},
            "positions": {s: [str(a), str(e)] for s, (a, e) in ex.positions.items()},
            "prices": {s: str(sp.price) for s, sp in ex.symbols.items()},
            "orders": [self._order_row(o) for o in ex.orders.values()],
            "trades": len(ex.trades),
        }


async def serve(
    port: int, *, interval: float = 1.0, seed: int = 0, market_type: str = "linear"
) -> None:
    """Run a fake Bybit on 127.0.0.1:``port`` until cancelled (``rustybt venue serve bybit``):
    its public market stream closes one kline per symbol every ``interval`` seconds, the bar
    resting orders match against and what ``/v5/market/kline`` serves."""
    import sys

    from rustybt.testing.venues.bybit.market_stream import attach

    category = market_type
    fake = FakeBybit(category, port=port)
    # The public market stream on the same port; its closed bars are the venue's bars.
    attach(fake, bar_seconds=interval, seed=seed)
    await fake.start()
    print(
        f"fake Bybit {category} on {fake.base_url} (ws {fake.ws_url}, market stream "
        f"{fake.ws_url}/v5/public/{category}, one kline every {interval:g} s); key "
        f"{DEFAULT_API_KEY!r} secret {DEFAULT_API_SECRET!r}; Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()
