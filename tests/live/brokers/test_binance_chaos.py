"""Chaos over real sockets: each fault ends with 0 duplicate and 0 lost orders/fills.

Every fault is injected in the fake Binance on 127.0.0.1 the way it happens for real:
the venue accepts an order and the answer never arrives; a 5xx; a 429 with Retry-After;
the user stream's TCP connection dies, stalls, or carries garbage; added latency.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from rustybt.exceptions import OrderStatusUnknown, RateLimited
from rustybt.live.brokers.binance_adapter import BinanceBrokerAdapter
from rustybt.live.events import BrokerConnectionEvent, OrderFillEvent
from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance
from tests.live.brokers.conformance import fills, wait_for

D = Decimal


@pytest.fixture(params=["spot", "futures"])
async def setup(request):
    fake = await FakeBinance(request.param).start()
    adapter = BinanceBrokerAdapter(
        DEFAULT_API_KEY,
        DEFAULT_API_SECRET,
        market_type=request.param,
        base_url=fake.base_url,
        request_timeout=0.5,
        poll_interval=0.1,
        reconnect_delay=0.3,
    )
    events: list = []
    adapter.set_order_event_handler(events.append)
    await adapter.connect()
    await wait_for(lambda: adapter.stream_up)
    yield fake, adapter, events
    await adapter.disconnect()
    await fake.stop()


def venue_fills_match(fake, events) -> None:
    """Every venue trade reached us exactly once."""
    ours = [e.fill_id for e in events if isinstance(e, OrderFillEvent)]
    assert len(ours) == len(set(ours)), "duplicate fill"
    venue_ids = (
        fake.fill_ids()
        if hasattr(fake, "fill_ids")
        else [str(t.trade_id) for t in fake.exchange.trades]
    )
    assert sorted(ours) == sorted(venue_ids), "lost fill"


async def test_accepted_then_timed_out_submit_is_unknown_and_resolved_by_client_id(setup):
    fake, adapter, events = setup
    asset = adapter.asset("BTCUSDT")
    fake.faults.accept_then_timeout(1, seconds=2.0, match="POST /")
    with pytest.raises(OrderStatusUnknown, match="resolved by client order id"):
        await adapter.submit_order(asset, D("0.01"), "market", client_order_id="chaos-to-1")
    assert fake.exchange.received == ["chaos-to-1"]  # the venue has it
    got = await adapter.get_order_by_client_id("chaos-to-1")
    assert got["status"] == "filled" and got["filled"] == D("0.01")
    await wait_for(lambda: len(fills(events, "chaos-to-1")) == 1)
    await asyncio.sleep(0.3)
    venue_fills_match(fake, events)
    assert fake.exchange.received == ["chaos-to-1"]  # never resent


async def test_5xx_on_submit_is_unknown_and_the_lookup_shows_it_never_arrived(setup):
    fake, adapter, _ = setup
    fake.faults.fail_next(1, status=503, match="POST /")
    with pytest.raises(OrderStatusUnknown):
        await adapter.submit_order(
            adapter.asset("BTCUSDT"), D("0.01"), "market", client_order_id="chaos-5xx-1"
        )
    assert await adapter.get_order_by_client_id("chaos-5xx-1") is None
    assert fake.exchange.received == []


async def test_429_honours_retry_after_without_sending_anything_meanwhile(setup):
    fake, adapter, _ = setup
    asset = adapter.asset("BTCUSDT")
    fake.faults.rate_limit_next(1, retry_after=1, match="POST /")
    with pytest.raises(RateLimited) as info:
        await adapter.submit_order(asset, D("0.01"), "market", client_order_id="chaos-429-1")
    assert info.value.retry_after == 1.0
    sent = len(fake.requests)
    with pytest.raises(RateLimited, match="not sent"):
        await adapter.submit_order(asset, D("0.01"), "market", client_order_id="chaos-429-2")
    assert len(fake.requests) == sent  # held back locally
    await asyncio.sleep(1.05)
    await adapter.submit_order(asset, D("0.01"), "market", client_order_id="chaos-429-3")
    assert fake.exchange.received == ["chaos-429-3"]


async def test_stream_drop_alerts_polls_fills_over_rest_and_resyncs_on_reconnect(setup):
    fake, adapter, events = setup
    asset = adapter.asset("BTCUSDT")
    limit = D("49000")
    await adapter.submit_order(asset, D("0.03"), "limit", limit, client_order_id="chaos-drop-1")
    assert fake.faults.drop_streams() >= 1
    await wait_for(
        lambda: any(isinstance(e, BrokerConnectionEvent) and not e.connected for e in events)
    )
    assert not adapter.stream_up
    # fills while the stream is down reach us through REST polling or the resync
    for _ in range(3):
        fake.push_bar("BTCUSDT", D("50000"), D("50000"), limit, limit, D("0.01"))
        await asyncio.sleep(0.05)
    await wait_for(lambda: any(f.is_final for f in fills(events, "chaos-drop-1")))
    await wait_for(
        lambda: [e.connected for e in events if isinstance(e, BrokerConnectionEvent)][-1]
    )
    await adapter.submit_order(asset, D("0.01"), "market", client_order_id="chaos-drop-2")
    await wait_for(lambda: len(fills(events, "chaos-drop-2")) == 1)
    await asyncio.sleep(0.3)
    venue_fills_match(fake, events)
    assert fake.exchange.received == ["chaos-drop-1", "chaos-drop-2"]


async def test_a_stalled_stream_delivers_late_but_exactly_once(setup):
    fake, adapter, events = setup
    fake.faults.stall_streams(0.8)
    await adapter.submit_order(
        adapter.asset("BTCUSDT"), D("0.01"), "limit", D("49000"), client_order_id="chaos-stall-1"
    )
    fake.push_bar("BTCUSDT", D("50000"), D("50000"), D("49000"), D("49000"), D("0.004"))
    fake.push_bar("BTCUSDT", D("49000"), D("49000"), D("49000"), D("49000"), D("0.004"))
    fake.push_bar("BTCUSDT", D("49000"), D("49000"), D("49000"), D("49000"), D("0.004"))
    await asyncio.sleep(1.5)
    await wait_for(lambda: any(f.is_final for f in fills(events, "chaos-stall-1")))
    venue_fills_match(fake, events)


async def test_garbage_frames_do_not_lose_or_duplicate_fills(setup):
    fake, adapter, events = setup
    fake.faults.garbage_frames(3)
    await asyncio.sleep(0.1)
    await adapter.submit_order(
        adapter.asset("BTCUSDT"), D("0.01"), "market", client_order_id="chaos-junk-1"
    )
    await wait_for(lambda: len(fills(events, "chaos-junk-1")) == 1)
    assert adapter.malformed_frames >= 1
    await wait_for(lambda: adapter.stream_up)
    await adapter.submit_order(
        adapter.asset("BTCUSDT"), D("0.01"), "market", client_order_id="chaos-junk-2"
    )
    await wait_for(lambda: len(fills(events, "chaos-junk-2")) == 1)
    await asyncio.sleep(0.3)
    venue_fills_match(fake, events)


async def test_added_latency_still_completes_every_order_once(setup):
    fake, adapter, events = setup
    fake.faults.latency_ms = 150
    for i in range(3):
        await adapter.submit_order(
            adapter.asset("BTCUSDT"), D("0.01"), "market", client_order_id=f"chaos-lat-{i}"
        )
    await wait_for(lambda: len(fills(events)) == 3)
    venue_fills_match(fake, events)
    assert fake.exchange.received == [f"chaos-lat-{i}" for i in range(3)]
