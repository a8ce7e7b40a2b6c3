"""The generic ccxt adapter: capabilities read from real ccxt exchange classes and
refused with typed errors before anything is sent; credentials, testnet and real-money
rules; the reversible client-id form it sends to letters-and-digits venues."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from rustybt.assets import Crypto
from rustybt.exceptions import ConfigError, InvalidOrder, MissingCredentialsError
from rustybt.live.brokers.ccxt.client_ids import ClientIdCodec
from rustybt.live.brokers.ccxt.generic import config
from rustybt.live.brokers.ccxt_adapter import CCXTBrokerAdapter
from rustybt.testing.venues.binance import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeBinance
from tests.live.brokers.conformance import fills, wait_for

D = Decimal
LOOPBACK = "http://127.0.0.1:9"  # never connected to in these tests
BTC = Crypto("BTCUSDT", quote_currency="USDT", tick_size="0.01", lot_size="0.00001")


def _adapter(exchange_id: str, **kw):
    kw.setdefault("testnet", False)
    kw.setdefault("base_url", LOOPBACK)
    return CCXTBrokerAdapter(exchange_id, "key", "secret", **kw)


def test_an_unknown_exchange_id_says_how_to_list_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        CCXTBrokerAdapter("binanse", "k", "s")
    msg = str(err.value)
    assert "'binanse' is not a ccxt exchange id" in msg
    assert "print(ccxt.exchanges)" in msg and str(len(ccxt.exchanges)) in msg


def test_a_stop_order_on_a_venue_without_stops_is_refused_at_submit_naming_the_capability():
    # ccxt's bitstamp class: has['createStopOrder'] is False
    assert not ccxt.bitstamp().has.get("createStopOrder")
    adapter = _adapter("bitstamp")
    assert adapter.capabilities.order_types == frozenset({"market", "limit"})
    for otype in ("stop", "stop_limit"):
        with pytest.raises(InvalidOrder) as err:
            _run(
                adapter.submit_order(
                    BTC, D("0.01"), otype, D("100"), D("90"), client_order_id="s-1"
                )
            )
        msg = str(err.value)
        assert f"does not take {otype} orders" in msg
        assert "createStopOrder" in msg and "limit order instead" in msg


def test_a_venue_whose_ccxt_class_sends_no_client_order_id_is_refused():
    # ccxt's deribit class labels orders with its own field and never reads clientOrderId
    assert not config.detect("deribit", "spot").client_ids
    with pytest.raises(ConfigError, match="does not send a client order id.*refuses"):
        _adapter("deribit")


def test_a_venue_without_user_stream_is_polled_and_cannot_be_forced_to_stream():
    # ccxt.pro's coinbase class has no watchOrders/watchMyTrades
    assert not ccxt.pro.coinbase().has.get("watchMyTrades")
    adapter = _adapter("coinbase", poll_interval=0.5)
    assert adapter.streaming is False
    assert adapter.status()["mode"] == "poll every 0.5 s"
    with pytest.raises(ConfigError, match="can only be polled"):
        _adapter("coinbase", user_stream="stream")
    assert _adapter("binance", user_stream="poll").streaming is False
    assert _adapter("binance").streaming is True


def test_testnet_on_a_venue_without_a_sandbox_is_refused_with_what_to_do():
    assert not ccxt.bitstamp().urls.get("test")
    with pytest.raises(ConfigError, match="no sandbox/testnet.*--venue-url.*--live-money"):
        CCXTBrokerAdapter("bitstamp", "k", "s", testnet=True)


def test_mainnet_needs_live_money_and_credentials_come_from_ccxt_id_variables(monkeypatch):
    with pytest.raises(ConfigError, match="real money"):
        CCXTBrokerAdapter("binance", "k", "s", testnet=False)
    monkeypatch.delenv("CCXT_BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("CCXT_BINANCE_API_SECRET", raising=False)
    with pytest.raises(MissingCredentialsError, match="CCXT_BINANCE_API_KEY and CCXT_BINANCE_API"):
        CCXTBrokerAdapter("binance")
    monkeypatch.setenv("CCXT_BINANCE_API_KEY", "env-key")
    monkeypatch.setenv("CCXT_BINANCE_API_SECRET", "env-secret")
    adapter = CCXTBrokerAdapter("binance")
    assert "env-secret" not in repr(adapter)


def test_a_venue_lacking_what_trading_needs_is_refused_naming_the_methods():
    # ccxt's bydfi class has no cancelOrder for spot
    with pytest.raises(ConfigError, match="lacks cancelOrder"):
        _adapter("bydfi")
    with pytest.raises(ConfigError, match="'spot' or 'swap'"):
        _adapter("binance", market_type="futures")


def test_capabilities_follow_ccxt_features_for_time_in_force():
    caps = config.detect("gemini", "spot").capabilities
    feats = ccxt.gemini().features["spot"]["createOrder"]["timeInForce"]
    assert ("ioc" in caps.time_in_force) == bool(feats.get("IOC"))
    assert ("fok" in caps.time_in_force) == bool(feats.get("FOK"))
    assert "day" not in caps.time_in_force


def test_ids_a_letters_and_digits_venue_refuses_are_sent_reversibly_or_hashed():
    legal = config.legal_client_id
    first, after_restart = (
        ClientIdCodec(legal, reversible_max=32),
        ClientIdCodec(legal, reversible_max=32),
    )
    for cid in ("BinanceCrash-mx2m9jtb-1", "conf-rst-2", "a_b"):
        sent = first.encode(cid)
        assert legal(sent) and len(sent) <= 32 and sent.startswith("r")
        assert after_restart.decode(sent) == cid  # no map needed: the form is reversible
    long = "AVeryLongStrategyName-mx2m9jtb-12345"
    sent = first.encode(long)
    assert sent.startswith("h") and len(sent) == 32 and first.decode(sent) == long
    assert first.encode("plain123") == "plain123"
    # a legal id that looks like an encoded one is encoded itself, so it cannot be misread
    lookalike = first.encode("a-b")
    assert first.encode(lookalike) != lookalike
    assert after_restart.decode(first.encode(lookalike)) == lookalike


async def test_ccxt_binance_over_loopback_trades_and_reports_the_venue_code_on_refusal():
    """``ccxt:binance`` against the fake Binance: the venue saw our reversible client
    id, the fill arrives, and a refusal carries Binance's own code."""
    async with FakeBinance("spot") as fake:
        adapter = CCXTBrokerAdapter(
            "binance", DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=fake.base_url
        )
        events: list = []
        adapter.set_order_event_handler(events.append)
        await adapter.connect()
        try:
            asset = adapter.asset("BTC/USDT")
            assert asset is adapter.asset("BTCUSDT")
            await adapter.submit_order(asset, D("0.01"), "market", client_order_id="s-mx-1")
            await wait_for(lambda: any(f.is_final for f in fills(events, "s-mx-1")))
            (sent,) = fake.exchange.received
            assert sent == adapter.codec.encode("s-mx-1") and sent.startswith("r")
            with pytest.raises(Exception, match="-2010") as err:
                await adapter.submit_order(asset, D("50"), "market", client_order_id="s-mx-2")
            assert type(err.value).__name__ == "InsufficientFundsError"
        finally:
            await adapter.disconnect()


