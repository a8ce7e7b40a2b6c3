"""Plain data shared by checkpointing, the order journal and reconciliation.

These are the spec's names (``rustybt.live.models``): what a checkpoint holds
(:class:`StateCheckpoint`, :class:`PositionSnapshot`, :class:`OrderSnapshot`), how
reconciliation is configured (:class:`ReconciliationStrategy`) and what it reports
(:class:`ReconciliationReport` and its discrepancy records). They live apart from the
modules that use them so the engine, the state manager and the reconciler agree on one
shape without importing each other.

Every money field is a ``Decimal``. Constructors normalise and validate their input
(strings and ints become ``Decimal``; a float is accepted only through its shortest
``repr``; NaN and infinities are refused) so a snapshot that exists is a valid one.

Free-form dictionaries (``strategy_state``, ``breaker_state``, ``ledger_state``,
``extra``) round-trip through JSON with their types intact: ``Decimal``, ``datetime``,
``date``, ``timedelta``, ``Asset``, tuples, sets and dicts with non-string keys are
tagged (``{"$decimal": "1.5"}``) instead of being flattened to strings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from rustybt.assets import Asset, asset_from_dict
from rustybt.exceptions import CheckpointCorrupted, CheckpointError, InvalidOrder

__all__ = [
    "CashDiscrepancy",
    "BrokerState",
    "DiscrepancySeverity",
    "OrderDiscrepancy",
    "OrderSnapshot",
    "PositionDiscrepancy",
    "PositionSnapshot",
    "ReconciliationReport",
    "ReconciliationStrategy",
    "StateCheckpoint",
    "decode_state_value",
    "encode_state_value",
    "to_utc",
]


# --- enums ---------------------------------------------------------------------------
class ReconciliationStrategy(StrEnum):
    """What the engine does when reconciliation finds a difference."""

    WARN_ONLY = "warn_only"
    TRUST_BROKER = "trust_broker"
    HALT_AND_ALERT = "halt_and_alert"


_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


class DiscrepancySeverity(StrEnum):
    """How bad a discrepancy is; ordered ``INFO < WARNING < CRITICAL``.

    Being a ``StrEnum``, plain string comparison would order members alphabetically
    ("critical" < "info"), so the comparison operators are overridden to use the rank.
    """

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self.value]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, DiscrepancySeverity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, DiscrepancySeverity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, DiscrepancySeverity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, DiscrepancySeverity):
            return NotImplemented
        return self.rank >= other.rank

    # Enum defines __hash__ via str; overriding comparisons must not drop it.
    __hash__ = str.__hash__

    @classmethod
    def highest(cls, severities: Any) -> DiscrepancySeverity:
        """The most severe of ``severities``; ``INFO`` when there are none."""
        best = cls.INFO
        for sev in severities:
            if sev.rank > best.rank:
                best = sev
        return best


# --- value helpers -------------------------------------------------------------------
def _dec(owner: str, name: str, value: Any, exc: type[Exception] = InvalidOrder) -> Decimal:
    """``value`` as a finite Decimal, or ``exc`` naming the field and how to fix it."""
    if isinstance(value, Decimal):
        out = value
    elif isinstance(value, bool):
        raise exc(f"{owner}.{name}={value!r} is a bool; pass a Decimal such as Decimal('100')")
    elif isinstance(value, int | str):
        try:
            out = Decimal(value)
        except (InvalidOperation, ValueError):
            raise exc(
                f"{owner}.{name}={value!r} is not a number; pass a Decimal such as Decimal('100')"
            ) from None
    elif isinstance(value, float):
        # Only through the shortest repr, never the binary expansion (0.1 -> "0.1").
        out = Decimal(repr(value))
    else:
        raise exc(
            f"{owner}.{name}={value!r} ({type(value).__name__}) is not a number; pass a "
            "Decimal such as Decimal('100')"
        )
    if not out.is_finite():
        raise exc(f"{owner}.{name}={value!r} is not finite; pass a finite Decimal")
    return out


def _opt_dec(owner: str, name: str, value: Any, exc: type[Exception] = InvalidOrder):
    return None if value is None else _dec(owner, name, value, exc)


def to_utc(value: Any, name: str = "timestamp") -> datetime:
    """A tz-aware UTC ``datetime`` from a datetime, ``pd.Timestamp`` or ISO string.

    A naive value is read as the machine's local time (what ``pd.Timestamp.now()`` and
    ``datetime.now()`` return) and converted to UTC, so the spec's
    ``StateCheckpoint(timestamp=pd.Timestamp.now(), ...)`` records the right instant.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise CheckpointError(
                f"{name}={value!r} is not an ISO-8601 time; pass a datetime or e.g. "
                "'2024-01-02T15:30:00+00:00'"
            ) from None
    if not isinstance(value, datetime):
        raise CheckpointError(
            f"{name}={value!r} ({type(value).__name__}) is not a datetime; pass a "
            "tz-aware datetime or pd.Timestamp"
        )
    to_py = getattr(value, "to_pydatetime", None)
    if to_py is not None:  # pandas.Timestamp: keep a plain datetime (nanoseconds dropped)
        value = to_py()
    # astimezone() reads a naive value as local time, which is what we want here.
    return value.astimezone(UTC)


