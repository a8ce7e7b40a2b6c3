"""The fake Hyperliquid: ``POST /info``, ``POST /exchange`` and the ``/ws`` stream on 127.0.0.1.

:class:`FakeHyperliquid` serves one account's perpetuals (USDC collateral) over a real
aiohttp server, in Hyperliquid's formats:

* ``POST /info`` by ``type``: ``meta``, ``metaAndAssetCtxs``, ``spotMeta`` and
  ``spotMetaAndAssetCtxs`` (empty: perpetuals only), ``perpDexs``, ``allMids``,
  ``clearinghouseState``, ``openOrders``, ``frontendOpenOrders``, ``orderStatus`` (by
  ``oid`` or ``cloid``; ``{"status": "unknownOid"}``), ``userFills``,
  ``userFillsByTime``, ``userAbstraction``, ``candleSnapshot``. Any other body is HTTP
  422 ("Failed to deserialize the JSON body into the target type").
* ``POST /exchange`` ``{"action", "nonce", "signature", "vaultAddress"?}``: actions
  ``order`` (limit ``Gtc`` / ``Ioc`` / ``Alo``), ``cancel`` and ``cancelByCloid``. The
  signer is **recovered** from the EIP-712 signature (:mod:`.signing`) for the network
  the fake plays (``testnet=True``: source "b"; ``False``: "a"; ``None``, what ``venue
  serve`` runs: either, so a rehearsal may sign for either); a signer that is neither
  the account nor one of its approved API wallets gets ``{"status": "err",
  "response": "User or API Wallet 0x... does not exist."}``. Nonces are milliseconds,
  each used once, within (now - 2 days, now + 1 day). Per-order errors come inside an
  ok answer (``statuses: [{"error": "... asset=0"}]``) with Hyperliquid's messages:
  "Price must be divisible by tick size.", "Order must have minimum value of $10.",
  "Insufficient margin to place order.", "Order could not immediately match against any
  resting orders." (an Ioc order with no fill), "Order was never placed, already
  canceled, or filled." (cancel). A reused cloid is refused with "Duplicate cloid." (the
  fake's wording). Every action received is recorded (:attr:`actions`), verified or not,
  so tests can prove what a client sent.
* ``/ws``: ``{"method": "subscribe", "subscription": {"type": "userFills" |
  "orderUpdates", "user"}}`` answered by ``subscriptionResponse``; ``userFills`` first
  sends a snapshot (``isSnapshot: true``); then ``{"channel": "userFills", "data":
  {"user", "fills"}}`` and ``{"channel": "orderUpdates", "data": [{"order", "status",
  "statusTimestamp"}]}``; ``{"method": "ping"}`` -> ``{"channel": "pong"}``.
* Admin (not Hyperliquid): ``POST /_fake/fault``, ``POST /_fake/bar``, ``GET /_fake/state``.

Matching, margin and instrument filters are the shared fake exchange's
(:class:`~rustybt.testing.venues.binance.exchange.FakeExchange`, the kernel's fill rules);
lifecycle, fault injection (the shared
:class:`~rustybt.testing.venues.binance.faults.Faults`) and the admin routes are the shared
:class:`~rustybt.testing.venues.aiohttp_venue.AiohttpVenue`'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from rustybt.live.brokers.ccxt.hyperliquid.instruments import nearest_valid_price
from rustybt.live.brokers.ccxt.hyperliquid.wallet import address_of, normalize_address
from rustybt.testing.venues.aiohttp_venue import AiohttpVenue
from rustybt.testing.venues.binance.exchange import (
    FakeExchange,
    SymbolSpec,
    VenueError,
    VenueOrder,
    VenueTrade,
)
from rustybt.testing.venues.hyperliquid.signing import BadSignature, l1_signer

_ZERO = Decimal(0)
#: a throwaway key for tests and ``rustybt venue serve hyperliquid`` (never a real wallet)
DEFAULT_PRIVATE_KEY = "0x" + "4c" * 32
_DAY_MS = 86_400_000
_L1_ACTIONS = frozenset({"order", "cancel", "cancelByCloid", "setReferrer", "scheduleCancel"})


def coin(symbol: str, sz_decimals: int, price: str, liquidity: str) -> SymbolSpec:
    """A perpetual named by its coin; tick ``10**-(6 - szDecimals)``, min value 10 USDC."""
    step = Decimal(1).scaleb(-sz_decimals)
    return SymbolSpec(
        symbol,
        symbol,
        "USDC",
        Decimal(1).scaleb(-(6 - sz_decimals)),
        step,
        step,
        Decimal(10),
        Decimal(price),
        Decimal(liquidity),
        max_qty=Decimal("100000"),
    )


DEFAULT_COINS = (coin("BTC", 5, "50000", "5"), coin("ETH", 4, "3000", "50"))


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0.0"


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Refused(Exception):
    """An order-level refusal: ``{"error": msg}`` in the action's statuses."""


