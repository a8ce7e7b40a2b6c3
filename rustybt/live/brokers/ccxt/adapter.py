"""The generic ccxt broker adapter: one implementation for every ccxt venue.

:class:`CcxtBrokerAdapter` implements :class:`~rustybt.live.brokers.base.BrokerAdapter`
on one ``ccxt.pro`` instance (``ccxt.async_support`` REST underneath, the websocket
user stream on top) and a :class:`~rustybt.live.brokers.ccxt.venue.Venue` for what is
venue-specific. What it guarantees, for every venue:

* **Exact money**: ``exchange.number = str``; strings go in, venue strings come out and
  become ``Decimal`` in the venue's parsers. No float on the money path.
* **Instruments** come from the venue's markets (tick, lot, min notional) and are
  enforced before anything is sent (:class:`~rustybt.exceptions.InvalidOrder`).
* **Client order ids** go to the venue unchanged when legal for it, else as a
  deterministic hash (:mod:`.client_ids`), found again by our id after a restart; with
  ``client_id_map=`` (a file) the venue's hashed ids are named by ours again too.
* **Order events**: acks from the REST answer, fills from the user stream (the venue's
  trade id is the fill id; duplicates from the stream, REST answers and resyncs are
  dropped here and again by the engine), cancels, expiries, rejects; the fee is
  converted to the account currency (:func:`convert_fill`).
* **Connection state** (:class:`~rustybt.live.events.BrokerConnectionEvent`): the
  stream dropping blocks new risk and alerts; while it is down, open orders are polled
  over REST; on reconnect open orders and their fills are resynced, then the engine
  reconciles.
* **Errors**: timeouts, dropped connections and 5xx on a submit raise
  :class:`~rustybt.exceptions.OrderStatusUnknown` (never resent blind); 429/418 raise
  :class:`~rustybt.exceptions.RateLimited` and hold every request until ``Retry-After``;
  venue refusals raise ``OrderRejected`` / ``InsufficientFundsError`` with the venue's
  code and message.
* **Secrets**: the key and secret live only in the ccxt instance; they are never in a
  repr, a log line, an exception or a checkpoint.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog

from rustybt.assets import Asset, AssetFinder
from rustybt.exceptions import (
    BrokerConnectionError,
    ConfigError,
    InvalidOrder,
    OrderNotFound,
    OrderStatusUnknown,
    RateLimited,
    SymbolNotFound,
)
from rustybt.finance.order import OrderType, TimeInForce, to_decimal
from rustybt.live.brokers.base import BrokerAdapter
from rustybt.live.brokers.ccxt.client_ids import ClientIdCodec
from rustybt.live.brokers.ccxt.errors import RequestBudget, VenueHTTPError, safe_text
from rustybt.live.brokers.ccxt.venue import FillView, OrderView, Venue
from rustybt.live.events import (
    BrokerConnectionEvent,
    OrderAckEvent,
    OrderCancelEvent,
    OrderFillEvent,
    OrderRejectEvent,
)

log = structlog.get_logger(__name__)

_ZERO = Decimal(0)
_TERMINAL = frozenset({"filled", "cancelled", "rejected", "expired"})
_MAX_SEEN_FILLS = 100_000


def _url_strings(node: Any) -> list[str]:
    """Every URL string in ccxt's ``urls['api']`` tree, in a stable order."""
    if isinstance(node, dict):
        return [u for k in node for u in _url_strings(node[k])]
    return [node] if isinstance(node, str) and "://" in node else []


def convert_fill(
    fill: FillView, base: str, quote: str, price_of: dict[str, Decimal]
) -> tuple[Decimal, Decimal]:
    """``(amount, commission in quote)`` for a fill whose fee is in ``fill.fee_asset``.

    * fee in the quote currency: taken as is;
    * fee in the base asset (a spot buy pays it from what it receives): the position
      grows by the amount **net** of the fee, and the fee's value at the fill price is
      the commission, so cash and holdings both match the venue's balances;
    * fee in a third asset (e.g. BNB): valued at that asset's last price in the quote
      currency (``price_of``), or 0 with a warning when no price is known.
    """
    fee, asset = fill.fee, (fill.fee_asset or quote).upper()
    if fee == 0 or asset == quote:
        return fill.amount, fee
    if asset == base:
        net = fill.amount - fee if fill.amount > 0 else fill.amount
        commission = fee * fill.price
        if fill.amount < 0:
            # a sell paying in base: the venue took extra base units
            net = fill.amount - fee
        return net, commission
    px = price_of.get(asset)
    if px is None:
        log.warning("fee_asset_unpriced", fee_asset=asset, fee=str(fee), fill_id=fill.fill_id)
        return fill.amount, _ZERO
    return fill.amount, fee * px


class _Tracked:
    __slots__ = ("client_id", "venue_cid", "order_id", "symbol", "amount", "filled", "done")

    def __init__(
        self,
        client_id: str,
        venue_cid: str,
        order_id: str | None,
        symbol: str,
        amount: Decimal = _ZERO,
    ) -> None:
        self.client_id = client_id
        self.venue_cid = venue_cid
        self.order_id = order_id
        self.symbol = symbol
        self.amount = abs(amount)  # 0 while unknown
        self.filled = _ZERO
        self.done = False


