"""The generic ccxt adapter (``ccxt:binance`` through ccxt's unified API) against the fake
Binance spot: submit → ack, and a fill's delay streamed versus polled.

Run: ``.venv/bin/python -m benchmarks.bench_venue_ccxt``; ``make bench-full`` runs it as the
``ccxt`` section. On 127.0.0.1, adapter and fake on one loop (the fake's work is inside
the numbers):

* **submit → ack**: ``submit_order`` of a resting limit order until it returns.
* **bar → fill in the ledger**: a bar trades through a resting order (the fake matches it
  at once); timed until the fill is applied to a :class:`Ledger`, with ccxt.pro's
  ``watchMyTrades`` (stream) and with polling every ``poll_interval`` (the default 1 s:
  the delay is about half an interval on average, one at most, plus the requests).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from decimal import Decimal
from typing import Any

from benchmarks.bench_live import quiet_logs
from benchmarks.bench_venue import _pct
from rustybt.finance.ledger import Ledger
from rustybt.live.brokers.ccxt_adapter import CCXTBrokerAdapter
from rustybt.live.events import OrderFillEvent
from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance

D = Decimal


async def _measure(mode: str, n_orders: int, n_fills: int, poll: float) -> dict[str, Any]:
    async with FakeBinance("spot", balances={"USDT": D("100000000")}) as fake:
        # the fake enforces Binance's 100 orders / 10 s; the benchmark times, not throttles
        fake.order_limits = [(10, 1_000_000, "10S", "10 SECOND")]
        adapter = CCXTBrokerAdapter(
            "binance",
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            base_url=fake.base_url,
            user_stream=mode,
            poll_interval=poll,
        )
        ledger = Ledger(D("100000000"))
        applied: dict[str, int] = {}

        def on_event(ev: Any) -> None:
            if isinstance(ev, OrderFillEvent):
                ledger.apply_fill(ev.asset, ev.amount, ev.price, ev.commission)
                applied[ev.client_order_id] = time.perf_counter_ns()

        adapter.set_order_event_handler(on_event)
        await adapter.connect()
        while not adapter.stream_up:
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.5)  # past the stream's first resync
        asset = adapter.asset("BTCUSDT")
        ack_us = []
        for i in range(n_orders):
            t0 = time.perf_counter_ns()
            await adapter.submit_order(
                asset, D("0.001"), "limit", D("40000"), client_order_id=f"c-ack-{i}"
            )
            ack_us.append((time.perf_counter_ns() - t0) / 1e3)
        await adapter.disconnect()
        adapter = CCXTBrokerAdapter(  # a fresh account view: only the orders timed below
            "binance",
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            base_url=fake.base_url,
            user_stream=mode,
            poll_interval=poll,
        )
        adapter.set_order_event_handler(on_event)
        await adapter.connect()
        await asyncio.sleep(1.5)
        fill_us = []
        for i in range(n_fills):
            cid = f"c-fill-{i}"
            price = D("45000") - i * D("0.01")
            await adapter.submit_order(asset, D("0.001"), "limit", price, client_order_id=cid)
            t0 = time.perf_counter_ns()
            fake.push_bar("BTCUSDT", D("50000"), D("50000"), price, price, D("0.001"))
            deadline = time.monotonic() + 10
            while cid not in applied and time.monotonic() < deadline:
                await asyncio.sleep(0.0005)
            if cid in applied:
                fill_us.append((applied[cid] - t0) / 1e3)
        await adapter.disconnect()
    return {"ack_us": ack_us, "fill_us": fill_us}


def run(quick: bool = False) -> dict[str, Any]:
    n_orders, n_fills = (20, 3) if quick else (150, 30)  # fake: 200 open orders max
    with quiet_logs():
        stream = asyncio.run(_measure("stream", n_orders, n_fills, 1.0))
        poll = asyncio.run(_measure("poll", 0, n_fills, 1.0))
    rows = [
        _row("submit → ack (REST, ccxt unified createOrder, adapter + fake)", stream["ack_us"]),
        _row("bar → fill in the ledger, streamed (watchMyTrades)", stream["fill_us"]),
        _row("bar → fill in the ledger, polled every 1 s", poll["fill_us"]),
    ]
    notes = (
        "ccxt:binance through the generic venue (ccxt's unified structures), fake Binance "
        "spot on 127.0.0.1, one loop; ccxt's throttle is off for a loopback fake."
    )
    return {"rows": rows, "raw": {"stream": stream, "poll": poll}, "notes": notes}


def _row(measure: str, values: list[float]) -> dict[str, Any]:
    return {
        "measure": measure,
        "n": len(values),
        "p50 µs": round(statistics.median(values), 1) if values else None,
        "p99 µs": round(_pct(values, 0.99), 1) if values else None,
    }


if __name__ == "__main__":
    out = run()
    for row in out["rows"]:
        print(row)
    print(out["notes"])
