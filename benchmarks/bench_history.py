"""Per-call cost of ``data.history`` (and of the user's first pandas step on it).

Backtest: ``BacktestBarData`` over the demo bundle's 10 equities (minute), the clock moved to
a fresh minute before each call, as in a run. Live: ``LiveBarData`` fed the same bundle's
bars through ``on_bar`` (the engine's entry point), with the bundle as history, a history
call after every event. Timed with ``time.perf_counter_ns`` around the call only; the
figure is the median over the calls, after a warm-up (the first call builds the caches).

Also measured, for the ceiling the issue sets: the same window as pre-built pandas objects
(what the user's own pandas work costs), ``mean`` of it, and the exact fast path
``data.history_values``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

N_CALLS = 2_000
WARMUP = 50


def _median_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1_000


def _row(mode: str, what: str, samples: list[int]) -> dict[str, Any]:
    return {
        "mode": mode,
        "call": what,
        "median_us": _median_us(samples),
        "p90_us": float(np.percentile(samples, 90)) / 1_000,
        "calls": len(samples),
    }


def _portal(root: str) -> Any:
    from rustybt.data.demo import build_demo_bundle
    from rustybt.data.polars.data_portal import PolarsDataPortal

    build_demo_bundle(root)
    return PolarsDataPortal("demo", "minute", root=root)


def _time(fn: Any, steps: list[Any], setup: Any) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    for i, step in enumerate(steps):
        setup(step)
        t0 = clock()
        fn()
        t1 = clock()
        if i >= WARMUP:
            out.append(t1 - t0)
    return out


def measure(n_calls: int = N_CALLS) -> list[dict[str, Any]]:
    from rustybt.data.bar_data import BacktestBarData, LiveBarData

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as root:
        portal = _portal(root)
        equities = [a for a in portal.asset_finder.assets if a.calendar == "XNYS"][:10]
        one = equities[0]
        clock = portal.timestamps(equities)
        start = 1_000  # warm history available
        idx = list(range(start, min(len(clock), start + n_calls + WARMUP)))
        data = BacktestBarData(portal, clock)

        def at(i: int) -> None:
            data.set_index(i, datetime.fromtimestamp(int(clock[i]) / 1e9, UTC))

        def record(mode: str, what: str, fn: Any, setup: Any, steps: list[Any]) -> None:
            samples = _time(fn, steps, setup)
            rows.append(_row(mode, what, samples))

        record(
            "backtest",
            "history(asset, 'price', 30) -> Series",
            lambda: data.history(one, "price", 30, "1m"),
            at,
            idx,
        )
        record(
            "backtest",
            "history(10 assets, 'price', 30) -> DataFrame",
            lambda: data.history(equities, "price", 30, "1m"),
            at,
            idx,
        )
        record(
            "backtest",
            "history_values(asset, 'price', 30)",
            lambda: data.history_values(one, "price", 30, "1m"),
            at,
            idx,
        )
        record(
            "backtest",
            "history(asset, 'close', 5, '1d') (daily + today so far)",
            lambda: data.history(one, "close", 5, "1d"),
            at,
            idx,
        )
        record(
            "backtest",
            "Series .mean() (exact Decimal)",
            lambda: data.history(one, "price", 30, "1m").mean(),
            at,
            idx,
        )
        record(
            "backtest",
            "DataFrame .mean() (exact Decimal)",
            lambda: data.history(equities, "price", 30, "1m").mean(),
            at,
            idx,
        )

        # the ceiling: the same windows as ordinary pre-built float pandas objects
        import pandas as pd

        s_float = data.history(one, "price", 30, "1m").astype(float)
        s_float = pd.Series(s_float.to_numpy(), index=s_float.index)
        f_float = data.history(equities, "price", 30, "1m").astype(float)
        f_float = pd.DataFrame(
            f_float.to_numpy(), index=f_float.index, columns=list(f_float.columns)
        )
        block = f_float.to_numpy()
        noop = lambda _i: None  # noqa: E731
        record(
            "pandas ceiling",
            "pd.DataFrame(10x30 floats) build",
            lambda: pd.DataFrame(block, index=f_float.index, columns=f_float.columns),
            noop,
            idx,
        )
        record("pandas ceiling", "float Series .mean()", lambda: s_float.mean(), noop, idx)
        record("pandas ceiling", "float DataFrame .mean()", lambda: f_float.mean(), noop, idx)
        record(
            "pandas ceiling",
            "float DataFrame .iloc[-10:].mean()",
            lambda: f_float.iloc[-10:].mean(),
            noop,
            idx,
        )

        # live: the bundle as history, then the same bars fed through on_bar
        live = LiveBarData(portal)
        cursors = {a: portal.asset_bars(a) for a in equities}
        bars_at: list[tuple[datetime, list[Any]]] = []
        for i in idx:
            ns = int(clock[i])
            dt = datetime.fromtimestamp(ns / 1e9, UTC)
            bars = [b.bar(r) for b in cursors.values() if (r := b.index_at(ns)) >= 0]
            for bar in bars:
                bar.dt = dt
            bars_at.append((dt, bars))

        def feed(step: tuple[datetime, list[Any]]) -> None:
            live.current_dt = step[0]
            for bar in step[1]:
                live.on_bar(bar)

        # a fresh view per mode: the live store is seeded from the bundle before the first bar
        record(
            "live",
            "history(asset, 'price', 30) -> Series",
            lambda: live.history(one, "price", 30, "1m"),
            feed,
            bars_at,
        )
        live2 = LiveBarData(portal)

        def feed2(step: tuple[datetime, list[Any]]) -> None:
            live2.current_dt = step[0]
            for bar in step[1]:
                live2.on_bar(bar)

        record(
            "live",
            "history(10 assets, 'price', 30) -> DataFrame",
            lambda: live2.history(equities, "price", 30, "1m"),
            feed2,
            bars_at,
        )
        live3 = LiveBarData(portal)

        def feed3(step: tuple[datetime, list[Any]]) -> None:
            live3.current_dt = step[0]
            for bar in step[1]:
                live3.on_bar(bar)

        record(
            "live",
            "history(asset, 'close', 5, '1d') (daily + today so far)",
            lambda: live3.history(one, "close", 5, "1d"),
            feed3,
            bars_at,
        )
        live4 = LiveBarData(portal)
        t_feed: list[int] = []
        for step in bars_at:
            t0 = time.perf_counter_ns()
            live4.current_dt = step[0]
            for bar in step[1]:
                live4.on_bar(bar)
            t_feed.append(time.perf_counter_ns() - t0)
        rows.append(_row("live", "on_bar x 10 assets (one event)", t_feed))
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    """The harness's ``history`` section: rows plus the two goals of issue #19."""
    rows = measure(200 if quick else N_CALLS)
    table = [
        {
            "mode": r["mode"],
            "call": r["call"],
            "median µs": round(r["median_us"], 2),
            "p90 µs": round(r["p90_us"], 2),
            "calls": r["calls"],
        }
        for r in rows
    ]
    notes = (
        "Goals: ≤ 12 µs for one asset (a Series) and ≤ 40 µs for 10 assets × 30 bars (a "
        "DataFrame), in backtest and live. The `pandas ceiling` rows are what the same "
        "windows cost as ordinary float pandas objects. Measured around the call only "
        "(`perf_counter_ns`), median over the calls after a warm-up."
    )
    return {"rows": table, "notes": notes, "raw": {"history": rows}}


def main() -> None:
    rows = measure(int(sys.argv[1]) if len(sys.argv) > 1 else N_CALLS)
    for r in rows:
        print(f"{r['mode']:15s} {r['call']:60s} {r['median_us']:8.2f} µs  p90 {r['p90_us']:8.2f}")


if __name__ == "__main__":
    main()
