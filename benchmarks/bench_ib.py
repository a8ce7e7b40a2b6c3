"""Interactive Brokers adapter on loopback: submit→ack and fill→event latency, fake TWS.

Measures what the adapter adds over the TWS socket: ``IBBrokerAdapter.submit_order`` of a
resting limit order until TWS's acknowledgement resolves it (the round trip through
``ib_async``, the fake TWS and back), and a marketable order from ``submit_order`` to its
``OrderFillEvent`` (execDetails + commissionReport parsed, converted to Decimal, emitted).
Both ends run in one process on one event loop, so the figures include the fake's own
work; a real TWS adds its network and exchange latency on top.

Orders are spaced 25 ms apart: ``ib_async`` throttles its own requests to 45 per second
(TWS disconnects a client above 50 messages per second), so a back-to-back burst measures
that throttle, not the adapter. The throttle is reported as a separate row.

``python -m benchmarks.bench_ib`` prints the table; ``make bench`` includes it.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from decimal import Decimal

from rustybt.assets import Equity
from rustybt.live.brokers.ib_adapter import IBBrokerAdapter
from rustybt.live.events import OrderFillEvent
from rustybt.testing.venues.ib.server import FakeTWS

_SPACING_S = 0.025


def _summary(samples_ns: list[int]) -> tuple[float, float, float]:
    samples_ns.sort()
    us = [s / 1e3 for s in samples_ns]
    return statistics.median(us), us[int(len(us) * 0.99)], us[-1]


async def _measure(n: int, burst: int = 0) -> tuple[list[int], list[int], float]:
    tws = FakeTWS(cash="1000000000")
    await tws.start()
    adapter = IBBrokerAdapter(port=tws.port, client_id=1, request_timeout=5)
    fills: asyncio.Queue[OrderFillEvent] = asyncio.Queue()

    def on_event(ev: object) -> None:
        if isinstance(ev, OrderFillEvent):
            fills.put_nowait(ev)

    adapter.set_order_event_handler(on_event)
    await adapter.connect()
    aapl = Equity("AAPL", exchange="NASDAQ")
    ack_ns: list[int] = []
    fill_ns: list[int] = []
    try:
        await adapter.submit_order(aapl, Decimal(1), "limit", limit_price=Decimal("1"))  # warm
        for i in range(n):
            t0 = time.perf_counter_ns()
            await adapter.submit_order(
                aapl, Decimal(1), "limit", limit_price=Decimal("100"), client_order_id=f"a{i}"
            )
            ack_ns.append(time.perf_counter_ns() - t0)
            await asyncio.sleep(_SPACING_S)
        for i in range(n):
            t0 = time.perf_counter_ns()
            await adapter.submit_order(aapl, Decimal(1), "market", client_order_id=f"f{i}")
            await fills.get()
            fill_ns.append(time.perf_counter_ns() - t0)
            await asyncio.sleep(_SPACING_S)
        t0 = time.perf_counter_ns()
        for i in range(burst):
            await adapter.submit_order(
                aapl, Decimal(1), "limit", limit_price=Decimal("100"), client_order_id=f"b{i}"
            )
        burst_s = (time.perf_counter_ns() - t0) / 1e9
    finally:
        await adapter.disconnect()
        await tws.stop()
    return ack_ns, fill_ns, burst_s


def run(quick: bool = False) -> dict:
    n = 40 if quick else 400
    burst = 20 if quick else 200
    load = os.getloadavg()[0]
    ack, fill, burst_s = asyncio.run(_measure(n, burst))
    rows = []
    for name, samples in (("submit → ack (limit, resting)", ack), ("submit → fill event", fill)):
        p50, p99, worst = _summary(samples)
        rows.append(
            {
                "measure": name,
                "orders": len(samples),
                "p50 µs": round(p50),
                "p99 µs": round(p99),
                "max µs": round(worst),
            }
        )
    rows.append(
        {
            "measure": "burst of back-to-back submits (ib_async's 45 req/s throttle)",
            "orders": burst,
            "p50 µs": round(burst_s / burst * 1e6),
            "p99 µs": "",
            "max µs": "",
        }
    )
    notes = (
        f"IBBrokerAdapter → ib_async → fake TWS (server version 178) on 127.0.0.1, one event "
        f"loop; load average at start {load:.2f}."
    )
    return {"rows": rows, "raw": {"rows": rows, "load": load}, "notes": notes}


if __name__ == "__main__":
    out = run()
    for row in out["rows"]:
        print(row)
    print(out["notes"])
