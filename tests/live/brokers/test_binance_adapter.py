"""BinanceBrokerAdapter configuration, secrets, URL overrides and error mapping."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from rustybt.exceptions import (
    BrokerError,
    ConfigError,
    InsufficientFundsError,
    MissingCredentialsError,
    OrderNotFound,
    OrderRejected,
    OrderStatusUnknown,
    RateLimited,
)
from rustybt.live.brokers.binance_adapter import BinanceBrokerAdapter
from rustybt.live.brokers.ccxt.adapter import convert_fill
from rustybt.live.brokers.ccxt.binance import config
from rustybt.live.brokers.ccxt.binance.execution import map_error
from rustybt.live.brokers.ccxt.client_ids import ClientIdCodec
from rustybt.live.brokers.ccxt.errors import VenueHTTPError
from rustybt.live.brokers.ccxt.venue import FillView
from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance

D = Decimal
SECRET = "s3cr3t-never-shown"


def test_missing_credentials_name_the_environment_variables(monkeypatch):
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    with pytest.raises(MissingCredentialsError, match="BINANCE_API_KEY and BINANCE_API_SECRET"):
        BinanceBrokerAdapter(testnet=True)


def test_credentials_come_from_the_environment_and_never_show_in_repr(monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", "key-from-env")
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    adapter = BinanceBrokerAdapter(testnet=True)
    assert SECRET not in repr(adapter) and "key-from-env" not in repr(adapter)
    assert SECRET not in str(vars(adapter).get("status", ""))


def test_mainnet_without_live_money_is_refused():
    with pytest.raises(ConfigError, match="live_money=True"):
        BinanceBrokerAdapter("k", SECRET, testnet=False)
    BinanceBrokerAdapter("k", SECRET, testnet=False, live_money=True)


def test_bad_market_type_and_urls_are_config_errors():
    with pytest.raises(ConfigError, match="'spot' or 'futures'"):
        BinanceBrokerAdapter("k", SECRET, market_type="margin")
    with pytest.raises(ConfigError, match="base_url"):
        BinanceBrokerAdapter("k", SECRET, base_url="127.0.0.1:8080")
    with pytest.raises(ConfigError, match="ws_url"):
        BinanceBrokerAdapter("k", SECRET, base_url="http://127.0.0.1:1", ws_url="http://x")


def test_base_url_and_ws_url_replace_scheme_and_host_of_every_endpoint_paths_unchanged():
    adapter = BinanceBrokerAdapter(
        "k", SECRET, testnet=False, base_url="http://127.0.0.1:8080", ws_url="ws://127.0.0.1:9"
    )
    ex = adapter._make_exchange()
    urls = ex.urls["api"]

    def leaves(node):
        if isinstance(node, dict):
            for v in node.values():
                yield from leaves(v)
        elif isinstance(node, str):
            yield node

    for url in leaves(urls):
        assert url.startswith(("http://127.0.0.1:8080/", "ws://127.0.0.1:9/")), url
    assert urls["private"] == "http://127.0.0.1:8080/api/v3"
    assert urls["fapiPrivate"] == "http://127.0.0.1:8080/fapi/v1"
    assert urls["ws"]["ws-api"]["spot"] == "ws://127.0.0.1:9/ws-api/v3"
    assert urls["ws"]["linear"] == "ws://127.0.0.1:9/ws"


def test_venue_url_alone_derives_the_matching_ws_url():
    adapter = BinanceBrokerAdapter("k", SECRET, base_url="http://127.0.0.1:8080")
    assert adapter.ws_url == "ws://127.0.0.1:8080"


def test_testnet_selects_binance_testnet_hosts():
    ex = BinanceBrokerAdapter("k", SECRET, testnet=True)._make_exchange()
    assert "testnet" in ex.urls["api"]["private"]
    assert "testnet" in ex.urls["api"]["ws"]["ws-api"]["spot"]


@pytest.mark.parametrize(
    ("status", "code", "msg", "during", "expected"),
    [
        (400, -2013, "Order does not exist.", "query", OrderNotFound),
        (400, -2011, "Unknown order sent.", "cancel", OrderNotFound),
        (
            400,
            -2010,
            "Account has insufficient balance for requested action.",
            "submit",
            InsufficientFundsError,
        ),
        (400, -2019, "Margin is insufficient.", "submit", InsufficientFundsError),
        (400, -2010, "Duplicate order sent.", "submit", OrderRejected),
        (400, -1013, "Filter failure: LOT_SIZE", "submit", OrderRejected),
        (400, -1022, "Signature for this request is not valid.", "query", BrokerError),
        (503, -1000, "Unknown error", "submit", OrderStatusUnknown),
        (429, -1003, "Too much request weight used", "submit", RateLimited),
        (418, -1003, "Way too many requests", "query", RateLimited),
    ],
)
def test_binance_error_codes_map_to_typed_errors(status, code, msg, during, expected):
    err = map_error(VenueHTTPError(status, code, msg, "POST", "/api/v3/order", 3.0), during=during)
    assert type(err) is expected
    if expected is OrderRejected:
        assert str(code) in str(err) and msg in str(err)
    if expected is RateLimited:
        assert err.retry_after == 3.0


def test_timeouts_on_submit_are_unknown_outcome_and_elsewhere_connection_errors():
    import ccxt

    assert isinstance(map_error(ccxt.RequestTimeout("t"), during="submit"), OrderStatusUnknown)
    assert isinstance(map_error(ccxt.NetworkError("x"), during="cancel"), BrokerError)


def test_client_ids_pass_through_when_legal_and_hash_deterministically_otherwise():
    codec = ClientIdCodec(config.legal_client_id)
    assert codec.encode("MyStrategy-mabc12-17") == "MyStrategy-mabc12-17"
    long_id = "a-very-long-strategy-name-session-1234567890-99"
    enc = codec.encode(long_id)
    assert config.legal_client_id(enc) and enc == ClientIdCodec(config.legal_client_id).encode(
        long_id
    )
    assert codec.decode(enc) == long_id
    assert codec.encode("bad id with spaces") != "bad id with spaces"


def test_fees_in_base_or_third_assets_are_converted_to_the_quote_currency():
    buy = FillView("1", "9", "c", "BTCUSDT", D("0.01"), D("50000"), D("0.00001"), "BTC")
    assert convert_fill(buy, "BTC", "USDT", {}) == (D("0.00999"), D("0.50000"))
    sell = FillView("2", "9", "c", "BTCUSDT", D("-0.01"), D("50000"), D("0.5"), "USDT")
    assert convert_fill(sell, "BTC", "USDT", {}) == (D("-0.01"), D("0.5"))
    bnb = FillView("3", "9", "c", "BTCUSDT", D("0.01"), D("50000"), D("0.001"), "BNB")
    assert convert_fill(bnb, "BTC", "USDT", {"BNB": D("600")}) == (D("0.01"), D("0.600"))


async def test_a_wrong_secret_fails_connect_without_leaking_it(caplog):
    caplog.set_level(logging.DEBUG)
    async with FakeBinance() as fake:
        adapter = BinanceBrokerAdapter(DEFAULT_API_KEY, SECRET, base_url=fake.base_url)
        with pytest.raises(BrokerError, match="-1022") as info:
            await adapter.connect()
        await adapter.disconnect()
        assert SECRET not in str(info.value) and SECRET not in caplog.text
        assert "signature=" not in str(info.value)


async def test_unknown_instrument_is_an_invalid_order_listing_known_ones():
    from rustybt.assets import Crypto
    from rustybt.exceptions import InvalidOrder

    async with FakeBinance() as fake:
        adapter = BinanceBrokerAdapter(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=fake.base_url)
        await adapter.connect()
        try:
            with pytest.raises(InvalidOrder, match="BTCUSDT"):
                await adapter.submit_order(
                    Crypto("DOGEUSDT"), D("1"), "market", client_order_id="x-1"
                )
        finally:
            await adapter.disconnect()


async def test_after_a_restart_a_closed_order_is_found_through_the_account_holdings():
    """A new process knows no symbol for the id: the held asset leads to it."""
    async with FakeBinance() as fake:
        first = BinanceBrokerAdapter(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=fake.base_url)
        await first.connect()
        await first.submit_order(
            first.asset("ETHUSDT"), D("0.01"), "market", client_order_id="held-1"
        )
        await first.disconnect()
        second = BinanceBrokerAdapter(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=fake.base_url)
        await second.connect()
        try:
            assert await second._lookup_candidates() == ["ETHUSDT", "BTCUSDT"]
            got = await second.get_order_by_client_id("held-1")
            assert got["status"] == "filled" and got["asset"].symbol == "ETHUSDT"
        finally:
            await second.disconnect()