# --- tagged encoding for free-form state ---------------------------------------------
class _Unencodable(Exception):
    def __init__(self, path: str, value: Any) -> None:
        super().__init__(path, value)
        self.path = path
        self.value = value


_TAGS = frozenset(
    {
        "$decimal",
        "$datetime",
        "$date",
        "$timedelta",
        "$asset",
        "$tuple",
        "$set",
        "$frozenset",
        "$dict",
        "$float",
    }
)


def encode_state_value(value: Any, path: str = "state") -> Any:
    """``value`` turned into JSON-native data with type tags, or ``CheckpointError``.

    Supported: None, bool, int, float, str, Decimal, datetime, date, timedelta, Asset,
    numpy scalars, and list/tuple/set/frozenset/dict of supported values.
    """
    try:
        return _enc(value, path)
    except _Unencodable as err:
        raise CheckpointError(
            f"cannot checkpoint {err.path} = {type(err.value).__name__} value; supported "
            "types are None, bool, int, float, str, Decimal, datetime, date, timedelta, "
            "Asset and lists/tuples/sets/dicts of those. Convert it, or keep it in an "
            "attribute starting with '_' so it is not captured."
        ) from None


def _enc(v: Any, path: str) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        return {"$float": repr(v)}  # JSON has no NaN/inf; msgspec would write null
    if isinstance(v, Decimal):
        return {"$decimal": str(v)}
    if isinstance(v, datetime):
        to_py = getattr(v, "to_pydatetime", None)
        return {"$datetime": (to_py() if to_py is not None else v).isoformat()}
    if isinstance(v, date):
        return {"$date": v.isoformat()}
    if isinstance(v, timedelta):
        return {"$timedelta": [v.days, v.seconds, v.microseconds]}
    if isinstance(v, Asset):
        return {"$asset": v.to_dict()}
    if isinstance(v, list):
        return [_enc(x, f"{path}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, tuple):
        return {"$tuple": [_enc(x, f"{path}[{i}]") for i, x in enumerate(v)]}
    if isinstance(v, set | frozenset):
        tag = "$frozenset" if isinstance(v, frozenset) else "$set"
        return {tag: [_enc(x, f"{path}{{}}") for x in v]}
    if isinstance(v, dict):
        if all(type(k) is str and not k.startswith("$") for k in v):
            return {k: _enc(x, f"{path}[{k!r}]") for k, x in v.items()}
        return {
            "$dict": [[_enc(k, f"{path}<key>"), _enc(x, f"{path}[{k!r}]")] for k, x in v.items()]
        }
    if type(v).__module__ == "numpy" and hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return _enc(v.item(), path)
    raise _Unencodable(path, v)


def decode_state_value(value: Any) -> Any:
    """Inverse of :func:`encode_state_value`."""
    if isinstance(value, list):
        return [decode_state_value(x) for x in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key in _TAGS:
            return _decode_tag(key, inner)
    return {k: decode_state_value(x) for k, x in value.items()}


def _decode_tag(tag: str, inner: Any) -> Any:
    if tag == "$decimal":
        return Decimal(inner)
    if tag == "$datetime":
        return datetime.fromisoformat(inner)
    if tag == "$date":
        return date.fromisoformat(inner)
    if tag == "$timedelta":
        return timedelta(days=inner[0], seconds=inner[1], microseconds=inner[2])
    if tag == "$asset":
        return asset_from_dict(inner)
    if tag == "$tuple":
        return tuple(decode_state_value(x) for x in inner)
    if tag == "$set":
        return {decode_state_value(x) for x in inner}
    if tag == "$frozenset":
        return frozenset(decode_state_value(x) for x in inner)
    if tag == "$dict":
        return {decode_state_value(k): decode_state_value(x) for k, x in inner}
    return float(inner)  # "$float": nan / inf / -inf


def _require_asset(owner: str, asset: Any) -> Asset:
    if not isinstance(asset, Asset):
        raise InvalidOrder(
            f"{owner}.asset={asset!r} is not an Asset; look it up with "
            "AssetFinder.lookup_symbol(...) or build one, e.g. Equity('AAPL')"
        )
    return asset


# --- snapshots -----------------------------------------------------------------------
@dataclass(slots=True)
class PositionSnapshot:
    """One position: signed ``amount`` (short < 0) and TOTAL signed ``cost_basis``.

    ``cost_basis`` is what the position cost in total, signed like ``amount``:
    100 shares bought at $50 -> 5000; 50 shares shorted at $50 -> -2500.
    """

    asset: Asset
    amount: Decimal
    cost_basis: Decimal
    last_price: Decimal | None = None

    def __post_init__(self) -> None:
        _require_asset("PositionSnapshot", self.asset)
        self.amount = _dec("PositionSnapshot", "amount", self.amount)
        self.cost_basis = _dec("PositionSnapshot", "cost_basis", self.cost_basis)
        if self.last_price is not None:
            self.last_price = _dec("PositionSnapshot", "last_price", self.last_price)
            if self.last_price <= 0:
                raise InvalidOrder(
                    f"PositionSnapshot.last_price={self.last_price} for {self.asset.symbol} "
                    "must be > 0 (or None when unknown)"
                )

    @property
    def average_price(self) -> Decimal:
        """Cost per unit; 0 for a flat position."""
        return self.cost_basis / self.amount if self.amount else Decimal(0)

    @property
    def market_value(self) -> Decimal | None:
        """Signed value at ``last_price`` (None when no price is known)."""
        if self.last_price is None:
            return None
        return self.amount * self.last_price * self.asset.multiplier

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset.to_dict(),
            "amount": str(self.amount),
            "cost_basis": str(self.cost_basis),
            "last_price": None if self.last_price is None else str(self.last_price),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PositionSnapshot:
        return cls(
            asset=asset_from_dict(data["asset"]),
            amount=Decimal(data["amount"]),
            cost_basis=Decimal(data["cost_basis"]),
            last_price=None if data.get("last_price") is None else Decimal(data["last_price"]),
        )


_TERMINAL_ORDER_STATUSES = frozenset(
    {"filled", "cancelled", "canceled", "rejected", "expired", "done", "closed"}
)


@dataclass(slots=True)
class OrderSnapshot:
    """One order as we (or the broker) see it.

    ``amount`` is signed (sell < 0). ``filled`` carries the same sign as ``amount``; an
    unsigned filled quantity for a sell is given the sell's sign. ``status`` is stored
    lower-case.
    """

    order_id: str
    asset: Asset
    amount: Decimal
    status: str
    client_order_id: str | None = None
    filled: Decimal = Decimal(0)
    order_type: str = "market"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.order_id, str) or not self.order_id:
            raise InvalidOrder(f"OrderSnapshot.order_id={self.order_id!r} must be a non-empty str")
        _require_asset("OrderSnapshot", self.asset)
        self.amount = _dec("OrderSnapshot", "amount", self.amount)
        if self.amount == 0:
            raise InvalidOrder(
                f"OrderSnapshot.amount for order {self.order_id} is 0; an order needs a "
                "non-zero amount (negative to sell)"
            )
        if not isinstance(self.status, str) or not self.status:
            raise InvalidOrder(
                f"OrderSnapshot.status={self.status!r} for order {self.order_id} must be a "
                "non-empty str such as 'open'"
            )
        self.status = self.status.lower()
        if self.client_order_id is not None and (
            not isinstance(self.client_order_id, str) or not self.client_order_id
        ):
            raise InvalidOrder(
                f"OrderSnapshot.client_order_id={self.client_order_id!r} must be a non-empty "
                "str or None"
            )
        filled = _dec("OrderSnapshot", "filled", self.filled)
        filled = abs(filled).copy_sign(self.amount) if filled else Decimal(0)
        if abs(filled) > abs(self.amount):
            raise InvalidOrder(
                f"OrderSnapshot.filled={filled} for order {self.order_id} exceeds its amount "
                f"{self.amount}"
            )
        self.filled = filled
        self.order_type = str(self.order_type).lower()
        for name in ("limit_price", "stop_price"):
            price = _opt_dec("OrderSnapshot", name, getattr(self, name))
            if price is not None and price <= 0:
                raise InvalidOrder(
                    f"OrderSnapshot.{name}={price} for order {self.order_id} must be > 0"
                )
            setattr(self, name, price)

    @property
    def remaining(self) -> Decimal:
        """Signed amount still to fill."""
        return self.amount - self.filled

    @property
    def is_open(self) -> bool:
        return self.status not in _TERMINAL_ORDER_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "asset": self.asset.to_dict(),
            "amount": str(self.amount),
            "filled": str(self.filled),
            "status": self.status,
            "order_type": self.order_type,
            "limit_price": None if self.limit_price is None else str(self.limit_price),
            "stop_price": None if self.stop_price is None else str(self.stop_price),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderSnapshot:
        def opt(key: str) -> Decimal | None:
            raw = data.get(key)
            return None if raw is None else Decimal(raw)

        return cls(
            order_id=data["order_id"],
            asset=asset_from_dict(data["asset"]),
            amount=Decimal(data["amount"]),
            status=data["status"],
            client_order_id=data.get("client_order_id"),
            filled=Decimal(data.get("filled", "0")),
            order_type=data.get("order_type", "market"),
            limit_price=opt("limit_price"),
            stop_price=opt("stop_price"),
        )


def _state_dict(owner: str, name: str, value: Any, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise CheckpointError(f"{owner}.{name} must be a dict, got {type(value).__name__}")
    return value


@dataclass(slots=True)
class StateCheckpoint:
    """Everything needed to resume a strategy after a restart.

    Only the first five fields are required (the spec builds it with those). The rest
    is filled in by the engine: ``strategy_state`` (the strategy's captured attributes),
    ``breaker_state`` (circuit breakers, so a tripped breaker stays tripped across a
    restart), ``session_id`` + ``order_sequence`` (so client order ids are never
    reused), ``ledger_state`` (anything the ledger needs beyond positions and cash).
    ``timestamp`` is normalised to tz-aware UTC; a naive value is read as local time.
    """

    timestamp: datetime
    portfolio_value: Decimal
    cash: Decimal
    positions: list[PositionSnapshot]
    pending_orders: list[OrderSnapshot]
    strategy_name: str | None = None
    strategy_state: dict[str, Any] = field(default_factory=dict)
    breaker_state: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    order_sequence: int = 0
    ledger_state: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.timestamp = to_utc(self.timestamp, "StateCheckpoint.timestamp")
        self.portfolio_value = _dec(
            "StateCheckpoint", "portfolio_value", self.portfolio_value, CheckpointError
        )
        self.cash = _dec("StateCheckpoint", "cash", self.cash, CheckpointError)
        self.positions = list(self.positions)
        for p in self.positions:
            if not isinstance(p, PositionSnapshot):
                raise CheckpointError(
                    f"StateCheckpoint.positions holds a {type(p).__name__}; every entry must "
                    "be a PositionSnapshot(asset, amount, cost_basis)"
                )
        self.pending_orders = list(self.pending_orders)
        for o in self.pending_orders:
            if not isinstance(o, OrderSnapshot):
                raise CheckpointError(
                    f"StateCheckpoint.pending_orders holds a {type(o).__name__}; every entry "
                    "must be an OrderSnapshot(order_id, asset, amount, status)"
                )
        if self.strategy_name is not None and (
            not isinstance(self.strategy_name, str) or not self.strategy_name
        ):
            raise CheckpointError(
                f"StateCheckpoint.strategy_name={self.strategy_name!r} must be a non-empty "
                "str or None"
            )
        if isinstance(self.order_sequence, bool) or not isinstance(self.order_sequence, int):
            raise CheckpointError(
                f"StateCheckpoint.order_sequence={self.order_sequence!r} must be an int >= 0"
            )
        if self.order_sequence < 0:
            raise CheckpointError(
                f"StateCheckpoint.order_sequence={self.order_sequence} must be >= 0"
            )
        _state_dict("StateCheckpoint", "strategy_state", self.strategy_state)
        _state_dict("StateCheckpoint", "breaker_state", self.breaker_state)
        _state_dict("StateCheckpoint", "ledger_state", self.ledger_state, optional=True)
        _state_dict("StateCheckpoint", "extra", self.extra)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: Decimals as strings, assets via ``Asset.to_dict()``."""
        return {
            "timestamp": self.timestamp.isoformat(),
            "portfolio_value": str(self.portfolio_value),
            "cash": str(self.cash),
            "positions": [p.to_dict() for p in self.positions],
            "pending_orders": [o.to_dict() for o in self.pending_orders],
            "strategy_name": self.strategy_name,
            "strategy_state": encode_state_value(self.strategy_state, "strategy_state"),
            "breaker_state": encode_state_value(self.breaker_state, "breaker_state"),
            "session_id": self.session_id,
            "order_sequence": self.order_sequence,
            "ledger_state": None
            if self.ledger_state is None
            else encode_state_value(self.ledger_state, "ledger_state"),
            "extra": encode_state_value(self.extra, "extra"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StateCheckpoint:
        """Inverse of :meth:`to_dict`; a malformed dict raises ``CheckpointCorrupted``."""
        try:
            ledger = data.get("ledger_state")
            return cls(
                timestamp=data["timestamp"],
                portfolio_value=Decimal(data["portfolio_value"]),
                cash=Decimal(data["cash"]),
                positions=[PositionSnapshot.from_dict(p) for p in data.get("positions", [])],
                pending_orders=[OrderSnapshot.from_dict(o) for o in data.get("pending_orders", [])],
                strategy_name=data.get("strategy_name"),
                strategy_state=decode_state_value(data.get("strategy_state", {})),
                breaker_state=decode_state_value(data.get("breaker_state", {})),
                session_id=data.get("session_id"),
                order_sequence=data.get("order_sequence", 0),
                ledger_state=None if ledger is None else decode_state_value(ledger),
                extra=decode_state_value(data.get("extra", {})),
            )
        except CheckpointCorrupted:
            raise
        except (KeyError, TypeError, ValueError, ArithmeticError, CheckpointError) as exc:
            raise CheckpointCorrupted(
                f"checkpoint data is malformed ({type(exc).__name__}: {exc}); it was not "
                "written by this version of RustyBT or was edited by hand"
            ) from exc


# --- reconciliation report ----------------------------------------------------------
@dataclass(slots=True)
class PositionDiscrepancy:
    """A position that differs between us and the broker.

    ``kind`` is one of "quantity_mismatch", "missing_locally" (broker holds it, we do
    not), "missing_at_broker" (we hold it, the broker does not), "opposite_side".
    """

    asset: Asset
    kind: str
    local_amount: Decimal
    broker_amount: Decimal
    severity: DiscrepancySeverity
    message: str

    @property
    def difference(self) -> Decimal:
        """Broker minus local."""
        return self.broker_amount - self.local_amount

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset.symbol,
            "exchange": self.asset.exchange,
            "kind": self.kind,
            "local_amount": str(self.local_amount),
            "broker_amount": str(self.broker_amount),
            "severity": self.severity.value,
            "message": self.message,
        }


@dataclass(slots=True)
class CashDiscrepancy:
    """Cash differs. ``difference`` is broker minus local; ``difference_pct`` is a
    fraction (0.02 = 2%) of the larger of the two balances, like ``cash_tolerance_pct``."""

    local_cash: Decimal
    broker_cash: Decimal
    difference: Decimal
    difference_pct: Decimal
    severity: DiscrepancySeverity

    def to_dict(self) -> dict[str, Any]:
        return {
            "local_cash": str(self.local_cash),
            "broker_cash": str(self.broker_cash),
            "difference": str(self.difference),
            "difference_pct": str(self.difference_pct),
            "severity": self.severity.value,
        }


@dataclass(slots=True)
class OrderDiscrepancy:
    """An open order that differs. ``kind``: "orphaned_local" (we think it is open, the
    broker does not list it), "orphaned_broker" (the broker has an open order we do not
    know), "status_mismatch", "amount_mismatch"."""

    order_id: str | None
    client_order_id: str | None
    kind: str
    local_status: str | None
    broker_status: str | None
    severity: DiscrepancySeverity
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "kind": self.kind,
            "local_status": self.local_status,
            "broker_status": self.broker_status,
            "severity": self.severity.value,
            "message": self.message,
        }


@dataclass(slots=True)
class BrokerState:
    """What the broker reported, in snapshot form: what TRUST_BROKER sets locally.

    Position ``cost_basis`` is the broker's ``average_price × amount``.
    """

    positions: list[PositionSnapshot]
    cash: Decimal
    open_orders: list[OrderSnapshot]
    portfolio_value: Decimal | None = None
    buying_power: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "positions": [p.to_dict() for p in self.positions],
            "cash": str(self.cash),
            "open_orders": [o.to_dict() for o in self.open_orders],
            "portfolio_value": None if self.portfolio_value is None else str(self.portfolio_value),
            "buying_power": None if self.buying_power is None else str(self.buying_power),
        }


@dataclass(slots=True)
class ReconciliationReport:
    """Every difference one reconciliation found, plus the broker's view of the truth.

    Differences within tolerance are still reported, as ``INFO``; act on
    :attr:`max_severity`, not on :attr:`has_discrepancies` alone.
    """

    position_discrepancies: list[PositionDiscrepancy] = field(default_factory=list)
    cash_discrepancy: CashDiscrepancy | None = None
    order_discrepancies: list[OrderDiscrepancy] = field(default_factory=list)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    strategy: ReconciliationStrategy = ReconciliationStrategy.WARN_ONLY
    actions_taken: list[str] = field(default_factory=list)
    broker_state: BrokerState | None = None

    def _severities(self) -> list[DiscrepancySeverity]:
        out = [d.severity for d in self.position_discrepancies]
        out.extend(d.severity for d in self.order_discrepancies)
        if self.cash_discrepancy is not None:
            out.append(self.cash_discrepancy.severity)
        return out

    @property
    def has_discrepancies(self) -> bool:
        """True when any difference was found, including INFO ones within tolerance."""
        return bool(
            self.position_discrepancies
            or self.order_discrepancies
            or self.cash_discrepancy is not None
        )

    @property
    def has_critical_discrepancies(self) -> bool:
        return any(s is DiscrepancySeverity.CRITICAL for s in self._severities())

    @property
    def max_severity(self) -> DiscrepancySeverity:
        """The worst severity found; ``INFO`` when nothing was found."""
        return DiscrepancySeverity.highest(self._severities())

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp.isoformat(),
            "strategy": self.strategy.value,
            "max_severity": self.max_severity.value,
            "has_discrepancies": self.has_discrepancies,
            "position_discrepancies": [d.to_dict() for d in self.position_discrepancies],
            "cash_discrepancy": None
            if self.cash_discrepancy is None
            else self.cash_discrepancy.to_dict(),
            "order_discrepancies": [d.to_dict() for d in self.order_discrepancies],
            "actions_taken": list(self.actions_taken),
        }
