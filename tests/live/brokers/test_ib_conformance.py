"""The venue conformance suite against the fake TWS, through the real ib_async client."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rustybt.assets import Equity
from rustybt.live.brokers.ib_adapter import IBBrokerAdapter
from rustybt.testing.venues.ib.server import FakeTWS
from tests.live.brokers.conformance import VenueConformance, VenueHarness

D = Decimal


@pytest.fixture
async def venue():
    fake = FakeTWS(cash="100000")
    await fake.start()

    def make_adapter():
        return IBBrokerAdapter(
            port=fake.port,
            client_id=3,  # the same id after a "restart", as IB requires to see its orders
            request_timeout=3.0,
            instruments=[Equity("AAPL", exchange="NASDAQ", tick_size="0.05")],
        )

    def push_bar(symbol, open_, high, low, close, volume):
        fake.push_bar(symbol, open_, high, low, close, volume if volume is not None else "100000")

    harness = VenueHarness(
        make_adapter=make_adapter,
        push_bar=push_bar,
        received=lambda: list(fake.order_refs_received),
        symbol="AAPL",
        price=fake.instrument("AAPL").price,
        big_amount=D("30"),
        small_amount=D("10"),
        unaffordable_amount=D("1000"),
    )
    yield harness
    for adapter in harness.adapters:
        await adapter.disconnect()
    await fake.stop()


class TestIBConformance(VenueConformance):
    pass
