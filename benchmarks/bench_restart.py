"""Restart-to-trading-ready time of the live engine, after a clean stop and after a crash.

Run: ``.venv/bin/python -m benchmarks.bench_restart``; ``make bench`` runs it as the
``restart`` section. Not part of the test run.

Setup (untimed), in a temporary ``RUSTYBT_ROOT``: an engine with a persistent
:class:`PaperBroker` (``state_path``: the venue outlives the process) replays the demo
bundle's BTCUSDT bars and places one order per bar (alternating buy/sell) until it has
placed N orders. A checkpoint is written right after the first bar, and the final one at
shutdown. Then:

* **clean restart**: the newest checkpoint is there; the journal has nothing after it;
* **crash restart**: the final checkpoint is deleted (as if the process had been killed
  before writing it), so the restart loads the early checkpoint and replays the journal's N
  orders (intents, submissions, acks, fills) after it, then asks the venue about every
  order still open by client order id, then reconciles.

Timed: a new PaperBroker (loads the venue file), data portal and engine are built (the
**construct** column), then ``engine.run()`` until the first market event has been handled
(**run → ready**: connect, checkpoint load, journal replay, in-flight resolution, bundle
load for the replay, scheduler, startup reconciliation, control socket). A fresh process
would add interpreter start and imports (about a second here; not included). Target:
run → ready ≤ 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.bench_live import SYMBOL, EveryN, demo_root, quiet_logs
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.engine import LiveTradingEngine

TARGET_S = 1.0
SIZES = (100, 1_000)
QUICK_SIZES = (5,)


@contextlib.contextmanager
def temp_root() -> Iterator[Path]:
    """A temporary RUSTYBT_ROOT for the duration (the previous value is restored)."""
    old = os.environ.get("RUSTYBT_ROOT")
    with tempfile.TemporaryDirectory(prefix="rustybt-bench-restart-") as tmp:
        os.environ["RUSTYBT_ROOT"] = tmp
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("RUSTYBT_ROOT", None)
            else:
                os.environ["RUSTYBT_ROOT"] = old


_SHARED: dict[Path, PolarsDataPortal] = {}


def _engine(
    bundle_root: Path,
    venue: Path,
    state_dir: Path,
    every: int,
    end: str | None = None,
    checkpoint_interval_seconds: float = 60,
) -> LiveTradingEngine:
    # A restart builds its data portal afresh (a new process would); quick mode shares one
    # (already loaded) to stay fast, so there the bundle load is not in the timing.
    portal = _SHARED.get(bundle_root) or PolarsDataPortal("demo", "minute", root=bundle_root)
    broker = PaperBroker(starting_cash=Decimal("1000000"), state_path=venue)
    return LiveTradingEngine(
        EveryN(every=every, size=Decimal("0.01")),
        broker,
        portal,
        state_dir=state_dir,
        speed="max",
        end=end,
        checkpoint_interval_seconds=checkpoint_interval_seconds,
    )


async def _trade(
    bundle_root: Path, venue: Path, state_dir: Path, n_orders: int, end: str | None
) -> int:
    """Place ``n_orders`` orders (one per bar); checkpoint after the first bar."""
    # no periodic checkpoint during the setup: the crash restart must replay all N orders
    engine = _engine(
        bundle_root, venue, state_dir, every=1, end=end, checkpoint_interval_seconds=86_400
    )
    engine.stop_after_market_events = n_orders

    def first(eng: LiveTradingEngine) -> None:
        eng.on_progress = None
        # Written right now, on the loop (untimed setup), so it really is the first bar's
        # state: a task could run only after many more bars of a max-speed replay.
        eng.state_manager.save_checkpoint(eng.strategy_name, eng.build_checkpoint())

    engine.on_progress = first
    await asyncio.wait_for(engine.run(), timeout=600)
    if engine.fatal_error:
        raise RuntimeError(f"setup engine failed: {engine.fatal_error}")
    return engine.order_manager.submitted_count


async def _restart(
    bundle_root: Path, venue: Path, state_dir: Path, end: str | None
) -> dict[str, Any]:
    t0 = time.perf_counter()
    engine = _engine(bundle_root, venue, state_dir, every=1_000_000, end=end)
    t1 = time.perf_counter()
    ready: list[float] = []

    def first(eng: LiveTradingEngine) -> None:
        ready.append(time.perf_counter())
        eng.on_progress = None
        eng._stop = True  # trading is up: that is all we measure

    engine.on_progress = first
    await asyncio.wait_for(engine.run(), timeout=120)
    if engine.fatal_error or not ready:
        raise RuntimeError(f"restarted engine did not become ready: {engine.fatal_error}")
    return {
        "construct_s": t1 - t0,
        "run_to_ready_s": ready[0] - t1,
        "restored": engine._restored_from is not None,
        "orders_known": len(engine.order_manager.orders),
        "reconciliation": engine.reconciliation_state,
    }


def _measure(
    n_orders: int, repeat: int, bundle_root: Path, end: str | None = None
) -> list[dict[str, Any]]:
    """One setup per repeat, copied twice: a clean restart and a crash restart."""
    from rustybt.live.state_manager import StateManager

    samples: dict[str, list[dict[str, Any]]] = {"clean": [], "crash": []}
    placed = journal = 0
    for _ in range(repeat):
        with temp_root() as root:
            base = root / "base"
            placed = asyncio.run(
                _trade(bundle_root, base / "venue.json", base / "state", n_orders, end)
            )
            journal = sum(p.stat().st_size for p in (base / "state" / "journal").glob("*"))
            for scenario in ("clean", "crash"):
                here = root / scenario
                shutil.copytree(base, here)
                state_dir = here / "state"
                if scenario == "crash":
                    newest = StateManager(state_dir).list_checkpoints(EveryN.name)
                    if len(newest) < 2:
                        raise RuntimeError("expected an early and a final checkpoint")
                    newest[0].unlink()  # killed before the final checkpoint
                samples[scenario].append(
                    asyncio.run(_restart(bundle_root, here / "venue.json", state_dir, end))
                )
    rows = []
    for scenario, got in samples.items():
        run_s = [s["run_to_ready_s"] for s in got]
        rows.append(
            {
                "scenario": scenario,
                "orders placed before restart": placed,
                "journal KB": round(journal / 1024),
                "construct s": statistics.median(s["construct_s"] for s in got),
                "run → ready s (median)": statistics.median(run_s),
                "run → ready s (max)": max(run_s),
                "orders known after restart": got[-1]["orders_known"],
                "reconciliation": got[-1]["reconciliation"],
                "runs": repeat,
            }
        )
    return rows


def run(quick: bool = False, bench_dir: Path | None = None) -> dict[str, Any]:
    sizes = QUICK_SIZES if quick else SIZES
    repeat = 1 if quick else 3
    rows: list[dict[str, Any]] = []
    with quiet_logs(), contextlib.ExitStack() as stack:
        if bench_dir is None:
            bench_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        bundle_root = demo_root(bench_dir)
        warm = PolarsDataPortal("demo", "minute", root=bundle_root)
        warm.asset_bars(SYMBOL)  # warm the OS file cache (and, in quick mode, share it)
        if quick:
            _SHARED[bundle_root] = warm
            stack.callback(_SHARED.pop, bundle_root, None)
        # quick: replay one day only (the full bundle's replay setup is part of the timing)
        end = "2024-01-02 23:59" if quick else None
        for n in sizes:
            # the paper venue rewrites its whole state file on every change (O(orders)), so
            # the large setup is slow: fewer repeats there
            rows.extend(_measure(n, repeat if n <= 100 else 1, bundle_root, end))
    worst = max(r["run → ready s (median)"] for r in rows)
    notes = (
        "The setup places one order per bar at simulated time (one per minute, so the "
        "default order-rate breaker never trips). The paper venue's state file is rewritten "
        "on every change, which is what limits the sizes here (setup time, not the restart). "
        f"Worst run → ready: **{worst:.3f} s** (target ≤ {TARGET_S:.0f} s: "
        f"{'met' if worst <= TARGET_S else 'missed'})."
    )
    return {"rows": rows, "raw": {"rows": rows, "restart_ready_s_max": worst}, "notes": notes}


def main() -> None:
    out = run()
    for row in out["rows"]:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    print(out["notes"])


if __name__ == "__main__":
    main()
