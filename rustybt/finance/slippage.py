"""zipline's slippage API at zipline's path: ``from rustybt.finance import slippage``.

``slippage.VolumeShareSlippage()``, ``FixedSlippage(spread=)``,
``FixedBasisPointsSlippage(basis_points=, volume_limit=)`` and ``NoSlippage()`` with
zipline's parameter names and defaults. Each is the spec's Decimal model
(:mod:`rustybt.finance.decimal.slippage`) under zipline's name: one implementation. Two
things differ from zipline, both on the safe side: a slipped price is rounded to the
asset's tick against the trader, and the rounding is exact ``Decimal``.
"""

from __future__ import annotations

from typing import Any

from rustybt.finance.decimal import slippage as _dec
from rustybt.finance.decimal.slippage import SlippageModel

__all__ = [
    "FixedBasisPointsSlippage",
    "FixedSlippage",
    "NoSlippage",
    "SlippageModel",
    "VolumeShareSlippage",
]


class VolumeShareSlippage(_dec.VolumeShareSlippage):
    """zipline's ``VolumeShareSlippage(volume_limit=0.025, price_impact=0.1)``."""

    __slots__ = ()

    def __init__(self, volume_limit: Any = 0.025, price_impact: Any = 0.1) -> None:
        super().__init__(volume_limit=volume_limit, price_impact=price_impact)


class FixedSlippage(_dec.FixedSlippage):
    """zipline's ``FixedSlippage(spread=0.0)``: half the spread on each side, no volume cap."""

    __slots__ = ()

    def __init__(self, spread: Any = 0.0) -> None:
        super().__init__(spread=spread)


class FixedBasisPointsSlippage(_dec.FixedBasisPointsSlippage):
    """zipline's ``FixedBasisPointsSlippage(basis_points=5.0, volume_limit=0.1)``."""

    __slots__ = ()

    def __init__(self, basis_points: Any = 5.0, volume_limit: Any = 0.1) -> None:
        super().__init__(basis_points=basis_points, volume_limit=volume_limit)


class NoSlippage(_dec.NoSlippage):
    """zipline's ``NoSlippage()``: fill at the reference price, no volume cap."""

    __slots__ = ()
