"""Hyperliquid-specific behaviour: only the actions asked for reach the venue, signatures
are the account's (recovered by the fake), the private key never leaks, cloids, the
venue's price rules, credentials from the environment."""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal

import aiohttp
import pytest
import structlog

from rustybt.exceptions import (
    BrokerConnectionError,
    ConfigError,
    InvalidOrder,
    MissingCredentialsError,
    OrderRejected,
)
from rustybt.live.brokers.ccxt.hyperliquid.config import cloid
from rustybt.live.brokers.ccxt.hyperliquid.wallet import address_of
from rustybt.live.brokers.ccxt.venue import replace_hosts
from rustybt.live.brokers.hyperliquid_adapter import HyperliquidBrokerAdapter
from rustybt.live.events import OrderCancelEvent
from rustybt.testing.venues.hyperliquid import DEFAULT_PRIVATE_KEY, FakeHyperliquid
from rustybt.testing.venues.hyperliquid.signing import sign_l1
from tests.live.brokers.conformance import fills, of, wait_for

D = Decimal
KEY_HEX = DEFAULT_PRIVATE_KEY.removeprefix("0x")
OTHER_KEY = "0x" + "5d" * 32


@pytest.fixture
async def fake():
    venue = await FakeHyperliquid().start()
    yield venue
    await venue.stop()


async def connected(fake, **kw) -> tuple[HyperliquidBrokerAdapter, list]:
    adapter = HyperliquidBrokerAdapter(
        kw.pop("private_key", DEFAULT_PRIVATE_KEY),
        base_url=fake.base_url,
        request_timeout=2.0,
        poll_interval=0.2,
        **kw,
    )
    events: list = []
    adapter.set_order_event_handler(events.append)
    await adapter.connect()
    await wait_for(lambda: adapter.stream_up)
    return adapter, events


async def test_only_the_orders_and_cancels_asked_for_reach_the_venue(fake):
    adapter, events = await connected(fake)
    btc = adapter.asset("BTC")
    try:
        await adapter.submit_order(btc, D("0.01"), "market", client_order_id="act-1")
        oid = await adapter.submit_order(
            btc, D("0.01"), "limit", D("49000"), client_order_id="act-2"
        )
        await adapter.submit_order(btc, D("0.01"), "limit", D("48000"), client_order_id="act-3")
        await adapter.cancel_order(oid)
        await wait_for(lambda: bool(of(events, OrderCancelEvent, "act-2")))
        await adapter.get_positions()
        await adapter.get_account_info()
        await adapter.get_order_by_client_id("act-1")
    finally:
        await adapter.disconnect()
    restarted, events = await connected(fake)  # an order it did not place
    try:
        await restarted.cancel_order(None, client_order_id="act-3", asset=btc)
        await wait_for(lambda: bool(of(events, OrderCancelEvent, "act-3")))
        # without an order id the venue module cancels by cloid
        await restarted.submit_order(btc, D("0.01"), "limit", D("48000"), client_order_id="a4")
        await restarted.venue.cancel(restarted._ex, "BTC", order_id=None, client_id=cloid("a4"))
        await wait_for(lambda: bool(of(events, OrderCancelEvent, "a4")))
    finally:
        await restarted.disconnect()
    assert fake.action_types() == ["order"] * 3 + ["cancel"] * 2 + ["order", "cancelByCloid"]
    assert not [a for a in fake.actions if "builder" in a]  # no builder fee on any order
    assert {r.split(":")[0] for r in fake.requests} == {"POST /info", "POST /exchange"}


async def test_ccxt_left_at_its_defaults_would_send_builder_fee_and_referrer_actions(fake):
    """The control for the test above: the fake does record what ccxt sends unasked."""
    import ccxt.pro as ccxtpro

    ex = ccxtpro.hyperliquid({"privateKey": DEFAULT_PRIVATE_KEY, "walletAddress": fake.account})
    ex.set_sandbox_mode(True)
    replace_hosts(ex.urls, fake.base_url, fake.ws_url)
    try:
        await ex.load_markets()
        await ex.create_order("BTC/USDC:USDC", "limit", "buy", "0.01", "49000")
    finally:
        await ex.close()
    assert "approveBuilderFee" in fake.action_types()
    assert "setReferrer" in fake.action_types()


