"""The venue conformance suite through the generic ccxt adapter: ``ccxt:binance`` (ccxt's
unified API, not the Binance venue folder) against the fake Binance spot on 127.0.0.1,
once with ccxt.pro's ``watchOrders``/``watchMyTrades`` and once polling."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rustybt.live.brokers.ccxt_adapter import CCXTBrokerAdapter
from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance
from tests.live.brokers.conformance import VenueConformance, VenueHarness

D = Decimal


@pytest.fixture(params=["stream", "poll"])
async def venue(request):
    mode = request.param
    balances = {"USDT": D("100000"), "ETH": D("2")}  # ETH: held, never traded
    fake = await FakeBinance("spot", balances=balances).start()

    def make_adapter():
        return CCXTBrokerAdapter(
            "binance",
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            base_url=fake.base_url,
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
        unaffordable_amount=D("50"),
        other_holdings=["ETHUSDT"],
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
