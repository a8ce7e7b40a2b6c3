"""The fake Binance speaks Binance's wire format: checked with a raw HTTP/WS client."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import pytest

from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance

D = Decimal


def signed(params: dict, secret: str = DEFAULT_API_SECRET) -> str:
    q = urlencode({**params, "timestamp": int(time.time() * 1000), "recvWindow": 5000})
    sig = hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()
    return f"{q}&signature={sig}"


HEADERS = {"X-MBX-APIKEY": DEFAULT_API_KEY}


@pytest.fixture
async def spot():
    async with FakeBinance("spot") as fake, aiohttp.ClientSession() as http:
        yield fake, http


async def test_exchange_info_carries_binance_filters(spot):
    fake, http = spot
    async with http.get(f"{fake.base_url}/api/v3/exchangeInfo") as r:
        body = await r.json()
    sym = next(s for s in body["symbols"] if s["symbol"] == "BTCUSDT")
    kinds = {f["filterType"]: f for f in sym["filters"]}
    assert kinds["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert kinds["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert kinds["NOTIONAL"]["minNotional"] == "5.00000000"


async def test_order_create_query_by_client_id_and_cancel_use_binance_shapes(spot):
    fake, http = spot
    body = signed(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": "40000",
            "newClientOrderId": "wire-1",
        }
    )
    async with http.post(
        f"{fake.base_url}/api/v3/order",
        data=body,
        headers={**HEADERS, "Content-Type": "application/x-www-form-urlencoded"},
    ) as r:
        assert r.status == 200
        assert "X-MBX-USED-WEIGHT-1M" in r.headers
        order = await r.json()
    assert order["clientOrderId"] == "wire-1" and order["status"] == "NEW"
    assert order["fills"] == [] and order["origQty"] == "0.01000000"
    q = signed({"symbol": "BTCUSDT", "origClientOrderId": "wire-1"})
    async with http.get(f"{fake.base_url}/api/v3/order?{q}", headers=HEADERS) as r:
        assert (await r.json())["orderId"] == order["orderId"]
    async with http.delete(f"{fake.base_url}/api/v3/order?{q}", headers=HEADERS) as r:
        cancelled = await r.json()
    assert cancelled["status"] == "CANCELED" and cancelled["origClientOrderId"] == "wire-1"
    again = signed({"symbol": "BTCUSDT", "origClientOrderId": "wire-1"})
    async with http.delete(f"{fake.base_url}/api/v3/order?{again}", headers=HEADERS) as r:
        assert r.status == 400
        assert await r.json() == {"code": -2011, "msg": "Unknown order sent."}
    q = signed({"symbol": "BTCUSDT", "origClientOrderId": "nope"})
    async with http.get(f"{fake.base_url}/api/v3/order?{q}", headers=HEADERS) as r:
        assert (r.status, await r.json()) == (400, {"code": -2013, "msg": "Order does not exist."})


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({"quantity": "0.01", "price": "40000.005"}, -1013, "Filter failure: PRICE_FILTER"),
        ({"quantity": "0.000015", "price": "40000"}, -1013, "Filter failure: LOT_SIZE"),
        ({"quantity": "0.0001", "price": "40000"}, -1013, "Filter failure: NOTIONAL"),
        (
            {"quantity": "100", "price": "40000"},
            -2010,
            "Account has insufficient balance for requested action.",
        ),
    ],
)
async def test_filter_and_balance_failures_return_binance_codes(spot, params, code, msg):
    fake, http = spot
    body = signed(
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", **params}
    )
    async with http.post(f"{fake.base_url}/api/v3/order?{body}", headers=HEADERS) as r:
        assert (r.status, await r.json()) == (400, {"code": code, "msg": msg})
    assert fake.exchange.orders == {}


async def test_signature_key_and_timestamp_are_checked(spot):
    fake, http = spot
    url = f"{fake.base_url}/api/v3/account"
    async with http.get(f"{url}?{signed({}, 'wrong-secret')}", headers=HEADERS) as r:
        assert (r.status, (await r.json())["code"]) == (400, -1022)
    async with http.get(f"{url}?{signed({})}") as r:
        assert (r.status, (await r.json())["code"]) == (401, -2014)
    async with http.get(f"{url}?{signed({})}", headers={"X-MBX-APIKEY": "other"}) as r:
        assert (r.status, (await r.json())["code"]) == (401, -2015)
    old = urlencode({"timestamp": int(time.time() * 1000) - 60_000, "recvWindow": 5000})
    sig = hmac.new(DEFAULT_API_SECRET.encode(), old.encode(), hashlib.sha256).hexdigest()
    async with http.get(f"{url}?{old}&signature={sig}", headers=HEADERS) as r:
        assert (r.status, (await r.json())["code"]) == (400, -1021)


async def test_429_and_5xx_faults_use_binance_statuses_and_retry_after(spot):
    fake, http = spot
    fake.faults.rate_limit_next(1, retry_after=7)
    async with http.get(f"{fake.base_url}/api/v3/ping") as r:
        assert r.status == 429 and r.headers["Retry-After"] == "7"
        assert (await r.json())["code"] == -1003
    fake.faults.fail_next(1, status=503)
    async with http.get(f"{fake.base_url}/api/v3/ping") as r:
        assert r.status == 503
    async with http.get(f"{fake.base_url}/api/v3/ping") as r:
        assert r.status == 200


async def test_spot_user_stream_subscribes_by_signature_and_wraps_events(spot):
    fake, http = spot
    async with http.ws_connect(f"{fake.ws_url}/ws-api/v3") as ws:
        params = {"apiKey": DEFAULT_API_KEY, "timestamp": int(time.time() * 1000)}
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
        sig = hmac.new(DEFAULT_API_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        await ws.send_json(
            {
                "id": "bad",
                "method": "userDataStream.subscribe.signature",
                "params": {**params, "signature": "0" * 64},
            }
        )
        bad = await ws.receive_json()
        assert bad["status"] == 400 and bad["error"]["code"] == -1022
        await ws.send_json(
            {
                "id": "s1",
                "method": "userDataStream.subscribe.signature",
                "params": {**params, "signature": sig},
            }
        )
        ok = await ws.receive_json()
        assert ok["status"] == 200 and ok["result"] == {"subscriptionId": 0}
        fake.exchange.new_order(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "MARKET",
                "quantity": "0.01",
                "newClientOrderId": "ws-1",
            }
        )
        kinds = []
        for _ in range(4):
            msg = await ws.receive_json()
            assert msg["subscriptionId"] == 0
            kinds.append((msg["event"]["e"], msg["event"].get("x")))
        assert ("executionReport", "NEW") in kinds and ("executionReport", "TRADE") in kinds
        assert ("outboundAccountPosition", None) in kinds


async def test_futures_listen_key_stream_sends_order_trade_update():
    async with FakeBinance("futures") as fake, aiohttp.ClientSession() as http:
        async with http.post(f"{fake.base_url}/fapi/v1/listenKey", headers=HEADERS) as r:
            key = (await r.json())["listenKey"]
        async with http.ws_connect(f"{fake.ws_url}/ws/{key}") as ws:
            fake.exchange.new_order(
                {
                    "symbol": "BTCUSDT",
                    "side": "SELL",
                    "type": "MARKET",
                    "quantity": "0.01",
                    "newClientOrderId": "f-1",
                }
            )
            events = [json.loads((await ws.receive()).data) for _ in range(4)]
        trade = next(e for e in events if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE")
        assert trade["o"]["c"] == "f-1" and trade["o"]["S"] == "SELL" and trade["o"]["N"] == "USDT"
        assert any(e["e"] == "ACCOUNT_UPDATE" for e in events)
        assert fake.exchange.positions["BTCUSDT"][0] == D("-0.01")
