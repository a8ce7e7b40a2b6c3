"""The venue conformance suite against the fake Binance, spot and USDⓈ-M futures."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rustybt.live.brokers.binance_adapter import BinanceBrokerAdapter
from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance
from tests.live.brokers.conformance import VenueConformance, VenueHarness

D = Decimal


@pytest.fixture(params=["spot", "futures"])
async def venue(request):
    market_type = request.param
    balances = {"USDT": D("100000")}
    if market_type == "spot":
        balances["BNB"] = D("3")  # held, never traded: must not show up as a position
        balances["ETH"] = D("2")
    fake = await FakeBinance(market_type, balances=balances).start()

    def make_adapter():
        return BinanceBrokerAdapter(
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            market_type=market_type,
            base_url=fake.base_url,
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
        unaffordable_amount=D("50") if market_type == "spot" else D("500"),
        other_holdings=["ETHUSDT", "BNBUSDT"] if market_type == "spot" else [],
    )
    yield harness
    for adapter in harness.adapters:
        await adapter.disconnect()
    await fake.stop()


class TestBinanceConformance(VenueConformance):
    pass
