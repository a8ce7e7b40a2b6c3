"""Slippage models: the price a fill actually gets, in exact ``Decimal``.

``fill_price(price, amount, bar_volume, asset)`` takes the reference price the simulator
chose (bar close, or the limit for a limit fill), the signed fill amount and the bar's
volume, and returns a worse price: buys pay more, sells receive less. The result is
rounded to the asset's tick *adversely* (buys up, sells down) so a simulated fill is
never at a price the venue could not print and never flatters the strategy. A sell is
never priced below one tick.

``volume_limit`` is the largest fraction of a bar's volume the model lets one asset's
orders take in that bar (``None``: no cap). The execution simulator enforces it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.exceptions import ConfigError
from rustybt.finance.decimal import config_decimal

_ZERO = Decimal(0)
_ONE = Decimal(1)
_BPS = Decimal(10000)


def _volume_limit(model: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    out = config_decimal(model, "volume_limit", value)
    if not 0 < out <= 1:
        raise ConfigError(
            f"{model}(volume_limit={value!r}) is a fraction of bar volume and must be in "
            "(0, 1], e.g. Decimal('0.025') for 2.5%"
        )
    return out


def round_adverse(price: Decimal, amount: Decimal, asset: Asset) -> Decimal:
    """Round ``price`` to ``asset``'s tick against the trader: buys up, sells down."""
    tick = asset.tick_size
    if amount > 0:
        return (price / tick).to_integral_value(ROUND_CEILING) * tick
    out = (price / tick).to_integral_value(ROUND_FLOOR) * tick
    return out if out > 0 else tick


class SlippageModel(ABC):
    """Base class. Subclasses implement :meth:`_slipped` (the unrounded price)."""

    __slots__ = ("volume_limit",)

    def __init__(self, volume_limit: Decimal | None = None) -> None:
        self.volume_limit = _volume_limit(type(self).__name__, volume_limit)

    def fill_price(
        self, price: Decimal, amount: Decimal, bar_volume: Decimal, asset: Asset
    ) -> Decimal:
        """The price a fill of signed ``amount`` gets, rounded to tick adversely."""
        return round_adverse(self._slipped(price, amount, bar_volume), amount, asset)

    @abstractmethod
    def _slipped(self, price: Decimal, amount: Decimal, bar_volume: Decimal) -> Decimal: ...

    def _params(self) -> dict[str, Any]:
        return {"volume_limit": self.volume_limit}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self._params().items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._params() == other._params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self._params().values()))


class NoSlippage(SlippageModel):
    """Fill at the reference price (still rounded to tick adversely)."""

    __slots__ = ()

    def __init__(self, volume_limit: Decimal | None = None) -> None:
        super().__init__(volume_limit)

    def _slipped(self, price: Decimal, amount: Decimal, bar_volume: Decimal) -> Decimal:
        return price


class FixedBasisPointsSlippage(SlippageModel):
    """A constant ``basis_points`` against the trader: ``price × (1 ± bps/10000)``."""

    __slots__ = ("basis_points", "_up", "_down")

    def __init__(
        self, basis_points: Decimal = Decimal("5"), volume_limit: Decimal | None = None
    ) -> None:
        bps = config_decimal("FixedBasisPointsSlippage", "basis_points", basis_points)
        if bps >= _BPS:
            raise ConfigError(
                f"FixedBasisPointsSlippage(basis_points={basis_points!r}) must be < 10000 "
                "(100%), or sells would be priced at or below zero"
            )
        super().__init__(volume_limit)
        self.basis_points = bps
        self._up = _ONE + bps / _BPS
        self._down = _ONE - bps / _BPS

    def _slipped(self, price: Decimal, amount: Decimal, bar_volume: Decimal) -> Decimal:
        return price * (self._up if amount > 0 else self._down)

    def _params(self) -> dict[str, Any]:
        return {"basis_points": self.basis_points, "volume_limit": self.volume_limit}


class FixedSlippage(SlippageModel):
    """A constant ``spread`` per unit, half paid on each side: ``price ± spread / 2``.

    zipline's ``FixedSlippage``; it has no volume cap unless ``volume_limit`` is given.
    """

    __slots__ = ("spread", "_half")

    def __init__(self, spread: Decimal = _ZERO, volume_limit: Decimal | None = None) -> None:
        super().__init__(volume_limit)
        self.spread = config_decimal("FixedSlippage", "spread", spread)
        self._half = self.spread / 2

    def _slipped(self, price: Decimal, amount: Decimal, bar_volume: Decimal) -> Decimal:
        return price + self._half if amount > 0 else price - self._half

    def _params(self) -> dict[str, Any]:
        return {"spread": self.spread, "volume_limit": self.volume_limit}


class VolumeShareSlippage(SlippageModel):
    """zipline's rule: impact = ``price_impact × (fill / bar_volume)²``, applied as
    ``price × (1 ± impact)``.

    The volume share is capped at ``volume_limit`` (the simulator never fills more). A
    bar with no volume counts as a full share (you would be the whole market).
    """

    __slots__ = ("price_impact",)

    def __init__(
        self,
        volume_limit: Decimal | None = Decimal("0.025"),
        price_impact: Decimal = Decimal("0.1"),
    ) -> None:
        impact = config_decimal("VolumeShareSlippage", "price_impact", price_impact)
        limit = _volume_limit("VolumeShareSlippage", volume_limit)
        worst = limit if limit is not None else _ONE
        if impact * worst * worst >= _ONE:
            raise ConfigError(
                f"VolumeShareSlippage(price_impact={price_impact!r}) moves the price by "
                f"{impact * worst * worst:%} at the volume limit; it must stay below 100%"
            )
        self.volume_limit = limit
        self.price_impact = impact

    def _slipped(self, price: Decimal, amount: Decimal, bar_volume: Decimal) -> Decimal:
        share = abs(amount) / bar_volume if bar_volume > 0 else _ONE
        cap = self.volume_limit if self.volume_limit is not None else _ONE
        if share > cap:
            share = cap
        impact = self.price_impact * share * share
        return price * (_ONE + impact if amount > 0 else _ONE - impact)

    def _params(self) -> dict[str, Any]:
        return {"volume_limit": self.volume_limit, "price_impact": self.price_impact}


__all__ = [
    "FixedBasisPointsSlippage",
    "FixedSlippage",
    "NoSlippage",
    "SlippageModel",
    "VolumeShareSlippage",
]