async def post_exchange(fake, action, nonce, signature) -> dict:
    async with aiohttp.ClientSession() as s:
        body = {"action": action, "nonce": nonce, "signature": signature}
        async with s.post(f"{fake.base_url}/exchange", json=body) as r:
            return await r.json()


def order_action(price: str = "49000") -> dict:
    return {
        "type": "order",
        "orders": [
            {"a": 0, "b": True, "p": price, "s": "0.01", "r": False, "t": {"limit": {"tif": "Gtc"}}}
        ],
        "grouping": "na",
    }


async def test_the_fake_recovers_the_signer_and_refuses_anyone_but_the_account(fake):
    nonce = int(time.time() * 1000)
    action = order_action()
    good = await post_exchange(
        fake, action, nonce, sign_l1(DEFAULT_PRIVATE_KEY, action, nonce, testnet=True)
    )
    stranger = await post_exchange(
        fake, action, nonce + 1, sign_l1(OTHER_KEY, action, nonce + 1, testnet=True)
    )
    mainnet = await post_exchange(
        fake, action, nonce + 2, sign_l1(DEFAULT_PRIVATE_KEY, action, nonce + 2, testnet=False)
    )
    signed = sign_l1(DEFAULT_PRIVATE_KEY, action, nonce + 3, testnet=True)
    tampered = await post_exchange(fake, order_action("48000"), nonce + 3, signed)
    replayed = await post_exchange(
        fake, action, nonce, sign_l1(DEFAULT_PRIVATE_KEY, action, nonce, testnet=True)
    )
    assert good["status"] == "ok" and "resting" in good["response"]["data"]["statuses"][0]
    assert stranger == {
        "status": "err",
        "response": f"User or API Wallet {address_of(OTHER_KEY)} does not exist.",
    }
    for refused in (mainnet, tampered):  # another network or action: another signer
        assert refused["status"] == "err" and "does not exist" in refused["response"]
    assert replayed["status"] == "err" and "nonce" in replayed["response"]
    assert len(fake.exchange.received) == 1


async def test_an_api_wallet_trades_for_its_account(fake):
    account = fake.account
    agent_fake = await FakeHyperliquid(account=account, agents=[address_of(OTHER_KEY)]).start()
    try:
        adapter, events = await connected(agent_fake, private_key=OTHER_KEY, wallet_address=account)
        await adapter.submit_order(
            adapter.asset("BTC"), D("0.01"), "market", client_order_id="ag-1"
        )
        await wait_for(lambda: any(f.is_final for f in fills(events, "ag-1")))
        assert adapter.wallet_address == account
        (pos,) = await adapter.get_positions()
        assert pos["amount"] == D("0.01")
        await adapter.disconnect()
    finally:
        await agent_fake.stop()
    assert {s["user"] for s in agent_fake.subscriptions} == {account}


async def test_the_user_stream_subscribes_to_user_fills_and_order_updates(fake):
    adapter, _ = await connected(fake)
    await wait_for(lambda: len(fake.subscriptions) >= 2)
    await adapter.disconnect()
    assert sorted(s["type"] for s in fake.subscriptions) == ["orderUpdates", "userFills"]
    assert {s["user"] for s in fake.subscriptions} == {address_of(DEFAULT_PRIVATE_KEY)}


