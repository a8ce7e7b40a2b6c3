"""zipline's commission API at zipline's path: ``from rustybt.finance import commission``.

``commission.PerShare(cost=0.0075, min_trade_cost=1.0)`` and friends, with zipline's
parameter names and defaults, so a zipline script's ``set_commission`` line runs as
written. Each class is the spec's Decimal model (:mod:`rustybt.finance.decimal.commission`)
under zipline's name: one implementation, exact ``Decimal`` fees. Floats given here are
read through their shortest repr (``0.0075`` is exactly ``Decimal("0.0075")``).

zipline's ``PerDollar(cost=)`` is a fraction of the traded value (``0.0015`` = 0.15%); it
maps to ``PerDollarCommission(basis_points=cost × 10000)``. zipline's futures models
(``PerContract``, ``PerFutureTrade``) and user models written against zipline's
``calculate(order, transaction)`` are not supported (see docs/zipline.md).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rustybt.finance.decimal import config_decimal
from rustybt.finance.decimal.commission import (
    CommissionModel,
    NoCommission,
    PerDollarCommission,
    PerShareCommission,
    PerTradeCommission,
)

__all__ = ["CommissionModel", "NoCommission", "PerDollar", "PerShare", "PerTrade"]

_BPS = Decimal(10000)


class PerShare(PerShareCommission):
    """zipline's ``PerShare(cost=0.001, min_trade_cost=0.0)``: per share, per-order minimum."""

    __slots__ = ()

    def __init__(self, cost: Any = 0.001, min_trade_cost: Any = 0.0) -> None:
        super().__init__(
            config_decimal("PerShare", "cost", cost),
            config_decimal("PerShare", "min_trade_cost", min_trade_cost),
        )


class PerTrade(PerTradeCommission):
    """zipline's ``PerTrade(cost=0.0)``: a flat fee per order, on its first fill."""

    __slots__ = ()

    def __init__(self, cost: Any = 0.0) -> None:
        super().__init__(config_decimal("PerTrade", "cost", cost))


class PerDollar(PerDollarCommission):
    """zipline's ``PerDollar(cost=0.0015)``: ``cost`` × the traded value of each fill."""

    __slots__ = ()

    def __init__(self, cost: Any = 0.0015) -> None:
        super().__init__(config_decimal("PerDollar", "cost", cost) * _BPS)

    @property
    def cost(self) -> Decimal:
        """The fraction of traded value charged (zipline's parameter)."""
        return self.basis_points / _BPS
