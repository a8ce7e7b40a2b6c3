"""The fake Binance's matching engine and accounts (no I/O: the server wraps it).

One :class:`FakeExchange` is one Binance market type: ``spot`` (balances per asset,
commission charged in the asset received, like Binance without BNB discounts) or
``futures`` (USDⓈ-M: a USDT wallet, signed positions per symbol, commission in USDT).
Spot fees are charged in the quote asset on both sides (real Binance charges a buy's
fee in the asset received unless BNB pays it; the adapter converts either way).

Fills are decided by the kernel's :class:`~rustybt.finance.execution.ExecutionSimulator`
(the same rules the backtest and the paper broker use): an incoming order is matched at
once against a one-tick bar at the current price carrying the symbol's ``liquidity``;
what rests is matched against every bar pushed with :meth:`FakeExchange.push_bar`, with
all orders of a symbol sharing that bar's volume (partial fills). Venue rules the kernel
does not know are applied here, as Binance documents them: filters (PRICE_FILTER,
LOT_SIZE, NOTIONAL / MIN_NOTIONAL), balance and margin checks, a market order's
unfilled rest expires, IOC/FOK, a stop that would trigger immediately is refused.

Every state change produces the user-data event Binance sends for it (spot
``executionReport`` + ``outboundAccountPosition``, futures ``ORDER_TRADE_UPDATE`` +
``ACCOUNT_UPDATE``) through ``on_event``; the server forwards them to subscribers.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rustybt.assets import Crypto
from rustybt.data.bar import Bar
from rustybt.finance.execution import ExecutionSimulator
from rustybt.finance.order import Order, OrderStatus, OrderType, TimeInForce

_ZERO = Decimal(0)
_ONE = Decimal(1)


_ILLEGAL_CID = (
    "Illegal characters found in parameter 'newClientOrderId'; legal range is "
    "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'."
)
_NUMBER = "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'"


class VenueError(Exception):
    """A Binance error response: HTTP ``status`` with body ``{"code", "msg"}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


def _fmt(value: Decimal, places: int = 8) -> str:
    """Binance prints fixed-point strings ("0.01000000")."""
    return f"{value:.{places}f}"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SymbolSpec:
    """One tradable symbol and its filters."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    price: Decimal
    liquidity: Decimal = Decimal("1000")  # quantity available per bar / per incoming order
    max_qty: Decimal = Decimal("9000")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")


DEFAULT_SYMBOLS = (
    SymbolSpec(
        "BTCUSDT",
        "BTC",
        "USDT",
        Decimal("0.01"),
        Decimal("0.00001"),
        Decimal("0.00001"),
        Decimal("5"),
        Decimal("50000"),
        Decimal("5"),
    ),
    SymbolSpec(
        "ETHUSDT",
        "ETH",
        "USDT",
        Decimal("0.01"),
        Decimal("0.0001"),
        Decimal("0.0001"),
        Decimal("5"),
        Decimal("3000"),
        Decimal("50"),
    ),
)


@dataclass
class VenueOrder:
    """Binance's view of one order; ``core`` is the kernel order the simulator matches."""

    order_id: int
    client_order_id: str
    spec: SymbolSpec
    side: str  # BUY / SELL
    type: str  # Binance type: MARKET, LIMIT, STOP_LOSS_LIMIT, ...
    tif: str
    qty: Decimal
    price: Decimal
    stop_price: Decimal
    core: Order
    time: int
    update_time: int
    status: str = "NEW"
    executed: Decimal = _ZERO
    cum_quote: Decimal = _ZERO
    reduce_only: bool = False
    locked_asset: str = ""
    locked: Decimal = _ZERO
    trades: list[int] = field(default_factory=list)
    cancel_client_id: str = ""

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed if self.executed else _ZERO


@dataclass
class VenueTrade:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    maker: bool
    realized_pnl: Decimal = _ZERO


_BINANCE_TO_KERNEL = {
    "MARKET": OrderType.MARKET,
    "LIMIT": OrderType.LIMIT,
    "STOP_LOSS_LIMIT": OrderType.STOP_LIMIT,
    "STOP_LOSS": OrderType.STOP,
}
_TIFS = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}


