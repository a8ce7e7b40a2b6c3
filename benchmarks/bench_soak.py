"""RSS soak: millions of market events through one live engine; does memory stay flat?

Run: ``.venv/bin/python -m benchmarks.bench_soak [--events N]``; ``make bench`` runs it as
the ``soak`` section (a few minutes). Not part of the test run (``--quick``: 50k events).

One :class:`LiveTradingEngine` in push mode (``data_portal=None``) with the real
PaperBroker, journal, audit log and default circuit breakers (``order_rate`` raised as in
``bench_live``: wall-clock push), fed 5,000,000 ticks by a producer task in bursts of 100.
The strategy reads the price every tick and orders every 10,000 ticks (500 orders), so
what grows with orders shows up without dominating. The process's resident set size
(``VmRSS`` from ``/proc/self/status``) is sampled every 250,000 ticks. "Flat" means the RSS
grew less than 5 MB between the end of the warm-up (1,000,000 ticks) and the end. The
sizes of the engine's containers at the end show what grows per order (not per event).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_live import price_strings, push_once, quiet_logs

EVENTS = 5_000_000
SAMPLE_EVERY = 250_000
WARMUP = 1_000_000
ORDER_EVERY = 10_000
FLAT_MB = 5.0


def rss_mb() -> float:
    """Current resident set size of this process in MB (VmRSS), or nan if unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, not current
    except (ImportError, OSError):
        return float("nan")


def _containers(engine: Any) -> dict[str, int]:
    om = engine.order_manager
    broker = engine.broker
    data = engine.executor.data
    return {
        "order_manager.orders": len(om.orders),
        "order_manager._by_broker_id": len(om._by_broker_id),
        "order_manager._applied_fills": len(om._applied_fills),
        "paper_broker._orders": len(broker._orders),
        "paper_broker._client_ids": len(broker._client_ids),
        "paper_broker.submissions": len(broker.submissions),
        "paper_broker._fills": len(broker._fills),
        "paper_broker._eligible_at": len(broker._eligible_at),
        "engine.value_history": len(engine.value_history),
        "engine.alerts": len(engine.alerts),
        "engine.event_queue": len(engine.event_queue),
        "bar data held (per asset, < 2 × window)": data.held_bars(),
    }


def run(quick: bool = False, events: int | None = None, log: Any = None) -> dict[str, Any]:
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    n = events or (50_000 if quick else EVENTS)
    sample_every = max(1, min(SAMPLE_EVERY, n // 10))
    warmup = min(WARMUP, n // 5)
    samples: list[tuple[int, float, float]] = []
    t_start = time.perf_counter()

    def on_tick(i: int, engine: Any) -> None:
        samples.append((engine.stats["market_events"], rss_mb(), time.perf_counter() - t_start))
        if not quick and i % (4 * sample_every) == 0:
            say(f"soak: {i:,} ticks pushed, RSS {samples[-1][1]:.1f} MB")

    gc.collect()
    rss0 = rss_mb()
    with quiet_logs():
        res = asyncio.run(
            push_once(
                n,
                default=True,
                audit=True,
                batch=100,
                every=ORDER_EVERY,
                prices=price_strings(100_000),
                on_tick=on_tick,
                sample_every=sample_every,
            )
        )
    engine = res.extra.pop("engine")
    containers = _containers(engine)
    gc.collect()
    rss_end = rss_mb()
    after = [s for s in samples if s[0] >= warmup] or samples
    growth = after[-1][1] - after[0][1]
    peak = max(s[1] for s in samples)
    flat = growth < FLAT_MB
    rows = [
        {
            "events handled": ev,
            "RSS MB": round(mb, 1),
            "elapsed s": round(t, 1),
        }
        for ev, mb, t in samples
    ]
    notes = (
        f"{res.events:,} market events, {res.orders} orders, {res.fills} fills in "
        f"{res.seconds:.0f} s ({res.events_per_s:,.0f} events/s). RSS when the section "
        f"started: {rss0:.1f} MB (in-process: includes what earlier sections left); peak "
        f"during the run {peak:.1f} MB; after it {rss_end:.1f} MB. Growth after "
        f"the warm-up ({warmup:,} events): **{growth:+.1f} MB** → "
        f"**{'flat' if flat else 'NOT flat'}** (threshold {FLAT_MB:.0f} MB).\n\n"
        "Containers at the end (what grows): "
        + ", ".join(f"`{k}` = {v:,}" for k, v in containers.items())
        + ". Everything per order (order book, broker-id map, applied fill ids, the paper "
        "venue's orders/fills/submissions) grows with the number of orders and is never "
        "trimmed; per-event state (bar window, value history per day, queue) is bounded."
    )
    raw = {
        "events": res.events,
        "orders": res.orders,
        "soak_events_per_s": res.events_per_s,
        "rss_mb_start": rss0,
        "rss_mb_peak": peak,
        "rss_growth_after_warmup_mb": growth,
        "flat": flat,
        "containers": containers,
        "samples": samples,
    }
    return {"rows": rows, "raw": raw, "notes": notes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=None)
    args = parser.parse_args(argv)
    out = run(quick=args.quick, events=args.events)
    for row in out["rows"]:
        print(row)
    print(out["notes"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
