"""Orders: their types, their lifecycle state machine, and input validation.

Everything about a single order lives here so that backtest, paper, shadow and live
share one definition of "what an order is" and "which state changes are legal":

* :class:`OrderStatus` and its transition table. A broker may report a fill before its
  acknowledgement arrives, so NEW may jump straight to (PARTIALLY_)FILLED. UNKNOWN is
  an open state for a submit whose outcome is unknown (timeout or dropped connection
  after the request left): the venue may hold the order, so it counts at full size
  until the broker's answer moves it on. Terminal
  states (FILLED, CANCELLED, REJECTED, EXPIRED) accept nothing; an illegal move raises
  :class:`~rustybt.exceptions.IllegalOrderTransition` naming the order and both states.
* :class:`OrderType` and :class:`TimeInForce` (lowercase string values, parseable).
* zipline-style execution styles (:class:`MarketOrder`, :class:`LimitOrder`,
  :class:`StopOrder`, :class:`StopLimitOrder`), so zipline strategies run unchanged.
* :func:`validate_order`, the single place where order parameters are checked, and
  :func:`to_decimal`, the single place where user numbers become ``Decimal``.
* :class:`Order` itself: slotted and cheap to build (it is created on the hot path),
  so it does no validation in ``__init__``; call :func:`validate_order` first.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from rustybt.assets import Asset, asset_from_dict
from rustybt.exceptions import IllegalOrderTransition, InvalidOrder

_ZERO = Decimal(0)


# --- numbers -----------------------------------------------------------------------
def to_decimal(name: str, value: Any) -> Decimal:
    """Convert ``value`` (Decimal, int, str, float via its repr, or a numpy scalar via its
    str) to a finite ``Decimal``.

    Raises :class:`InvalidOrder` naming ``name`` when the value is not a number, is NaN
    or infinite, or is a bool (``True`` as an amount is almost certainly a bug).
    """
    if type(value) is Decimal:
        out = value
    elif isinstance(value, bool):
        raise InvalidOrder(f"{name}={value!r} is a bool, not a number; pass a Decimal")
    elif isinstance(value, float):
        # The shortest repr is what the user typed; the binary expansion is noise.
        # float() first: numpy's float64 is a float whose repr is "np.float64(...)"
        out = Decimal(repr(float(value)))
    elif isinstance(value, int | str | Decimal):
        try:
            out = Decimal(value.strip() if isinstance(value, str) else value)
        except Exception:
            raise InvalidOrder(
                f"{name}={value!r} is not a number; pass a Decimal such as Decimal('10')"
            ) from None
    elif type(value).__module__ == "numpy" and hasattr(value, "item"):
        # numpy scalars from zipline-style code: read exactly through str (float32 too)
        item = value.item()
        return to_decimal(name, item if isinstance(item, int | bool) else str(value))
    else:
        raise InvalidOrder(
            f"{name}={value!r} has type {type(value).__name__}; pass a Decimal, int or str"
        )
    if not out.is_finite():
        raise InvalidOrder(f"{name}={value!r} is not finite (NaN or infinity); pass a number")
    return out


def _style_price(name: str, value: Any) -> Decimal:
    if value is None:
        raise InvalidOrder(f"{name} is required; pass a positive price such as Decimal('10.5')")
    out = to_decimal(name, value)
    if out <= 0:
        raise InvalidOrder(f"{name}={value!r} must be > 0")
    return out


# --- enums -------------------------------------------------------------------------
class OrderStatus(StrEnum):
    NEW = "new"
    SUBMITTED = "submitted"
    #: The submit's outcome is unknown (e.g. a timeout after the venue accepted it).
    UNKNOWN = "unknown"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        """True while the order can still fill (NEW, SUBMITTED, UNKNOWN, PARTIALLY_FILLED)."""
        return self in _OPEN_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self not in _OPEN_STATUSES


_OPEN_STATUSES = frozenset(
    {
        OrderStatus.NEW,
        OrderStatus.SUBMITTED,
        OrderStatus.UNKNOWN,
        OrderStatus.PARTIALLY_FILLED,
    }
)

_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset(
        {
            OrderStatus.SUBMITTED,
            OrderStatus.UNKNOWN,
            OrderStatus.REJECTED,
            OrderStatus.CANCELLED,
            OrderStatus.FILLED,
            OrderStatus.PARTIALLY_FILLED,
        }
    ),
    OrderStatus.SUBMITTED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        }
    ),
    # Only the broker's answer (an ack, a fill, a status by client order id) moves an
    # UNKNOWN order on; it never goes back to NEW, so it is never resubmitted.
    OrderStatus.UNKNOWN: frozenset(
        {
            OrderStatus.SUBMITTED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}


def is_terminal(status: OrderStatus) -> bool:
    """True for FILLED, CANCELLED, REJECTED and EXPIRED: nothing can happen after them."""
    return status not in _OPEN_STATUSES


def can_transition(from_status: OrderStatus, to_status: OrderStatus) -> bool:
    return to_status in _TRANSITIONS[from_status]


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"

    @classmethod
    def parse(cls, value: Any) -> OrderType:
        """Accept an OrderType, an execution style, or a string like ``"stop-limit"``."""
        if isinstance(value, OrderType):
            return value
        if isinstance(value, str):
            exact = cls._value2member_map_.get(value)
            if exact is not None:
                return exact  # type: ignore[return-value]
        if isinstance(value, ExecutionStyle):
            return value.order_type
        if isinstance(value, str):
            key = value.strip().lower().replace("-", "_").replace(" ", "_")
            try:
                return cls(key)
            except ValueError:
                pass
        raise InvalidOrder(
            f"unknown order type {value!r}; use one of {', '.join(repr(t.value) for t in cls)}"
        )


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"

    @classmethod
    def parse(cls, value: Any) -> TimeInForce:
        if isinstance(value, TimeInForce):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        raise InvalidOrder(
            f"unknown time in force {value!r}; use one of {', '.join(repr(t.value) for t in cls)}"
        )


# --- zipline-style execution styles --------------------------------------------------
class ExecutionStyle:
    """Base of the zipline order styles: an order type plus its prices."""

    __slots__ = ("limit_price", "stop_price", "exchange")
    order_type: OrderType = OrderType.MARKET

    def __init__(
        self,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        exchange: str | None = None,
    ) -> None:
        self.limit_price = limit_price
        self.stop_price = stop_price
        self.exchange = exchange

    # zipline's accessors; prices here are already exact, so the side does not matter.
    def get_limit_price(self, is_buy: bool) -> Decimal | None:
        return self.limit_price

    def get_stop_price(self, is_buy: bool) -> Decimal | None:
        return self.stop_price

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self.limit_price, self.stop_price) == (other.limit_price, other.stop_price)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.limit_price, self.stop_price))

    def __repr__(self) -> str:
        parts = []
        if self.limit_price is not None:
            parts.append(f"limit_price={self.limit_price}")
        if self.stop_price is not None:
            parts.append(f"stop_price={self.stop_price}")
        return f"{type(self).__name__}({', '.join(parts)})"


class MarketOrder(ExecutionStyle):
    """Fill at the next available price."""

    __slots__ = ()
    order_type = OrderType.MARKET

    def __init__(self, exchange: str | None = None) -> None:
        super().__init__(None, None, exchange)


class LimitOrder(ExecutionStyle):
    """Fill only at ``limit_price`` or better."""

    __slots__ = ()
    order_type = OrderType.LIMIT

    def __init__(self, limit_price: Any, exchange: str | None = None) -> None:
        super().__init__(_style_price("limit_price", limit_price), None, exchange)


class StopOrder(ExecutionStyle):
    """Becomes a market order once the price trades through ``stop_price``."""

    __slots__ = ()
    order_type = OrderType.STOP

    def __init__(self, stop_price: Any, exchange: str | None = None) -> None:
        super().__init__(None, _style_price("stop_price", stop_price), exchange)


class StopLimitOrder(ExecutionStyle):
    """Becomes a limit order at ``limit_price`` once the price trades through ``stop_price``."""

    __slots__ = ()
    order_type = OrderType.STOP_LIMIT

    def __init__(self, limit_price: Any, stop_price: Any, exchange: str | None = None) -> None:
        limit = _style_price("limit_price", limit_price)
        super().__init__(limit, _style_price("stop_price", stop_price), exchange)


# --- validation ----------------------------------------------------------------------
# Far beyond any real order; keeps `amount % lot_size` inside Decimal's 28-digit precision.
_MAX_AMOUNT = Decimal("1e15")
_MAX_PRICE = Decimal("1e15")

_NEEDS_LIMIT = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_NEEDS_STOP = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})


def _validate_price(asset: Asset, name: str, price: Decimal) -> None:
    if price > _MAX_PRICE:
        raise InvalidOrder(
            f"{name}={price} for {asset.symbol} is implausibly large (limit {_MAX_PRICE:E})"
        )
    asset.validate_price(name, price)


def validate_order(
    asset: Asset,
    amount: Any,
    order_type: OrderType | str = OrderType.MARKET,
    limit_price: Any = None,
    stop_price: Any = None,
    *,
    check_lot: bool = True,
) -> None:
    """Raise :class:`InvalidOrder` unless these order parameters are acceptable.

    Checks: ``asset`` is an :class:`Asset`; ``amount`` is a finite, non-zero number (a
    negative amount is a sell) and, with ``check_lot``, a whole number of the asset's
    lots; ``order_type`` is known; a limit price is given exactly when the type uses
    one, likewise a stop price; every given price is finite, positive and on the
    asset's tick. Nothing is rounded: round first with ``asset.round_amount`` /
    ``asset.round_price`` so the order sent is the order you meant.
    """
    prepare_order(asset, amount, order_type, limit_price, stop_price, check_lot=check_lot)


def prepare_order(
    asset: Asset,
    amount: Any,
    order_type: OrderType | str = OrderType.MARKET,
    limit_price: Any = None,
    stop_price: Any = None,
    *,
    check_lot: bool = True,
) -> tuple[Decimal, OrderType, Decimal | None, Decimal | None]:
    """Validate like :func:`validate_order` and return the normalised values.

    Returns ``(amount, order_type, limit_price, stop_price)`` as Decimals / OrderType.
    """
    if not isinstance(asset, Asset):
        raise InvalidOrder(f"asset={asset!r} is not an Asset; look it up with symbol('AAPL') first")
    otype = OrderType.parse(order_type)
    amt = to_decimal("amount", amount)
    if amt == 0:
        raise InvalidOrder(
            f"amount for {asset.symbol} is zero; pass a positive amount to buy or a "
            "negative amount to sell"
        )
    if abs(amt) > _MAX_AMOUNT:
        raise InvalidOrder(
            f"amount={amt} for {asset.symbol} is implausibly large (limit {_MAX_AMOUNT:E}); "
            "check the units of your order size"
        )
    if check_lot and amt % asset.lot_size != 0:
        raise InvalidOrder(
            f"lot_size: amount={amt} for {asset.symbol} is not a whole number of lots (lot "
            f"size {asset.lot_size}); the nearest valid amount not above it is "
            f"{asset.round_amount(amt)} (asset.round_amount(amount))"
        )
    limit = None if limit_price is None else to_decimal("limit_price", limit_price)
    stop = None if stop_price is None else to_decimal("stop_price", stop_price)
    if otype in _NEEDS_LIMIT:
        if limit is None:
            raise InvalidOrder(
                f"a {otype.value} order for {asset.symbol} needs a limit_price; pass one "
                "or use a market order"
            )
        _validate_price(asset, "limit_price", limit)
    elif limit is not None:
        raise InvalidOrder(
            f"limit_price={limit} given for a {otype.value} order on {asset.symbol}; "
            "use order_type='limit' (or 'stop_limit') or drop the limit price"
        )
    if otype in _NEEDS_STOP:
        if stop is None:
            raise InvalidOrder(
                f"a {otype.value} order for {asset.symbol} needs a stop_price; pass one "
                "or use a market/limit order"
            )
        _validate_price(asset, "stop_price", stop)
    elif stop is not None:
        raise InvalidOrder(
            f"stop_price={stop} given for a {otype.value} order on {asset.symbol}; "
            "use order_type='stop' (or 'stop_limit') or drop the stop price"
        )
    return amt, otype, limit, stop


# --- the order -------------------------------------------------------------------------
class Order:
    """One order and its lifecycle. Amounts are signed: buys > 0, sells < 0.

    ``filled`` is signed like ``amount``; ``commission`` is what this order has been
    charged so far (cost models read it to apply per-order minimums across partial
    fills); ``avg_fill_price`` is the volume-weighted price of all fills so far.
    """

    __slots__ = (
        "id",
        "asset",
        "amount",
        "order_type",
        "limit_price",
        "stop_price",
        "tif",
        "status",
        "filled",
        "commission",
        "avg_fill_price",
        "created_dt",
        "updated_dt",
        "broker_order_id",
        "stop_reached",
        "reason",
        "_fill_notional",
    )

    def __init__(
        self,
        id: str,
        asset: Asset,
        amount: Decimal,
        order_type: OrderType = OrderType.MARKET,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        created_dt: datetime | None = None,
    ) -> None:
        self.id = id
        self.asset = asset
        self.amount = amount
        self.order_type = order_type
        self.limit_price = limit_price
        self.stop_price = stop_price
        self.tif = tif
        self.status = OrderStatus.NEW
        self.filled = _ZERO
        self.commission = _ZERO
        self.avg_fill_price: Decimal | None = None
        self.created_dt = created_dt
        self.updated_dt = created_dt
        self.broker_order_id: str | None = None
        self.stop_reached = False
        self.reason = ""
        # Σ |fill| × price; avg_fill_price is derived from it so repeated partial fills
        # never accumulate rounding from re-averaging an average.
        self._fill_notional = _ZERO

    # --- views -------------------------------------------------------------------
    @property
    def open_amount(self) -> Decimal:
        """Signed amount still to fill (0 once filled)."""
        return self.amount - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN_STATUSES

    @property
    def is_buy(self) -> bool:
        return self.amount > 0

    @property
    def side(self) -> str:
        """``"buy"``, ``"sell"``, or ``"unsized"`` for a value order rejected before it
        could be sized (amount 0: the asset had no price)."""
        amount = self.amount
        return "buy" if amount > 0 else "sell" if amount < 0 else "unsized"

    def __repr__(self) -> str:
        price = ""
        if self.limit_price is not None:
            price += f" limit={self.limit_price}"
        if self.stop_price is not None:
            price += f" stop={self.stop_price}"
        return (
            f"Order({self.id!r} {self.side} {abs(self.amount)} {self.asset.symbol} "
            f"{self.order_type.value}{price} {self.status.value} filled={self.filled})"
        )

    # --- lifecycle -------------------------------------------------------------------
    def _check(self, status: OrderStatus) -> None:
        if status not in _TRANSITIONS[self.status]:
            raise IllegalOrderTransition(
                f"order {self.id!r} cannot move from {self.status.value} to {status.value}"
                + (
                    f" (it is already {self.status.value}, a terminal state)"
                    if self.status not in _OPEN_STATUSES
                    else ""
                )
            )

    def transition(self, status: OrderStatus, reason: str = "", dt: datetime | None = None) -> None:
        """Move to ``status`` or raise :class:`IllegalOrderTransition` (order unchanged)."""
        if type(status) is not OrderStatus:
            try:
                status = OrderStatus(status)
            except ValueError:
                raise IllegalOrderTransition(
                    f"order {self.id!r}: unknown status {status!r}; use an OrderStatus"
                ) from None
        self._check(status)
        self.status = status
        if reason:
            self.reason = reason
        if dt is not None:
            self.updated_dt = dt

    def cancel(self, reason: str = "", dt: datetime | None = None) -> None:
        self.transition(OrderStatus.CANCELLED, reason, dt)

    def reject(self, reason: str, dt: datetime | None = None) -> None:
        self.transition(OrderStatus.REJECTED, reason, dt)

    def expire(self, reason: str = "", dt: datetime | None = None) -> None:
        self.transition(OrderStatus.EXPIRED, reason, dt)

    def apply_fill(
        self,
        amount: Decimal,
        price: Decimal,
        commission: Decimal = _ZERO,
        dt: datetime | None = None,
    ) -> None:
        """Record a (partial) fill: ``filled``, ``avg_fill_price``, ``commission``, status.

        ``amount`` is signed like the order. Raises :class:`InvalidOrder` for a fill that
        is zero, of the wrong sign, larger than the open amount, at a non-positive price or
        with a negative commission, and :class:`IllegalOrderTransition` if the order is no
        longer open; in every case the order is left unchanged.
        """
        amount = to_decimal("fill amount", amount)
        price = to_decimal("fill price", price)
        commission = to_decimal("commission", commission)
        open_amount = self.amount - self.filled
        if amount == 0:
            raise InvalidOrder(f"order {self.id!r}: fill amount is zero")
        if price <= 0:
            raise InvalidOrder(f"order {self.id!r}: fill price {price} must be > 0")
        if commission < 0:
            raise InvalidOrder(f"order {self.id!r}: commission {commission} must be >= 0")
        if (amount > 0) != (open_amount > 0) or abs(amount) > abs(open_amount):
            raise InvalidOrder(
                f"order {self.id!r}: fill of {amount} does not fit the open amount "
                f"{open_amount} (order amount {self.amount}, filled {self.filled})"
            )
        new_filled = self.filled + amount
        new_status = (
            OrderStatus.FILLED if new_filled == self.amount else OrderStatus.PARTIALLY_FILLED
        )
        self._check(new_status)
        notional = self._fill_notional + abs(amount) * price
        # All checks passed: apply everything together.
        self._fill_notional = notional
        self.filled = new_filled
        self.avg_fill_price = notional / abs(new_filled)
        self.commission += commission
        self.status = new_status
        if dt is not None:
            self.updated_dt = dt

    # --- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly record (Decimals as strings, datetimes ISO 8601)."""

        def s(v: Any) -> str | None:
            return None if v is None else str(v)

        def iso(v: datetime | None) -> str | None:
            return None if v is None else v.isoformat()

        return {
            "id": self.id,
            "asset": self.asset.to_dict(),
            "amount": str(self.amount),
            "order_type": self.order_type.value,
            "limit_price": s(self.limit_price),
            "stop_price": s(self.stop_price),
            "tif": self.tif.value,
            "status": self.status.value,
            "filled": str(self.filled),
            "commission": str(self.commission),
            "avg_fill_price": s(self.avg_fill_price),
            "fill_notional": str(self._fill_notional),
            "created_dt": iso(self.created_dt),
            "updated_dt": iso(self.updated_dt),
            "broker_order_id": self.broker_order_id,
            "stop_reached": self.stop_reached,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Order:
        """Rebuild an order written by :meth:`to_dict`; :class:`InvalidOrder` if malformed."""
        try:
            asset = data["asset"]
            if not isinstance(asset, Asset):
                asset = asset_from_dict(asset)
            order = cls(
                str(data["id"]),
                asset,
                to_decimal("amount", data["amount"]),
                OrderType.parse(data.get("order_type", "market")),
                _opt_dec("limit_price", data.get("limit_price")),
                _opt_dec("stop_price", data.get("stop_price")),
                TimeInForce.parse(data.get("tif", "gtc")),
                _opt_dt(data.get("created_dt")),
            )
            order.status = OrderStatus(data.get("status", "new"))
            order.filled = to_decimal("filled", data.get("filled", "0"))
            order.commission = to_decimal("commission", data.get("commission", "0"))
            order.avg_fill_price = _opt_dec("avg_fill_price", data.get("avg_fill_price"))
            if "fill_notional" in data:
                order._fill_notional = to_decimal("fill_notional", data["fill_notional"])
            elif order.avg_fill_price is not None:
                order._fill_notional = order.avg_fill_price * abs(order.filled)
            order.updated_dt = _opt_dt(data.get("updated_dt"))
            order.broker_order_id = data.get("broker_order_id")
            order.stop_reached = bool(data.get("stop_reached", False))
            order.reason = str(data.get("reason", ""))
        except InvalidOrder as exc:
            raise InvalidOrder(f"malformed order record: {exc}") from exc
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidOrder(
                f"malformed order record (missing or bad field {exc}); "
                "expected the output of Order.to_dict()"
            ) from exc
        return order


def _opt_dec(name: str, value: Any) -> Decimal | None:
    return None if value is None else to_decimal(name, value)


def _opt_dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)
