"""Decimal cost models at the spec's paths (``commission``, ``slippage``).

Also the one helper their constructors (and the paper broker's) share to read a
configuration number.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rustybt.exceptions import ConfigError


def config_decimal(owner: str, name: str, value: Any) -> Decimal:
    """A finite, non-negative Decimal, or :class:`ConfigError` naming the parameter.

    A float is read through its shortest repr (``0.025`` → ``Decimal("0.025")``), never its
    binary expansion.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{owner}({name}={value!r}): pass a number, e.g. Decimal('0.5')")
    if isinstance(value, float):
        value = repr(value)
    try:
        out = Decimal(value)
    except Exception:
        raise ConfigError(
            f"{owner}({name}={value!r}) is not a number; pass a Decimal, e.g. Decimal('0.5')"
        ) from None
    if not out.is_finite() or out < 0:
        raise ConfigError(f"{owner}({name}={value!r}) must be a finite number >= 0")
    return out
