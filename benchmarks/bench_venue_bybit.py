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

import time
import uuid
from decimal import Decimal
from typing import Any

from benchmarks.bench_venue import measure_venue, venue_section
from rustybt.live.brokers.bybit_adapter import BybitBrokerAdapter
from rustybt.testing.venues.bybit import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBybit

D = Decimal


async def _measure(n_orders: int, n_fills: int, n_burst: int) -> dict[str, Any]:
    async with FakeBybit("linear", balances={"USDT": D("100000000")}) as fake:
        adapter = BybitBrokerAdapter(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=fake.base_url)
        original = fake._publish

        def stamp(published: dict[str, int]) -> None:
            def publish(topic: str, row: dict[str, Any]) -> None:
                if topic == "execution":
                    published[row["execId"]] = time.perf_counter_ns()
                original(topic, row)

            fake._publish = publish  # type: ignore[method-assign]

        def fill_bar(i: int) -> None:
            price = D("40000") - i * D("0.01")
            fake.push_bar("BTCUSDT", D("50000"), D("50000"), price, price, D("0.001"))

        def burst(n: int) -> None:
            order = next(iter(fake.exchange.open_orders("BTCUSDT")))
            base = fake._exec_row(fake.exchange.trades[0])
            base.update(orderId=str(order.order_id), orderLinkId=order.client_order_id)
            base.update(execQty="0.001", leavesQty="0.001")
            for _ in range(n):
                original("execution", {**base, "execId": str(uuid.uuid4())})

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


def run(quick: bool = False) -> dict[str, Any]:
    return venue_section(
        _measure,
        (50, 20, 500) if quick else (500, 200, 5000),
        "submit → ack (REST, adapter + fake)",
        "User stream: {rate:,.0f} execution rows/s parsed (websocket frame → ccxt.pro → "
        "adapter parser → Decimal), fake and adapter on one loop; the `p50 µs` of that row "
        "is the mean cost per message. ccxt's throttle is off for a loopback fake.",
    )


if __name__ == "__main__":
    out = run()
    for row in out["rows"]:
        print(row)
    print(out["notes"])
