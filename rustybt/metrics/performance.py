"""Session performance: returns, drawdown, Sharpe, and the end-of-run summary.

Money stays ``Decimal``; ratios that are statistics (Sharpe, volatility) are floats,
computed from Decimal returns at the end, never fed back into accounting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

_ZERO = Decimal(0)


def max_drawdown(values: Sequence[Decimal]) -> Decimal:
    """Largest peak-to-trough fall as a fraction of the peak (0.1 = 10%)."""
    peak = None
    worst = _ZERO
    for v in values:
        if peak is None or v > peak:
            peak = v
        elif peak > 0:
            dd = (peak - v) / peak
            if dd > worst:
                worst = dd
    return worst


def period_returns(values: Sequence[Decimal], start_value: Decimal) -> list[Decimal]:
    out: list[Decimal] = []
    prev = start_value
    for v in values:
        out.append((v - prev) / prev if prev else _ZERO)
        prev = v
    return out


def sharpe_ratio(returns: Sequence[Decimal], periods_per_year: int = 252) -> float | None:
    """Annualised Sharpe of per-period returns (risk-free 0); None when undefined."""
    n = len(returns)
    if n < 2:
        return None
    mean = sum(returns, _ZERO) / n
    var = sum(((r - mean) ** 2 for r in returns), _ZERO) / (n - 1)
    if var == 0:
        return None
    return float(mean / var.sqrt()) * math.sqrt(periods_per_year)


def summarize(
    values: Sequence[Decimal],
    starting_value: Decimal,
    orders: int,
    fills: int,
    fees: Decimal,
    rejects: int = 0,
    periods_per_year: int = 252,
) -> dict[str, Any]:
    end_value = values[-1] if values else starting_value
    rets = period_returns(values, starting_value)
    return {
        "starting_value": starting_value,
        "ending_value": end_value,
        "pnl": end_value - starting_value,
        "total_return": (end_value - starting_value) / starting_value if starting_value else _ZERO,
        "max_drawdown": max_drawdown([starting_value, *values]),
        "sharpe": sharpe_ratio(rets, periods_per_year),
        "orders": orders,
        "fills": fills,
        "rejects": rejects,
        "fees": fees,
    }


def format_summary(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows for a two-column table (thousands separators; no "-0.000%")."""
    sharpe = summary.get("sharpe")
    return [
        ("Starting value", f"{summary['starting_value']:,.2f}"),
        ("Ending value", f"{summary['ending_value']:,.2f}"),
        ("PnL", no_negative_zero(f"{summary['pnl']:,.2f}")),
        ("Total return", no_negative_zero(f"{summary['total_return'] * 100:.3f}%")),
        ("Max drawdown", no_negative_zero(f"{summary['max_drawdown'] * 100:.3f}%")),
        ("Sharpe (annualised)", "n/a" if sharpe is None else no_negative_zero(f"{sharpe:.2f}")),
        ("Orders", f"{summary['orders']:,}"),
        ("Fills", f"{summary['fills']:,}"),
        ("Rejects", f"{summary.get('rejects', 0):,}"),
        ("Fees", f"{summary['fees']:,.2f}"),
    ]


def no_negative_zero(text: str) -> str:
    """Drop the minus of a figure that rounds to zero: ``-0.000%`` -> ``0.000%``."""
    if text.startswith("-") and not text.strip("-0.,%"):
        return text[1:]
    return text
