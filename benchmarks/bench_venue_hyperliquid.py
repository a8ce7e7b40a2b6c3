"""Venue adapter latency and throughput: the Hyperliquid adapter against the fake Hyperliquid.

Run: ``.venv/bin/python -m benchmarks.bench_venue_hyperliquid``; ``make bench-full`` runs it
as the ``hyperliquid`` section. The same three measures as :mod:`benchmarks.bench_venue`
(Binance) and :mod:`benchmarks.bench_venue_bybit`, on 127.0.0.1 in one process and one
loop (the fake's work is inside the numbers):

* **submit → ack**: ``submit_order`` of a resting limit order until it returns with the
  order id. Unlike the HMAC venues this includes the EIP-712 signature (msgpack, nine
  Keccak-256 hashes, secp256k1; ~0.3 ms, see ``ccxt/hyperliquid/signing.py``) and the
  fake's recovery of the signer (~0.2 ms) — a real venue does the recovery on its side.
* **fill on stream → ledger**: the fake publishes a ``userFills`` message on ``/ws`` for
  a resting order; timed until the fill is applied to a :class:`Ledger`.
* **user-stream messages/s**: a burst of ``userFills`` messages published back to back.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from benchmarks.bench_venue import measure_venue, venue_section
from rustybt.live.brokers.hyperliquid_adapter import HyperliquidBrokerAdapter
from rustybt.testing.venues.hyperliquid import DEFAULT_PRIVATE_KEY, FakeHyperliquid

D = Decimal


async def _measure(n_orders: int, n_fills: int, n_burst: int) -> dict[str, Any]:
    async with FakeHyperliquid(usdc="100000000") as fake:
        adapter = HyperliquidBrokerAdapter(DEFAULT_PRIVATE_KEY, base_url=fake.base_url)
        original = fake._publish

        def stamp(published: dict[str, int]) -> None:
            def publish(channel: str, data: Any) -> None:
                if channel == "userFills":
                    for f in data["fills"]:
                        published[str(f["tid"])] = time.perf_counter_ns()
                original(channel, data)

            fake._publish = publish  # type: ignore[method-assign]

        def fill_bar(i: int) -> None:
            price = D("40000") - i  # whole numbers: always valid prices
            fake.push_bar("BTC", D("50000"), D("50000"), price, price, D("0.001"))

        def burst(n: int) -> None:
            order = next(iter(fake.exchange.open_orders("BTC")))
            base = fake._fill_row(fake.exchange.trades[0])
            base.update(oid=order.order_id, cloid=order.client_order_id, sz="0.0001")
            for k in range(n):
                fill = {**base, "tid": 9_000_000 + k}
                original("userFills", {"user": fake.account, "fills": [fill]})

        return await measure_venue(
            adapter,
            "BTC",
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
        (30, 15, 300) if quick else (300, 150, 3000),
        "submit → ack (signed action, adapter + fake)",
        "User stream: {rate:,.0f} userFills messages/s parsed (websocket frame → ccxt.pro "
        "→ adapter parser → Decimal), fake and adapter on one loop; the `p50 µs` of that "
        "row is the mean cost per message. Submit → ack includes the EIP-712 signature "
        "and the fake's signer recovery. ccxt's throttle is off for a loopback fake.",
    )


if __name__ == "__main__":
    out = run()
    for row in out["rows"]:
        print(row)
    print(out["notes"])
