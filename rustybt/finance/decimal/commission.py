"""Commission models: what a fill costs in fees, in exact ``Decimal``.

Every model answers ``calculate(order, fill_price, fill_amount)`` for one (partial)
fill *before* it is applied to the order, so ``order.filled`` and ``order.commission``
still describe the earlier fills. That is what lets per-order minimums and one-off
per-trade fees work across partial fills. Results are rounded explicitly to 8 decimal
places with ROUND_HALF_EVEN, and are never negative (the ledger does not model rebates).

The same models serve backtest, paper and shadow trading (DESIGN.md invariant 1).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from rustybt.finance.decimal import config_decimal

if TYPE_CHECKING:
    from rustybt.finance.order import Order

_ZERO = Decimal(0)
_BPS = Decimal(10000)
_QUANTUM = Decimal("0.00000001")


def _round(value: Decimal) -> Decimal:
    """At most 8 decimal places, half-even; shorter values keep their own exponent."""
    if value.as_tuple().exponent < -8:  # type: ignore[operator]
        return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    return value


class CommissionModel(ABC):
    """Base class: compute the fee for one fill of ``fill_amount`` (signed) at ``fill_price``."""

    __slots__ = ()

    @abstractmethod
    def calculate(self, order: Order, fill_price: Decimal, fill_amount: Decimal) -> Decimal:
        """Fee for this fill, >= 0, rounded to 8 decimal places."""

    def _fields(self) -> tuple[str, ...]:
        # Slots of the whole class chain: zipline-named subclasses add none of their own.
        return tuple(s for c in reversed(type(self).__mro__) for s in getattr(c, "__slots__", ()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{s}={getattr(self, s)}" for s in self._fields())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self._fields())

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(getattr(self, s) for s in self._fields())))


class NoCommission(CommissionModel):
    """Free trading."""

    __slots__ = ()

    def calculate(self, order: Order, fill_price: Decimal, fill_amount: Decimal) -> Decimal:
        return _ZERO


class PerShareCommission(CommissionModel):
    """``cost`` per share (unit), with an optional per-order minimum ``min_trade_cost``.

    The minimum applies to the order as a whole: the first fill pays at least the
    minimum, later fills pay only once the per-share total exceeds what was charged.
    """

    __slots__ = ("cost", "min_trade_cost")

    def __init__(
        self,
        cost: Decimal = Decimal("0.001"),
        min_trade_cost: Decimal = _ZERO,
    ) -> None:
        self.cost = config_decimal("PerShareCommission", "cost", cost)
        self.min_trade_cost = config_decimal("PerShareCommission", "min_trade_cost", min_trade_cost)

    def calculate(self, order: Order, fill_price: Decimal, fill_amount: Decimal) -> Decimal:
        per_share_total = (abs(order.filled) + abs(fill_amount)) * self.cost
        due = per_share_total if per_share_total > self.min_trade_cost else self.min_trade_cost
        extra = _round(due) - order.commission
        return extra if extra > 0 else _ZERO


class PerTradeCommission(CommissionModel):
    """A flat ``cost`` per order, charged once, on its first fill."""

    __slots__ = ("cost",)

    def __init__(self, cost: Decimal = _ZERO) -> None:
        self.cost = config_decimal("PerTradeCommission", "cost", cost)

    def calculate(self, order: Order, fill_price: Decimal, fill_amount: Decimal) -> Decimal:
        if order.filled != 0:
            return _ZERO
        return _round(self.cost)


class PerDollarCommission(CommissionModel):
    """``basis_points`` of the fill's notional (``|amount| × price × multiplier``)."""

    __slots__ = ("basis_points",)

    def __init__(self, basis_points: Decimal = Decimal("15")) -> None:
        self.basis_points = config_decimal("PerDollarCommission", "basis_points", basis_points)

    def calculate(self, order: Order, fill_price: Decimal, fill_amount: Decimal) -> Decimal:
        notional = abs(fill_amount) * fill_price * order.asset.multiplier
        return _round(notional * self.basis_points / _BPS)


class MakerTakerFee(CommissionModel):
    """Crypto-style fees in basis points of notional: makers pay ``maker_bps``, takers
    ``taker_bps``.

    Approximation: the simulator does not know whether a fill rested on the book, so
    limit and stop-limit orders are charged the maker rate and market and stop orders
    the taker rate. A limit order that was marketable on arrival really pays the taker
    rate on a venue; set ``maker_bps == taker_bps`` to be conservative.
    """

    __slots__ = ("maker_bps", "taker_bps")

    def __init__(
        self,
        maker_bps: Decimal = Decimal("10"),
        taker_bps: Decimal = Decimal("10"),
    ) -> None:
        self.maker_bps = config_decimal("MakerTakerFee", "maker_bps", maker_bps)
        self.taker_bps = config_decimal("MakerTakerFee", "taker_bps", taker_bps)

    def calculate(self, order: Order, fill_price: Decimal, fill_amount: Decimal) -> Decimal:
        # Compared by value so this module need not import the order module.
        bps = self.maker_bps if order.order_type in ("limit", "stop_limit") else self.taker_bps
        notional = abs(fill_amount) * fill_price * order.asset.multiplier
        return _round(notional * bps / _BPS)


__all__ = [
    "CommissionModel",
    "MakerTakerFee",
    "NoCommission",
    "PerDollarCommission",
    "PerShareCommission",
    "PerTradeCommission",
]
