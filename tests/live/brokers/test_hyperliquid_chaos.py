"""The chaos scenarios of test_binance_chaos.py against the fake Hyperliquid.

Same faults on real sockets (answer lost after the venue accepted, 5xx, 429, user stream
killed / stalled / fed garbage, added latency), each ending with 0 duplicate and 0 lost
fills. Written again rather than imported because Hyperliquid names markets by coin
(``BTC``) and the venue records cloids (hashes of our ids), not our ids.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from rustybt.exceptions import OrderStatusUnknown, RateLimited
from rustybt.live.brokers.ccxt.hyperliquid.config import cloid
from rustybt.live.brokers.hyperliquid_adapter import HyperliquidBrokerAdapter
from rustybt.live.events import BrokerConnectionEvent
from rustybt.testing.venues.hyperliquid import DEFAULT_PRIVATE_KEY, FakeHyperliquid
from tests.live.brokers.conformance import fills, wait_for
from tests.live.brokers.test_binance_chaos import venue_fills_match

D = Decimal


@pytest.fixture
async def setup():
    fake = await FakeHyperliquid().start()
    adapter = HyperliquidBrokerAdapter(
        DEFAULT_PRIVATE_KEY,
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


def sent(*ids: str) -> list[str]:
    return [cloid(i) for i in ids]


async def test_accepted_then_timed_out_submit_is_unknown_and_resolved_by_client_id(setup):
    fake, adapter, events = setup
    fake.faults.accept_then_timeout(1, seconds=2.0, match="POST /exchange")
    with pytest.raises(OrderStatusUnknown, match="resolved by client order id"):
        await adapter.submit_order(
            adapter.asset("BTC"), D("0.01"), "market", client_order_id="c-to"
        )
    assert fake.exchange.received == sent("c-to")  # the venue has it
    got = await adapter.get_order_by_client_id("c-to")
    assert got["status"] == "filled" and got["filled"] == D("0.01")
    await wait_for(lambda: len(fills(events, "c-to")) == 1)
    await asyncio.sleep(0.3)
    venue_fills_match(fake, events)
    assert fake.exchange.received == sent("c-to")  # never resent


async def test_5xx_on_submit_is_unknown_and_the_lookup_shows_it_never_arrived(setup):
    fake, adapter, _ = setup
    fake.faults.fail_next(1, status=502, match="POST /exchange")
    with pytest.raises(OrderStatusUnknown):
        await adapter.submit_order(adapter.asset("BTC"), D("0.01"), "market", client_order_id="c-5")
    assert await adapter.get_order_by_client_id("c-5") is None
    assert fake.exchange.received == []


async def test_429_holds_every_request_until_retry_after(setup):
    fake, adapter, _ = setup
    asset = adapter.asset("BTC")
    fake.faults.rate_limit_next(1, retry_after=1, match="POST /exchange")
    with pytest.raises(RateLimited) as info:
        await adapter.submit_order(asset, D("0.01"), "limit", D("49000"), client_order_id="r-1")
    assert info.value.retry_after == 1.0
    before = len(fake.requests)
    with pytest.raises(RateLimited, match="not sent"):
        await adapter.submit_order(asset, D("0.01"), "limit", D("49000"), client_order_id="r-2")
    assert len(fake.requests) == before  # held back locally
    await asyncio.sleep(1.05)
    await adapter.submit_order(asset, D("0.01"), "limit", D("49000"), client_order_id="r-3")
    assert fake.exchange.received == sent("r-3")


async def test_stream_drop_alerts_polls_fills_over_rest_and_resyncs_on_reconnect(setup):
    fake, adapter, events = setup
    asset = adapter.asset("BTC")
    limit = D("49000")
    await adapter.submit_order(asset, D("0.03"), "limit", limit, client_order_id="d-1")
    assert fake.faults.drop_streams() >= 1
    await wait_for(
        lambda: any(isinstance(e, BrokerConnectionEvent) and not e.connected for e in events)
    )
    assert not adapter.stream_up
    for _ in range(3):  # fills while the stream is down: REST polling or the resync
        fake.push_bar("BTC", D("50000"), D("50000"), limit, limit, D("0.01"))
        await asyncio.sleep(0.05)
    await wait_for(lambda: any(f.is_final for f in fills(events, "d-1")))
    await wait_for(
        lambda: [e.connected for e in events if isinstance(e, BrokerConnectionEvent)][-1]
    )
    await adapter.submit_order(asset, D("0.01"), "market", client_order_id="d-2")
    await wait_for(lambda: len(fills(events, "d-2")) == 1)
    await asyncio.sleep(0.3)
    venue_fills_match(fake, events)
    assert fake.exchange.received == sent("d-1", "d-2")


async def test_a_stalled_stream_delivers_late_but_exactly_once(setup):
    fake, adapter, events = setup
    fake.faults.stall_streams(0.8)
    await adapter.submit_order(
        adapter.asset("BTC"), D("0.01"), "limit", D("49000"), client_order_id="s-1"
    )
    for o in ("50000", "49000", "49000"):
        fake.push_bar("BTC", D(o), D(o), D("49000"), D("49000"), D("0.004"))
    await asyncio.sleep(1.5)
    await wait_for(lambda: any(f.is_final for f in fills(events, "s-1")))
    venue_fills_match(fake, events)


async def test_garbage_frames_do_not_lose_or_duplicate_fills(setup):
    fake, adapter, events = setup
    fake.faults.garbage_frames(3)
    await asyncio.sleep(0.1)
    await adapter.submit_order(adapter.asset("BTC"), D("0.01"), "market", client_order_id="g-1")
    await wait_for(lambda: len(fills(events, "g-1")) == 1)
    assert adapter.malformed_frames >= 1
    await wait_for(lambda: adapter.stream_up)
    await adapter.submit_order(adapter.asset("BTC"), D("0.01"), "market", client_order_id="g-2")
    await wait_for(lambda: len(fills(events, "g-2")) == 1)
    await asyncio.sleep(0.3)
    venue_fills_match(fake, events)


async def test_added_latency_still_completes_every_order_once(setup):
    fake, adapter, events = setup
    fake.faults.latency_ms = 150
    for i in range(3):
        await adapter.submit_order(
            adapter.asset("BTC"), D("0.01"), "market", client_order_id=f"l-{i}"
        )
    await wait_for(lambda: len(fills(events)) == 3)
    venue_fills_match(fake, events)
    assert fake.exchange.received == sent("l-0", "l-1", "l-2")