async def test_the_private_key_never_reaches_a_repr_a_log_or_an_exception(fake, caplog):
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        adapter, events = await connected(fake)
        btc = adapter.asset("BTC")
        await adapter.submit_order(btc, D("0.01"), "market", client_order_id="key-1")
        await wait_for(lambda: len(fills(events, "key-1")) == 1)
        errors = []
        for bad in (
            lambda: adapter.submit_order(
                btc, D("0.01"), "limit", D("49000.55"), client_order_id="k2"
            ),
            lambda: adapter.cancel_order("999999", asset=btc),
        ):
            try:
                await bad()
            except Exception as exc:  # noqa: BLE001 - every error's text is checked
                errors.append(f"{exc!r} {exc}")
        fake.faults.drop_streams()
        await wait_for(lambda: adapter.stream_up)
        await adapter.disconnect()
    wrong = HyperliquidBrokerAdapter(OTHER_KEY, base_url=fake.base_url, request_timeout=2.0)
    try:
        await wrong.connect()
        await wrong.submit_order(wrong.asset("BTC"), D("0.01"), "market", client_order_id="w-1")
    except OrderRejected as exc:
        errors.append(f"{exc!r} {exc}")
    finally:
        await wrong.disconnect()
    with pytest.raises(ConfigError) as bad_key:
        HyperliquidBrokerAdapter(KEY_HEX[:-1] + "z", base_url=fake.base_url)
    errors.append(str(bad_key.value))
    assert len(errors) == 4
    seen = " ".join(
        [repr(adapter), str(adapter), json.dumps(adapter.status()), caplog.text, *errors]
        + [json.dumps(e, default=str) for e in logs]
        + [repr(e) for e in events]
    )
    assert KEY_HEX not in seen and KEY_HEX.upper() not in seen
    assert OTHER_KEY.removeprefix("0x") not in seen
    assert "does not exist" in errors[2]


