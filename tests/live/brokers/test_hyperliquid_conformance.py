"""The venue conformance suite against the fake Hyperliquid (perpetuals, signed actions)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rustybt.live.brokers.hyperliquid_adapter import HyperliquidBrokerAdapter
from rustybt.testing.venues.hyperliquid import DEFAULT_PRIVATE_KEY, FakeHyperliquid
from tests.live.brokers.conformance import VenueConformance, VenueHarness

D = Decimal


@pytest.fixture
async def venue(tmp_path):
    fake = await FakeHyperliquid(usdc="100000").start()

    def make_adapter():
        return HyperliquidBrokerAdapter(
            DEFAULT_PRIVATE_KEY,
            base_url=fake.base_url,
            request_timeout=2.0,
            poll_interval=0.2,
            # cloids are hashes: the map file names them by our ids after a restart
            client_id_map=tmp_path / "hyperliquid-client-ids.jsonl",
        )

    def received() -> list[str]:
        # The venue sees cloids (hashes of our ids); name them by the ids the adapters
        # hashed (each adapter's codec knows the ids it sent).
        out = []
        for cloid in fake.exchange.received:
            names = {a.codec.decode(cloid) for a in harness.adapters} - {cloid}
            out.append(names.pop() if names else cloid)
        return out

    harness = VenueHarness(
        make_adapter=make_adapter,
        push_bar=fake.push_bar,
        received=received,
        symbol="BTC",
        price=fake.exchange.symbols["BTC"].price,
        big_amount=D("0.03"),
        small_amount=D("0.01"),
        unaffordable_amount=D("30"),  # 1.5 M USDC notional at 10x on 100 k
    )
    yield harness
    for adapter in harness.adapters:
        await adapter.disconnect()
    await fake.stop()


class TestHyperliquidConformance(VenueConformance):
    pass
