"""The Interactive Brokers adapter: orders, fills, positions and bars through ``ib_async``.

``ib_async`` keeps the TWS connection and its bookkeeping (trades, fills, positions,
account values); this module turns it into the engine's contract:

* **Orders** carry our client order id in ``orderRef``, which TWS keeps with the order
  and its executions across restarts — the one way back to our id after a crash (a
  completed order from an earlier session comes back with order id 0).
* **Submit outcome**: acknowledged (``Submitted``/``PreSubmitted``) → the broker id;
  error 201 and other refusals → :class:`~rustybt.exceptions.OrderRejected`; pacing
  (error 100) → :class:`~rustybt.exceptions.RateLimited`; no answer within
  ``request_timeout`` or a connection lost while waiting →
  :class:`~rustybt.exceptions.OrderStatusUnknown` (the engine resolves it by client id).
* **Fills** are emitted when the execution's commission report arrives, with IB's
  ``execId`` as the fill id; a fill is emitted once per ``execId`` even when TWS repeats
  it (reconnects, ``reqExecutions``). A correction (same execution, next revision in
  the last part of the ``execId``) emits the change in size, if any, and an alert.
* **Connection**: a dropped socket (TWS's nightly restart) or IB's own connectivity loss
  (error 1100) emits ``BrokerConnectionEvent(connected=False)`` — the engine blocks
  new risk — and the adapter reconnects with backoff. Once back, fills missed while
  away are emitted from TWS's execution list, then ``BrokerConnectionEvent(True)``
  makes the engine reconcile.
* **Market data**: 5-second real-time bars (``reqRealTimeBars``), returned by
  :meth:`IBBrokerAdapter.get_next_market_data` as :class:`~rustybt.data.bar.Bar` (each
  its own market event), or, with an engine-owned
  :class:`~rustybt.live.streaming.ib.IBRealTimeBarStream`, handed to ``bar_listener``
  and aggregated into the strategy's bars like the crypto streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ib_async import IB, Contract, LimitOrder, MarketOrder, StopLimitOrder, StopOrder, Trade
from ib_async import Order as IBOrder

from rustybt.assets import Asset
from rustybt.data.bar import Bar
from rustybt.exceptions import (
    BrokerConnectionError,
    InsufficientFundsError,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
    OrderStatusUnknown,
    RateLimited,
    SymbolNotFound,
)
from rustybt.live.brokers.base import BrokerAdapter, Capabilities
from rustybt.live.brokers.ib.config import IBConfig
from rustybt.live.brokers.ib.contracts import asset_for, contract_for, ib_decimal, wire_decimal
from rustybt.live.brokers.ib.errors import IBErrorKind, classify
from rustybt.live.events import (
    AlertEvent,
    BrokerConnectionEvent,
    OrderAckEvent,
    OrderCancelEvent,
    OrderFillEvent,
    OrderRejectEvent,
)

log = logging.getLogger("rustybt.live.brokers.ib")

_ZERO = Decimal(0)
_ACKED = frozenset({"PreSubmitted", "Submitted", "ApiPending", "PendingSubmit", "Filled"})
_OPEN = frozenset({"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel"})
_TIF = {"gtc": "GTC", "day": "DAY", "ioc": "IOC", "fok": "FOK"}
_TYPE_NAMES = {"MKT": "market", "LMT": "limit", "STP": "stop", "STP LMT": "stop_limit"}
#: IB order status -> the engine's words (``get_open_orders`` / ``get_order_by_client_id``).
_STATUS = {
    "PendingSubmit": "submitted",
    "ApiPending": "submitted",
    "PreSubmitted": "submitted",
    "Submitted": "submitted",
    "PendingCancel": "submitted",
    "Filled": "filled",
    "Cancelled": "cancelled",
    "ApiCancelled": "cancelled",
    "Inactive": "rejected",
}
_MAX_SEEN_EXEC = 100_000
#: Words TWS uses in a 201 reject when the account cannot pay for the order.
_NO_FUNDS = ("insufficient", "buying power", "equity with loan", "available funds", "margin")


def _exec_base(exec_id: str) -> tuple[str, int]:
    """``0000e0d5.000f4241.01.02`` → (``0000e0d5.000f4241.01``, 2): IB's revision suffix."""
    head, _, rev = exec_id.rpartition(".")
    if head and rev.isdigit():
        return head, int(rev)
    return exec_id, 0


