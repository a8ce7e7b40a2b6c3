"""The venue conformance suite through the generic ccxt adapter: ``ccxt:binance`` (ccxt's
unified API, not the Binance venue folder) against the fake Binance on 127.0.0.1: spot
with ccxt.pro's ``watchOrders``/``watchMyTrades`` and polling, and linear swaps (the
fake's USDⓈ-M futures) streamed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rustybt.live.brokers.ccxt_adapter import CCXTBrokerAdapter
from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance
from tests.live.brokers.conformance import VenueConformance, VenueHarness

D = Decimal


@pytest.fixture(params=["spot-stream", "spot-poll", "swap-stream"])
async def venue(request):
    market_type, mode = request.param.split("-")
    balances = {"USDT": D("100000")}
    if market_type == "spot":
        balances["ETH"] = D("2")  # held, never traded: must not show up as a position
    fake = FakeBinance("spot" if market_type == "spot" else "futures", balances=balances)
    await fake.start()

    def make_adapter():
        return CCXTBrokerAdapter(
            "binance",
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            base_url=fake.base_url,
            market_type=market_type,
            user_stream=mode,
            request_timeout=2.0,
            poll_interval=0.1,
        )

    harness = VenueHarness(
        make_adapter=make_adapter,
        push_bar=fake.push_bar,
        # the venue saw the codec's ids (ours hashed to 32 letters and digits): decode them
        received=lambda: [_decode(harness, c) for c in fake.exchange.received],
        symbol="BTCUSDT",
        price=fake.exchange.symbols["BTCUSDT"].price,
        big_amount=D("0.03"),
        small_amount=D("0.01"),
        unaffordable_amount=D("50") if market_type == "spot" else D("500"),
        other_holdings=["ETHUSDT"] if market_type == "spot" else [],
    )
    yield harness
    for adapter in harness.adapters:
        await adapter.disconnect()
    await fake.stop()


def _decode(harness: VenueHarness, venue_id: str) -> str:
    for adapter in harness.adapters:
        decoded = adapter.codec.decode(venue_id)
        if decoded != venue_id:
            return decoded
    return venue_id


class TestCcxtBinanceConformance(VenueConformance):
    pass