class _VenueFinder(AssetFinder):
    def __init__(self, adapter: CcxtBrokerAdapter) -> None:
        super().__init__()
        self._adapter = adapter

    def lookup_symbol(self, symbol: str) -> Asset:
        try:
            return self._adapter.asset(str(symbol))
        except InvalidOrder as exc:
            raise SymbolNotFound(str(exc)) from None

    @property
    def symbols(self) -> list[str]:
        return sorted(self._adapter.instruments)

    @property
    def assets(self) -> list[Asset]:
        return list(self._adapter.instruments.values())


class CcxtBrokerAdapter(BrokerAdapter):
    """A broker adapter for one ccxt venue and market type (see the module docstring)."""

    name = "ccxt"
    simulated = False
    is_persistent = True

    def __init__(
        self,
        venue: Venue,
        api_key: str | None = None,
        api_secret: str | None = None,
        testnet: bool = True,
        *,
        base_url: str | None = None,
        ws_url: str | None = None,
        live_money: bool = False,
        request_timeout: float = 10.0,
        poll_interval: float = 1.0,
        reconnect_delay: float = 0.2,
        max_reconnect_delay: float = 5.0,
        market_data_interval: float = 1.0,
        symbols: list[str] | None = None,
        throttle: bool | None = None,
        client_id_map: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.venue = venue
        self.name = venue.name
        self.market_type = venue.market_type
        self.testnet = bool(testnet)
        for label, url, schemes in (
            ("base_url", base_url, ("http://", "https://")),
            ("ws_url", ws_url, ("ws://", "wss://")),
        ):
            if url is not None and not (isinstance(url, str) and url.startswith(schemes)):
                raise ConfigError(
                    f"{label}={url!r} must start with {' or '.join(schemes)}, e.g. "
                    f"{schemes[0]}127.0.0.1:8080 (scheme and host only; paths stay the venue's)"
                )
        self.base_url = base_url.rstrip("/") if base_url else None
        if ws_url is None and base_url is not None:
            ws_url = ("wss://" if base_url.startswith("https://") else "ws://") + base_url.split(
                "://", 1
            )[1]
        self.ws_url = ws_url.rstrip("/") if ws_url else None
        if venue.is_mainnet(self.testnet, self.base_url) and not live_money:
            raise ConfigError(
                f"{venue.name} mainnet trades real money: pass live_money=True (CLI: --live-money "
                "and live_money = true in the config) or use testnet=True"
            )
        key, secret = venue.credentials(api_key, api_secret)
        if request_timeout <= 0 or poll_interval <= 0:
            raise ConfigError("request_timeout and poll_interval must be > 0 seconds")
        self._credentials = (key, secret)
        # ccxt's throttler spends the venue's documented request weights; a local fake
        # (loopback base_url) is not throttled, the venue's own 429s still are honoured.
        local = bool(self.base_url) and any(
            h in self.base_url for h in ("://127.0.0.1", "://localhost", "://[::1]")
        )
        self.throttle = (not local) if throttle is None else bool(throttle)
        self.request_timeout = request_timeout
        self.poll_interval = poll_interval
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.market_data_interval = market_data_interval
        self.capabilities = venue.capabilities()
        # venue id -> ours for hashed ids, kept across restarts when given a file
        self.codec = ClientIdCodec(
            venue.legal_client_id,
            venue.hash_client_id,
            client_id_map,
            reversible_max=venue.reversible_client_ids,
        )
        self.budget = RequestBudget()
        self._ex: Any = None
        self._url_origins: list[tuple[str, str]] = []
        self.instruments: dict[str, Asset] = {}  # venue market id -> asset
        self._markets: dict[str, dict[str, Any]] = {}  # venue market id -> ccxt market
        self._by_asset: dict[Asset, str] = {}
        self._tracked: dict[str, _Tracked] = {}  # venue client id -> order
        self._by_order_id: dict[str, _Tracked] = {}
        self._seen_fills: OrderedDict[str, None] = OrderedDict()
        self._last_price: dict[str, Decimal] = {}  # asset code / market id -> price
        self._interest: set[str] = set(symbols or ())
        self._stream_task: asyncio.Task[None] | None = None
        self._md_task: asyncio.Task[None] | None = None
        self._md_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
        self._md_last: dict[str, int] = {}
        self.stream_up = False
        self._reported_down = False
        self.stream_drops = 0
        self.resyncs = 0
        self.stream_messages = 0
        self.malformed_frames = 0
        self._closing = False

    def __repr__(self) -> str:
        where = self.base_url or ("testnet" if self.testnet else "mainnet")
        return (
            f"{type(self).__name__}(venue={self.name!r}, market_type={self.market_type!r}, {where})"
        )

    # --- ccxt instance ---
    def _make_exchange(self) -> Any:
        import ccxt.pro as ccxtpro

        base_cls = self.venue.exchange_class(getattr(ccxtpro, self.venue.ccxt_id))
        adapter = self

        class _Exchange(base_cls):  # type: ignore[misc, valid-type]
            def handle_errors(self, code, reason, url, method, headers, body, response, rh, rb):  # noqa: ANN001
                status = int(code or 0)
                venue = adapter.venue
                fields = venue.error_fields(status, response)
                limited = venue.is_rate_limited(status, fields)
                retry = adapter.budget.on_response(
                    dict(headers or {}),
                    status,
                    venue.weight_header,
                    limited=limited,
                    retry_after=venue.retry_after(dict(headers or {})) if limited else None,
                )
                if fields is not None:
                    vcode, msg = fields
                    msg = msg or str(reason)
                    path = str(url).split("?", 1)[0]
                    if "://" in path:
                        path = "/" + path.split("://", 1)[1].split("/", 1)[-1]
                    raise VenueHTTPError(status, vcode, msg, str(method), path, retry)
                try:
                    return super().handle_errors(
                        code, reason, url, method, headers, body, response, rh, rb
                    )
                except Exception as exc:
                    # what the venue answered, for the typed error's message (ccxt's own
                    # text may leave out the venue's code)
                    exc.venue_response = f"HTTP {status}: {str(body or '')[:300]}"
                    raise

            def get_exceptions_by_url(self, url, exact_or_broad):  # noqa: ANN001
                for new, old in adapter._url_origins:
                    if isinstance(url, str) and url.startswith(new):
                        url = old + url[len(new) :]
                        break
                return super().get_exceptions_by_url(url, exact_or_broad)

            def handle_message(self, client, message):  # noqa: ANN001
                # A frame that is not a JSON object, or that ccxt's handler chokes on,
                # is dropped and counted: left alone it would stop ccxt's receive loop
                # silently and the stream would look alive while delivering nothing.
                if not isinstance(message, dict):
                    adapter._malformed(repr(message)[:80])
                    return None
                try:
                    return super().handle_message(client, message)
                except Exception as exc:
                    adapter._malformed(f"{type(exc).__name__}: {str(exc)[:80]}")
                    return None

        key, secret = self._credentials
        ex = _Exchange(
            {
                **self.venue.ccxt_credentials(key, secret),
                "enableRateLimit": self.throttle,
                "timeout": int(self.request_timeout * 1000),
                "options": self.venue.ccxt_options(),
            }
        )
        ex.number = str
        if self.testnet:
            ex.set_sandbox_mode(True)
        before = _url_strings(ex.urls.get("api"))
        self.venue.rewrite_urls(ex.urls, self.base_url, self.ws_url)
        # ccxt picks some error tables by URL; keep it finding them once hosts are replaced
        self._url_origins = sorted(
            {
                (new, old)
                for new, old in zip(_url_strings(ex.urls.get("api")), before, strict=False)
                if new != old
            },
            key=lambda p: -len(p[0]),
        )
        self.venue.prepare(ex)
        return ex

    # --- connection ---
    async def connect(self) -> None:
        if self._connected:
            return
        self._closing = False
        self._ex = self._make_exchange()
        try:
            markets = await self._ex.load_markets()
        except Exception as exc:
            await self._close_exchange()
            raise BrokerConnectionError(
                f"{self.name}: cannot load markets from {self.base_url or 'the venue'}: "
                f"{type(exc).__name__}: {safe_text(exc, 200)}"
            ) from None
        for market in markets.values():
            asset = self.venue.instrument(market)
            if asset is None:
                continue
            mid = self.venue.market_key(market)
            self.instruments[mid] = asset
            self._markets[mid] = market
            self._by_asset[asset] = mid
        self._connected = True
        try:
            await self._resync(initial=True)
        except BaseException:
            self._connected = False
            await self._close_exchange()
            raise
        self._stream_task = asyncio.get_running_loop().create_task(self._stream_supervisor())
        self._stream_task.add_done_callback(self._supervisor_done)

    async def disconnect(self) -> None:
        self._closing = True
        for task in (self._stream_task, self._md_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._stream_task = self._md_task = None
        await self._close_exchange()
        self._connected = False
        self.stream_up = False
        self._reported_down = False

    async def _close_exchange(self) -> None:
        if self._ex is not None:
            try:
                await self._ex.close()
            except Exception as exc:  # closing a dead session: note it, nothing to undo
                log.debug("venue_session_close_failed", error=f"{type(exc).__name__}: {exc}")
            self._ex = None

    def _require_connected(self) -> Any:
        if not self._connected or self._ex is None:
            raise BrokerConnectionError(
                f"{self.name} adapter is not connected; call connect() first"
            )
        return self._ex

    # --- instruments ---
    def asset(self, symbol: str) -> Asset:
        """The venue's instrument for a market id (``BTCUSDT``) or ccxt symbol (``BTC/USDT``)."""
        asset = self.instruments.get(self.venue.symbol_key(symbol))
        if asset is None:
            raise InvalidOrder(
                f"{self.name} has no instrument {symbol!r}; known: "
                f"{', '.join(sorted(self.instruments)[:20]) or 'none (connect first)'}"
            )
        return asset

    @property
    def asset_finder(self) -> AssetFinder:
        """Symbols resolve to this venue's instruments (filled by :meth:`connect`), so a
        strategy's ``symbol("BTCUSDT")`` gets the venue's tick, lot and min notional."""
        return _VenueFinder(self)

    def _market_id(self, asset: Asset) -> str:
        mid = self._by_asset.get(asset)
        if mid is None:
            mid = self.venue.symbol_key(asset.symbol)
            if mid not in self.instruments:
                raise InvalidOrder(
                    f"{asset.symbol} is not an instrument of {self.name} {self.market_type}; "
                    f"use one of {', '.join(sorted(self.instruments)[:20])}"
                )
        return mid

    def _check_order(
        self,
        asset: Asset,
        amount: Decimal,
        order_type: str,
        limit: Decimal | None,
        stop: Decimal | None,
    ) -> tuple[Asset, OrderType]:
        venue_asset = self.instruments[self._market_id(asset)]
        amount = to_decimal("amount", amount)
        if amount == 0:
            raise InvalidOrder(f"amount for {asset.symbol} must not be zero")
        otype = self._check_order_type(order_type)
        if abs(amount) % venue_asset.lot_size != 0:
            raise InvalidOrder(
                f"amount {amount} of {asset.symbol} is not a multiple of the venue lot size "
                f"{venue_asset.lot_size}; use {venue_asset.round_amount(amount)}"
            )
        for name, px in (("limit_price", limit), ("stop_price", stop)):
            if px is not None:
                venue_asset.validate_price(name, px)
                self.venue.check_price(venue_asset, name, px)
        ref = limit or stop or self._last_price.get(venue_asset.symbol)
        if ref is not None:
            venue_asset.validate_min_notional(amount, ref)
        return venue_asset, otype

    def _check_order_type(self, order_type: str | OrderType) -> OrderType:
        otype = OrderType.parse(order_type) if isinstance(order_type, str) else order_type
        if otype.value not in self.capabilities.order_types:
            hint = self.venue.refusal_hint(otype.value)
            supported = ", ".join(sorted(self.capabilities.order_types))
            raise InvalidOrder(
                f"{self.name} {self.market_type} does not take {otype.value} orders; supported: "
                f"{supported}" + (f". {hint}" if hint else "")
            )
        return otype

    # --- orders ---
    async def submit_order(
        self,
        asset: Asset,
        amount: Decimal,
        order_type: str,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        client_order_id: str | None = None,
        time_in_force: str = "gtc",
    ) -> str:
        # what the venue cannot do at all is refused first, connected or not
        self._check_order_type(order_type)
        ex = self._require_connected()
        # The engine starts a submission inside the strategy's call and hands it to a task
        # at its first suspension. Yield before any I/O so that aiohttp's request timeout
        # binds to that task, not to the engine's loop (its timer cancels the task it was
        # entered in).
        await asyncio.sleep(0)
        venue_asset, otype = self._check_order(asset, amount, order_type, limit_price, stop_price)
        tif = TimeInForce.parse(time_in_force).value
        if tif not in self.capabilities.time_in_force:
            raise InvalidOrder(
                f"{self.name} {self.market_type} does not support time in force {tif!r}; "
                f"use one of {', '.join(sorted(self.capabilities.time_in_force))}"
            )
        if client_order_id is None:
            raise InvalidOrder(
                "submit_order needs a client_order_id (the engine always passes one)"
            )
        mid = self._market_id(asset)
        market = self._markets[mid]
        vcid = self.codec.encode(client_order_id)
        ctype, side, qty, price, params = self.venue.order_args(
            market, venue_asset, Decimal(amount), otype.value, limit_price, stop_price, vcid, tif
        )
        self.budget.check(self.name, essential=True)
        tracked = _Tracked(client_order_id, vcid, None, mid, Decimal(amount))
        self._tracked[vcid] = tracked
        self._interest.add(mid)
        try:
            resp = await ex.create_order(market["symbol"], ctype, side, qty, price, params)
        except Exception as exc:
            err = self.venue.map_error(exc, during="submit")
            if not isinstance(err, OrderStatusUnknown):
                self._tracked.pop(vcid, None)  # definitively not at the venue
            raise err from None
        raw = self.venue.create_payload(resp)
        view = self.venue.parse_order(raw)
        tracked.order_id = view.order_id
        self._by_order_id[view.order_id] = tracked
        self._emit(OrderAckEvent(client_order_id, view.order_id, self._clock()))
        for fill in self.venue.parse_rest_fills(raw):
            fill.order_id = fill.order_id or view.order_id
            fill.client_id = vcid
            self._on_fill(fill)
        self._on_order_state(view)
        return view.order_id

    async def cancel_order(
        self,
        broker_order_id: str | None,
        *,
        client_order_id: str | None = None,
        asset: Asset | None = None,
    ) -> None:
        ex = self._require_connected()
        await asyncio.sleep(0)  # as in submit_order: run the I/O on the engine's task for it
        tracked = None
        if broker_order_id is not None:
            tracked = self._by_order_id.get(str(broker_order_id))
        vcid = self.codec.encode(client_order_id) if client_order_id else None
        if tracked is None and vcid is not None:
            tracked = self._tracked.get(vcid)
        if tracked is not None and client_order_id:
            tracked.client_id = client_order_id  # an adopted order named by ours from now on
        symbol = tracked.symbol if tracked is not None else None
        if symbol is None and asset is not None:
            symbol = self._market_id(asset)
        if symbol is None:
            raw = await self._find_open(broker_order_id, vcid)
            if raw is None:
                raise OrderNotFound(
                    f"{self.name}: no open order {broker_order_id or client_order_id!r}; pass "
                    "asset= to cancel an order this process did not place"
                )
            symbol = self.venue.parse_order(raw).symbol
        self.budget.check(self.name, essential=True)
        order_id = (
            str(broker_order_id) if broker_order_id else (tracked.order_id if tracked else None)
        )
        try:
            raw = await self.venue.cancel(
                ex, symbol, order_id=order_id, client_id=None if order_id else vcid
            )
        except Exception as exc:
            raise self.venue.map_error(exc, during="cancel") from None
        self._on_order_state(self.venue.parse_order(raw))

    async def _find_open(self, order_id: str | None, vcid: str | None) -> dict[str, Any] | None:
        for raw in await self._call(self.venue.fetch_open_orders(self._ex), "query"):
            view = self.venue.parse_order(raw)
            if (order_id and view.order_id == str(order_id)) or (vcid and view.client_id == vcid):
                return raw
        return None

    async def _call(self, coro: Any, during: str) -> Any:
        try:
            self.budget.check(self.name, essential=during != "market_data")
        except RateLimited:
            coro.close()
            raise
        try:
            return await coro
        except Exception as exc:
            raise self.venue.map_error(exc, during=during) from None

    # --- queries ---
    async def get_account_info(self) -> dict[str, Decimal]:
        ex = self._require_connected()
        acct = await self._call(self.venue.fetch_account(ex), "query")
        positions = self._positions_from(acct)
        if acct.equity is not None:
            equity = acct.equity
        else:
            equity = acct.cash + sum((p["amount"] * p["last_price"] for p in positions), _ZERO)
        return {
            "cash": acct.cash,
            "portfolio_value": equity,
            "buying_power": acct.buying_power if acct.buying_power is not None else acct.cash,
        }

    async def get_positions(self) -> list[dict[str, Any]]:
        ex = self._require_connected()
        acct = await self._call(self.venue.fetch_account(ex), "query")
        return self._positions_from(acct)

    def _positions_from(self, acct: Any) -> list[dict[str, Any]]:
        out = []
        if self.capabilities.positions_from == "positions":
            for mid, (amt, entry) in acct.positions.items():
                asset = self.instruments.get(mid)
                if asset is None or amt == 0:
                    continue
                out.append(
                    {
                        "asset": asset,
                        "amount": amt,
                        "average_price": entry,
                        "last_price": self._last_price.get(asset.symbol, entry),
                    }
                )
            return out
        # Spot: a holding is a position only for instruments this strategy trades (the
        # rule in docs/venues/binance.md); other balances are not ours to reconcile.
        tracked = {mid for mid in self._interest if mid in self.instruments}
        for mid in sorted(tracked):
            market = self._markets[mid]
            held = acct.balances.get(str(market["base"]).upper(), _ZERO)
            asset = self.instruments[mid]
            if held == 0:
                continue
            last = self._last_price.get(asset.symbol)
            out.append(
                {
                    "asset": asset,
                    "amount": held,
                    "average_price": last or _ZERO,
                    "last_price": last or _ZERO,
                }
            )
        return out

    async def get_open_orders(self) -> list[dict[str, Any]]:
        ex = self._require_connected()
        raws = await self._call(self.venue.fetch_open_orders(ex), "query")
        return [self._order_dict(self.venue.parse_order(r)) for r in raws]

    def _order_dict(self, view: OrderView) -> dict[str, Any]:
        return {
            "order_id": view.order_id,
            "client_order_id": self.codec.decode(view.client_id),
            "asset": self.instruments.get(view.symbol),
            "amount": view.amount,
            "filled": view.filled,
            "order_type": view.order_type,
            "limit_price": view.limit_price,
            "stop_price": view.stop_price,
            "status": view.status,
            "avg_fill_price": view.avg_price,
        }

    async def get_order_by_client_id(
        self, client_order_id: str, *, asset: Asset | None = None
    ) -> dict[str, Any] | None:
        """The venue's order for our client id (open or closed) with its ``fills``.

        The venue is asked by symbol: the asset's if given, else the symbol this
        process used, else every instrument the strategy trades or this venue lists
        (bounded to 50 symbols), after one open-orders query.
        """
        ex = self._require_connected()
        vcid = self.codec.encode(client_order_id)
        tracked = self._tracked.get(vcid)
        symbols: list[str] = []
        if asset is not None:
            symbols.append(self._market_id(asset))
        if tracked is not None:
            symbols.append(tracked.symbol)
        raw = None
        if not symbols:
            raw = await self._find_open(None, vcid)
            if raw is None:
                symbols = await self._lookup_candidates()
        for sym in dict.fromkeys(symbols):
            if raw is not None:
                break
            raw = await self._call(
                self.venue.fetch_order(ex, sym, order_id=None, client_id=vcid), "query"
            )
        if raw is None:
            return None
        view = self.venue.parse_order(raw)
        self._track_view(view, client_order_id)
        out = self._order_dict(view)
        out["client_order_id"] = client_order_id
        fills = []
        commission = _ZERO
        if view.filled != 0:
            for t in await self._call(
                self.venue.fetch_order_trades(ex, view.symbol, view.order_id), "query"
            ):
                fill = self.venue.parse_trade(t)
                amount, fee = self._convert(fill)
                commission += fee
                fills.append(
                    {
                        "fill_id": fill.fill_id,
                        "amount": amount,
                        "price": fill.price,
                        "commission": fee,
                        "dt": fill.dt,
                    }
                )
        out["fills"] = fills
        out["commission"] = commission
        return out

    async def _lookup_candidates(self) -> list[str]:
        """Symbols to ask for a client id this process never saw: the strategy's, then
        those the account holds (a filled order left a balance or position), then the
        rest of the venue's, 50 at most (the venue needs a symbol per query)."""
        held: list[str] = []
        try:
            acct = await self._call(self.venue.fetch_account(self._ex), "query")
        except Exception:
            acct = None
        if acct is not None:
            held = sorted(m for m in acct.positions if m in self.instruments)
            held += sorted(
                mid
                for mid, m in self._markets.items()
                if acct.balances.get(str(m["base"]).upper(), _ZERO) != 0
            )
        first = sorted(self._interest) + held
        rest = sorted(set(self.instruments) - set(first))
        return list(dict.fromkeys(first + rest))[:50]

    async def get_current_price(self, asset: Asset) -> Decimal | None:
        return self._last_price.get(asset.symbol)

    # --- market data (REST klines; the streaming engine owns websocket market data) ---
    async def subscribe_market_data(self, assets: list[Asset]) -> None:
        self._require_connected()
        for a in assets:
            self._interest.add(self._market_id(a))
        if self._md_task is None:
            self._md_task = asyncio.get_running_loop().create_task(self._poll_klines())

    async def get_next_market_data(self) -> dict | None:
        try:
            return self._md_queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    async def _poll_klines(self) -> None:
        while not self._closing:
            for mid in sorted(self._interest):
                try:
                    rows = await self._call(
                        self.venue.fetch_klines(self._ex, mid, 5), "market_data"
                    )
                except Exception as exc:
                    log.warning("klines_failed", venue=self.name, symbol=mid, error=str(exc)[:200])
                    continue
                last = self._md_last.get(mid, 0)
                for row in rows:
                    open_ms = int(row[0])
                    if open_ms <= last:
                        continue
                    self._md_last[mid] = open_ms
                    asset = self.instruments[mid]
                    close = Decimal(row[4])
                    self._last_price[asset.symbol] = close
                    if last == 0 and row is not rows[-1]:
                        continue  # at start, only the newest bar
                    self._md_queue.put_nowait(
                        {
                            "asset": asset,
                            "timestamp": datetime.fromtimestamp((int(row[6]) + 1) / 1000, UTC),
                            "open": Decimal(row[1]),
                            "high": Decimal(row[2]),
                            "low": Decimal(row[3]),
                            "close": close,
                            "volume": Decimal(row[5]),
                        }
                    )
            await asyncio.sleep(self.market_data_interval)

    # --- events ---
    def _convert(self, fill: FillView) -> tuple[Decimal, Decimal]:
        market = self._markets.get(fill.symbol)
        if market is None:
            return fill.amount, fill.fee
        prices = {
            str(m["base"]).upper(): self._last_price[a.symbol]
            for mid, m in self._markets.items()
            if str(m["quote"]).upper() == str(market["quote"]).upper()
            and (a := self.instruments[mid]).symbol in self._last_price
        }
        return convert_fill(fill, str(market["base"]).upper(), str(market["quote"]).upper(), prices)

    def _on_fill(self, fill: FillView) -> None:
        if fill.fill_id in self._seen_fills:
            return
        self._seen_fills[fill.fill_id] = None
        if len(self._seen_fills) > _MAX_SEEN_FILLS:
            self._seen_fills.popitem(last=False)
        tracked = self._tracked.get(fill.client_id or "") or self._by_order_id.get(fill.order_id)
        cid = tracked.client_id if tracked else self.codec.decode(fill.client_id or "")
        if not cid:
            return
        asset = self.instruments.get(fill.symbol)
        if asset is None:
            return
        self._last_price[asset.symbol] = fill.price
        amount, commission = self._convert(fill)
        final = fill.final
        if tracked is not None:
            tracked.filled += abs(fill.amount)
            # a venue whose fills do not say what is left (Hyperliquid's userFills, ccxt's
            # unified trades): the fill completing the order's amount is its last
            final = final or (tracked.amount > 0 and tracked.filled >= tracked.amount)
        self._emit(
            OrderFillEvent(
                cid,
                fill.order_id,
                asset,
                amount,
                fill.price,
                commission,
                fill.fill_id,
                fill.dt or self._clock(),
                final,
            )
        )

    def _track_view(self, view: OrderView, client_id: str | None = None) -> _Tracked:
        tracked = self._tracked.get(view.client_id)
        if tracked is None:
            tracked = _Tracked(
                client_id or self.codec.decode(view.client_id),
                view.client_id,
                view.order_id,
                view.symbol,
            )
            self._tracked[view.client_id] = tracked
        if view.amount != 0 and view.symbol:  # (an order action's answer carries ids only)
            tracked.amount = abs(view.amount)
        if client_id is not None and tracked.client_id != client_id:
            # adopted from the stream before the engine asked for it by its own id (a
            # hashed venue id decodes to itself until then): name it by ours from now on
            tracked.client_id = client_id
        tracked.order_id = view.order_id
        self._by_order_id[view.order_id] = tracked
        return tracked

    def _on_order_state(self, view: OrderView) -> None:
        tracked = self._tracked.get(view.client_id) or self._by_order_id.get(view.order_id)
        if tracked is None or tracked.done:
            return
        if view.status in _TERMINAL and view.status != "filled":
            tracked.done = True
            if view.status == "rejected":
                self._emit(
                    OrderRejectEvent(
                        tracked.client_id,
                        view.order_id,
                        view.reject_reason or "rejected by venue",
                        self._clock(),
                    )
                )
            else:
                self._emit(
                    OrderCancelEvent(tracked.client_id, view.order_id, view.status, self._clock())
                )
        elif view.status == "filled" and tracked.filled >= abs(view.amount):
            tracked.done = True

    def on_stream_event(self, raw: dict[str, Any]) -> None:
        """One raw user-stream order event (from ccxt's cache ``info``)."""
        self.stream_messages += 1
        try:
            view, fill = self.venue.parse_stream_event(raw)
        except Exception as exc:
            log.warning("malformed_stream_event", venue=self.name, error=str(exc)[:200])
            return
        if view is not None and view.client_id not in self._tracked:
            # an order of this account not placed by this process (e.g. before a restart)
            self._track_view(view)
        if fill is not None:
            self._on_fill(fill)
        if view is not None:
            self._on_order_state(view)

    # --- user stream supervision ---
    async def _stream_supervisor(self) -> None:
        if not self.venue.streaming:
            await self._poll_supervisor()
            return
        delay = self.reconnect_delay
        first = True
        poll_task: asyncio.Task[None] | None = None
        while not self._closing:
            try:
                await self.venue.open_user_stream(self._ex)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if first or self.stream_up:
                    self._set_down(
                        f"user stream cannot connect: {type(exc).__name__}: {str(exc)[:120]}"
                    )
                first = False
                if poll_task is None:
                    poll_task = asyncio.get_running_loop().create_task(self._poll_while_down())
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_reconnect_delay)
                continue
            first = False
            watchers = [
                asyncio.get_running_loop().create_task(self._watch(self._ex.watch_my_trades)),
                asyncio.get_running_loop().create_task(self._watch(self._ex.watch_orders)),
            ]
            if self.venue.stream_resync is not None:
                watchers.append(asyncio.get_running_loop().create_task(self._stream_resyncs()))
            try:
                await self._resync()
            except Exception as exc:
                log.warning("resync_failed", venue=self.name, error=str(exc)[:200])
            if poll_task is not None:
                poll_task.cancel()
                poll_task = None
            was_down = self._reported_down
            self.stream_up = True
            self._reported_down = False
            delay = self.reconnect_delay
            if was_down:
                # the engine assumed "connected" at start; only a recovery is news
                self._emit(BrokerConnectionEvent(True, "user stream back; open orders resynced"))
            done, pending = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            reason = "user stream closed"
            for t in done:
                if not t.cancelled() and t.exception() is not None:
                    exc = t.exception()
                    reason = f"user stream dropped: {type(exc).__name__}: {str(exc)[:120]}"
            if self._closing:
                break
            self.stream_drops += 1
            self._set_down(reason)
            poll_task = asyncio.get_running_loop().create_task(self._poll_while_down())
            # a fresh ccxt client for the stream: the old one may hold dead state
            await self._reset_stream_clients()
            await asyncio.sleep(delay)
        if poll_task is not None:
            poll_task.cancel()

    async def _stream_resyncs(self) -> None:
        """For a venue whose stream cannot say when its subscription is active (the
        generic ccxt venue: ccxt.pro subscribes inside the first watch): resync once
        shortly after the stream opened, catching what happened before the subscription
        took effect, then every ``interval`` as a safety net."""
        first, interval = self.venue.stream_resync or (1.0, 30.0)
        await asyncio.sleep(first)
        while not self._closing:
            try:
                await self._resync()
            except Exception as exc:  # the stream is still the primary path; retry later
                log.warning("stream_resync_failed", venue=self.name, error=str(exc)[:200])
            await asyncio.sleep(interval)

    async def _poll_supervisor(self) -> None:
        """A venue without a user stream: its orders and fills are polled every
        ``poll_interval`` (see :meth:`_resync`). A failing poll is a lost connection for
        the engine (new risk blocked), the next good one its recovery."""
        self.stream_up = True
        while not self._closing:
            await asyncio.sleep(self.poll_interval)
            try:
                await self._resync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.stream_up:
                    self.stream_drops += 1
                    self._set_down(f"order polling failed: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            if not self.stream_up:
                self.stream_up = True
                self._reported_down = False
                self._emit(BrokerConnectionEvent(True, "order polling back; orders resynced"))

    def _supervisor_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._closing:
            return
        exc = task.exception()
        if exc is not None:
            # never silent: without the supervisor nothing would notice a dead stream
            log.error("user_stream_supervisor_failed", venue=self.name, error=repr(exc)[:200])
            self._set_down(f"user stream supervisor failed: {type(exc).__name__}")

    async def _reset_stream_clients(self) -> None:
        ex = self._ex
        if ex is None:
            return
        for url, client in list(getattr(ex, "clients", {}).items()):
            try:
                await client.close()
            except Exception as exc:  # closing a dead socket: note it, nothing to undo
                log.debug("venue_stream_close_failed", url=url, error=type(exc).__name__)
            ex.clients.pop(url, None)
        opts = ex.options
        for key in ("spot", "linear", "future", "delivery", "inverse"):
            sub = opts.get(key)
            if isinstance(sub, dict) and "listenKey" in sub:
                sub["listenKey"] = None
                sub["lastAuthenticatedTime"] = 0

    def _malformed(self, what: str) -> None:
        self.malformed_frames += 1
        log.warning("malformed_stream_frame", venue=self.name, frame=what)

    def _set_down(self, reason: str) -> None:
        self.stream_up = False
        self._reported_down = True
        log.error("user_stream_down", venue=self.name, reason=reason)
        self._emit(BrokerConnectionEvent(False, f"{self.name} {reason}"))

    async def _watch(self, method: Any) -> None:
        # Duplicates (the same trade from the stream and a resync) are dropped by fill id
        # and by the order's terminal flag, so every update is simply handed on.
        while not self._closing:
            for item in await method():
                payload = self.venue.stream_payload(item)
                if payload is not None:
                    self.on_stream_event(payload)

    async def _poll_while_down(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.poll_interval)
            try:
                await self._resync()
            except Exception as exc:
                log.warning("poll_failed", venue=self.name, error=str(exc)[:200])

    async def _resync(self, initial: bool = False) -> None:
        """Bring local order state up to the venue's: open orders, and for every order we
        track that is no longer open, its final state and fills."""
        ex = self._ex
        if ex is None:
            return
        self.resyncs += 1
        raws = await self._call(self.venue.fetch_open_orders(ex), "query")
        open_ids = set()
        for raw in raws:
            view = self.venue.parse_order(raw)
            open_ids.add(view.order_id)
            tracked = self._track_view(view)
            self._interest.add(view.symbol)
            # views are signed (a sell's filled < 0), tracked.filled counts units
            if abs(view.filled) > tracked.filled:
                await self._resync_fills(view)
        if initial:
            return
        for tracked in list(self._tracked.values()):
            if tracked.done or tracked.order_id in open_ids:
                continue
            raw = await self._call(
                self.venue.fetch_order(
                    ex, tracked.symbol, order_id=tracked.order_id, client_id=tracked.venue_cid
                ),
                "query",
            )
            if raw is None:
                continue
            view = self.venue.parse_order(raw)
            tracked.order_id = view.order_id
            self._by_order_id[view.order_id] = tracked
            if abs(view.filled) > tracked.filled:
                await self._resync_fills(view)
            self._on_order_state(view)

    async def _resync_fills(self, view: OrderView) -> None:
        trades = await self._call(
            self.venue.fetch_order_trades(self._ex, view.symbol, view.order_id), "query"
        )
        fills = [self.venue.parse_trade(t) for t in trades]
        fills.sort(key=lambda f: f.dt or datetime.min.replace(tzinfo=UTC))
        total = _ZERO
        for i, fill in enumerate(fills):
            total += abs(fill.amount)
            fill.client_id = view.client_id
            # The trade list may be newer than the order snapshot (fills landed between
            # the two requests): the fill completing the order's amount is final too.
            fill.final = (view.status == "filled" and i == len(fills) - 1) or (
                view.amount != 0 and total >= abs(view.amount)
            )
            self._on_fill(fill)

    # --- status ---
    def status(self) -> dict[str, Any]:
        return {
            "venue": self.name,
            "market_type": self.market_type,
            "stream_up": self.stream_up,
            "stream_drops": self.stream_drops,
            "resyncs": self.resyncs,
            "malformed_frames": self.malformed_frames,
            "used_weight": self.budget.used_weight,
            "rate_limited_for": round(self.budget.blocked_for, 3),
        }
