"""Bybit-specific behaviour of the adapter and the fake's wire format (v5 envelope, HMAC
headers, private websocket auth, orderLinkId rules, config refusals)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal

import aiohttp
import pytest

from rustybt.exceptions import BrokerConnectionError, ConfigError, MissingCredentialsError
from rustybt.live.brokers.bybit_adapter import BybitBrokerAdapter
from rustybt.testing.venues.bybit import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBybit
from tests.live.brokers.conformance import fills, wait_for

D = Decimal


@pytest.fixture
async def fake():
    venue = await FakeBybit("linear").start()
    yield venue
    await venue.stop()


async def test_errors_come_in_the_v5_envelope_with_http_200(fake):
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{fake.base_url}/v5/order/realtime?category=linear") as r:
            body = await r.json()
            assert r.status == 200
    assert set(body) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
    assert body["retCode"] == 10003


async def test_a_correctly_signed_request_is_accepted_and_a_tampered_one_is_not(fake):
    query = "category=linear&settleCoin=USDT"
    ts, window = str(int(time.time() * 1000)), "5000"
    sign = hmac.new(
        DEFAULT_API_SECRET.encode(),
        f"{ts}{DEFAULT_API_KEY}{window}{query}".encode(),
        hashlib.sha256,
    ).hexdigest()
    headers = {
        "X-BAPI-API-KEY": DEFAULT_API_KEY,
        "X-BAPI-TIMESTAMP": ts,
        "X-BAPI-RECV-WINDOW": window,
        "X-BAPI-SIGN": sign,
    }
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{fake.base_url}/v5/order/realtime?{query}", headers=headers) as r:
            ok = await r.json()
        async with s.get(
            f"{fake.base_url}/v5/order/realtime?{query}&symbol=BTCUSDT", headers=headers
        ) as r:
            bad = await r.json()
    assert ok["retCode"] == 0 and ok["result"]["list"] == []
    assert bad["retCode"] == 10004


async def test_private_websocket_refuses_a_bad_auth_signature_and_accepts_a_good_one(fake):
    expires = str(int(time.time() * 1000) + 10_000)
    good = hmac.new(
        DEFAULT_API_SECRET.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256
    ).hexdigest()
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{fake.ws_url}/v5/private") as ws:
            await ws.send_str(json.dumps({"op": "auth", "args": [DEFAULT_API_KEY, expires, "00"]}))
            refused = json.loads((await ws.receive()).data)
            await ws.send_str(json.dumps({"op": "subscribe", "args": ["order"]}))
            unauth_sub = json.loads((await ws.receive()).data)
            await ws.send_str(json.dumps({"op": "auth", "args": [DEFAULT_API_KEY, expires, good]}))
            accepted = json.loads((await ws.receive()).data)
    assert refused["op"] == "auth" and refused["success"] is False
    assert unauth_sub["success"] is False
    assert accepted["success"] is True


async def test_a_wrong_secret_fails_connect_with_the_venue_code_and_no_secret(fake):
    adapter = BybitBrokerAdapter(DEFAULT_API_KEY, "not-the-secret", base_url=fake.base_url)
    with pytest.raises(BrokerConnectionError, match="10004") as info:
        await adapter.connect()
    assert "not-the-secret" not in str(info.value) and "not-the-secret" not in repr(adapter)


async def test_an_id_bybit_would_refuse_is_sent_hashed_and_found_again_after_restart(fake):
    cid = "Strategy.With.Dots-" + "x" * 30  # "." and > 36 chars: illegal as orderLinkId
    first = BybitBrokerAdapter(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=fake.base_url)
    events: list = []
    first.set_order_event_handler(events.append)
    await first.connect()
    await wait_for(lambda: first.stream_up)
    await first.submit_order(first.asset("BTCUSDT"), D("0.01"), "market", client_order_id=cid)
    await wait_for(lambda: len(fills(events, cid)) == 1)
    (sent,) = fake.exchange.received
    assert sent != cid and len(sent) <= 36 and sent.startswith("h")
    await first.disconnect()
    second = BybitBrokerAdapter(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=fake.base_url)
    await second.connect()
    try:
        got = await second.get_order_by_client_id(cid)
    finally:
        await second.disconnect()
    assert got is not None and got["status"] == "filled" and got["client_order_id"] == cid


def test_mainnet_needs_live_money_and_credentials_name_the_variables(monkeypatch):
    with pytest.raises(ConfigError, match="live_money=True"):
        BybitBrokerAdapter("k", "s", testnet=False)
    monkeypatch.delenv("BYBIT_API_KEY", raising=False)
    monkeypatch.delenv("BYBIT_API_SECRET", raising=False)
    with pytest.raises(MissingCredentialsError, match="BYBIT_API_KEY and BYBIT_API_SECRET"):
        BybitBrokerAdapter()
    with pytest.raises(ConfigError, match="'linear'"):
        BybitBrokerAdapter("k", "s", category="inverse")
