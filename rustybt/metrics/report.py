"""The session report: one self-contained HTML page next to a run's Parquet results.

``write_report(results_dir)`` reads ``daily.parquet``, ``orders.parquet`` and
``transactions.parquet`` (what ``rustybt run -o`` and ``rustybt live -o`` write) and, when
present, ``breaker_events.json``, and writes ``report.html``: equity and drawdown curves
(inline SVG, no external assets, so it opens offline and can be mailed), returns, Sharpe,
max drawdown, turnover, fees, and the orders, fills and breaker events tables.
``rustybt report <results-dir>`` rebuilds it.

Figures are computed from the exact Decimal strings in the Parquet files; only the chart
coordinates are floats.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from rustybt.exceptions import ConfigError
from rustybt.metrics.performance import sharpe_ratio

_ZERO = Decimal(0)
_EVENT_KEYS = ("dt", "breaker", "reason")


@dataclass
class ReportFigures:
    start_value: Decimal
    end_value: Decimal
    total_return: Decimal
    max_drawdown: Decimal
    sharpe: float | None
    fees: Decimal
    turnover: Decimal
    orders: int
    fills: int
    days: int


def _dec(v: Any) -> Decimal:
    if v is None or v == "":
        return _ZERO
    return Decimal(str(v))


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        return pl.DataFrame()
    return pl.read_parquet(path)


def figures(daily: pl.DataFrame, orders: pl.DataFrame, fills: pl.DataFrame) -> ReportFigures:
    values = [_dec(v) for v in daily["portfolio_value"]] if "portfolio_value" in daily else []
    if not values:
        raise ConfigError("the results have no daily values (daily.parquet is empty)")
    start = values[0] - _dec(daily["pnl"][0]) if "pnl" in daily else values[0]
    peak, max_dd = start, _ZERO
    for v in values:
        peak = max(peak, v)
        if peak > 0:
            max_dd = max(max_dd, (peak - v) / peak)
    returns = [_dec(r) for r in daily["returns"]] if "returns" in daily else []
    traded = _ZERO
    fees = _ZERO
    if fills.height:
        for amount, price in zip(fills["amount"], fills["price"], strict=True):
            traded += abs(_dec(amount) * _dec(price))
        fees = sum((_dec(c) for c in fills["commission"]), _ZERO)
    mean_value = sum(values, _ZERO) / len(values)
    return ReportFigures(
        start_value=start,
        end_value=values[-1],
        total_return=(values[-1] - start) / start if start else _ZERO,
        max_drawdown=max_dd,
        sharpe=sharpe_ratio(returns) if len(returns) > 1 else None,
        fees=fees,
        turnover=traded / mean_value if mean_value else _ZERO,
        orders=orders.height,
        fills=fills.height,
        days=len(values),
    )


def _svg_curve(values: list[float], *, color: str, fill: bool = False, height: int = 180) -> str:
    if len(values) < 2:
        return '<p class="dim">not enough points for a chart</p>'
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    step = 800 / (len(values) - 1)
    pts = " ".join(
        f"{i * step:.1f},{height - 10 - (v - lo) / span * (height - 20):.1f}"
        for i, v in enumerate(values)
    )
    area = f'<polygon points="0,{height} {pts} 800,{height}" fill="{color}22"/>' if fill else ""
    return (
        f'<svg viewBox="0 0 800 {height}" preserveAspectRatio="none" role="img">{area}'
        f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5" '
        'vector-effect="non-scaling-stroke"/></svg>'
        f'<div class="axis"><span>{lo + 0.0:,.2f}</span><span>{hi + 0.0:,.2f}</span></div>'
    )


def _table(frame: pl.DataFrame, columns: list[str], limit: int = 200) -> str:
    cols = [c for c in columns if c in frame.columns]
    if not frame.height or not cols:
        return '<p class="dim">none</p>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for row in frame.select(cols).head(limit).iter_rows():
        rows.append("".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row))
    more = (
        f'<p class="dim">{frame.height - limit:,} more in the Parquet file</p>'
        if frame.height > limit
        else ""
    )
    body = "".join(f"<tr>{r}</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _pct(d: Decimal) -> str:
    text = f"{d * 100:.2f} %"
    return "0.00 %" if text == "-0.00 %" else text


def render(results_dir: Path, title: str | None = None) -> str:
    daily = _read(results_dir / "daily.parquet")
    orders = _read(results_dir / "orders.parquet")
    fills = _read(results_dir / "transactions.parquet")
    events_path = results_dir / "breaker_events.json"
    events = json.loads(events_path.read_text()) if events_path.exists() else []
    f = figures(daily, orders, fills)
    values = [float(_dec(v)) for v in daily["portfolio_value"]]
    peak, drawdowns = values[0], []
    for v in values:
        peak = max(peak, v)
        drawdowns.append((v - peak) / peak * 100 + 0.0 if peak else 0.0)  # + 0.0: no -0.0
    sharpe = "n/a" if f.sharpe is None else f"{f.sharpe:.2f}"
    stats = [
        ("Start value", f"{f.start_value:,.2f}"),
        ("End value", f"{f.end_value:,.2f}"),
        ("Total return", _pct(f.total_return)),
        ("Max drawdown", _pct(f.max_drawdown)),
        ("Sharpe (annualised)", sharpe),
        ("Turnover", f"{f.turnover:.2f}×"),
        ("Fees", f"{f.fees:,.2f}"),
        ("Orders / fills", f"{f.orders:,} / {f.fills:,}"),
        ("Days", f"{f.days:,}"),
    ]
    stat_html = "".join(
        f"<div><span>{html.escape(k)}</span><b>{html.escape(v)}</b></div>" for k, v in stats
    )
    event_rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(e.get(k, '')))}</td>" for k in _EVENT_KEYS)
        + "</tr>"
        for e in events
    )
    events_html = (
        f"<table><thead><tr><th>time</th><th>breaker</th><th>reason</th></tr></thead>"
        f"<tbody>{event_rows}</tbody></table>"
        if events
        else '<p class="dim">none tripped</p>'
    )
    name = html.escape(title or results_dir.name)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} — RustyBT report</title>
<style>
body{{font:14px/1.45 system-ui,sans-serif;margin:0;padding:1rem 1.5rem;color:#1f2328;
max-width:1100px}}
h1{{font-size:1.3rem}} h2{{font-size:1rem;margin-top:1.6rem;color:#57606a}}
.stats{{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:.6rem}}
.stats div{{border:1px solid #d0d7de;border-radius:.4rem;padding:.5rem .7rem}}
.stats span{{display:block;color:#57606a;font-size:.8rem}} .stats b{{font-size:1.1rem}}
svg{{width:100%;height:180px;display:block;border-bottom:1px solid #d0d7de}}
.axis{{display:flex;justify-content:space-between;color:#57606a;font-size:.75rem}}
table{{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums;font-size:.85rem}}
th,td{{padding:.2rem .5rem;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}}
th:first-child,td:first-child{{text-align:left}} .dim{{color:#57606a}}
</style></head><body>
<h1>{name}</h1>
<div class="stats">{stat_html}</div>
<h2>Equity</h2>{_svg_curve(values, color="#0969da")}
<h2>Drawdown (%)</h2>{_svg_curve(drawdowns, color="#cf222e", fill=True)}
<h2>Circuit breaker events</h2>{events_html}
<h2>Orders</h2>{
        _table(
            orders,
            [
                "created",
                "id",
                "symbol",
                "amount",
                "filled",
                "order_type",
                "limit_price",
                "stop_price",
                "status",
                "avg_fill_price",
                "commission",
                "reason",
            ],
        )
    }
<h2>Fills</h2>{_table(fills, ["dt", "order_id", "symbol", "amount", "price", "commission"])}
</body></html>
"""


def write_report(results_dir: str | Path, title: str | None = None) -> Path:
    """Write ``report.html`` into ``results_dir``; returns its path."""
    folder = Path(results_dir)
    if not folder.is_dir():
        raise ConfigError(
            f"{folder} is not a results folder; give the folder `rustybt run -o` wrote"
        )
    if not (folder / "daily.parquet").exists():
        raise ConfigError(
            f"{folder} has no daily.parquet; give the folder `rustybt run -o` or "
            "`rustybt live -o` wrote"
        )
    out = folder / "report.html"
    out.write_text(render(folder, title), encoding="utf-8")
    return out


def write_breaker_events(results_dir: str | Path, audit_path: str | Path) -> Path:
    """``breaker_events.json`` from a session's audit log: every circuit breaker trip."""
    events = []
    try:
        lines = Path(audit_path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        if rec.get("event") == "circuit_breakers_tripped":
            events.append(
                {
                    "dt": rec.get("timestamp", ""),
                    "breaker": ", ".join(rec.get("breaker_types") or []),
                    "reason": "; ".join(str(r) for r in rec.get("reasons") or []),
                }
            )
    out = Path(results_dir) / "breaker_events.json"
    out.write_text(json.dumps(events, indent=1), encoding="utf-8")
    return out
