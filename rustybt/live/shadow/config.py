"""``ShadowTradingConfig``: the settings of shadow trading (spec path
``rustybt.live.shadow.config``), validated once so the engine never meets a bad value."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rustybt.exceptions import ConfigError

__all__ = ["ShadowTradingConfig"]


def _fraction(name: str, value: Any, *, allow_zero: bool) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise ConfigError(
            f"ShadowTradingConfig({name}={value!r}): pass a Decimal, e.g. "
            f"{name}=Decimal('0.05'), not a {type(value).__name__}"
        )
    try:
        out = Decimal(value)
    except Exception:
        raise ConfigError(
            f"ShadowTradingConfig({name}={value!r}) is not a number; pass a Decimal "
            f"fraction, e.g. Decimal('0.05') for 5 %"
        ) from None
    low_ok = out >= 0 if allow_zero else out > 0
    if not out.is_finite() or not low_ok or out > 1:
        bound = "[0, 1]" if allow_zero else "(0, 1]"
        raise ConfigError(
            f"ShadowTradingConfig({name}={value!r}) must be a fraction within {bound}, "
            f"e.g. Decimal('0.05') for 5 %"
        )
    return out


@dataclass(frozen=True)
class ShadowTradingConfig:
    """How shadow trading compares a live session with its backtest twin.

    * ``signal_tolerance_pct``: a live order matches the shadow's when asset and side are
      equal and the sizes differ by at most this fraction of the larger one.
    * ``max_misalignment_count``: the alignment breaker trips on this many misaligned bars
      (counted over the session, durable across restarts, cleared by a reset).
    * ``execution_quality_threshold``: the breaker also trips when the live fill rate
      (live filled quantity / shadow filled quantity on compared orders) falls below it,
      once at least ``min_fills_for_quality`` shadow fills have been compared.
    * ``track_slippage`` / ``track_latency``: compute slippage in bps (live fill price vs.
      the shadow's simulated fill price) and latency in ms (signal to live fill).
    """

    enabled: bool = True
    signal_tolerance_pct: Decimal = Decimal("0.05")
    max_misalignment_count: int = 3
    execution_quality_threshold: Decimal = Decimal("0.90")
    track_slippage: bool = True
    track_latency: bool = True
    min_fills_for_quality: int = 5

    def __post_init__(self) -> None:
        for flag in ("enabled", "track_slippage", "track_latency"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(
                    f"ShadowTradingConfig({flag}={getattr(self, flag)!r}) must be True or False"
                )
        tol = _fraction("signal_tolerance_pct", self.signal_tolerance_pct, allow_zero=True)
        quality = _fraction(
            "execution_quality_threshold", self.execution_quality_threshold, allow_zero=True
        )
        object.__setattr__(self, "signal_tolerance_pct", tol)
        object.__setattr__(self, "execution_quality_threshold", quality)
        for name in ("max_misalignment_count", "min_fills_for_quality"):
            n = getattr(self, name)
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ConfigError(
                    f"ShadowTradingConfig({name}={n!r}) must be an int >= 1, e.g. {name}=3"
                )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (Decimals as strings): saved beside the report."""
        return {
            "enabled": self.enabled,
            "signal_tolerance_pct": str(self.signal_tolerance_pct),
            "max_misalignment_count": self.max_misalignment_count,
            "execution_quality_threshold": str(self.execution_quality_threshold),
            "track_slippage": self.track_slippage,
            "track_latency": self.track_latency,
            "min_fills_for_quality": self.min_fills_for_quality,
        }
