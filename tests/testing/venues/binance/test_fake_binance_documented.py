"""The fake Binance against Binance's public REST documentation: the exact response
shapes of ``POST /api/v3/order`` (ACK / RESULT / FULL and their defaults), the
``X-MBX-ORDER-COUNT-*`` headers and the ORDERS limit (-1015), request weights per method,
the documented messages of -1003 (418 ban) and -1021 (ahead of the server's time),
-1131 for a recvWindow over 60 000 ms, and futures' -4116 for a duplicate client id."""

from __future__ import annotations

import hashlib
import hmac
import time

import aiohttp
import pytest

from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance

HEADERS = {"X-MBX-APIKEY": DEFAULT_API_KEY}
FORM = {**HEADERS, "Content-Type": "application/x-www-form-urlencoded"}


def _signed(params: dict[str, str], *, ts: int | None = None, recv: str = "5000") -> str:
    """``params`` + recvWindow + timestamp, then the signature as the last parameter."""
    stamp = ts if ts is not None else int(time.time() * 1000)
    q = "&".join(f"{k}={v}" for k, v in {**params, "recvWindow": recv, "timestamp": stamp}.items())
    sig = hmac.new(DEFAULT_API_SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()
    return f"{q}&signature={sig}"


def _limit(cid: str, **extra: str) -> dict[str, str]:
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "40000",
        "newClientOrderId": cid,
        **extra,
    }


@pytest.fixture
async def spot():
    async with FakeBinance("spot") as fake, aiohttp.ClientSession() as http:
        yield fake, http


async def _post(fake: FakeBinance, http: aiohttp.ClientSession, params: dict[str, str]):
    async with http.post(f"{fake.base_url}/api/v3/order", data=_signed(params), headers=FORM) as r:
        return r.status, dict(r.headers), await r.json()


_ACK = {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
_RESULT = _ACK | {
    "price",
    "origQty",
    "executedQty",
    "origQuoteOrderQty",
    "cummulativeQuoteQty",
    "status",
    "timeInForce",
    "type",
    "side",
    "workingTime",
    "selfTradePreventionMode",
}


async def test_new_order_answers_ack_result_and_full_in_the_documented_shapes(spot):
    fake, http = spot
    _, _, ack = await _post(fake, http, _limit("ack-1", newOrderRespType="ACK"))
    _, _, result = await _post(fake, http, _limit("res-1", newOrderRespType="RESULT"))
    _, _, full = await _post(fake, http, _limit("full-1", newOrderRespType="FULL"))
    assert set(ack) == _ACK
    assert set(result) == _RESULT  # RESULT carries transactTime, not time/updateTime
    assert set(full) == _RESULT | {"fills"}
    assert isinstance(result["transactTime"], int) and result["origQty"] == "0.01000000"
    bad = _limit("bad-1", newOrderRespType="EVERYTHING")
    status, _, body = await _post(fake, http, bad)
    assert status == 400 and body["code"] == -1100 and "newOrderRespType" in body["msg"]
    assert "bad-1" not in fake.exchange.received  # refused before it reached the book


async def test_market_fills_use_documented_fill_fields_and_stop_limit_defaults_to_ack(spot):
    fake, http = spot
    market = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "MARKET",
        "quantity": "0.01",
        "newClientOrderId": "mkt-1",
    }
    _, _, full = await _post(fake, http, market)  # MARKET defaults to FULL
    assert full["status"] == "FILLED" and full["fills"]
    assert set(full["fills"][0]) == {"price", "qty", "commission", "commissionAsset", "tradeId"}
    stop = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "STOP_LOSS_LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "60000",
        "stopPrice": "59000",
        "newClientOrderId": "stop-1",
    }
    status, _, body = await _post(fake, http, stop)  # every other type defaults to ACK
    assert status == 200 and set(body) == _ACK


