"""Cost of the persistent paper venue's bookkeeping per order, by account size.

Run: ``.venv/bin/python benchmarks/bench_paper_state.py``. Not part of the test run.
For an account holding N resting orders it times, per new order: the change-log append
that ``PaperBroker(state_path=...)`` does on the event loop (``_record``: one JSON line,
one ``write``), and what rewriting the whole account per change costs (encode the
snapshot and write it atomically: the design before the change log, and what the
compaction worker now does once every ``compact_every`` changes, off the loop).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from rustybt.assets import Equity
from rustybt.data.bar import Bar
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.state_manager import write_file_atomic

SIZES = (10, 1000, 4000)


def _measure(n: int, samples: int = 200) -> tuple[float, float]:
    aapl = Equity("AAPL", sid=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "paper.json"
        broker = PaperBroker(starting_cash=Decimal("1e9"), state_path=path, compact_every=10**9)

        async def fill() -> None:
            await broker.connect()
            p = Decimal("100")
            broker.on_market_data([Bar(aapl, datetime.now(UTC), p, p, p, p, Decimal("1e6"))])
            for i in range(n):
                await broker.submit_order(
                    aapl, Decimal(1), "limit", limit_price=Decimal(1), client_order_id=f"c-{i}"
                )

        asyncio.run(fill())
        order = next(iter(broker._orders.values()))
        append: list[int] = []
        for _ in range(samples):
            t0 = time.perf_counter_ns()
            broker._record("order", order)
            append.append(time.perf_counter_ns() - t0)
        rewrite: list[int] = []
        for _ in range(max(5, samples // 20)):
            t0 = time.perf_counter_ns()
            write_file_atomic(path.with_name("full.json"), json.dumps(broker._snapshot()).encode())
            rewrite.append(time.perf_counter_ns() - t0)
        broker._log.close()
    return statistics.median(append) / 1e3, statistics.median(rewrite) / 1e6


def run(quick: bool = False) -> dict:
    rows = []
    for n in SIZES[:2] if quick else SIZES:
        append_us, rewrite_ms = _measure(n, 50 if quick else 200)
        rows.append(
            {
                "resting orders": n,
                "append per change (µs, on the loop)": round(append_us, 1),
                "whole-account rewrite (ms, compaction worker)": round(rewrite_ms, 2),
            }
        )
    notes = (
        "The append is what each order, fill or cancel costs the event loop; the rewrite "
        "is paid once per `compact_every` (5,000) changes, in a worker thread."
    )
    return {"rows": rows, "raw": {"rows": rows}, "notes": notes}


def main() -> None:
    for row in run()["rows"]:
        print(row)


if __name__ == "__main__":
    main()
