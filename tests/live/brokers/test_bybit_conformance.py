"""The venue conformance suite against the fake Bybit (v5 unified account, linear and spot)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rustybt.live.brokers.bybit_adapter import BybitBrokerAdapter
from rustybt.testing.venues.bybit import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBybit
from tests.live.brokers.conformance import VenueConformance, VenueHarness

D = Decimal


@pytest.fixture(params=["linear", "spot"])
async def venue(request):
    category = request.param
    balances = {"USDT": D("100000")}
    if category == "spot":
        balances["ETH"] = D("2")  # held, never traded: must not show up as a position
    fake = await FakeBybit(category, balances=balances).start()

    def make_adapter():
        return BybitBrokerAdapter(
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            base_url=fake.base_url,
            category=category,
            request_timeout=2.0,
            poll_interval=0.2,
        )

    harness = VenueHarness(
        make_adapter=make_adapter,
        push_bar=fake.push_bar,
        received=lambda: list(fake.exchange.received),
        symbol="BTCUSDT",
        price=fake.exchange.symbols["BTCUSDT"].price,
        big_amount=D("0.03"),
        small_amount=D("0.01"),
        unaffordable_amount=D("500") if category == "linear" else D("50"),
        other_holdings=["ETHUSDT"] if category == "spot" else [],
    )
    yield harness
    for adapter in harness.adapters:
        await adapter.disconnect()
    await fake.stop()


class TestBybitConformance(VenueConformance):
    pass
