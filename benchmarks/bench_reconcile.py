"""Reconciliation time vs number of positions: ``PositionReconciler.reconcile_all``.

Run: ``.venv/bin/python -m benchmarks.bench_reconcile``; ``make bench`` runs it as the
``reconcile`` section. Not part of the test run.

A real :class:`PaperBroker` holds N positions (seeded with ``broker.ledger.set_state``) and
N/10 open limit orders; the local side holds the same positions and orders as snapshots
(what the engine builds in ``_local_snapshots``), so the report is clean. Timed: one
``reconcile_all`` call = the broker queries (``get_positions``, ``get_account_info``,
``get_open_orders``), parsing them into snapshots and the three comparisons. Also timed
separately: building the local snapshots from a :class:`Ledger` (the engine's share).
Target: 1,000 positions ≤ 10 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from decimal import Decimal
from typing import Any

from benchmarks.bench_live import quiet_logs
from rustybt.assets import Equity
from rustybt.finance.ledger import Ledger, Position
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.models import OrderSnapshot, PositionSnapshot, ReconciliationStrategy
from rustybt.live.reconciler import PositionReconciler

TARGET_MS_AT_1000 = 10.0
SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100)


async def _setup(n: int) -> tuple[PaperBroker, Ledger, list[OrderSnapshot]]:
    assets = [Equity(f"R{i:05d}", sid=i + 1) for i in range(n)]
    positions = [
        Position(a, Decimal(10 + i % 7), Decimal("100.25"), Decimal("101.50"))
        for i, a in enumerate(assets)
    ]
    broker = PaperBroker(starting_cash=Decimal("100000000"))
    await broker.connect()
    broker.ledger.set_state(Decimal("50000000"), positions)
    local = Ledger(Decimal("100000000"))
    local.set_state(Decimal("50000000"), positions)
    orders: list[OrderSnapshot] = []
    for i, a in enumerate(assets[: max(1, n // 10)]):
        broker.reset_price(a, Decimal("101.50"))
        cid = f"bench-{i}"
        bid = await broker.submit_order(a, Decimal(1), "limit", Decimal("90.00"), None, cid)
        orders.append(
            OrderSnapshot(
                bid,
                a,
                Decimal(1),
                "submitted",
                client_order_id=cid,
                filled=Decimal(0),
                order_type="limit",
                limit_price=Decimal("90.00"),
            )
        )
    return broker, local, orders


def _local_positions(ledger: Ledger) -> list[PositionSnapshot]:
    return [
        PositionSnapshot(p.asset, p.amount, p.total_cost, p.last_price)
        for p in ledger.positions.values()
    ]


async def _measure(n: int, repeat: int) -> dict[str, Any]:
    broker, local, orders = await _setup(n)
    reconciler = PositionReconciler(broker, ReconciliationStrategy.WARN_ONLY)
    cash = local.cash
    snap_s, rec_s = [], []
    report = None
    for _ in range(repeat + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        positions = _local_positions(local)
        t1 = time.perf_counter()
        report = await reconciler.reconcile_all(positions, cash, orders)
        t2 = time.perf_counter()
        snap_s.append(t1 - t0)
        rec_s.append(t2 - t1)
    assert report is not None
    if report.has_discrepancies:
        raise RuntimeError(f"benchmark setup is not clean: {report.to_dict()}")
    return {
        "positions": n,
        "open orders": len(orders),
        "reconcile_all ms (median)": statistics.median(rec_s[1:]) * 1e3,
        "reconcile_all ms (max)": max(rec_s[1:]) * 1e3,
        "local snapshots ms": statistics.median(snap_s[1:]) * 1e3,
        "µs per position": statistics.median(rec_s[1:]) * 1e6 / n,
        "runs": repeat,
    }


def run(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK_SIZES if quick else SIZES

    async def main() -> list[dict[str, Any]]:
        out = []
        for n in sizes:
            repeat = 2 if quick else (20 if n <= 1_000 else 5)
            out.append(await _measure(n, repeat))
        return out

    with quiet_logs():
        rows = asyncio.run(main())
    raw: dict[str, Any] = {"rows": rows}
    at_1000 = next((r for r in rows if r["positions"] == 1_000), None)
    notes = (
        "Clean reports (local state equals the broker's). Open orders: one per 10 positions. "
        "The paper broker answers from memory, so this is RustyBT's own cost; a real venue "
        "adds its network round trips (the three queries run concurrently)."
    )
    if at_1000 is not None:
        ms = at_1000["reconcile_all ms (median)"]
        raw["reconcile_1000_ms"] = ms
        notes += (
            f" 1,000 positions: **{ms:.2f} ms** (target ≤ {TARGET_MS_AT_1000:.0f} ms: "
            f"{'met' if ms <= TARGET_MS_AT_1000 else 'missed'})."
        )
    return {"rows": rows, "raw": raw, "notes": notes}


def main() -> None:
    out = run()
    for row in out["rows"]:
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    print(out["notes"])


if __name__ == "__main__":
    main()
