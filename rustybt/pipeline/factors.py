"""Built-in factors, at zipline's path ``rustybt.pipeline.factors``.

Each is a :class:`~rustybt.pipeline.terms.CustomFactor` with zipline's defaults and
formulas, computed with numpy over the engine's daily float windows:
``SimpleMovingAverage`` (NaN-ignoring mean), ``ExponentialWeightedMovingAverage``
(weights ``decay_rate ** age``; ``from_span``), ``Returns`` (``close[-1] / close[0] − 1``
over ``window_length`` closes), ``RSI`` (Wilder's ratio on mean up/down moves, 15 closes
by default), ``AverageDollarVolume`` (``Σ close × volume / window_length``) and ``VWAP``
(``Σ close × volume / Σ volume``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rustybt.exceptions import ConfigError
from rustybt.pipeline.data import USEquityPricing
from rustybt.pipeline.terms import CustomFactor, Factor, Latest

__all__ = [
    "AverageDollarVolume",
    "CustomFactor",
    "ExponentialWeightedMovingAverage",
    "EWMA",
    "Factor",
    "Latest",
    "Returns",
    "RSI",
    "SimpleMovingAverage",
    "VWAP",
]


class SimpleMovingAverage(CustomFactor):
    """Mean of the input over ``window_length`` sessions (NaN ignored)."""

    def compute(self, today: Any, assets: Any, out: np.ndarray, data: np.ndarray) -> None:
        counts = np.sum(~np.isnan(data), axis=0)
        sums = np.nansum(data, axis=0)
        out[:] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


class ExponentialWeightedMovingAverage(CustomFactor):
    """Weighted mean with weights ``decay_rate ** age`` (the newest row has age 0)."""

    def __init__(
        self,
        inputs: Any = None,
        window_length: int | None = None,
        decay_rate: float | None = None,
        mask: Any = None,
    ) -> None:
        if decay_rate is None or not 0 < decay_rate <= 1:
            raise ConfigError(
                f"ExponentialWeightedMovingAverage needs decay_rate in (0, 1], got {decay_rate!r}"
            )
        super().__init__(inputs, window_length, mask, decay_rate=float(decay_rate))

    @classmethod
    def from_span(
        cls, inputs: Any, window_length: int, span: float, mask: Any = None
    ) -> ExponentialWeightedMovingAverage:
        """zipline's spelling: ``decay_rate = 1 − 2 / (span + 1)``."""
        if span <= 1:
            raise ConfigError(f"from_span needs span > 1, got {span!r}")
        return cls(inputs, window_length, 1.0 - 2.0 / (span + 1.0), mask)

    def compute(self, today: Any, assets: Any, out: np.ndarray, data: np.ndarray) -> None:
        n = data.shape[0]
        weights = self.decay_rate ** np.arange(n - 1, -1, -1, dtype=float)
        out[:] = np.average(data, axis=0, weights=weights)


EWMA = ExponentialWeightedMovingAverage


class Returns(CustomFactor):
    """Return over the window: ``close[-1] / close[0] − 1`` (``window_length`` ≥ 2)."""

    inputs = (USEquityPricing.close,)

    def __init__(self, inputs: Any = None, window_length: int | None = None, **kw: Any) -> None:
        super().__init__(inputs, window_length, **kw)
        if self.window_length < 2:
            raise ConfigError(f"Returns needs window_length >= 2, got {self.window_length}")

    def compute(self, today: Any, assets: Any, out: np.ndarray, close: np.ndarray) -> None:
        out[:] = (close[-1] - close[0]) / close[0]


class RSI(CustomFactor):
    """Relative Strength Index: ``100 − 100 / (1 + mean up / mean down)`` of daily changes."""

    inputs = (USEquityPricing.close,)
    window_length = 15

    def compute(self, today: Any, assets: Any, out: np.ndarray, closes: np.ndarray) -> None:
        diffs = np.diff(closes, axis=0)
        ups = np.nanmean(np.clip(diffs, 0, np.inf), axis=0)
        downs = np.abs(np.nanmean(np.clip(diffs, -np.inf, 0), axis=0))
        out[:] = 100 - (100 / (1 + (ups / downs)))


class AverageDollarVolume(CustomFactor):
    """Average daily traded value: ``Σ close × volume / window_length`` (NaN as 0)."""

    inputs = (USEquityPricing.close, USEquityPricing.volume)

    def compute(
        self, today: Any, assets: Any, out: np.ndarray, close: np.ndarray, volume: np.ndarray
    ) -> None:
        out[:] = np.nansum(close * volume, axis=0) / len(close)


class VWAP(CustomFactor):
    """Volume-weighted average price over the window: ``Σ close × volume / Σ volume``."""

    inputs = (USEquityPricing.close, USEquityPricing.volume)

    def compute(
        self, today: Any, assets: Any, out: np.ndarray, close: np.ndarray, volume: np.ndarray
    ) -> None:
        out[:] = np.nansum(close * volume, axis=0) / np.nansum(volume, axis=0)
