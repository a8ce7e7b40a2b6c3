"""zipline's ``perf`` DataFrame built from a :class:`~rustybt.backtest.runner.BacktestResult`.

One row per session, indexed by the session's last bar (UTC), with zipline's column names
so that a zipline ``analyze(context, perf)`` works as written: ``portfolio_value``,
``returns``, ``pnl``, ``capital_used``, ``starting_cash``/``ending_cash``,
``starting_value``/``ending_value``, long/short value, exposure and counts, leverage,
``algorithm_period_return``, ``max_drawdown``, ``sharpe``/``sortino``/``algo_volatility``
(cumulative, annualised over 252 days, as empyrical does), ``trading_days``, and the
per-day lists ``positions``, ``orders`` and ``transactions`` (lists of dicts with
zipline's keys, ``sid`` holding the asset), plus each recorded variable as a column.

``floats=True`` (zipline scripts) gives float columns; ``floats=False`` keeps the exact
``Decimal`` values (object columns). Benchmark columns (``alpha``, ``beta``,
``benchmark_*``) are not produced: a run has no benchmark.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rustybt.boundary import to_amount

if TYPE_CHECKING:
    from rustybt.backtest.runner import BacktestResult

_ZERO = Decimal(0)
_DAYS_PER_YEAR = 252


def zipline_frame(result: BacktestResult, floats: bool = True) -> pd.DataFrame:
    """The zipline-shaped daily results of ``result`` (see the module docstring)."""
    ends = result.day_ends
    if not ends:
        return pd.DataFrame()
    closes = [e["close"] for e in ends]
    num = float if floats else (lambda v: v)
    amount = to_amount if floats else (lambda v: v)

    by_day_tx: list[list[dict[str, Any]]] = [[] for _ in ends]
    assets = {o.id: o.asset for o in result.orders}
    for tx in result.transactions:
        i = min(bisect_left(closes, tx["dt"]), len(ends) - 1)
        by_day_tx[i].append(
            {
                "sid": assets.get(tx["order_id"]),
                "symbol": tx["symbol"],
                "amount": amount(tx["amount"]),
                "price": num(tx["price"]),
                "commission": num(tx["commission"]),
                "dt": pd.Timestamp(tx["dt"]),
                "order_id": tx["order_id"],
            }
        )
    by_day_orders: list[list[dict[str, Any]]] = [[] for _ in ends]
    for o in result.orders:
        if o.created_dt is None:
            continue
        i = min(bisect_left(closes, o.created_dt), len(ends) - 1)
        by_day_orders[i].append(
            {
                "id": o.id,
                "sid": o.asset,
                "dt": pd.Timestamp(o.created_dt),
                "created": pd.Timestamp(o.created_dt),
                "amount": amount(o.amount),
                "filled": amount(o.filled),
                "commission": num(o.commission),
                "limit": None if o.limit_price is None else num(o.limit_price),
                "stop": None if o.stop_price is None else num(o.stop_price),
                "status": o.status.value,
                "reason": o.reason,
            }
        )
    recorded = {row["date"]: row for row in result.recorded}

    rows: list[dict[str, Any]] = []
    starting_cash = result.daily[0]["portfolio_value"] - result.daily[0]["pnl"]
    capital_base = starting_cash
    prev_value = _ZERO
    peak = None
    max_dd = 0.0
    max_lev = 0.0
    returns: list[float] = []
    for i, (day, end) in enumerate(zip(result.daily, ends, strict=True)):
        positions = end["positions"]
        long_value = sum((p[1] * p[3] * p[0].multiplier for p in positions if p[1] > 0), _ZERO)
        short_value = sum((p[1] * p[3] * p[0].multiplier for p in positions if p[1] < 0), _ZERO)
        pv = day["portfolio_value"]
        ending_cash = day["cash"]
        ending_value = day["positions_value"]
        ret = float(day["returns"])
        returns.append(ret)
        peak = pv if peak is None or pv > peak else peak
        dd = float(pv / peak - 1) if peak else 0.0
        max_dd = min(max_dd, dd)
        gross_lev = float((long_value - short_value) / pv) if pv else 0.0
        max_lev = max(max_lev, gross_lev)
        row: dict[str, Any] = {
            "period_close": pd.Timestamp(end["close"]),
            "starting_cash": num(starting_cash),
            "ending_cash": num(ending_cash),
            "starting_value": num(prev_value),
            "ending_value": num(ending_value),
            "starting_exposure": num(prev_value),
            "ending_exposure": num(ending_value),
            "portfolio_value": num(pv),
            "pnl": num(day["pnl"]),
            "returns": num(day["returns"]),
            "capital_used": num(ending_cash - starting_cash),
            "algorithm_period_return": num(pv / capital_base - 1),
            "long_value": num(long_value),
            "short_value": num(short_value),
            "long_exposure": num(long_value),
            "short_exposure": num(short_value),
            "longs_count": sum(1 for p in positions if p[1] > 0),
            "shorts_count": sum(1 for p in positions if p[1] < 0),
            "gross_leverage": gross_lev,
            "net_leverage": float((long_value + short_value) / pv) if pv else 0.0,
            "max_leverage": max_lev,
            "max_drawdown": max_dd,
            "algo_volatility": _volatility(returns),
            "sharpe": _sharpe(returns),
            "sortino": _sortino(returns),
            "trading_days": i + 1,
            "positions": [
                {
                    "sid": a,
                    "amount": amount(amt),
                    "cost_basis": num(cost),
                    "last_sale_price": num(last),
                }
                for a, amt, cost, last in positions
            ],
            "orders": by_day_orders[i],
            "transactions": by_day_tx[i],
        }
        rec = recorded.get(day["date"])
        if rec is not None:
            for key, value in rec.items():
                if key != "date":
                    row[key] = float(value) if floats and isinstance(value, Decimal) else value
        rows.append(row)
        starting_cash = ending_cash
        prev_value = ending_value
    index = pd.DatetimeIndex([r["period_close"] for r in rows], name="dt")
    frame = pd.DataFrame(rows, index=index)
    return frame


def _volatility(returns: list[float]) -> float:
    if len(returns) < 2:
        return math.nan
    return float(np.std(returns, ddof=1) * math.sqrt(_DAYS_PER_YEAR))


def _sharpe(returns: list[float]) -> float:
    if len(returns) < 2:
        return math.nan
    std = np.std(returns, ddof=1)
    return float(np.mean(returns) / std * math.sqrt(_DAYS_PER_YEAR)) if std > 0 else math.nan


def _sortino(returns: list[float]) -> float:
    if len(returns) < 2:
        return math.nan
    downside = np.minimum(np.asarray(returns), 0.0)
    dd = math.sqrt(float(np.mean(downside**2)))
    return float(np.mean(returns) / dd * math.sqrt(_DAYS_PER_YEAR)) if dd > 0 else math.nan