async def test_new_orders_carry_order_count_headers_and_the_orders_limit_answers_1015(spot):
    fake, http = spot
    fake.order_limits = [(10, 2, "10S", "10 SECOND"), (86400, 200000, "1D", "1 DAY")]
    counts = []
    for i in range(2):
        status, headers, _ = await _post(fake, http, _limit(f"cnt-{i}"))
        assert status == 200
        counts.append((headers["X-MBX-ORDER-COUNT-10S"], headers["X-MBX-ORDER-COUNT-1D"]))
    assert counts == [("1", "1"), ("2", "2")]
    status, headers, body = await _post(fake, http, _limit("cnt-2"))
    assert status == 429 and "Retry-After" in headers
    assert body == {
        "code": -1015,
        "msg": "Too many new orders; current limit is 2 orders per 10 SECOND.",
    }
    assert "cnt-2" not in fake.exchange.received
    async with http.get(f"{fake.base_url}/api/v3/exchangeInfo") as r:
        info = await r.json()
    orders = [x for x in info["rateLimits"] if x["rateLimitType"] == "ORDERS"]
    assert {(x["interval"], x["intervalNum"], x["limit"]) for x in orders} == {
        ("SECOND", 10, 2),
        ("DAY", 1, 200000),
    }


async def test_request_weight_is_counted_per_method_as_documented(spot):
    fake, http = spot
    _, h1, order = await _post(fake, http, _limit("w-1"))  # POST /api/v3/order: weight 1
    q = _signed({"symbol": "BTCUSDT", "orderId": str(order["orderId"])})
    async with http.get(f"{fake.base_url}/api/v3/order?{q}", headers=HEADERS) as r:
        h2 = r.headers  # GET /api/v3/order: weight 4
    async with http.delete(f"{fake.base_url}/api/v3/order?{q}", headers=HEADERS) as r:
        h3 = r.headers  # DELETE /api/v3/order: weight 1
    used = [int(h["X-MBX-USED-WEIGHT-1M"]) for h in (h1, h2, h3)]
    assert [used[1] - used[0], used[2] - used[1]] == [4, 1]


async def test_418_ban_uses_binances_documented_message(spot):
    fake, http = spot
    fake.faults.apply({"kind": "418", "retry_after": 30})
    async with http.get(f"{fake.base_url}/api/v3/time") as r:
        assert r.status == 418 and r.headers["Retry-After"] == "30"
        body = await r.json()
    assert body["code"] == -1003
    assert body["msg"].startswith("Way too much request weight used; IP banned until ")
    assert body["msg"].endswith("Please use WebSocket Streams for live updates to avoid bans.")


async def test_timestamp_ahead_and_recv_window_over_60000_use_documented_errors(spot):
    fake, http = spot
    ahead = _signed({}, ts=int(time.time() * 1000) + 5000)
    async with http.get(f"{fake.base_url}/api/v3/account?{ahead}", headers=HEADERS) as r:
        assert r.status == 400
        assert await r.json() == {
            "code": -1021,
            "msg": "Timestamp for this request was 1000ms ahead of the server's time.",
        }
    stale = _signed({}, ts=int(time.time() * 1000) - 10_000)
    async with http.get(f"{fake.base_url}/api/v3/account?{stale}", headers=HEADERS) as r:
        assert (await r.json())["msg"] == "Timestamp for this request is outside of the recvWindow."
    wide = _signed({}, recv="60001")
    async with http.get(f"{fake.base_url}/api/v3/account?{wide}", headers=HEADERS) as r:
        assert await r.json() == {"code": -1131, "msg": "recvWindow must be less than 60000"}
    fractional = _signed({}, recv="6000.5")  # recvWindow accepts microsecond precision
    async with http.get(f"{fake.base_url}/api/v3/account?{fractional}", headers=HEADERS) as r:
        assert r.status == 200