class FakeHyperliquid(AiohttpVenue):
    """One fake Hyperliquid account on ``127.0.0.1``; ``base_url`` is what an adapter's
    ``base_url=`` takes (the websocket is ``/ws`` on the same port)."""

    def __init__(
        self,
        *,
        private_key: str = DEFAULT_PRIVATE_KEY,
        account: str | None = None,
        agents: Iterable[str] = (),
        testnet: bool | None = True,
        port: int = 0,
        coins: Iterable[SymbolSpec] = DEFAULT_COINS,
        usdc: Decimal | str = "100000",
        host: str = "127.0.0.1",
    ) -> None:
        self._init_venue(host, port)
        self.account = normalize_address(account) if account else address_of(private_key)
        self.agents = {normalize_address(a, "agent") for a in agents}
        self.testnet = testnet
        self.exchange = FakeExchange(
            "futures",
            tuple(coins),
            {"USDC": Decimal(str(usdc))},
            taker_fee=Decimal("0.00045"),
            settle="USDC",
        )
        self.exchange.on_event = self._on_exchange_event
        self.coins = list(self.exchange.symbols)  # asset index = position in the universe
        self.actions: list[dict[str, Any]] = []  # every /exchange action, as received
        self.requests: list[str] = []  # "POST /info:<type>" / "POST /exchange:<type>"
        self.subscriptions: list[dict[str, Any]] = []
        self._status: dict[int, tuple[str, int]] = {}  # order id -> (status, ms)
        self._nonces: deque[int] = deque(maxlen=10_000)
        self._buffer: list[tuple[str, Any]] | None = None
        self._candles: dict[str, list[dict[str, Any]]] = {c: [] for c in self.coins}
        self.app = self._build_app()

    def action_types(self) -> list[str]:
        """The type of every action received on /exchange, in order."""
        return [str(a.get("type")) for a in self.actions]

    def fill_ids(self) -> list[str]:
        """The ``tid`` of every fill the venue made (the adapter's fill ids)."""
        return [str(t.trade_id) for t in self.exchange.trades]

    # --- market ---
    def push_bar(
        self,
        symbol: str,
        open_: Decimal | str,
        high: Decimal | str,
        low: Decimal | str,
        close: Decimal | str,
        volume: Decimal | str | None = None,
    ) -> None:
        """A new one-minute bar: resting orders match against it; candles record it."""
        o, h, lo, c = (Decimal(str(x)) for x in (open_, high, low, close))
        vol = Decimal(str(volume)) if volume is not None else None
        self.exchange.push_bar(symbol, o, h, lo, c, vol)
        spec = self.exchange.symbols[symbol]
        # one candle per pushed bar: the fake's minute is as long as its bar interval
        start = _now_ms() - 60_000
        rows = self._candles[symbol]
        rows.append(
            {
                "t": start,
                "T": start + 59_999,
                "s": symbol,
                "i": "1m",
                "o": _s(o),
                "c": _s(c),
                "h": _s(h),
                "l": _s(lo),
                "v": _s(vol if vol is not None else spec.liquidity),
                "n": 1,
            }
        )
        del rows[:-1000]

    def walk_price(self, spec: SymbolSpec, price: Decimal) -> Decimal:
        # a valid Hyperliquid price: 5 significant figures and the coin's decimals
        return max(spec.tick_size, nearest_valid_price(spec.tick_size, price))

    # --- rows in Hyperliquid's layout ---
    def _status_of(self, o: VenueOrder) -> str:
        if o.is_open:
            return "open"
        if o.status == "FILLED":
            return "filled"
        return "canceled"

    def _order_body(self, o: VenueOrder) -> dict[str, Any]:
        remaining = o.qty - o.executed if o.is_open else _ZERO
        return {
            "coin": o.spec.symbol,
            "side": "B" if o.side == "BUY" else "A",
            "limitPx": _s(o.price),
            "sz": _s(remaining),
            "oid": o.order_id,
            "timestamp": o.time,
            "triggerCondition": "N/A",
            "isTrigger": False,
            "triggerPx": "0.0",
            "children": [],
            "isPositionTpsl": False,
            "reduceOnly": o.reduce_only,
            "orderType": "Limit",
            "origSz": _s(o.qty),
            "tif": o.tif.capitalize(),
            "cloid": _cloid(o),
        }

    def _status_entry(self, o: VenueOrder) -> dict[str, Any]:
        status, ts = self._status.get(o.order_id, (self._status_of(o), o.update_time))
        return {"order": self._order_body(o), "status": status, "statusTimestamp": ts}

    def _update_entry(self, o: VenueOrder) -> dict[str, Any]:
        body = self._order_body(o)
        if not o.is_open:
            body["sz"] = _s(o.qty - o.executed)  # what was left when it ended
        out = {k: body[k] for k in ("coin", "side", "limitPx", "sz", "oid", "timestamp", "origSz")}
        if body["cloid"]:
            out["cloid"] = body["cloid"]
        status, ts = self._status.get(o.order_id, (self._status_of(o), o.update_time))
        return {"order": out, "status": status, "statusTimestamp": ts}

    def _fill_row(self, t: VenueTrade) -> dict[str, Any]:
        o = self.exchange.orders[t.order_id]
        signed = t.qty if t.side == "BUY" else -t.qty
        after = self._position_after(t)
        start = after - signed
        row: dict[str, Any] = {
            "coin": t.symbol,
            "px": _s(t.price),
            "sz": _s(t.qty),
            "side": "B" if t.side == "BUY" else "A",
            "time": t.time,
            "startPosition": _s(start),
            "dir": _direction(start, signed),
            "closedPnl": _s(t.realized_pnl),
            "hash": "0x" + hashlib.sha256(f"hl-fill-{t.trade_id}".encode()).hexdigest(),
            "oid": o.order_id,
            "crossed": not t.maker,
            "fee": _s(t.commission),
            "tid": t.trade_id,
            "feeToken": "USDC",
        }
        if _cloid(o):
            row["cloid"] = _cloid(o)
        return row

    def _position_after(self, t: VenueTrade) -> Decimal:
        pos = _ZERO
        for x in self.exchange.trades:
            if x.symbol == t.symbol:
                pos += x.qty if x.side == "BUY" else -x.qty
            if x.trade_id == t.trade_id:
                break
        return pos

    def _clearinghouse(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        ex = self.exchange
        wallet = ex.free.get("USDC", _ZERO)
        upnl = ex._unrealized()
        value = wallet + upnl
        positions, ntl, margin = [], _ZERO, _ZERO
        held = list(ex.positions.items())
        for sym, (amt, entry) in sorted(held):
            px = ex.symbols[sym].price
            notional = abs(amt) * px
            used = notional / ex.leverage
            ntl += notional
            margin += used
            positions.append(
                {
                    "type": "oneWay",
                    "position": {
                        "coin": sym,
                        "szi": _s(amt),
                        "leverage": {"type": "cross", "value": int(ex.leverage)},
                        "entryPx": _s(entry),
                        "positionValue": _s(notional),
                        "unrealizedPnl": _s((px - entry) * amt),
                        "returnOnEquity": _s(
                            ((px - entry) * amt / (abs(amt) * entry / ex.leverage)).quantize(
                                Decimal("0.000001")
                            )
                        ),
                        "liquidationPx": None,
                        "marginUsed": _s(used),
                        "maxLeverage": 50,
                        "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
                    },
                }
            )
        summary = {
            "accountValue": _s(value),
            "totalNtlPos": _s(ntl),
            "totalRawUsd": _s(
                value - sum((a * ex.symbols[s].price for s, (a, _) in ex.positions.items()), _ZERO)
            ),
            "totalMarginUsed": _s(margin),
        }
        return {
            "marginSummary": summary,
            "crossMarginSummary": dict(summary),
            "crossMaintenanceMarginUsed": _s(margin / 2),
            "withdrawable": _s(max(_ZERO, ex._available_margin())),
            "assetPositions": positions,
            "time": _now_ms(),
        }

    # --- streams ---
    def _on_exchange_event(self, event: dict[str, Any]) -> None:
        if event.get("e") != "ORDER_TRADE_UPDATE":
            return  # account updates: Hyperliquid's clearinghouseState is polled
        body = event["o"]
        order = self.exchange.orders.get(int(body["i"]))
        if order is None:
            return
        if not order.is_open:
            self._status.setdefault(order.order_id, (self._status_of(order), _now_ms()))
        if body.get("x") == "TRADE":
            trade = next(t for t in self.exchange.trades if t.trade_id == int(body["t"]))
            self._publish("userFills", {"user": self.account, "fills": [self._fill_row(trade)]})
        self._publish("orderUpdates", [self._update_entry(order)])

    def frame(self, channel: str, data: Any) -> str:
        return json.dumps({"channel": channel, "data": data})

    def _publish(self, channel: str, data: Any) -> None:
        if self._buffer is not None:  # an order action in progress (see _place_one)
            self._buffer.append((channel, data))
            return
        super()._publish(channel, data)

    # --- app ---
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        self._admin_routes(r)
        r.add_post("/info", self._info)
        r.add_post("/exchange", self._exchange)
        r.add_get("/ws", self._ws)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_fake/") or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        rule = self.faults.take(request.method, path)
        if rule is not None and rule.kind == "5xx":
            self.requests.append(f"{request.method} {path}:<5xx>")
            return web.Response(status=rule.status, text="<html>502 Bad Gateway</html>")
        if rule is not None and rule.kind == "429":
            # Hyperliquid: HTTP 429, nothing processed
            self.requests.append(f"{request.method} {path}:<429>")
            return web.Response(
                status=429,
                text="null",
                headers={"Retry-After": str(int(rule.seconds))},
            )
        response = await handler(request)
        if rule is not None and rule.kind == "timeout":
            await asyncio.sleep(rule.seconds)  # processed, then the answer comes too late
        return response

    async def _body(self, request: web.Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.text())
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    @staticmethod
    def _undeserializable() -> web.Response:
        return web.Response(
            status=422, text="Failed to deserialize the JSON body into the target type"
        )

    # --- /info ---
    async def _info(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        kind = body.get("type") if body else None
        self.requests.append(f"POST /info:{kind}")
        handler = {
            "meta": self._meta,
            "metaAndAssetCtxs": self._meta_and_ctxs,
            "spotMeta": lambda b: {"universe": [], "tokens": []},  # perpetuals only
            "spotMetaAndAssetCtxs": lambda b: [{"universe": [], "tokens": []}, []],
            "perpDexs": lambda b: [None],  # the first perp dex only (no HIP-3 dexes)
            "allMids": lambda b: {c: _s(s.price) for c, s in self.exchange.symbols.items()},
            "clearinghouseState": self._user_query(self._clearinghouse, _EMPTY_STATE),
            "openOrders": self._user_query(self._open_orders, []),
            "frontendOpenOrders": self._user_query(self._frontend_open_orders, []),
            "orderStatus": self._user_query(self._order_status, {"status": "unknownOid"}),
            "userFills": self._user_query(self._user_fills, []),
            "userFillsByTime": self._user_query(self._user_fills, []),
            "userAbstraction": self._user_query(lambda b: "default", "default"),
            "candleSnapshot": self._candle_snapshot,
        }.get(str(kind))
        if handler is None:
            return self._undeserializable()
        try:
            return web.json_response(handler(body))
        except (KeyError, TypeError, ValueError):
            return self._undeserializable()

    def _user_query(self, fn: Any, empty: Any) -> Any:
        def run(body: dict[str, Any]) -> Any:
            if str(body["user"]).lower() != self.account:
                return empty  # another account: nothing, as for any unknown address
            return fn(body)

        return run

    def _universe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": c,
                "szDecimals": -self.exchange.symbols[c].step_size.as_tuple().exponent,
                "maxLeverage": 50,
                "marginTableId": 50,
            }
            for c in self.coins
        ]

    def _meta(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"universe": self._universe(), "marginTables": []}

    def _meta_and_ctxs(self, body: dict[str, Any]) -> list[Any]:
        ctxs = []
        for c in self.coins:
            px = _s(self.exchange.symbols[c].price)
            ctxs.append(
                {
                    "funding": "0.0000125",
                    "openInterest": "1000.0",
                    "prevDayPx": px,
                    "dayNtlVlm": "1000000.0",
                    "premium": "0.0",
                    "oraclePx": px,
                    "markPx": px,
                    "midPx": px,
                    "impactPxs": [px, px],
                    "dayBaseVlm": "20.0",
                }
            )
        return [self._meta(body), ctxs]

    def _open_orders(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for o in sorted(self.exchange.open_orders(), key=lambda o: -o.order_id):
            row = self._order_body(o)
            short = {k: row[k] for k in ("coin", "side", "limitPx", "sz", "oid", "timestamp")}
            short["origSz"] = row["origSz"]
            if row["cloid"]:
                short["cloid"] = row["cloid"]
            out.append(short)
        return out

    def _frontend_open_orders(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            self._order_body(o)
            for o in sorted(self.exchange.open_orders(), key=lambda o: -o.order_id)
        ]

    def _find(self, oid: Any) -> VenueOrder | None:
        if isinstance(oid, str) and oid.startswith("0x"):
            cloid = oid.lower()
            return next((o for o in self.exchange.orders.values() if _cloid(o) == cloid), None)
        return self.exchange.orders.get(int(oid))

    def _order_status(self, body: dict[str, Any]) -> dict[str, Any]:
        order = self._find(body["oid"])
        if order is None:
            return {"status": "unknownOid"}
        return {"status": "order", "order": self._status_entry(order)}

    def _user_fills(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        start = int(body.get("startTime") or 0)
        end = int(body.get("endTime") or 2**62)
        rows = [self._fill_row(t) for t in reversed(self.exchange.trades)]
        return [r for r in rows if start <= r["time"] <= end][:2000]

    def _candle_snapshot(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        req = body["req"]
        rows = self._candles.get(str(req["coin"]))
        if rows is None or req.get("interval") != "1m":
            raise ValueError("unknown coin or interval")
        start, end = int(req.get("startTime", 0)), int(req.get("endTime", 2**62))
        return [r for r in rows if start <= r["t"] <= end][-5000:]

    # --- /exchange ---
    async def _exchange(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None or not isinstance(body.get("action"), dict):
            self.requests.append("POST /exchange:<bad>")
            return self._undeserializable()
        action = body["action"]
        kind = str(action.get("type"))
        self.requests.append(f"POST /exchange:{kind}")
        self.actions.append(json.loads(json.dumps(action)))
        if kind not in _L1_ACTIONS:
            return _err(f"the fake venue does not take {kind!r} actions")
        try:
            nonce = int(body["nonce"])
            signers = [
                l1_signer(
                    action,
                    nonce,
                    body.get("signature") or {},
                    vault=body.get("vaultAddress"),
                    testnet=net,
                    expires_after=body.get("expiresAfter"),
                )
                for net in ((True, False) if self.testnet is None else (self.testnet,))
            ]
        except (KeyError, TypeError, ValueError, BadSignature) as exc:
            return _err(f"Invalid signature or nonce: {exc}")
        allowed = {self.account} | self.agents
        signer = next((s for s in signers if s in allowed), signers[0])
        if signer not in allowed:
            return _err(f"User or API Wallet {signer} does not exist.")
        now = _now_ms()
        if not now - 2 * _DAY_MS < nonce < now + _DAY_MS:
            return _err(f"Invalid nonce: {nonce} is outside (now - 2 days, now + 1 day)")
        if nonce in self._nonces:
            return _err(f"Invalid nonce: {nonce} was already used")
        self._nonces.append(nonce)
        if kind == "order":
            return web.json_response(self._place(action))
        if kind in ("cancel", "cancelByCloid"):
            return web.json_response(self._cancel(action, by_cloid=kind == "cancelByCloid"))
        return _err(f"the fake venue does not implement {kind!r}")

    def _spec(self, asset: Any) -> SymbolSpec:
        try:
            return self.exchange.symbols[self.coins[int(asset)]]
        except (IndexError, TypeError, ValueError):
            raise _Refused(f"Invalid asset {asset!r}.") from None

    def _place(self, action: dict[str, Any]) -> dict[str, Any]:
        statuses = []
        for req in action.get("orders") or []:
            try:
                statuses.append(self._place_one(req))
            except _Refused as exc:
                statuses.append({"error": str(exc)})
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    def _place_one(self, req: dict[str, Any]) -> dict[str, Any]:
        spec = self._spec(req.get("a"))
        asset = f" asset={self.coins.index(spec.symbol)}"
        kind = req.get("t") or {}
        if "limit" not in kind:
            raise _Refused("the fake venue takes limit orders only (no trigger orders)." + asset)
        tif = str((kind.get("limit") or {}).get("tif"))
        if tif not in ("Gtc", "Ioc", "Alo"):
            raise _Refused(f"Invalid TIF {tif!r}." + asset)
        try:
            px, sz = Decimal(str(req["p"])), Decimal(str(req["s"]))
        except (KeyError, ArithmeticError):
            raise _Refused("Order has invalid price or size." + asset) from None
        if sz <= 0:
            raise _Refused("Order has zero size." + asset)
        if px <= 0 or not _valid_price(px, spec.tick_size):
            raise _Refused("Price must be divisible by tick size." + asset)
        if sz % spec.step_size != 0:
            raise _Refused("Order has invalid size." + asset)
        if sz * px < spec.min_notional:
            raise _Refused("Order must have minimum value of $10." + asset)
        cloid = req.get("c")
        if cloid is not None:
            cloid = str(cloid).lower()
            if len(cloid) != 34 or not cloid.startswith("0x"):
                raise _Refused("Invalid cloid: expected 0x followed by 32 hex digits." + asset)
            if self._find(cloid) is not None:
                raise _Refused("Duplicate cloid." + asset)
        buy = bool(req.get("b"))
        if tif == "Alo" and (px >= spec.price if buy else px <= spec.price):
            raise _Refused(
                f"Post only order would have immediately matched, bbo was {_s(spec.price)}." + asset
            )
        params = {
            "symbol": spec.symbol,
            "side": "BUY" if buy else "SELL",
            "type": "LIMIT",
            "quantity": _s(sz),
            "price": _s(px),
            "timeInForce": "IOC" if tif == "Ioc" else "GTC",
            "newClientOrderId": cloid or f"hl-{len(self.exchange.orders) + 1}",
        }
        if req.get("r"):
            params["reduceOnly"] = "true"
        self._buffer = []
        try:
            order = self.exchange.new_order(params)
        except VenueError as exc:
            self._buffer = None
            if exc.code == -2019:
                raise _Refused("Insufficient margin to place order." + asset) from None
            raise _Refused(f"{exc.msg}{asset}") from None
        events, self._buffer = self._buffer, None
        if order.executed == 0 and not order.is_open:
            # an Ioc order that met nothing never rests: an error, and no order updates
            self._status[order.order_id] = ("iocCancelRejected", _now_ms())
            raise _Refused("Order could not immediately match against any resting orders." + asset)
        for channel, data in events:
            self._publish(channel, data)
        if order.executed > 0:
            return {
                "filled": {
                    "totalSz": _s(order.executed),
                    "avgPx": _s(order.avg_price),
                    "oid": order.order_id,
                }
            }
        return {"resting": {"oid": order.order_id}}

    def _cancel(self, action: dict[str, Any], *, by_cloid: bool) -> dict[str, Any]:
        statuses: list[Any] = []
        for req in action.get("cancels") or []:
            try:
                spec = self._spec(req.get("asset") if by_cloid else req.get("a"))
                order = self._find(str(req["cloid"]).lower() if by_cloid else req["o"])
                if order is None or order.spec.symbol != spec.symbol or not order.is_open:
                    raise _Refused(
                        "Order was never placed, already canceled, or filled. asset="
                        f"{self.coins.index(spec.symbol)}"
                    )
                self.exchange.cancel(spec.symbol, str(order.order_id), None)
                statuses.append("success")
            except _Refused as exc:
                statuses.append({"error": str(exc)})
            except (KeyError, TypeError, ValueError):
                statuses.append({"error": "Invalid cancel request."})
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}

    # --- /ws ---
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._streams[ws] = set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    await ws.send_str(json.dumps({"channel": "error", "data": "Invalid JSON"}))
                    continue
                for out in self._on_ws(ws, req):
                    await ws.send_str(json.dumps(out))
        finally:
            self._streams.pop(ws, None)
        return ws

    def _on_ws(self, ws: web.WebSocketResponse, req: Any) -> list[dict[str, Any]]:
        method = req.get("method") if isinstance(req, dict) else None
        if method == "ping":
            return [{"channel": "pong"}]
        if method not in ("subscribe", "unsubscribe"):
            return [{"channel": "error", "data": f"Unknown method: {method}"}]
        sub = req.get("subscription")
        kind = sub.get("type") if isinstance(sub, dict) else None
        if kind not in ("userFills", "orderUpdates") or not isinstance(sub.get("user"), str):
            return [{"channel": "error", "data": f"Invalid subscription {json.dumps(sub)}"}]
        self.subscriptions.append(dict(sub))
        subs = self._streams.setdefault(ws, set())
        ack = {"channel": "subscriptionResponse", "data": {"method": method, "subscription": sub}}
        if method == "unsubscribe":
            subs.discard(kind)
            return [ack]
        if kind in subs:
            return [{"channel": "error", "data": f"Already subscribed: {json.dumps(sub)}"}]
        subs.add(kind)
        out = [ack]
        if kind == "userFills":
            mine = str(sub["user"]).lower() == self.account
            fills = [self._fill_row(t) for t in reversed(self.exchange.trades)] if mine else []
            out.append(
                {
                    "channel": "userFills",
                    "data": {"isSnapshot": True, "user": sub["user"], "fills": fills[:2000]},
                }
            )
        return out

    def state(self) -> dict[str, Any]:
        """The venue's books as JSON (for tests and harnesses in another process)."""
        ex = self.exchange
        return {
            "account": self.account,
            "received": list(ex.received),
            "actions": self.action_types(),
            "balances": {a: str(v) for a, v in ex.free.items()},
            "positions": {s: [str(a), str(e)] for s, (a, e) in ex.positions.items()},
            "prices": {s: str(sp.price) for s, sp in ex.symbols.items()},
            "orders": [self._status_entry(o) for o in ex.orders.values()],
            "trades": len(ex.trades),
        }


def _err(message: str) -> web.Response:
    return web.json_response({"status": "err", "response": message})


def _cloid(o: VenueOrder) -> str | None:
    # the fake exchange keeps the cloid as the order's client id ("hl-N" without one)
    return o.client_order_id if o.client_order_id.startswith("0x") else None


_EMPTY_STATE: dict[str, Any] = {
    "marginSummary": {
        "accountValue": "0.0",
        "totalNtlPos": "0.0",
        "totalRawUsd": "0.0",
        "totalMarginUsed": "0.0",
    },
    "crossMarginSummary": {
        "accountValue": "0.0",
        "totalNtlPos": "0.0",
        "totalRawUsd": "0.0",
        "totalMarginUsed": "0.0",
    },
    "crossMaintenanceMarginUsed": "0.0",
    "withdrawable": "0.0",
    "assetPositions": [],
    "time": 0,
}


def _valid_price(px: Decimal, tick: Decimal) -> bool:
    """Hyperliquid's rule: at most 6 - szDecimals decimals (the tick), and at most 5
    significant figures unless the price is a whole number."""
    if px % tick != 0:
        return False
    if px == px.to_integral_value():
        return True
    return len(px.normalize().as_tuple().digits) <= 5


def _direction(start: Decimal, signed: Decimal) -> str:
    after = start + signed
    if start == 0 or (start > 0) == (signed > 0):
        return "Open Long" if signed > 0 else "Open Short"
    if after != 0 and (after > 0) != (start > 0):
        return "Long > Short" if start > 0 else "Short > Long"
    return "Close Long" if start > 0 else "Close Short"


async def serve(port: int, *, interval: float = 1.0, seed: int = 0) -> None:
    """Run a fake Hyperliquid on 127.0.0.1:``port`` until cancelled
    (``rustybt venue serve hyperliquid``)."""
    import sys

    fake = FakeHyperliquid(port=port, testnet=None)
    await fake.start()
    fake.start_random_walk(interval, seed)
    print(
        f"fake Hyperliquid (testnet or mainnet signatures) on {fake.base_url} (ws "
        f"{fake.ws_url}/ws); "
        f"account {fake.account}, private key {DEFAULT_PRIVATE_KEY} (a throwaway test "
        "key); Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()