def _run(coro):
    import asyncio

    return asyncio.run(coro)


async def test_a_polled_sell_is_filled_like_a_buy():
    """Polling compares the venue's filled amount with ours: a sell's is negative (signed
    views), so it used to look "not filled yet" forever and its fills were never asked for
    (the same resync runs for every ccxt venue after its stream dropped)."""
    async with FakeBinance("spot", balances={"USDT": D("100000"), "BTC": D("1")}) as fake:
        adapter = CCXTBrokerAdapter(
            "binance",
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            base_url=fake.base_url,
            user_stream="poll",
            poll_interval=0.1,
        )
        events: list = []
        adapter.set_order_event_handler(events.append)
        await adapter.connect()
        try:
            asset = adapter.asset("BTCUSDT")
            price = fake.exchange.symbols["BTCUSDT"].price
            limit = price + 100 * asset.tick_size
            await adapter.submit_order(asset, D("-0.02"), "limit", limit, client_order_id="p-s")
            fake.push_bar("BTCUSDT", price, limit, price, limit, D("0.01"))
            await wait_for(lambda: bool(fills(events, "p-s")))
            fake.push_bar("BTCUSDT", price, limit, price, limit, None)
            await wait_for(lambda: any(f.is_final for f in fills(events, "p-s")))
            assert sum(f.amount for f in fills(events, "p-s")) == D("-0.02")
        finally:
            await adapter.disconnect()
