"""Per-record cost of the order journal (one os.write per record, fsync batched).

Run: ``.venv/bin/python benchmarks/bench_journal.py``. Not part of the test run.
Prints the median and p99 of ``OrderJournal.record`` for a typical intent and fill,
the cost of an fsync on this disk (what group commit avoids per order), and replay
throughput.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from rustybt.assets import Crypto
from rustybt.live.journal import OrderJournal


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    samples_ns.sort()
    return statistics.median(samples_ns) / 1e3, samples_ns[int(len(samples_ns) * 0.99)] / 1e3


def run(quick: bool = False) -> dict:
    """Rows for ``benchmarks/run_all.py`` (same measurements as :func:`main`)."""
    n = 500 if quick else 20000
    intents, fills, fsync_ms, size, count, replay_s = _measure(n)
    im, ip = _percentiles(intents)
    fm, fp = _percentiles(fills)
    rows = [
        {"measure": "record intent", "median µs": round(im, 2), "p99 µs": round(ip, 2)},
        {"measure": "record fill", "median µs": round(fm, 2), "p99 µs": round(fp, 2)},
    ]
    notes = (
        f"{n:,} intents + {n:,} fills, one `os.write` each. One fsync after {2 * n:,} records: "
        f"{fsync_ms:.2f} ms (what group commit avoids per order). Replay of {count:,} records "
        f"({size / 1e6:.1f} MB): {replay_s * 1e3:.0f} ms ({count / replay_s:,.0f} records/s)."
    )
    return {"rows": rows, "raw": {"rows": rows, "fsync_ms": fsync_ms}, "notes": notes}


def _measure(n: int) -> tuple[list[int], list[int], float, int, int, float]:
    asset = Crypto("BTCUSDT")
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.journal"
        journal = OrderJournal(path)
        intents: list[int] = []
        fills: list[int] = []
        clock = time.perf_counter_ns
        for i in range(n):
            coid = f"s1-{i}"
            t0 = clock()
            journal.record(
                "intent",
                coid,
                asset=asset,
                amount=Decimal("0.015"),
                order_type="limit",
                limit_price=Decimal("64000.10"),
                stop_price=None,
                tif="gtc",
                dt=now,
                strategy="bench",
            )
            t1 = clock()
            journal.record(
                "fill",
                coid,
                fill_id=f"f{i}",
                amount=Decimal("0.015"),
                price=Decimal("64000.10"),
                commission=Decimal("0.96"),
                dt=now,
            )
            t2 = clock()
            intents.append(t1 - t0)
            fills.append(t2 - t1)
        t0 = time.perf_counter()
        journal.flush_sync()
        fsync_ms = (time.perf_counter() - t0) * 1e3
        journal.close_sync()
        size = os.path.getsize(path)
        t0 = time.perf_counter()
        state = OrderJournal.replay(path)
        replay_s = time.perf_counter() - t0
    return intents, fills, fsync_ms, size, state.record_count, replay_s


def main(n: int = 20000) -> None:
    intents, fills, fsync_ms, size, count, replay_s = _measure(n)
    im, ip = _percentiles(intents)
    fm, fp = _percentiles(fills)
    print(f"record intent: median {im:.2f} us, p99 {ip:.2f} us")
    print(f"record fill:   median {fm:.2f} us, p99 {fp:.2f} us")
    print(f"one fsync after {2 * n} records: {fsync_ms:.2f} ms")
    print(
        f"replay {count} records ({size / 1e6:.1f} MB): {replay_s * 1e3:.0f} ms "
        f"({count / replay_s:,.0f} records/s)"
    )


if __name__ == "__main__":
    main()
