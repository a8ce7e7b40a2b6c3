"""Venue adapter latency and throughput: the Bybit adapter against the fake Bybit (linear).

Run: ``.venv/bin/python -m benchmarks.bench_venue_bybit``; ``make bench`` runs it as the
``bybit`` section. The same three measures as :mod:`benchmarks.bench_venue` (Binance), on
127.0.0.1 in one process and one loop (the fake's work is inside the numbers):

* **submit → ack**: ``submit_order`` of a resting limit order until it returns with
  Bybit's ``orderId`` (signed ``POST /v5/order/create``, v5 envelope parsed, ack emitted).
* **fill on stream → ledger**: the fake publishes an ``execution`` row on ``/v5/private``
  for a resting order; timed until the fill is applied to a :class:`Ledger`.
* **user-stream messages/s**: a burst of ``execution`` rows published back to back.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

from benchmarks.bench_live import quiet_logs
from benchmarks.bench_venue import _pct
from rustybt.finance.ledger import Ledger
from rustybt.live.brokers.bybit_adapter import BybitBrokerAdapter
from rustybt.live.events import OrderFillEvent
from rustybt.testing.venues.bybit import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBybit

D = Decimal


async def _measure(n_orders: int, n_fills: int, n_burst: int) -> dict[str, Any]:
    async with FakeBybit("linear", balances={"USDT": D("100000000")}) as fake:
        adapter = BybitBrokerAdapter(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=fake.base_url)
        ledger = Ledger(D("100000000"))
        applied: dict[str, int] = {}

        def on_event(ev: Any) -> None:
            if isinstance(ev, OrderFillEvent):
                ledger.apply_fill(ev.asset, ev.amount, ev.price, ev.commission)
                applied[ev.fill_id] = time.perf_counter_ns()

        adapter.set_order_event_handler(on_event)
        await adapter.connect()
        while not adapter.stream_up:
            await asyncio.sleep(0.01)
        asset = adapter.asset("BTCUSDT")

        ack_us = []
        for i in range(n_orders):
            t0 = time.perf_counter_ns()
            await adapter.submit_order(
                asset, D("0.001"), "limit", D("40000"), client_order_id=f"b-ack-{i}"
            )
            ack_us.append((time.perf_counter_ns() - t0) / 1e3)

        published: dict[str, int] = {}
        original = fake._publish

        def stamp(topic: str, row: dict[str, Any]) -> None:
            if topic == "execution":
                published[row["execId"]] = time.perf_counter_ns()
            original(topic, row)

        fake._publish = stamp  # type: ignore[method-assign]
        for i in range(n_fills):
            price = D("40000") - i * D("0.01")
            fake.push_bar("BTCUSDT", D("50000"), D("50000"), price, price, D("0.001"))
            deadline = time.monotonic() + 5
            while len(applied) < i + 1 and time.monotonic() < deadline:
                await asyncio.sleep(0)
        fill_us = [(applied[t] - published[t]) / 1e3 for t in published if t in applied]

        order = next(iter(fake.exchange.open_orders("BTCUSDT")))
        trade_like = next(t for t in fake.exchange.trades)
        base = fake._exec_row(trade_like)
        base.update(orderId=str(order.order_id), orderLinkId=order.client_order_id)
        base.update(execQty="0.001", leavesQty="0.001")
        before = adapter.stream_messages
        t0 = time.perf_counter()
        for _ in range(n_burst):
            original("execution", {**base, "execId": str(uuid.uuid4())})
        deadline = time.monotonic() + 60
        while adapter.stream_messages - before < n_burst and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        burst_s = time.perf_counter() - t0
        parsed = adapter.stream_messages - before
        await adapter.disconnect()
    return {"ack_us": ack_us, "fill_us": fill_us, "burst_msgs": parsed, "burst_s": burst_s}


def run(quick: bool = False) -> dict[str, Any]:
    n_orders, n_fills, n_burst = (50, 20, 500) if quick else (500, 200, 5000)
    with quiet_logs():
        m = asyncio.run(_measure(n_orders, n_fills, n_burst))
    ack, fill = m["ack_us"], m["fill_us"]
    rate = m["burst_msgs"] / m["burst_s"] if m["burst_s"] > 0 else 0.0
    rows = [
        {
            "measure": "submit → ack (REST, adapter + fake)",
            "n": len(ack),
            "p50 µs": round(statistics.median(ack), 1),
            "p99 µs": round(_pct(ack, 0.99), 1),
        },
        {
            "measure": "fill on stream → ledger",
            "n": len(fill),
            "p50 µs": round(statistics.median(fill), 1) if fill else None,
            "p99 µs": round(_pct(fill, 0.99), 1) if fill else None,
        },
        {
            "measure": "user-stream messages parsed / s (burst)",
            "n": m["burst_msgs"],
            "p50 µs": round(1e6 / rate, 1) if rate else None,
            "p99 µs": None,
        },
    ]
    notes = (
        f"User stream: {rate:,.0f} execution rows/s parsed (websocket frame → ccxt.pro → "
        "adapter parser → Decimal), fake and adapter on one loop; the `p50 µs` of that row "
        "is the mean cost per message. ccxt's throttle is off for a loopback fake."
    )
    return {
        "rows": rows,
        "raw": {"msgs_per_s": rate, **{k: v for k, v in m.items() if k.endswith("_s")}},
        "notes": notes,
    }


if __name__ == "__main__":
    out = run()
    for row in out["rows"]:
        print(row)
    print(out["notes"])
