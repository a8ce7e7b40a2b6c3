"""The float boundary: what a zipline-style script sees instead of ``Decimal``.

zipline code mixes what the API returns with numpy and pandas floats (``olmar`` multiplies
a float array by ``portfolio.starting_cash``); with ``Decimal`` that raises ``TypeError``.
So a script of module-level functions sees floats at the strategy API — ``data.current``,
``data.history``, ``context.portfolio``, ``context.account`` and the results frame given
to ``analyze`` — while money stays ``Decimal`` inside (ledger, orders, fills, fees).
Numbers a script passes back in (``order(asset, 10.0)``, ``limit_price=101.37``) are read
exactly through their shortest repr and rounded to the asset's tick and lot.

The views here are read-only wrappers over the Decimal originals, built per access, so
nothing is copied on the hot path except the value asked for. A missing price is
``nan`` (zipline's convention), not ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from rustybt.assets import Asset
from rustybt.exceptions import ConfigError

#: The number modes a strategy can ask for (``TradingAlgorithm.numbers``).
NUMBER_MODES = ("decimal", "float")
_NAN = math.nan


def check_numbers(value: Any) -> str:
    """``value`` if it is a number mode, else :class:`ConfigError` saying which exist."""
    if value not in NUMBER_MODES:
        raise ConfigError(
            f"numbers={value!r} is not a number mode; use 'float' (zipline scripts) or "
            "'decimal' (exact money at the strategy API)"
        )
    return value


def to_float(value: Any) -> Any:
    """A Decimal as float, ``None`` as ``nan``; anything else unchanged."""
    if value is None:
        return _NAN
    if type(value) is Decimal:
        return float(value)
    return value


def to_amount(value: Decimal) -> int | float:
    """A position size as zipline shows it: an int when whole, else a float."""
    return int(value) if value == value.to_integral_value() else float(value)


def float_pandas(obj: Any) -> Any:
    """A Series/DataFrame of Decimals (object dtype) as float64, ``None`` as ``nan``."""
    if isinstance(obj, pd.Series):
        if obj.dtype == object:
            try:  # Decimal → float, None → nan, in one numpy pass
                values = obj.to_numpy().astype(float)
                return pd.Series(values, index=obj.index, name=obj.name, dtype=float)
            except (TypeError, ValueError):
                return obj.map(to_float)  # mixed (e.g. last_traded timestamps): per value
        return obj
    if isinstance(obj, pd.DataFrame):
        return pd.DataFrame({c: float_pandas(obj[c]) for c in obj.columns}, index=obj.index)
    return to_float(obj)


class FloatBarData:
    """``data`` for a float-mode strategy: the same calls, float answers."""

    __slots__ = ("_data",)

    def __init__(self, data: Any) -> None:
        self._data = data

    @property
    def decimal(self) -> Any:
        """The Decimal ``data`` underneath, for exact values when a script needs them."""
        return self._data

    @property
    def current_dt(self) -> Any:
        return self._data.current_dt

    def current(self, assets: Any, fields: Any) -> Any:
        return float_pandas(self._data.current(assets, fields))

    def history(self, assets: Any, fields: Any, bar_count: int, frequency: str = "1m") -> Any:
        return float_pandas(self._data.history(assets, fields, bar_count, frequency))

    def can_trade(self, assets: Any) -> Any:
        return self._data.can_trade(assets)

    def is_stale(self, assets: Any) -> Any:
        return self._data.is_stale(assets)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)


class FloatPosition:
    """zipline's ``Position`` in floats (``amount`` an int when whole)."""

    __slots__ = ("_p",)

    def __init__(self, position: Any) -> None:
        self._p = position

    @property
    def asset(self) -> Asset:
        return self._p.asset

    sid = asset

    @property
    def amount(self) -> int | float:
        return to_amount(self._p.amount)

    @property
    def cost_basis(self) -> float:
        return float(self._p.cost_basis)

    @property
    def last_sale_price(self) -> float:
        return float(self._p.last_price)

    @property
    def market_value(self) -> float:
        return float(self._p.market_value)

    def __repr__(self) -> str:
        return (
            f"Position(asset={self.asset.symbol}, amount={self.amount}, "
            f"cost_basis={self.cost_basis}, last_sale_price={self.last_sale_price})"
        )


class FloatPositions(Mapping):
    """``portfolio.positions`` in floats; a missing asset reads as a zero position."""

    __slots__ = ("_positions",)

    def __init__(self, positions: Any) -> None:
        self._positions = positions

    def __getitem__(self, asset: Asset) -> FloatPosition:
        return FloatPosition(self._positions[asset])  # Positions answers zero when missing

    def __contains__(self, asset: object) -> bool:
        return asset in self._positions

    def __iter__(self) -> Iterator[Asset]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class _FloatView:
    """Every attribute of the wrapped Decimal view, as a float."""

    __slots__ = ("_view",)

    def __init__(self, view: Any) -> None:
        self._view = view

    def __getattr__(self, name: str) -> Any:
        return to_float(getattr(self._view, name))


class FloatPortfolio(_FloatView):
    """zipline's ``context.portfolio`` in floats."""

    __slots__ = ()

    @property
    def positions(self) -> FloatPositions:
        return FloatPositions(self._view.positions)

    @property
    def current_portfolio_weights(self) -> pd.Series:
        weights = self._view.current_portfolio_weights
        return pd.Series({a: float(w) for a, w in weights.items()}, dtype=float)

    def __iter__(self) -> Iterator[Asset]:
        return iter(self._view.positions)

    def __repr__(self) -> str:
        return f"Portfolio(cash={self.cash}, portfolio_value={self.portfolio_value})"


class FloatAccount(_FloatView):
    """zipline's ``context.account`` in floats."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Account(settled_cash={self.settled_cash}, leverage={self.leverage})"


def exact_number(value: Any) -> Any:
    """A number coming back in from a script, made exact for ``to_decimal``.

    numpy scalars are read through ``str`` (their shortest repr, float32 included), so
    ``np.float64(0.1)`` is ``Decimal('0.1')`` and ``np.int64(10)`` is ``Decimal(10)``.
    """
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return str(value)
    return value
