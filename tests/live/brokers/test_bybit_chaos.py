"""The chaos tests (tests/live/brokers/test_binance_chaos.py) against the fake Bybit.

The same test functions, collected here with a ``setup`` fixture on the fake Bybit
(linear): each fault happens on a real socket and ends with 0 duplicate, 0 lost fills.
"""

from __future__ import annotations

import pytest

from rustybt.live.brokers.bybit_adapter import BybitBrokerAdapter
from rustybt.testing.venues.bybit import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBybit
from tests.live.brokers.conformance import wait_for
from tests.live.brokers.test_binance_chaos import (  # noqa: F401  (collected here)
    test_5xx_on_submit_is_unknown_and_the_lookup_shows_it_never_arrived,
    test_429_honours_retry_after_without_sending_anything_meanwhile,
    test_a_stalled_stream_delivers_late_but_exactly_once,
    test_accepted_then_timed_out_submit_is_unknown_and_resolved_by_client_id,
    test_added_latency_still_completes_every_order_once,
    test_garbage_frames_do_not_lose_or_duplicate_fills,
    test_stream_drop_alerts_polls_fills_over_rest_and_resyncs_on_reconnect,
)


@pytest.fixture
async def setup():
    fake = await FakeBybit("linear").start()
    adapter = BybitBrokerAdapter(
        DEFAULT_API_KEY,
        DEFAULT_API_SECRET,
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