def test_credentials_come_from_the_environment_and_are_checked(monkeypatch):
    monkeypatch.delenv("HYPERLIQUID_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("HYPERLIQUID_WALLET_ADDRESS", raising=False)
    with pytest.raises(MissingCredentialsError, match="HYPERLIQUID_PRIVATE_KEY"):
        HyperliquidBrokerAdapter()
    monkeypatch.setenv("HYPERLIQUID_PRIVATE_KEY", DEFAULT_PRIVATE_KEY)
    adapter = HyperliquidBrokerAdapter()
    assert adapter.wallet_address == address_of(DEFAULT_PRIVATE_KEY)
    monkeypatch.setenv("HYPERLIQUID_WALLET_ADDRESS", "0x" + "ab" * 20)
    assert HyperliquidBrokerAdapter().wallet_address == "0x" + "ab" * 20
    monkeypatch.setenv("HYPERLIQUID_PRIVATE_KEY", "0x1234")
    with pytest.raises(ConfigError, match="64 hex digits") as info:
        HyperliquidBrokerAdapter()
    assert "1234" not in str(info.value)
    with pytest.raises(ConfigError, match="not an address"):
        HyperliquidBrokerAdapter(DEFAULT_PRIVATE_KEY, wallet_address="0xnope")
    with pytest.raises(ConfigError, match="live_money=True"):
        HyperliquidBrokerAdapter(DEFAULT_PRIVATE_KEY, testnet=False)


async def test_prices_follow_the_significant_figure_rule_and_sizes_the_lot(fake):
    adapter, events = await connected(fake)
    eth = adapter.asset("ETH")  # szDecimals 4: 2 price decimals, 5 significant figures
    try:
        assert (eth.tick_size, eth.lot_size, eth.min_notional) == (D("0.01"), D("0.0001"), 10)
        with pytest.raises(
            InvalidOrder, match="significant figures.*nearest valid price is 2999.1"
        ):
            await adapter.submit_order(eth, D("0.01"), "limit", D("2999.12"), client_order_id="p-1")
        with pytest.raises(InvalidOrder, match="off tick"):
            await adapter.submit_order(
                eth, D("0.01"), "limit", D("2999.123"), client_order_id="p-2"
            )
        with pytest.raises(InvalidOrder, match="lot size"):
            await adapter.submit_order(eth, D("0.00001"), "limit", D("2999"), client_order_id="p-3")
        assert fake.exchange.received == []
        # a whole-number price is valid whatever its significant figures
        await adapter.submit_order(
            adapter.asset("BTC"), D("0.01"), "limit", D("49999"), client_order_id="p-4"
        )
        await adapter.submit_order(eth, D("0.01"), "limit", D("2999.1"), client_order_id="p-5")
    finally:
        await adapter.disconnect()
    assert fake.exchange.received == [cloid("p-4"), cloid("p-5")]


async def test_cloids_are_hashes_and_a_restarted_adapter_names_open_orders_by_our_ids(
    fake, tmp_path
):
    path = tmp_path / "ids.jsonl"
    first, _ = await connected(fake, client_id_map=path)
    btc = first.asset("BTC")
    long_id = "a-very-long-strategy-name-1234abcd-17"  # > 16 bytes: hashed, not truncated
    await first.submit_order(btc, D("0.01"), "limit", D("49000"), client_order_id=long_id)
    await first.disconnect()
    (sent,) = fake.exchange.received
    assert sent == cloid(long_id) and len(sent) == 34 and int(sent, 16) >= 0

    second, _ = await connected(fake, client_id_map=path)
    (o,) = await second.get_open_orders()
    assert o["client_order_id"] == long_id
    await second.disconnect()
    forgetful, events = await connected(fake)  # no map: found by our id all the same
    try:
        (o,) = await forgetful.get_open_orders()
        assert o["client_order_id"] == sent
        got = await forgetful.get_order_by_client_id(long_id)
        assert got is not None and got["status"] == "submitted"
        fake.push_bar("BTC", D("50000"), D("50000"), D("49000"), D("49000"))
        await wait_for(lambda: any(f.is_final for f in fills(events, long_id)))
    finally:
        await forgetful.disconnect()


async def test_a_wrong_key_fails_the_first_order_with_the_venues_message(fake):
    adapter, _ = await connected(fake, private_key=OTHER_KEY)
    try:
        with pytest.raises(OrderRejected, match="does not exist"):
            await adapter.submit_order(
                adapter.asset("BTC"), D("0.01"), "limit", D("49000"), client_order_id="wk-1"
            )
    finally:
        await adapter.disconnect()
    assert fake.exchange.received == []


async def test_an_unreachable_venue_fails_connect_with_a_typed_error():
    adapter = HyperliquidBrokerAdapter(
        DEFAULT_PRIVATE_KEY, base_url="http://127.0.0.1:9", request_timeout=0.5
    )
    with pytest.raises(BrokerConnectionError, match="cannot load markets"):
        await adapter.connect()


async def test_an_ioc_order_that_meets_nothing_is_rejected_with_the_venue_message(fake):
    adapter, events = await connected(fake)
    try:
        with pytest.raises(Exception, match="could not immediately match") as info:
            await adapter.submit_order(
                adapter.asset("BTC"),
                D("0.01"),
                "limit",
                D("49000"),
                client_order_id="ioc-1",
                time_in_force="ioc",
            )
        assert isinstance(info.value, OrderRejected)
        assert of(events, OrderCancelEvent, "ioc-1") == []
    finally:
        await adapter.disconnect()


@pytest.mark.parametrize("testnet", [True, False])
@pytest.mark.parametrize("vault", [None, "0x" + "12" * 20])
def test_our_signatures_are_ccxts_byte_for_byte(testnet, vault):
    """The adapter signs with a C Keccak; ccxt's own (pure-Python) signer is the reference."""
    import ccxt

    from rustybt.live.brokers.ccxt.hyperliquid.signing import sign_l1 as ours

    ex = ccxt.hyperliquid({"privateKey": DEFAULT_PRIVATE_KEY, "walletAddress": "0x" + "00" * 20})
    ex.set_sandbox_mode(testnet)
    actions = [
        order_action("49000.5"),
        {"type": "cancel", "cancels": [{"a": 1, "o": 123456789}]},
        {"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": cloid("x")}]},
    ]
    for i, action in enumerate(actions):
        nonce = 1_700_000_000_000 + i
        # ccxt hands the vault to its signer without 0x (format_vault_address)
        reference = ccxt.hyperliquid.sign_l1_action(
            ex, action, nonce, ex.format_vault_address(vault)
        )
        assert ours(DEFAULT_PRIVATE_KEY, action, nonce, testnet=testnet, vault=vault) == reference