class FakeExchange:
    """Accounts, orders and matching for one market type (``spot`` or ``futures``)."""

    def __init__(
        self,
        market_type: str = "spot",
        symbols: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS,
        balances: dict[str, Decimal] | None = None,
        taker_fee: Decimal | None = None,
        leverage: Decimal = Decimal("10"),
        settle: str = "USDT",
    ) -> None:
        if market_type not in ("spot", "futures"):
            raise ValueError(f"market_type must be 'spot' or 'futures', got {market_type!r}")
        self.market_type = market_type
        self.settle = settle  # futures: the margin and fee currency (USDT; Hyperliquid USDC)
        self.symbols: dict[str, SymbolSpec] = {s.symbol: SymbolSpec(**s.__dict__) for s in symbols}
        self._assets = {
            s.symbol: Crypto(
                s.symbol, tick_size=s.tick_size, lot_size=s.step_size, quote_currency=s.quote
            )
            for s in self.symbols.values()
        }
        if balances is None:
            balances = {settle: Decimal("100000")}
        self.free: dict[str, Decimal] = dict(balances)
        self.locked: dict[str, Decimal] = {}
        self.taker_fee = (
            taker_fee
            if taker_fee is not None
            else (Decimal("0.001") if market_type == "spot" else Decimal("0.0004"))
        )
        self.leverage = leverage
        # futures: symbol -> (signed amount, entry price)
        self.positions: dict[str, tuple[Decimal, Decimal]] = {}
        self.orders: dict[int, VenueOrder] = {}
        self.by_client: dict[tuple[str, str], int] = {}
        self.trades: list[VenueTrade] = []
        self._order_ids = itertools.count(1000001)
        self._trade_ids = itertools.count(500001)
        self._sim = ExecutionSimulator(volume_limit_pct=_ONE)
        self.on_event: Callable[[dict[str, Any]], None] = lambda event: None
        #: every order create request that reached the matching engine (client ids)
        self.received: list[str] = []

    # --- queries ---
    def spec(self, symbol: str | None) -> SymbolSpec:
        if not symbol:
            raise VenueError(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        spec = self.symbols.get(symbol)
        if spec is None:
            raise VenueError(400, -1121, "Invalid symbol.")
        return spec

    def find(self, symbol: str, order_id: str | None, client_id: str | None) -> VenueOrder:
        oid: int | None = None
        if order_id:
            try:
                oid = int(order_id)
            except ValueError:
                raise VenueError(
                    400, -1100, "Illegal characters found in parameter 'orderId'."
                ) from None
        elif client_id:
            oid = self.by_client.get((symbol, client_id))
        else:
            raise VenueError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        order = self.orders.get(oid) if oid is not None else None
        if order is None or order.spec.symbol != symbol:
            raise VenueError(400, -2013, "Order does not exist.")
        return order

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return [
            o
            for o in self.orders.values()
            if o.is_open and (symbol is None or o.spec.symbol == symbol)
        ]

    # --- orders ---
    def new_order(self, p: dict[str, str]) -> VenueOrder:
        """Validate and place an order from Binance request params; match what can fill."""
        spec = self.spec(p.get("symbol"))
        side = (p.get("side") or "").upper()
        if side not in ("BUY", "SELL"):
            raise VenueError(
                400, -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed."
            )
        otype = (p.get("type") or "").upper()
        futures = self.market_type == "futures"
        kernel_type = _BINANCE_TO_KERNEL.get(otype)
        if futures and otype == "STOP":
            kernel_type = OrderType.STOP_LIMIT
        if kernel_type is None or (futures and otype in ("STOP_LOSS_LIMIT", "STOP_LOSS")):
            raise VenueError(400, -1116, "Invalid orderType.")
        if not futures and otype == "MARKET":
            if not p.get("quantity") and not p.get("quoteOrderQty"):
                raise VenueError(
                    400,
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
            for extra in ("timeInForce", "price"):
                if p.get(extra):
                    # Binance spot refuses parameters a MARKET order does not take.
                    raise VenueError(400, -1106, f"Parameter '{extra}' sent when not required.")
        qty = self._dec(p, "quantity", required=True)
        price = self._dec(
            p, "price", required=kernel_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        )
        stop = self._dec(
            p, "stopPrice", required=kernel_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        )
        tif = (p.get("timeInForce") or "").upper()
        if kernel_type is not OrderType.MARKET and kernel_type is not OrderType.STOP:
            if not tif:
                raise VenueError(
                    400,
                    -1102,
                    "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
                )
            if tif not in _TIFS:
                raise VenueError(400, -1115, "Invalid timeInForce.")
        cid = p.get("newClientOrderId") or f"fake{next(self._order_ids)}"
        if len(cid) > 36:
            raise VenueError(
                400,
                -1100,
                _ILLEGAL_CID,
            )
        self._filters(spec, qty, price, stop, kernel_type)
        existing = self.by_client.get((spec.symbol, cid))
        if existing is not None and self.orders[existing].is_open:
            if futures:
                raise VenueError(400, -4116, "ClientOrderId is duplicated.")
            raise VenueError(400, -2010, "Duplicate order sent.")
        last = spec.price
        if stop:
            triggers_now = last >= stop if side == "BUY" else last <= stop
            if triggers_now:
                code = -2021 if futures else -2010
                raise VenueError(
                    400,
                    code,
                    "Order would immediately trigger."
                    if futures
                    else "Stop price would trigger immediately.",
                )
        reduce_only = (p.get("reduceOnly") or "").lower() == "true"
        now = _now_ms()
        self.received.append(cid)
        signed = qty if side == "BUY" else -qty
        core = Order(
            cid,
            self._assets[spec.symbol],
            signed,
            kernel_type,
            price or None,
            stop or None,
            _TIFS.get(tif, TimeInForce.GTC),
            datetime.now(UTC),
        )
        core.transition(OrderStatus.SUBMITTED)
        order = VenueOrder(
            next(self._order_ids),
            cid,
            spec,
            side,
            otype,
            tif or "GTC",
            qty,
            price,
            stop,
            core,
            now,
            now,
            reduce_only=reduce_only,
        )
        self._reserve(order)
        self.orders[order.order_id] = order
        self.by_client[(spec.symbol, cid)] = order.order_id
        self._event(order, "NEW")
        self._account_event()
        self._match(order, Bar.from_tick(core.asset, datetime.now(UTC), last, spec.liquidity))
        if order.is_open and (otype == "MARKET" or tif in ("IOC", "FOK")):
            self._finish(order, "EXPIRED")
        return order

    def cancel(
        self,
        symbol: str,
        order_id: str | None,
        client_id: str | None,
        cancel_client_id: str | None = None,
    ) -> VenueOrder:
        """Cancel an open order; ``cancel_client_id`` is the cancel's own id (Binance's
        ``newClientOrderId`` on DELETE), shown as ``c`` in the CANCELED report."""
        spec = self.spec(symbol)
        try:
            order = self.find(spec.symbol, order_id, client_id)
        except VenueError as exc:
            if exc.code == -2013:
                raise VenueError(400, -2011, "Unknown order sent.") from None
            raise
        if not order.is_open:
            raise VenueError(400, -2011, "Unknown order sent.")
        order.cancel_client_id = cancel_client_id or f"cancel{order.order_id}"
        self._finish(order, "CANCELED")
        return order

    # --- market ---
    def push_bar(
        self,
        symbol: str,
        open_: Decimal,
        high: Decimal,
        low: Decimal,
        close: Decimal,
        volume: Decimal | None = None,
    ) -> None:
        """A new bar of trades: resting orders match against it; ``close`` is the new price."""
        spec = self.spec(symbol)
        vol = spec.liquidity if volume is None else volume
        bar = Bar(self._assets[symbol], datetime.now(UTC), open_, high, low, close, vol)
        spec.price = close
        for order in sorted(self.open_orders(symbol), key=lambda o: o.order_id):
            self._match(order, bar)

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.push_bar(symbol, price, price, price, price)

    # --- internals ---
    @staticmethod
    def _dec(p: dict[str, str], name: str, required: bool) -> Decimal:
        raw = p.get(name)
        if raw is None or raw == "":
            if required:
                raise VenueError(
                    400,
                    -1102,
                    f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                )
            return _ZERO
        try:
            out = Decimal(raw)
        except ArithmeticError:
            raise VenueError(
                400,
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is {_NUMBER}.",
            ) from None
        if not out.is_finite() or out <= 0:
            raise VenueError(
                400,
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is {_NUMBER}.",
            )
        return out

    def _filters(
        self, spec: SymbolSpec, qty: Decimal, price: Decimal, stop: Decimal, kind: OrderType
    ) -> None:
        futures = self.market_type == "futures"
        for px in (price, stop):
            if px and (px < spec.min_price or px > spec.max_price or px % spec.tick_size != 0):
                if futures:
                    raise VenueError(400, -4014, "Price not increased by tick size.")
                raise VenueError(400, -1013, "Filter failure: PRICE_FILTER")
        if qty < spec.min_qty or qty > spec.max_qty or qty % spec.step_size != 0:
            if futures:
                raise VenueError(
                    400, -1111, "Precision is over the maximum defined for this asset."
                )
            raise VenueError(400, -1013, "Filter failure: LOT_SIZE")
        ref = price or stop or spec.price
        if qty * ref < spec.min_notional:
            if futures:
                raise VenueError(
                    400,
                    -4164,
                    f"Order's notional must be no smaller than {spec.min_notional} "
                    "(unless you choose reduce only).",
                )
            raise VenueError(400, -1013, "Filter failure: NOTIONAL")

    def _reserve(self, order: VenueOrder) -> None:
        spec = order.spec
        ref = order.price or order.stop_price or spec.price
        if self.market_type == "futures":
            if order.reduce_only:
                return
            margin = order.qty * ref / self.leverage
            if margin > self._available_margin():
                raise VenueError(400, -2019, "Margin is insufficient.")
            order.locked_asset, order.locked = spec.quote, margin
            return
        if order.side == "BUY":
            # A market buy is costed with 5% headroom over the last price.
            need = order.qty * (ref if order.type != "MARKET" else ref * Decimal("1.05"))
            need += need * self.taker_fee
            asset = spec.quote
        else:
            need, asset = order.qty, spec.base
        if self.free.get(asset, _ZERO) < need:
            raise VenueError(400, -2010, "Account has insufficient balance for requested action.")
        self.free[asset] -= need
        self.locked[asset] = self.locked.get(asset, _ZERO) + need
        order.locked_asset, order.locked = asset, need

    def _release(self, order: VenueOrder, amount: Decimal) -> None:
        amount = min(amount, order.locked)
        if amount <= 0:
            return
        order.locked -= amount
        if self.market_type == "futures":
            return
        self.locked[order.locked_asset] -= amount
        self.free[order.locked_asset] = self.free.get(order.locked_asset, _ZERO) + amount

    def _available_margin(self) -> Decimal:
        used = sum((o.locked for o in self.orders.values() if o.is_open), _ZERO)
        for amt, entry in self.positions.values():
            used += abs(amt) * entry / self.leverage
        return self.free.get(self.settle, _ZERO) + self._unrealized() - used

    def _unrealized(self) -> Decimal:
        return sum(((self.symbols[s].price - e) * a for s, (a, e) in self.positions.items()), _ZERO)

    def _match(self, order: VenueOrder, bar: Bar) -> None:
        if not order.is_open:
            return
        fill = self._sim.process(order.core, bar)
        if fill is None:
            return
        qty = abs(fill.amount)
        price = fill.price
        order.core.apply_fill(fill.amount, price, _ZERO, bar.dt)
        order.executed += qty
        order.cum_quote += qty * price
        order.update_time = _now_ms()
        spec = order.spec
        fee = qty * price * self.taker_fee
        realized = _ZERO
        if self.market_type == "spot":
            quote, base = spec.quote, spec.base
            if order.side == "BUY":
                paid = qty * price
                # release what was reserved for this quantity, pay the actual cost
                per_unit = order.locked / (order.qty - order.executed + qty)
                self._release(order, per_unit * qty)
                # Fees are charged in the quote asset (see docs/venues/binance.md).
                self.free[quote] -= paid + fee
                fee_asset = quote
                self.free[base] = self.free.get(base, _ZERO) + qty
            else:
                self._release(order, qty)
                self.free[base] -= qty
                fee_asset = quote
                self.free[quote] = self.free.get(quote, _ZERO) + qty * price - fee
        else:
            fee_asset = self.settle
            signed = qty if order.side == "BUY" else -qty
            amt, entry = self.positions.get(spec.symbol, (_ZERO, _ZERO))
            new = amt + signed
            if amt == 0 or (amt > 0) == (signed > 0):
                entry = (abs(amt) * entry + qty * price) / abs(new)
            else:
                closed = min(abs(amt), qty)
                realized = (price - entry) * closed * (1 if amt > 0 else -1)
                if new != 0 and (new > 0) != (amt > 0):
                    entry = price
            if new == 0:
                self.positions.pop(spec.symbol, None)
            else:
                self.positions[spec.symbol] = (new, entry)
            self.free[self.settle] = self.free.get(self.settle, _ZERO) + realized - fee
            self._release(order, order.locked * qty / (order.qty - order.executed + qty))
        trade = VenueTrade(
            next(self._trade_ids),
            order.order_id,
            spec.symbol,
            order.side,
            price,
            qty,
            fee,
            fee_asset,
            _now_ms(),
            order.type != "MARKET" and bar.open != bar.close,
            realized,
        )
        self.trades.append(trade)
        order.trades.append(trade.trade_id)
        order.status = "FILLED" if order.executed == order.qty else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self._release(order, order.locked)
        self._event(order, "TRADE", trade)
        self._account_event()

    def _finish(self, order: VenueOrder, status: str) -> None:
        order.status = status
        order.update_time = _now_ms()
        self._release(order, order.locked)
        if order.core.is_open:
            order.core.cancel(status.lower())
        self._event(order, "CANCELED" if status == "CANCELED" else "EXPIRED")
        self._account_event()

    # --- user-data events (Binance's field names) ------------------------------------------
    def _event(self, order: VenueOrder, exec_type: str, trade: VenueTrade | None = None) -> None:
        now = _now_ms()
        if self.market_type == "spot":
            cancel = exec_type == "CANCELED"
            self.on_event(
                {
                    "e": "executionReport",
                    "E": now,
                    "s": order.spec.symbol,
                    "c": (order.cancel_client_id or f"cancel{order.order_id}")
                    if cancel
                    else order.client_order_id,
                    "S": order.side,
                    "o": order.type,
                    "f": order.tif,
                    "q": _fmt(order.qty),
                    "p": _fmt(order.price),
                    "P": _fmt(order.stop_price),
                    "F": _fmt(_ZERO),
                    "g": -1,
                    "C": order.client_order_id if cancel else "",
                    "x": exec_type,
                    "X": order.status,
                    "r": "NONE",
                    "i": order.order_id,
                    "l": _fmt(trade.qty if trade else _ZERO),
                    "z": _fmt(order.executed),
                    "L": _fmt(trade.price if trade else _ZERO),
                    "n": _fmt(trade.commission) if trade else "0",
                    "N": trade.commission_asset if trade else None,
                    "T": trade.time if trade else now,
                    "t": trade.trade_id if trade else -1,
                    "I": now,
                    "w": order.is_open,
                    "m": bool(trade and trade.maker),
                    "M": False,
                    "O": order.time,
                    "Z": _fmt(order.cum_quote),
                    "Y": _fmt(trade.qty * trade.price if trade else _ZERO),
                    "Q": _fmt(_ZERO),
                    "W": order.time,
                    "V": "EXPIRE_MAKER",
                }
            )
            return
        o: dict[str, Any] = {
            "s": order.spec.symbol,
            "c": order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.tif,
            "q": str(order.qty),
            "p": str(order.price),
            "ap": str(order.avg_price),
            "sp": str(order.stop_price),
            "x": "CANCELED" if exec_type == "CANCELED" else exec_type,
            "X": order.status,
            "i": order.order_id,
            "l": str(trade.qty if trade else _ZERO),
            "z": str(order.executed),
            "L": str(trade.price if trade else _ZERO),
            "T": trade.time if trade else now,
            "t": trade.trade_id if trade else 0,
            "b": "0",
            "a": "0",
            "m": bool(trade and trade.maker),
            "R": order.reduce_only,
            "wt": "CONTRACT_PRICE",
            "ot": order.type,
            "ps": "BOTH",
            "cp": False,
            "rp": str(trade.realized_pnl if trade else _ZERO),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "EXPIRE_TAKER",
            "pm": "NONE",
            "gtd": 0,
        }
        if trade is not None:
            o["N"] = trade.commission_asset
            o["n"] = str(trade.commission)
        self.on_event({"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": o})

    def _account_event(self) -> None:
        now = _now_ms()
        if self.market_type == "spot":
            assets = sorted(set(self.free) | set(self.locked))
            self.on_event(
                {
                    "e": "outboundAccountPosition",
                    "E": now,
                    "u": now,
                    "B": [
                        {
                            "a": a,
                            "f": _fmt(self.free.get(a, _ZERO)),
                            "l": _fmt(self.locked.get(a, _ZERO)),
                        }
                        for a in assets
                    ],
                }
            )
            return
        self.on_event(
            {
                "e": "ACCOUNT_UPDATE",
                "E": now,
                "T": now,
                "a": {
                    "m": "ORDER",
                    "B": [
                        {
                            "a": self.settle,
                            "wb": str(self.free.get(self.settle, _ZERO)),
                            "cw": str(self.free.get(self.settle, _ZERO)),
                            "bc": "0",
                        }
                    ],
                    "P": [
                        {
                            "s": s,
                            "pa": str(a),
                            "ep": str(e),
                            "bep": str(e),
                            "cr": "0",
                            "up": str((self.symbols[s].price - e) * a),
                            "mt": "cross",
                            "iw": "0",
                            "ps": "BOTH",
                        }
                        for s, (a, e) in sorted(self.positions.items())
                    ],
                },
            }
        )