async def test_futures_duplicate_client_order_id_is_4116():
    async with FakeBinance("futures") as fake, aiohttp.ClientSession() as http:
        params = _limit("dup-1")
        codes = []
        for _ in range(2):
            async with http.post(
                f"{fake.base_url}/fapi/v1/order", data=_signed(params), headers=FORM
            ) as r:
                codes.append((r.status, await r.json()))
                if r.status == 200:
                    assert r.headers["X-MBX-ORDER-COUNT-1M"] == "1"
        assert codes[0][0] == 200
        assert codes[1] == (400, {"code": -4116, "msg": "ClientOrderId is duplicated."})


async def test_futures_listen_key_is_one_per_account_and_delete_closes_it():
    async with FakeBinance("futures") as fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/fapi/v1/listenKey"
        keys = []
        for _ in range(2):
            async with http.post(url, headers=HEADERS) as r:
                keys.append((await r.json())["listenKey"])
        assert keys[0] == keys[1]  # the active key comes back, not a second one
        async with http.put(url, headers=HEADERS) as r:
            assert await r.json() == {"listenKey": keys[0]}
        ws = await http.ws_connect(f"{fake.ws_url}/ws/{keys[0]}")
        async with http.delete(url, headers=HEADERS) as r:
            assert r.status == 200 and await r.json() == {}
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        async with http.put(url, headers=HEADERS) as r:
            assert r.status == 400 and (await r.json())["code"] == -1125


_EXECUTION_REPORT = set(
    "e E s c S o f q p P F g C x X r i l z L n N T t I w m M O Z Y Q W V".split()
)


async def test_cancel_with_new_client_order_id_shows_it_in_response_and_execution_report(spot):
    fake, http = spot
    async with http.ws_connect(f"{fake.ws_url}/ws-api/v3") as ws:
        params = {"apiKey": DEFAULT_API_KEY, "timestamp": int(time.time() * 1000)}
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
        sig = hmac.new(DEFAULT_API_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        await ws.send_json(
            {
                "id": 1,
                "method": "userDataStream.subscribe.signature",
                "params": {**params, "signature": sig},
            }
        )
        assert (await ws.receive_json())["result"] == {"subscriptionId": 0}
        await _post(fake, http, _limit("orig-1"))
        q = _signed(
            {"symbol": "BTCUSDT", "origClientOrderId": "orig-1", "newClientOrderId": "my-cxl"}
        )
        async with http.delete(f"{fake.base_url}/api/v3/order?{q}", headers=HEADERS) as r:
            body = await r.json()
        assert body["clientOrderId"] == "my-cxl" and body["origClientOrderId"] == "orig-1"
        reports = []
        while len(reports) < 2:
            msg = await ws.receive_json(timeout=5)
            if msg["event"]["e"] == "executionReport":
                reports.append(msg["event"])
        new, cancelled = reports
        assert set(new) == _EXECUTION_REPORT and set(cancelled) == _EXECUTION_REPORT
        assert new["x"] == "NEW" and new["c"] == "orig-1" and new["C"] == ""
        assert cancelled["x"] == "CANCELED" and cancelled["X"] == "CANCELED"
        assert cancelled["c"] == "my-cxl" and cancelled["C"] == "orig-1"
        assert cancelled["w"] is False and cancelled["N"] is None


@pytest.mark.parametrize(
    ("extra", "code", "msg"),
    [
        (
            {"quantity": ""},
            -1102,
            "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
        ),
        ({"timeInForce": "GTC"}, -1106, "Parameter 'timeInForce' sent when not required."),
        ({"price": "50000"}, -1106, "Parameter 'price' sent when not required."),
    ],
)
async def test_spot_market_order_parameter_errors_are_binances(spot, extra, code, msg):
    fake, http = spot
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "MARKET",
        "quantity": "0.01",
        "newClientOrderId": "mkt-bad",
        **extra,
    }
    params = {k: v for k, v in params.items() if v}
    status, _, body = await _post(fake, http, params)
    assert (status, body) == (400, {"code": code, "msg": msg})
    assert "mkt-bad" not in fake.exchange.received
