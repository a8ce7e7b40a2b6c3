"""Venue adapter latency and throughput: the Binance adapter against the fake Binance.

Run: ``.venv/bin/python -m benchmarks.bench_venue``; ``make bench`` runs it as the
``venue`` section. Not part of the test run. Everything is on 127.0.0.1, in one process
and one event loop (the fake's own work is inside the numbers, so they are an upper
bound of the adapter's share):

* **submit → ack**: ``submit_order`` of a resting limit order until it returns with the
  venue's order id (signed REST POST /api/v3/order, FULL response parsed, ack emitted).
* **fill on stream → ledger**: the fake publishes an ``executionReport`` (TRADE) for a
  resting order; timed until that fill is applied to a :class:`Ledger` by the adapter's
  event handler (websocket frame, ccxt.pro, the adapter's parser, Decimal conversion).
* **user-stream messages/s**: a burst of ``executionReport`` frames published back to
  back, until the adapter has parsed them all.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from benchmarks.bench_live import quiet_logs
from rustybt.finance.ledger import Ledger
from rustybt.live.brokers.binance_adapter import BinanceBrokerAdapter
from rustybt.live.events import OrderFillEvent
from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance

D = Decimal


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def measure_venue(
    adapter: Any,
    symbol: str,
    limit: Decimal,
    n_orders: int,
    n_fills: int,
    n_burst: int,
    *,
    stamp: Callable[[dict[str, int]], None],
    fill_bar: Callable[[int], None],
    burst: Callable[[int], None],
) -> dict[str, Any]:
    """The three measures on a connected-to-be ``adapter`` of a fake venue.

    ``stamp(published)`` makes the fake record ``fill id -> perf_counter_ns`` as it
    publishes a fill; ``fill_bar(i)`` pushes a bar that fills one resting order;
    ``burst(n)`` publishes ``n`` user-stream messages back to back."""
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
    asset = adapter.asset(symbol)
    ack_us = []  # submit -> ack
    for i in range(n_orders):
        t0 = time.perf_counter_ns()
        await adapter.submit_order(asset, D("0.001"), "limit", limit, client_order_id=f"ack-{i}")
        ack_us.append((time.perf_counter_ns() - t0) / 1e3)
    published: dict[str, int] = {}  # fill on stream -> ledger, one resting order at a time
    stamp(published)
    for i in range(n_fills):
        fill_bar(i)
        deadline = time.monotonic() + 5
        while len(applied) < i + 1 and time.monotonic() < deadline:
            await asyncio.sleep(0)
    fill_us = [(applied[t] - published[t]) / 1e3 for t in published if t in applied]
    before = adapter.stream_messages  # the user-stream burst
    t0 = time.perf_counter()
    burst(n_burst)
    deadline = time.monotonic() + 60
    while adapter.stream_messages - before < n_burst and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    burst_s = time.perf_counter() - t0
    parsed = adapter.stream_messages - before
    await adapter.disconnect()
    return {"ack_us": ack_us, "fill_us": fill_us, "burst_msgs": parsed, "burst_s": burst_s}


async def _measure(n_orders: int, n_fills: int, n_burst: int) -> dict[str, Any]:
    async with FakeBinance("spot", balances={"USDT": D("100000000")}) as fake:
        adapter = BinanceBrokerAdapter(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=fake.base_url)
        original = fake.exchange.on_event

        def stamp(published: dict[str, int]) -> None:
            def on_event(event: dict[str, Any]) -> None:
                if event.get("x") == "TRADE":
                    published[str(event["t"])] = time.perf_counter_ns()
                original(event)

            fake.exchange.on_event = on_event

        def fill_bar(i: int) -> None:
            price = D("40000") - i * D("0.01")
            fake.push_bar("BTCUSDT", D("50000"), D("50000"), price, price, D("0.001"))

        def burst(n: int) -> None:
            # n TRADE reports for one order (distinct trade ids)
            order = next(iter(fake.exchange.open_orders("BTCUSDT")))
            base = dict(
                e="executionReport",
                s="BTCUSDT",
                c=order.client_order_id,
                S="BUY",
                o="LIMIT",
                f="GTC",
                q="1.00000000",
                p="40000.00000000",
                P="0.00000000",
                F="0.00000000",
                g=-1,
                C="",
                x="TRADE",
                X="PARTIALLY_FILLED",
                r="NONE",
                i=order.order_id,
                l="0.00000001",
                z="0.00000001",
                L="40000.00000000",
                n="0",
                N="USDT",
                w=True,
                m=False,
                M=False,
                Z="0",
                Y="0",
                Q="0",
                V="EXPIRE_MAKER",
            )
            now = int(time.time() * 1000)
            for k in range(n):
                fake._publish(
                    {**base, "E": now, "T": now, "O": now, "W": now, "I": k, "t": 9_000_000 + k}
                )

        return await measure_venue(
            adapter,
            "BTCUSDT",
            D("40000"),
            n_orders,
            n_fills,
            n_burst,
            stamp=stamp,
            fill_bar=fill_bar,
            burst=burst,
        )


def venue_rows(m: dict[str, Any], ack_measure: str) -> tuple[list[dict[str, Any]], float]:
    """The three rows every venue bench reports (submit → ack, fill on stream → ledger,
    the stream burst) from ``_measure``'s output, and the burst's messages per second."""
    ack, fill = m["ack_us"], m["fill_us"]
    rate = m["burst_msgs"] / m["burst_s"] if m["burst_s"] > 0 else 0.0
    rows = [
        {
            "measure": ack_measure,
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
    return rows, rate


def venue_section(
    measure: Callable[[int, int, int], Awaitable[dict[str, Any]]],
    sizes: tuple[int, int, int],
    ack_measure: str,
    notes: str,
) -> dict[str, Any]:
    """Run one venue bench (``measure(n_orders, n_fills, n_burst)``) and shape its
    section: the three rows, the raw timings, and ``notes`` with ``{rate}`` filled in."""
    with quiet_logs():
        m = asyncio.run(measure(*sizes))
    rows, rate = venue_rows(m, ack_measure)
    return {
        "rows": rows,
        "raw": {"msgs_per_s": rate, **{k: v for k, v in m.items() if k.endswith("_s")}},
        "notes": notes.format(rate=rate),
    }


def run(quick: bool = False) -> dict[str, Any]:
    return venue_section(
        _measure,
        (50, 20, 500) if quick else (500, 200, 5000),
        "submit → ack (REST, adapter + fake)",
        "User stream: {rate:,.0f} executionReport messages/s parsed (websocket frame → "
        "ccxt.pro → adapter parser → Decimal), fake and adapter on one loop. The "
        "`p50 µs` of that row is the mean cost per message. ccxt's request throttle is off "
        "for a loopback fake (it is on against Binance), so these are the adapter's and the "
        "fake's own costs on 127.0.0.1.",
    )


def main() -> None:
    out = run()
    for row in out["rows"]:
        print(row)
    print(out["notes"])


if __name__ == "__main__":
    main()