class IBBrokerAdapter(BrokerAdapter):
    """Interactive Brokers through TWS or IB Gateway (spec: ``IBBrokerAdapter``).

    ``IBBrokerAdapter(host='127.0.0.1', port=7497, client_id=1)`` connects to TWS's
    paper port. Live ports (7496, Gateway 4001) need ``live_money=True``.
    """

    name = "ib"
    simulated = False

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        client_id: int = 1,
        *,
        account: str | None = None,
        live_money: bool = False,
        connect_timeout: float = 4.0,
        request_timeout: float = 5.0,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 30.0,
        max_reconnect_attempts: int | None = None,
        instruments: list[Asset] | None = None,
    ) -> None:
        super().__init__()
        self.config = IBConfig(
            host=host,
            port=port,
            client_id=client_id,
            account=account,
            live_money=live_money,
            connect_timeout=connect_timeout,
            request_timeout=request_timeout,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
            max_reconnect_attempts=max_reconnect_attempts,
        )
        self._ib: IB | None = None
        self._want_connected = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._contracts: dict[Asset, Contract] = {}
        self._tick_sizes: dict[Asset, tuple[Decimal, Decimal]] = {}
        self._assets_by_con_id: dict[int, Asset] = {}
        self._assets_by_symbol: dict[str, Asset] = {}
        self._acked: set[int] = set()
        self._ack_waiters: dict[int, asyncio.Future[str]] = {}
        self._cancel_waiters: dict[int, asyncio.Future[None]] = {}
        self._rejected: dict[int, str] = {}
        self._seen_exec: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._exec_sizes: dict[str, tuple[int, Decimal]] = {}
        self._bars: asyncio.Queue[Bar] = asyncio.Queue(maxsize=10_000)
        self._bar_subs: dict[Asset, Any] = {}
        #: Takes every real-time bar instead of the polling queue (a market-data stream).
        self.bar_listener: Callable[[Bar], Any] | None = None
        #: Called with (connected, gave_up) when the TWS connection drops or is back
        #: (after the bar subscriptions were renewed).
        self.connection_listeners: list[Callable[[bool, bool], Any]] = []
        self._preload = list(instruments or [])
        self.instruments: dict[str, Asset] = {}
        self.disconnects = 0
        self.capabilities = Capabilities(
            order_types=frozenset({"market", "limit", "stop", "stop_limit"}),
            time_in_force=frozenset({"gtc", "day", "ioc", "fok"}),
            positions_from="positions",
            partial_fills=True,
            cancel_by_client_id=True,
            lookup_closed_by_client_id=True,
            shorting=True,
        )

    def __repr__(self) -> str:
        c = self.config
        return (
            f"IBBrokerAdapter(host={c.host!r}, port={c.port}, client_id={c.client_id}, "
            f"connected={self.is_connected})"
        )

    @property
    def stream_up(self) -> bool:
        """TWS pushes order events on the one API socket: up while connected."""
        return self.is_connected

    def asset(self, symbol: str) -> Asset:
        """An instrument resolved at connect (``instruments=``), with IB's tick and lot."""
        asset = self.instruments.get(symbol.upper())
        if asset is None:
            raise InvalidOrder(
                f"IB adapter has no instrument {symbol!r} loaded; known: "
                f"{', '.join(sorted(self.instruments)) or 'none (pass instruments=[...])'}"
            )
        return asset

    # --- connection -----------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect to TWS and sync orders, executions, positions and the account."""
        self._want_connected = True
        await self._connect_once()
        for asset in self._preload:
            await self._contract(asset)

    async def _connect_once(self) -> None:
        c = self.config
        ib = IB()
        ib.RequestTimeout = c.request_timeout
        try:
            await ib.connectAsync(
                c.host,
                c.port,
                clientId=c.client_id,
                timeout=c.connect_timeout,
                account=c.account or "",
            )
        except (OSError, TimeoutError, ConnectionError) as exc:
            ib.disconnect()
            raise BrokerConnectionError(
                f"cannot connect to TWS/IB Gateway at {c.host}:{c.port} (client id "
                f"{c.client_id}): {type(exc).__name__}; is it running with API connections "
                "enabled (Configure > API > Settings) and this port set?"
            ) from None
        self._ib = ib
        ib.disconnectedEvent += self._on_disconnected
        ib.errorEvent += self._on_error
        ib.orderStatusEvent += self._on_order_status
        ib.commissionReportEvent += self._on_commission_report
        self._connected = True
        self._resync_fills()
        for asset in list(self._bar_subs):
            self._bar_subs[asset] = None
            await self._subscribe_bars(asset)

    async def disconnect(self) -> None:
        self._want_connected = False
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnect_task
            self._reconnect_task = None
        ib, self._ib = self._ib, None
        self._connected = False
        if ib is not None:
            ib.disconnectedEvent -= self._on_disconnected
            ib.disconnect()

    def _on_disconnected(self) -> None:
        if not self._connected:
            return
        self._connected = False
        self.disconnects += 1
        self._fail_waiters("connection to TWS lost before it answered")
        self._emit(BrokerConnectionEvent(False, "connection to TWS lost"))
        self._tell_listeners(False, False)
        if self._want_connected and self._reconnect_task is None:
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        c = self.config
        delay = c.reconnect_delay
        attempt = 0
        try:
            while self._want_connected:
                attempt += 1
                await asyncio.sleep(delay)
                try:
                    await self._connect_once()
                except Exception as exc:  # noqa: BLE001 - every failure means "try again"
                    log.warning("ib_reconnect_failed attempt=%s error=%s", attempt, exc)
                    if c.max_reconnect_attempts is not None and attempt >= c.max_reconnect_attempts:
                        self._emit(
                            AlertEvent(
                                "broker_disconnected",
                                f"gave up reconnecting to TWS after {attempt} attempts",
                            )
                        )
                        self._tell_listeners(False, True)
                        return
                    delay = min(delay * 2, c.max_reconnect_delay)
                    continue
                self._emit(BrokerConnectionEvent(True, f"reconnected after {attempt} attempt(s)"))
                self._tell_listeners(True, False)
                return
        finally:
            self._reconnect_task = None

    def _tell_listeners(self, connected: bool, gave_up: bool) -> None:
        for listener in list(self.connection_listeners):
            try:
                listener(connected, gave_up)
            except Exception:  # a listener's bug must not stop the reconnect logic
                log.exception("ib_connection_listener_failed")

    def _fail_waiters(self, why: str) -> None:
        for oid, fut in list(self._ack_waiters.items()):
            if not fut.done():
                fut.set_exception(OrderStatusUnknown(f"IB order {oid}: {why}"))
        for fut in self._cancel_waiters.values():
            if not fut.done():
                fut.set_exception(BrokerConnectionError(why))

    def _require(self) -> IB:
        ib = self._ib
        if ib is None or not self._connected or not ib.isConnected():
            raise BrokerConnectionError(
                "not connected to TWS/IB Gateway; the adapter reconnects by itself "
                "(new orders are blocked until it is back)"
            )
        return ib

    # --- contracts ------------------------------------------------------------------------
    def _remember(self, asset: Asset) -> None:
        self._assets_by_symbol.setdefault(asset.symbol, asset)

    async def _contract(self, asset: Asset) -> Contract:
        contract = self._contracts.get(asset)
        if contract is not None:
            return contract
        ib = self._require()
        self._remember(asset)
        try:
            details = await asyncio.wait_for(
                ib.reqContractDetailsAsync(contract_for(asset)), self.config.request_timeout
            )
        except TimeoutError:
            raise BrokerConnectionError(
                f"TWS did not answer the contract lookup for {asset.symbol} in time"
            ) from None
        if not details:
            raise SymbolNotFound(
                f"IB has no contract for {type(asset).__name__} {asset.symbol} "
                f"(exchange {asset.exchange}, currency {asset.quote_currency}); check the "
                "symbol, primary exchange and currency"
            )
        if len(details) > 1:
            raise SymbolNotFound(
                f"{asset.symbol} is ambiguous at IB ({len(details)} contracts); give the asset "
                "its primary exchange (stocks) or the contract month as symbol (futures, ESZ6)"
            )
        cd = details[0]
        contract = cd.contract
        tick = ib_decimal(cd.minTick, what="minTick")
        lot = ib_decimal(cd.sizeIncrement, what="sizeIncrement") if cd.sizeIncrement else Decimal(1)
        self._contracts[asset] = contract
        self._tick_sizes[asset] = (tick, lot)
        self._assets_by_con_id[contract.conId] = asset
        if asset.tick_size != tick or asset.lot_size != lot:
            # The venue's rules, not the bundle's defaults: an asset for the same
            # instrument (equal, same hash) carrying IB's tick and size increment.
            data = {**asset.to_dict(), "tick_size": str(tick), "lot_size": str(lot)}
            venue_asset = type(asset)(**{k: v for k, v in data.items() if k != "asset_class"})
            self._contracts[venue_asset] = contract
            self._tick_sizes[venue_asset] = (tick, lot)
            self.instruments[asset.symbol] = venue_asset
        else:
            self.instruments[asset.symbol] = asset
        return contract

    def _asset_of(self, contract: Contract) -> Asset:
        asset = self._assets_by_con_id.get(contract.conId)
        if asset is not None:
            return asset
        key = contract.localSymbol if contract.secType == "FUT" else contract.symbol
        if contract.secType == "CASH":
            key = f"{contract.symbol}.{contract.currency}"
        asset = self._assets_by_symbol.get(key) or asset_for(contract)
        self._assets_by_con_id[contract.conId] = asset
        return asset

    # --- orders ---------------------------------------------------------------------------
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
        if not self._connected:
            raise OrderRejected(
                f"not connected to TWS: order {client_order_id or ''} for {asset.symbol} was "
                "not sent"
            )
        contract = await self._contract(asset)
        ib = self._require()
        order = self._build_order(asset, amount, order_type, limit_price, stop_price, time_in_force)
        if client_order_id:
            same = self._trade_by(None, client_order_id)
            if same is not None:
                raise OrderRejected(
                    f"client order id {client_order_id!r} is already used by IB order "
                    f"{same.order.orderId} (code: duplicate orderRef); nothing was sent"
                )
        order.orderRef = client_order_id or ""
        if self.config.account:
            order.account = self.config.account
        loop = asyncio.get_running_loop()
        order.orderId = ib.client.getReqId()
        waiter: asyncio.Future[str] = loop.create_future()
        self._ack_waiters[order.orderId] = waiter
        try:
            ib.placeOrder(contract, order)
            return await asyncio.wait_for(asyncio.shield(waiter), self.config.request_timeout)
        except TimeoutError:
            raise OrderStatusUnknown(
                f"TWS did not acknowledge order {client_order_id} (IB id {order.orderId}) within "
                f"{self.config.request_timeout} s; it may be working at IB"
            ) from None
        except ConnectionError as exc:
            raise OrderStatusUnknown(
                f"connection lost while sending order {client_order_id}: {exc}"
            ) from None
        finally:
            self._ack_waiters.pop(order.orderId, None)

    def _build_order(
        self,
        asset: Asset,
        amount: Decimal,
        order_type: str,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        time_in_force: str,
    ) -> IBOrder:
        if amount == 0:
            raise InvalidOrder(f"order for {asset.symbol} has amount 0; nothing to send")
        tif = _TIF.get(str(time_in_force).lower())
        if tif is None:
            raise InvalidOrder(
                f"time_in_force={time_in_force!r} is not one IB takes; use gtc, day, ioc or fok"
            )
        tick, lot = self._tick_sizes.get(asset, (asset.tick_size, asset.lot_size))
        qty = abs(amount)
        if qty % lot != 0:
            raise InvalidOrder(
                f"{qty} {asset.symbol} is not a multiple of the lot size (IB's size increment) "
                f"{lot}; nearest valid: {(qty // lot) * lot}"
            )
        for name, price in (("limit_price", limit_price), ("stop_price", stop_price)):
            if price is not None and price % tick != 0:
                nearest = (price / tick).to_integral_value() * tick
                raise InvalidOrder(
                    f"{name}={price} for {asset.symbol} is off tick (IB's tick size {tick}); "
                    f"nearest valid: {nearest}"
                )
        action = "BUY" if amount > 0 else "SELL"
        q = wire_decimal(qty)
        kind = str(order_type).lower().replace("-", "_")
        if kind == "market":
            order: IBOrder = MarketOrder(action, q)
        elif kind == "limit" and limit_price is not None:
            order = LimitOrder(action, q, wire_decimal(limit_price))
        elif kind == "stop" and stop_price is not None:
            order = StopOrder(action, q, wire_decimal(stop_price))
        elif kind == "stop_limit" and limit_price is not None and stop_price is not None:
            order = StopLimitOrder(action, q, wire_decimal(limit_price), wire_decimal(stop_price))
        else:
            raise InvalidOrder(
                f"order_type={order_type!r} with limit_price={limit_price} and "
                f"stop_price={stop_price} is not a market, limit, stop or stop_limit order"
            )
        order.tif = tif
        return order

    def _trade_by(self, broker_order_id: str | None, client_order_id: str | None) -> Trade | None:
        ib = self._ib
        if ib is None:
            return None
        trades = ib.trades()
        if broker_order_id:
            with contextlib.suppress(ValueError):
                oid = int(broker_order_id)
                for t in trades:
                    if t.order.orderId == oid and oid != 0:
                        return t
        if client_order_id:
            for t in trades:
                if t.order.orderRef == client_order_id:
                    return t
        return None

    async def cancel_order(
        self,
        broker_order_id: str | None,
        *,
        client_order_id: str | None = None,
        asset: Asset | None = None,
    ) -> None:
        ib = self._require()
        trade = self._trade_by(broker_order_id, client_order_id)
        if trade is None:
            raise OrderNotFound(
                f"IB has no order {broker_order_id or client_order_id!r} for this client id"
            )
        if trade.orderStatus.status not in _OPEN:
            raise OrderNotFound(
                f"IB order {trade.order.orderId} ({trade.order.orderRef or 'no client id'}) is "
                f"{trade.orderStatus.status}; nothing to cancel"
            )
        oid = trade.order.orderId
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._cancel_waiters[oid] = waiter
        try:
            ib.cancelOrder(trade.order)
            await asyncio.wait_for(asyncio.shield(waiter), self.config.request_timeout)
        except TimeoutError:
            raise BrokerConnectionError(
                f"TWS did not confirm the cancel of order {oid} in time; it may still be working"
            ) from None
        finally:
            self._cancel_waiters.pop(oid, None)

    # --- ib_async events -------------------------------------------------------------------
    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        kind = classify(code)
        if kind is IBErrorKind.INFO:
            return
        if kind is IBErrorKind.CONNECTIVITY_LOST:
            self._emit(BrokerConnectionEvent(False, f"IB error {code}: {message}"))
            return
        if kind is IBErrorKind.CONNECTIVITY_RESTORED:
            self._emit(BrokerConnectionEvent(True, f"IB error {code}: {message}"))
            return
        waiter = self._ack_waiters.get(req_id)
        if kind is IBErrorKind.PACING:
            if waiter is not None and not waiter.done():
                waiter.set_exception(
                    RateLimited(f"IB pacing violation (error {code}): {message}", retry_after=1.0)
                )
            return
        if kind is IBErrorKind.CANCEL_FAILED:
            cw = self._cancel_waiters.get(req_id)
            if cw is not None and not cw.done():
                if code == 10147:
                    cw.set_exception(OrderNotFound(f"IB error {code}: {message}"))
                else:
                    cw.set_result(None)  # already finished: nothing left to cancel
            return
        if kind is IBErrorKind.CANCELLED:
            return  # the Cancelled order status carries it
        # A refusal of an order (201 and friends) or of its contract (200).
        reason = f"IB error code {code}: {message}"
        self._rejected[req_id] = reason
        if waiter is not None and not waiter.done():
            no_funds = code == 201 and any(w in message.lower() for w in _NO_FUNDS)
            waiter.set_exception((InsufficientFundsError if no_funds else OrderRejected)(reason))
            return
        # Rejected after TWS acknowledged it (PreSubmitted, then error 201, as TWS does
        # when a check fails downstream): the engine hears it as a broker reject.
        trade = self._trade_by(str(req_id), None)
        if trade is not None and trade.order.orderRef:
            self._emit(
                OrderRejectEvent(trade.order.orderRef, str(req_id), reason, datetime.now(UTC))
            )

    def _on_order_status(self, trade: Trade) -> None:
        oid = trade.order.orderId
        status = trade.orderStatus.status
        cid = trade.order.orderRef
        waiter = self._ack_waiters.get(oid)
        if status in _ACKED and oid not in self._acked:
            self._acked.add(oid)
            # Acknowledge on the next loop turn: a reject TWS sends in the same read
            # (PreSubmitted, then error 201) then reaches the caller as a refusal, not
            # as an ack followed by a reject.
            asyncio.get_running_loop().call_soon(self._ack, oid, cid, waiter)
        if status in ("Cancelled", "ApiCancelled", "Inactive"):
            cw = self._cancel_waiters.get(oid)
            if cw is not None and not cw.done():
                cw.set_result(None)
            last_code = trade.log[-1].errorCode if trade.log else 0
            if oid in self._rejected or (last_code and last_code != 202):
                # ib_async marks an order TWS refused (201 reject, 200 no contract, 100
                # pacing...) Cancelled before it raises the error event: the error
                # handler reports it for what it is, not as a cancel.
                return
            if waiter is not None and not waiter.done():
                waiter.set_exception(OrderRejected(f"IB order {oid} ended {status} unacknowledged"))
                return
            if cid:
                self._emit(
                    OrderCancelEvent(cid, str(oid), f"IB status {status}", datetime.now(UTC))
                )

    def _ack(self, oid: int, cid: str, waiter: asyncio.Future[str] | None) -> None:
        if oid in self._rejected and waiter is not None:
            return  # refused in the same read: submit_order raises instead
        if waiter is not None and not waiter.done():
            waiter.set_result(str(oid))
        if cid:
            self._emit(OrderAckEvent(cid, str(oid), datetime.now(UTC)))

    def _on_commission_report(self, trade: Trade, fill: Any, report: Any) -> None:
        self._emit_fill(fill, trade.order.totalQuantity)

    def _emit_fill(self, fill: Any, total_quantity: Any | None) -> None:
        ex = fill.execution
        exec_id = ex.execId
        if exec_id in self._seen_exec:
            return
        cid = ex.orderRef
        if not cid:
            return  # not placed by RustyBT (manual or another tool): reconciliation sees it
        base, rev = _exec_base(exec_id)
        shares = ib_decimal(ex.shares, what="shares")
        price = ib_decimal(ex.price, what="price")
        prior = self._exec_sizes.get(base)
        self._remember_exec(exec_id)
        self._exec_sizes[base] = (rev, shares)
        if prior is not None:
            delta = shares - prior[1]
            self._emit(
                AlertEvent(
                    "broker_correction",
                    f"IB corrected execution {base} (revision {rev}): {prior[1]} → {shares} "
                    f"@ {price}; reconciliation will settle any price difference",
                    {"exec_id": exec_id, "client_order_id": cid},
                )
            )
            if delta == 0:
                return
            shares = delta
        sign = Decimal(1) if ex.side in ("BOT", "BUY") else Decimal(-1)
        report = fill.commissionReport
        commission = _ZERO
        if report is not None and report.execId:
            commission = ib_decimal(report.commission, what="commission")
        cum = ib_decimal(ex.cumQty, what="cumQty")
        total = ib_decimal(total_quantity, what="totalQuantity") if total_quantity else None
        self._emit(
            OrderFillEvent(
                client_order_id=cid,
                broker_order_id=str(ex.orderId) if ex.orderId else "",
                asset=self._asset_of(fill.contract),
                amount=sign * shares,
                price=price,
                commission=commission,
                fill_id=exec_id,
                dt=ex.time if ex.time else datetime.now(UTC),
                is_final=total is not None and cum >= total,
            )
        )

    def _remember_exec(self, exec_id: str) -> None:
        self._seen_exec.add(exec_id)
        self._seen_order.append(exec_id)
        if len(self._seen_order) > _MAX_SEEN_EXEC:
            self._seen_exec.discard(self._seen_order.popleft())

    def _resync_fills(self) -> None:
        """Emit executions TWS reported at (re)connection that were not emitted yet.

        ``ib_async`` raises no event for executions it learns from ``reqExecutions`` at
        start-up, so fills that happened while disconnected (or before a crash) are
        picked up here; the engine ignores fill ids it has already applied.
        """
        ib = self._ib
        if ib is None:
            return
        totals = {t.order.permId: t.order.totalQuantity for t in ib.trades() if t.order.permId}
        for fill in sorted(
            ib.fills(), key=lambda f: f.execution.time or datetime.min.replace(tzinfo=UTC)
        ):
            self._emit_fill(fill, totals.get(fill.execution.permId))

    # --- queries --------------------------------------------------------------------------
    async def get_account_info(self) -> dict[str, Decimal]:
        ib = self._require()
        values: dict[str, Decimal] = {}
        wanted = {
            "NetLiquidation": "portfolio_value",
            "TotalCashValue": "cash",
            "BuyingPower": "buying_power",
            "AvailableFunds": "available_funds",
        }
        for v in ib.accountValues(self.config.account or ""):
            key = wanted.get(v.tag)
            if key is not None and v.currency in ("USD", "BASE", ""):
                values[key] = ib_decimal(v.value, what=v.tag)
        missing = {"cash", "portfolio_value", "buying_power"} - values.keys()
        if missing:
            raise BrokerConnectionError(
                f"TWS has not sent the account's {', '.join(sorted(missing))} yet; retry shortly"
            )
        return values

    async def get_positions(self) -> list[dict[str, Any]]:
        ib = self._require()
        out = []
        for p in ib.positions(self.config.account or ""):
            amount = ib_decimal(p.position, what="position")
            if amount == 0:
                continue
            asset = self._asset_of(p.contract)
            mult = ib_decimal(p.contract.multiplier) if p.contract.multiplier else Decimal(1)
            avg = ib_decimal(p.avgCost, what="avgCost") / mult
            last = None
            for item in ib.portfolio(self.config.account or ""):
                if item.contract.conId == p.contract.conId:
                    last = ib_decimal(item.marketPrice, what="marketPrice")
            out.append({"asset": asset, "amount": amount, "average_price": avg, "last_price": last})
        return out

    def _fill_dicts(self, fills: list[Any]) -> list[dict[str, Any]]:
        out = []
        for f in fills:
            ex = f.execution
            sign = Decimal(1) if ex.side in ("BOT", "BUY") else Decimal(-1)
            report = f.commissionReport
            out.append(
                {
                    "fill_id": ex.execId,
                    "amount": sign * ib_decimal(ex.shares, what="shares"),
                    "price": ib_decimal(ex.price, what="price"),
                    "commission": ib_decimal(report.commission) if report.execId else _ZERO,
                }
            )
        return out

    def _order_dict(self, trade: Trade) -> dict[str, Any]:
        o = trade.order
        sign = Decimal(1) if o.action == "BUY" else Decimal(-1)
        fills = self._fill_dicts(trade.fills)
        lmt = o.lmtPrice if o.orderType in ("LMT", "STP LMT") else None
        stp = o.auxPrice if o.orderType in ("STP", "STP LMT") else None
        avg = trade.orderStatus.avgFillPrice
        return {
            "order_id": str(o.orderId),
            "client_order_id": o.orderRef or None,
            "asset": self._asset_of(trade.contract),
            "amount": sign * ib_decimal(o.totalQuantity, what="totalQuantity"),
            "filled": sum((f["amount"] for f in fills), _ZERO),
            "order_type": _TYPE_NAMES.get(o.orderType, o.orderType.lower()),
            "limit_price": ib_decimal(lmt) if lmt not in (None, "") else None,
            "stop_price": ib_decimal(stp) if stp not in (None, "") else None,
            "status": _STATUS.get(trade.orderStatus.status, trade.orderStatus.status.lower()),
            "avg_fill_price": ib_decimal(avg) if avg else None,
            "commission": sum((f["commission"] for f in fills), _ZERO),
            "fills": fills,
        }

    async def get_open_orders(self) -> list[dict[str, Any]]:
        ib = self._require()
        return [self._order_dict(t) for t in ib.openTrades()]

    async def get_order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        """Our order by its ``orderRef``: open, done this session, or known from its fills."""
        ib = self._require()
        trade = self._trade_by(None, client_order_id)
        if trade is not None:
            return self._order_dict(trade)
        fills = [f for f in ib.fills() if f.execution.orderRef == client_order_id]
        if not fills:
            return None
        # The order itself is gone from TWS (finished in an earlier session); its
        # executions remain and say what happened.
        first = fills[0]
        details = self._fill_dicts(fills)
        return {
            "order_id": str(first.execution.orderId) if first.execution.orderId else None,
            "client_order_id": client_order_id,
            "asset": self._asset_of(first.contract),
            "amount": None,
            "filled": sum((f["amount"] for f in details), _ZERO),
            "order_type": None,
            "limit_price": None,
            "stop_price": None,
            "status": "executions_only",
            "avg_fill_price": ib_decimal(fills[-1].execution.avgPrice),
            "commission": sum((f["commission"] for f in details), _ZERO),
            "fills": details,
        }

    async def get_current_price(self, asset: Asset) -> Decimal | None:
        ib = self._ib
        if ib is None:
            return None
        contract = self._contracts.get(asset)
        if contract is None:
            return None
        for item in ib.portfolio(self.config.account or ""):
            if item.contract.conId == contract.conId:
                return ib_decimal(item.marketPrice, what="marketPrice")
        return None

    # --- market data ----------------------------------------------------------------------
    async def subscribe_market_data(self, assets: list[Asset]) -> None:
        for asset in assets:
            self._remember(asset)
            self._bar_subs.setdefault(asset, None)
            await self._subscribe_bars(asset)

    async def _subscribe_bars(self, asset: Asset) -> None:
        if self._bar_subs.get(asset) is not None:
            return
        contract = await self._contract(asset)
        ib = self._require()
        what = "MIDPOINT" if contract.secType == "CASH" else "TRADES"
        bars = ib.reqRealTimeBars(contract, 5, what, False)

        def on_update(bar_list: Any, has_new: bool, _asset: Asset = asset) -> None:
            if not has_new or not bar_list:
                return
            b = bar_list[-1]
            bar = Bar(
                _asset,
                b.time if b.time.tzinfo else b.time.replace(tzinfo=UTC),
                ib_decimal(b.open_, what="open"),
                ib_decimal(b.high, what="high"),
                ib_decimal(b.low, what="low"),
                ib_decimal(b.close, what="close"),
                ib_decimal(b.volume, what="volume"),
            )
            listener = self.bar_listener
            if listener is not None:
                listener(bar)
                return
            if self._bars.full():
                self._bars.get_nowait()  # keep the newest; the engine is behind
            self._bars.put_nowait(bar)

        bars.updateEvent += on_update
        self._bar_subs[asset] = bars

    async def current_time(self) -> datetime:
        """TWS's clock (``reqCurrentTime``): a round trip on the API socket, whose answer
        comes after everything TWS sent before it."""
        ib = self._require()
        return await asyncio.wait_for(ib.reqCurrentTimeAsync(), self.config.request_timeout)

    async def get_next_market_data(self) -> Bar | None:
        """The next 5-second bar TWS sent, or None when there is none yet."""
        if self._bars.empty():
            return None
        return self._bars.get_nowait()
