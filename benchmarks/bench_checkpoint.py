"""Checkpoint save/load time for 10, 100, 1,000 and 10,000 positions (+ as many orders).

Run: ``.venv/bin/python benchmarks/bench_checkpoint.py``. Not part of the test run.
Save is what the engine pays every checkpoint interval (in a worker thread); the
target is <= 5 ms for 1,000 positions + 1,000 orders, fsync included.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal

from rustybt.assets import Equity
from rustybt.live.models import OrderSnapshot, PositionSnapshot, StateCheckpoint
from rustybt.live.state_manager import StateManager, _decode_checkpoint, _encode_checkpoint


def _checkpoint(n: int) -> StateCheckpoint:
    assets = [Equity(f"SYM{i}", sid=i) for i in range(n)]
    positions = [
        PositionSnapshot(a, Decimal(i + 1), Decimal(i + 1) * Decimal("101.25"), Decimal("102.5"))
        for i, a in enumerate(assets)
    ]
    orders = [
        OrderSnapshot(
            f"o{i}", a, Decimal(-(i + 1)), "open", f"s1-{i}", Decimal(0), "limit", Decimal("103.5")
        )
        for i, a in enumerate(assets)
    ]
    return StateCheckpoint(
        timestamp=datetime.now(UTC),
        portfolio_value=Decimal("1000000.00"),
        cash=Decimal("250000.00"),
        positions=positions,
        pending_orders=orders,
        strategy_state={"lookback": 20, "weights": {a: Decimal("0.01") for a in assets[:10]}},
        session_id="s1",
        order_sequence=n,
    )


def _time(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def run(quick: bool = False) -> dict:
    """Rows for ``benchmarks/run_all.py``: median ms per operation and file size."""
    sizes = (10, 100) if quick else (10, 100, 1000, 10000)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sm = StateManager(tmp, keep=3)
        for n in sizes:
            cp = _checkpoint(n)
            repeat = 3 if quick else (30 if n <= 1000 else 5)
            data = _encode_checkpoint("bench", cp)
            enc = _time(lambda cp=cp: _encode_checkpoint("bench", cp), repeat)
            save = _time(lambda cp=cp: sm.save_checkpoint("bench", cp), repeat)
            dec = _time(lambda data=data: _decode_checkpoint(data), repeat)
            load = _time(lambda: sm.load_checkpoint("bench"), repeat)
            rows.append(
                {
                    "positions + orders": f"{n:,} + {n:,}",
                    "encode ms": round(enc, 3),
                    "save ms (fsync)": round(save, 3),
                    "decode ms": round(dec, 3),
                    "load ms": round(load, 3),
                    "bytes": len(data),
                }
            )
    notes = (
        "Median of 30 runs (5 for 10,000). Save is what the engine pays every checkpoint "
        "interval, in a worker thread; target ≤ 5 ms for 1,000 positions + 1,000 orders."
    )
    return {"rows": rows, "notes": notes}


def main() -> None:
    print(
        f"{'positions':>10} {'encode ms':>10} {'save ms':>10} {'decode ms':>10} "
        f"{'load ms':>10} {'bytes':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sm = StateManager(tmp, keep=3)
        for n in (10, 100, 1000, 10000):
            cp = _checkpoint(n)
            repeat = 30 if n <= 1000 else 5
            data = _encode_checkpoint("bench", cp)
            enc = _time(lambda cp=cp: _encode_checkpoint("bench", cp), repeat)
            save = _time(lambda cp=cp: sm.save_checkpoint("bench", cp), repeat)
            dec = _time(lambda data=data: _decode_checkpoint(data), repeat)
            load = _time(lambda: sm.load_checkpoint("bench"), repeat)
            print(f"{n:>10} {enc:>10.3f} {save:>10.3f} {dec:>10.3f} {load:>10.3f} {len(data):>10}")


if __name__ == "__main__":
    main()
