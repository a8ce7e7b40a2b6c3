"""The Binance adapter against the fake's documented errors, end to end over HTTP:
futures' duplicate client id (-4116) is a rejection, the spot ORDERS limit (HTTP 429,
-1015) is ``RateLimited`` with Binance's ``Retry-After``."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rustybt.exceptions import OrderRejected, RateLimited
from rustybt.live.brokers.binance_adapter import BinanceBrokerAdapter
from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance

D = Decimal


async def test_futures_duplicate_client_id_is_rejected_with_binances_4116():
    async with FakeBinance("futures") as fake:
        adapter = BinanceBrokerAdapter(
            DEFAULT_API_KEY, DEFAULT_API_SECRET, market_type="futures", base_url=fake.base_url
        )
        await adapter.connect()
        try:
            asset = adapter.asset("BTCUSDT")
            await adapter.submit_order(asset, D("0.01"), "limit", D("40000"), client_order_id="d-1")
            with pytest.raises(OrderRejected, match="-4116"):
                await adapter.submit_order(
                    asset, D("0.01"), "limit", D("40000"), client_order_id="d-1"
                )
            assert fake.exchange.received == ["d-1"]
        finally:
            await adapter.disconnect()


async def test_spot_orders_limit_is_rate_limited_with_retry_after():
    async with FakeBinance("spot") as fake:
        fake.order_limits = [(10, 1, "10S", "10 SECOND"), (86400, 200000, "1D", "1 DAY")]
        adapter = BinanceBrokerAdapter(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=fake.base_url)
        await adapter.connect()
        try:
            asset = adapter.asset("BTCUSDT")
            await adapter.submit_order(asset, D("0.01"), "limit", D("40000"), client_order_id="r-1")
            with pytest.raises(RateLimited) as info:
                await adapter.submit_order(
                    asset, D("0.01"), "limit", D("40000"), client_order_id="r-2"
                )
            assert info.value.retry_after == 10
            assert fake.exchange.received == ["r-1"]
        finally:
            await adapter.disconnect()
