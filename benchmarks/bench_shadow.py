"""Shadow trading overhead: the same paper session with and without ``shadow_mode=True``.

Run: ``.venv/bin/python -m benchmarks.bench_shadow [--quick]``; ``make bench`` runs it as
the ``shadow`` section. Everything is real: :class:`LiveTradingEngine`, PaperBroker,
journal, risk gate, and the shadow engine (a second strategy instance on the backtest's
simulated account, stepped by ``step_bar``), replaying the ``demo`` bundle's BTCUSDT
minute bars at ``speed="max"`` with ``bench_live``'s trivial strategy (one
``data.current`` read per event, an order every 100 events).

Three sessions per round, alternating so load drift hits all alike: the strategy with
shadow off, with shadow on, and a no-op strategy (same asset, same bars, no shadow). The
shadow runs the strategy a second time, which no implementation can avoid, so the goal
is stated beyond the strategy's own cost (issue #16): the strategy's cost is what the
live session spends on it, ``C = t_off - t_noop``, and the shadow's overhead beyond it is
``(t_on - t_off - C) / t_off`` (≤ 5 %), with no change to tick-to-submit p99. The time
inside the shadow strategy's own calls (``perf_counter`` around each) is reported too.
The overhead figures use the engine thread's CPU seconds (``time.thread_time``): on a
shared machine other processes stretch wall time by more than the differences measured;
events/s (wall clock) are in the table beside them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_live import (
    SYMBOL,
    EveryN,
    Timer,
    _engine,
    demo_root,
    percentile,
    quiet_logs,
)
from rustybt.algorithm import TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live import event_loop
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.shadow.config import ShadowTradingConfig

RUNS = 5
QUICK_EVENTS = 2_000
GOAL_PCT = 5.0
NOOP = "noop"


class NoOp(TradingAlgorithm):
    """The same asset and bars as ``EveryN``, and nothing done with them."""

    name = "bench_every_n"  # the same state files and journal name as the strategy run

    def initialize(self, context: Any = None) -> None:
        self.asset = self.symbol(SYMBOL)

    def handle_data(self, context: Any, data: Any) -> None:
        pass


class _CpuTimer:
    """The engine thread's CPU seconds over the span ``Timer`` measures (first market
    event to shutdown). Other processes on a loaded machine stretch wall time, not this:
    the overhead ratios are computed from it."""

    def __init__(self, engine: Any) -> None:
        self.c0: float | None = None
        self.c1: float | None = None
        first = engine.on_progress  # Timer's start hook (it unhooks itself)

        def start(e: Any) -> None:
            self.c0 = time.thread_time()
            first(e)

        engine.on_progress = start
        stop = engine._shutdown_internal

        async def end() -> None:
            if self.c1 is None:
                self.c1 = time.thread_time()
            await stop()

        engine._shutdown_internal = end

    @property
    def seconds(self) -> float:
        if self.c0 is None or self.c1 is None:
            return float("nan")
        return self.c1 - self.c0


async def _once(portal: Any, shadow: bool | str, max_events: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        kw: dict[str, Any] = {"speed": "max"}
        if shadow is True:
            kw.update(shadow_mode=True, shadow_config=ShadowTradingConfig())
        algo = NoOp() if shadow == NOOP else EveryN()
        engine = _engine(algo, portal, CircuitBreakerManager(), False, Path(tmp), **kw)
        if max_events is not None:
            engine.stop_after_market_events = max_events
        strategy_s = [0.0]
        if shadow is True:
            algo = engine.shadow.algo
            inner = algo._run_handle_data

            def timed(data: Any) -> Any:
                t = time.perf_counter()
                try:
                    return inner(data)
                finally:
                    strategy_s[0] += time.perf_counter() - t

            algo._run_handle_data = timed  # type: ignore[method-assign]
        timer = Timer(engine)
        cpu = _CpuTimer(engine)
        await engine.run()
        if engine.fatal_error:
            raise RuntimeError(f"engine failed during the benchmark: {engine.fatal_error}")
        out = {
            "events": engine.stats["market_events"],
            "seconds": timer.seconds,
            "cpu_seconds": cpu.seconds,
            "lat": list(engine.order_manager.submit_latencies_ns or []),
            "orders": engine.order_manager.submitted_count,
            "shadow_strategy_s": strategy_s[0],
        }
        if shadow is True:
            rep = engine.get_shadow_report()
            out["alignment_rate"] = float(rep.alignment_rate)
            out["signal_bars"] = rep.signal_bars
        return out


def run(
    quick: bool = False,
    bench_dir: Path | None = None,
    runs: int = RUNS,
    events: int | None = None,
) -> dict[str, Any]:
    max_events = events or (QUICK_EVENTS if quick else None)
    runs = 1 if quick else runs
    tmp_root = None if bench_dir is not None else Path(tempfile.mkdtemp(prefix="rustybt-shadow-"))
    try:
        with quiet_logs():
            root = demo_root(bench_dir if bench_dir is not None else tmp_root)
            portal = PolarsDataPortal("demo", "minute", root=root)
            portal.asset_bars("BTCUSDT")
            if not quick:  # untimed warm-up of both
                for shadow in (False, True, NOOP):
                    event_loop.run(_once(portal, shadow, QUICK_EVENTS))
            res: dict[Any, list[dict[str, Any]]] = {False: [], True: [], NOOP: []}
            for _ in range(runs):
                for shadow in (False, True, NOOP):
                    res[shadow].append(event_loop.run(_once(portal, shadow, max_events)))
    finally:
        if tmp_root is not None:
            shutil.rmtree(tmp_root, ignore_errors=True)
    return _report(res, runs)


def _report(res: dict[Any, list[dict[str, Any]]], runs: int) -> dict[str, Any]:
    rows = []
    summary: dict[Any, Any] = {}
    for shadow in (NOOP, False, True):
        rs = res[shadow]
        eps = [(r["events"] - 1) / r["seconds"] for r in rs]
        cpu = [r["cpu_seconds"] for r in rs]
        lat = sorted(x for r in rs for x in r["lat"])
        row = {
            "shadow": {True: "on", False: "off", NOOP: "off, no-op strategy"}[shadow],
            "runs": len(rs),
            "events": rs[0]["events"],
            "events/s median": statistics.median(eps),
            "events/s min": min(eps),
            "events/s max": max(eps),
            "CPU µs/event median": 1e6 * statistics.median(cpu) / max(1, rs[0]["events"] - 1),
            "tick→submit p50 µs": percentile(lat, 50) / 1e3 if lat else float("nan"),
            "tick→submit p99 µs": percentile(lat, 99) / 1e3 if lat else float("nan"),
            "orders": rs[0]["orders"],
        }
        rows.append(row)
        summary[shadow] = (
            statistics.median(cpu),
            statistics.median(r["shadow_strategy_s"] for r in rs),
            row,
        )
    # CPU seconds of the engine thread: on a shared machine, load stretches wall time
    # by more than the differences measured here.
    t_noop = summary[NOOP][0]
    t_off, _, off = summary[False]
    t_on, strat, on = summary[True]
    ratio = on["events/s median"] / off["events/s median"]
    cost = t_off - t_noop  # the strategy's own cost in the live session
    beyond = 100 * (t_on - t_off - cost) / t_off
    raw = {
        "rows": rows,
        "events_per_s_ratio": ratio,
        "cpu_ratio_off_on": t_off / t_on,
        "overhead_pct_total": 100 * (t_on - t_off) / t_off,
        "strategy_cost_pct": 100 * cost / t_off,
        "shadow_strategy_pct": 100 * strat / t_off,
        "overhead_pct_beyond_strategy": beyond,
        "overhead_pct_beyond_shadow_strategy_calls": 100 * (t_on - t_off - strat) / t_off,
        "p99_us_off_on": [off["tick→submit p99 µs"], on["tick→submit p99 µs"]],
        "p50_us_off_on": [off["tick→submit p50 µs"], on["tick→submit p50 µs"]],
        "alignment_rate": res[True][0].get("alignment_rate"),
        "goal_pct": GOAL_PCT,
        "event_loop": event_loop.loop_factory()[0],
    }
    md = (
        'The same replay (demo BTCUSDT minute bars, `speed="max"`, bench_live\'s trivial '
        "strategy, no breakers, audit off), shadow off vs on, and the same session with a "
        f"no-op strategy; {runs} alternating run(s) each, on the {raw['event_loop']} event "
        "loop.\n\n"
        "| session | runs | events | events/s median (min–max) | CPU µs/event | "
        "tick→submit p50 µs | tick→submit p99 µs | orders |\n|---|---|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {r['shadow']} | {r['runs']} | {r['events']:,} | {r['events/s median']:,.0f} "
            f"({r['events/s min']:,.0f}–{r['events/s max']:,.0f}) | "
            f"{r['CPU µs/event median']:.1f} | "
            f"{r['tick→submit p50 µs']:.1f} | {r['tick→submit p99 µs']:.1f} | {r['orders']} |"
            for r in rows
        )
        + f"\n\nevents/s with shadow / without: **{ratio:.3f}** (wall clock); engine-thread "
        f"CPU without / with: **{raw['cpu_ratio_off_on']:.3f}**. CPU time the shadow adds: "
        f"{raw['overhead_pct_total']:.1f} % of the session. The strategy's own cost (the "
        f"session minus the no-op session) is {raw['strategy_cost_pct']:.1f} %, so the overhead "
        f"**beyond the strategy's own cost is {beyond:.1f} %** (goal ≤ {GOAL_PCT:.0f} %); "
        f"counting only the time inside the shadow strategy's calls "
        f"({raw['shadow_strategy_pct']:.1f} %) as its cost, "
        f"{raw['overhead_pct_beyond_shadow_strategy_calls']:.1f} %. Shadow alignment in these "
        f"runs: {raw['alignment_rate']:.2%}."
    )
    return {"markdown": md, "raw": raw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=RUNS)
    args = ap.parse_args()
    out = run(quick=args.quick, runs=args.runs)
    print(out["markdown"])
    print(json.dumps(out["raw"], indent=2, default=str), file=sys.stderr)


if __name__ == "__main__":
    main()
