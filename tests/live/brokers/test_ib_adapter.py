"""IBBrokerAdapter against the fake TWS, through the real ``ib_async`` client on loopback."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from rustybt.assets import Equity, Forex, Future
from rustybt.exceptions import (
    BrokerConnectionError,
    ConfigError,
    InsufficientFundsError,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
    OrderStatusUnknown,
    RateLimited,
    SymbolNotFound,
)
from rustybt.live.brokers.ib_adapter import IBBrokerAdapter
from rustybt.live.events import (
    AlertEvent,
    BrokerConnectionEvent,
    OrderAckEvent,
    OrderCancelEvent,
    OrderFillEvent,
    OrderRejectEvent,
)
from rustybt.testing.venues.ib.server import FakeTWS

D = Decimal
AAPL = Equity("AAPL", exchange="NASDAQ")


async def wait_for(predicate, what: str, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def tws():
    fake = FakeTWS()
    await fake.start()
    yield fake
    await fake.stop()


async def connected(fake: FakeTWS, client_id: int = 1, **kw) -> tuple[IBBrokerAdapter, list]:
    adapter = IBBrokerAdapter(port=fake.port, client_id=client_id, request_timeout=1.0, **kw)
    events: list = []
    adapter.set_order_event_handler(events.append)
    await adapter.connect()
    return adapter, events


def fills(events) -> list[OrderFillEvent]:
    return [e for e in events if isinstance(e, OrderFillEvent)]


def test_live_money_ports_are_refused_without_the_explicit_switch():
    for port in (7496, 4001):
        with pytest.raises(ConfigError, match="live_money=True"):
            IBBrokerAdapter(port=port)
    assert IBBrokerAdapter(port=7496, live_money=True).config.port == 7496
    assert IBBrokerAdapter(port=7497).config.port == 7497


def test_bad_connection_settings_are_refused_with_a_fix():
    with pytest.raises(ConfigError, match="client_id"):
        IBBrokerAdapter(client_id=-1)
    with pytest.raises(ConfigError, match="TCP port"):
        IBBrokerAdapter(port=70000)


async def test_connect_to_a_closed_port_says_how_to_fix_it():
    adapter = IBBrokerAdapter(port=1, connect_timeout=0.5)
    with pytest.raises(BrokerConnectionError, match="API connections"):
        await adapter.connect()


async def test_market_order_acks_then_fills_with_exec_id_and_exact_decimals(tws):
    adapter, events = await connected(tws)
    try:
        broker_id = await adapter.submit_order(AAPL, D(10), "market", client_order_id="s-1")
        await wait_for(lambda: fills(events), "the fill")
        ack = next(e for e in events if isinstance(e, OrderAckEvent))
        assert (ack.client_order_id, ack.broker_order_id) == ("s-1", broker_id)
        [fill] = fills(events)
        assert fill.client_order_id == "s-1" and fill.asset is AAPL
        assert fill.amount == 10 and fill.price == D("190") and fill.commission == D("1")
        assert all(type(x) is Decimal for x in (fill.amount, fill.price, fill.commission))
        assert fill.fill_id == tws.executions[0].exec_id and fill.is_final
        [pos] = await adapter.get_positions()
        assert pos["asset"] is AAPL and pos["amount"] == 10 and pos["average_price"] == 190
        info = await adapter.get_account_info()
        assert info["cash"] == D("1000000") - D("1900") - D("1")
        assert all(type(v) is Decimal for v in info.values())
    finally:
        await adapter.disconnect()


async def test_limit_price_reaches_tws_exactly_and_rests_until_a_bar_crosses(tws):
    adapter, events = await connected(tws)
    try:
        await adapter.submit_order(
            AAPL, D(5), "limit", limit_price=D("185.37"), client_order_id="l-1"
        )
        [order] = tws.orders.values()
        assert order.lmt_price == D("185.37")  # sent as text, never via a binary float
        [open_order] = await adapter.get_open_orders()
        assert open_order["limit_price"] == D("185.37") and open_order["amount"] == 5
        assert open_order["client_order_id"] == "l-1" and not fills(events)
        tws.push_bar("AAPL", "186", "186.5", "185", "185.5")
        await wait_for(lambda: fills(events), "the limit fill")
        assert fills(events)[0].price == D("185.37")
    finally:
        await adapter.disconnect()


async def test_stop_and_stop_limit_orders_trigger_on_a_bar_through_the_stop(tws):
    adapter, events = await connected(tws)
    try:
        await adapter.submit_order(AAPL, D(-3), "stop", stop_price=D("180"), client_order_id="st")
        await adapter.submit_order(
            AAPL,
            D(2),
            "stop_limit",
            limit_price=D("201"),
            stop_price=D("200"),
            client_order_id="sl",
        )
        assert not fills(events)
        tws.push_bar("AAPL", "190", "191", "179", "179.5")
        await wait_for(lambda: len(fills(events)) == 1, "the stop fill")
        assert fills(events)[0].client_order_id == "st" and fills(events)[0].amount == -3
        tws.push_bar("AAPL", "199", "200.5", "198", "200.2")
        await wait_for(lambda: len(fills(events)) == 2, "the stop-limit fill")
        assert fills(events)[1].client_order_id == "sl" and fills(events)[1].price <= D("201")
    finally:
        await adapter.disconnect()


async def test_partial_fills_are_each_emitted_once_and_the_last_is_final(tws):
    tws.fill_size = D(4)
    adapter, events = await connected(tws)
    try:
        await adapter.submit_order(AAPL, D(10), "limit", limit_price=D("200"), client_order_id="p")
        tws.push_bar("AAPL", "190", "190", "190", "190")
        tws.push_bar("AAPL", "190", "190", "190", "190")
        await wait_for(lambda: len(fills(events)) == 3, "three partial fills")
        got = fills(events)
        assert [f.amount for f in got] == [4, 4, 2]
        assert [f.is_final for f in got] == [False, False, True]
        assert len({f.fill_id for f in got}) == 3
    finally:
        await adapter.disconnect()


async def test_tick_and_size_increment_come_from_contract_details(tws):
    adapter, _ = await connected(tws)
    try:
        es = Future("ESZ6", exchange="CME", tick_size="0.01")  # bundle default is wrong
        with pytest.raises(
            InvalidOrder, match=r"off tick \(IB's tick size 0.25\); nearest valid: 6000.25"
        ):
            await adapter.submit_order(es, D(1), "limit", limit_price=D("6000.30"))
        assert not tws.orders
        eur = Forex("EUR.USD")
        broker_id = await adapter.submit_order(eur, D(20000), "limit", limit_price=D("1.07995"))
        assert tws.orders[int(broker_id)].instrument.sec_type == "CASH"
    finally:
        await adapter.disconnect()


async def test_unknown_symbol_is_a_symbol_not_found_error(tws):
    adapter, _ = await connected(tws)
    try:
        with pytest.raises(SymbolNotFound, match="no contract"):
            await adapter.submit_order(Equity("NOPE"), D(1), "market")
    finally:
        await adapter.disconnect()


async def test_a_reject_in_the_same_answer_as_presubmitted_is_raised_by_submit(tws):
    adapter, events = await connected(tws)
    try:
        tws.reject_next = 1
        # TWS answers PreSubmitted, error 201 and Inactive together: a refusal, not an ack.
        with pytest.raises(OrderRejected, match="code 201"):
            await adapter.submit_order(AAPL, D(1), "market", client_order_id="r")
        with pytest.raises(InsufficientFundsError, match="buying power"):
            await adapter.submit_order(AAPL, D(100000), "market", client_order_id="big")
        assert not [e for e in events if isinstance(e, OrderAckEvent | OrderCancelEvent)]
    finally:
        await adapter.disconnect()


async def test_a_reject_after_the_ack_reaches_the_engine_as_a_reject_event(tws):
    adapter, events = await connected(tws)
    try:
        tws.reject_late_next = 1
        broker_id = await adapter.submit_order(AAPL, D(1), "market", client_order_id="late")
        await wait_for(lambda: any(isinstance(e, OrderRejectEvent) for e in events), "reject")
        [reject] = [e for e in events if isinstance(e, OrderRejectEvent)]
        assert (reject.client_order_id, reject.broker_order_id) == ("late", broker_id)
        assert "201" in reject.reason
        assert not fills(events) and not [e for e in events if isinstance(e, OrderCancelEvent)]
    finally:
        await adapter.disconnect()


async def test_order_for_a_contract_tws_refuses_is_rejected_synchronously(tws):
    adapter, _ = await connected(tws)
    try:
        await adapter.submit_order(AAPL, D(1), "limit", limit_price=D("100"))  # resolve contract
        del tws.instruments[265598]  # TWS no longer knows it: error 200 on placeOrder
        with pytest.raises(OrderRejected, match="200"):
            await adapter.submit_order(AAPL, D(1), "market", client_order_id="x")
    finally:
        await adapter.disconnect()


async def test_pacing_violation_is_rate_limited_not_processed(tws):
    adapter, _ = await connected(tws)
    try:
        await adapter.submit_order(AAPL, D(1), "limit", limit_price=D("100"))  # resolves contract
        tws.pacing_violations = 1
        with pytest.raises(RateLimited, match="pacing"):
            await adapter.submit_order(AAPL, D(1), "limit", limit_price=D("100"))
        assert len(tws.orders) == 1
    finally:
        await adapter.disconnect()


async def test_accepted_but_unanswered_order_is_an_unknown_outcome_found_by_client_id(tws):
    adapter, _ = await connected(tws)
    try:
        tws.silent_accept_next = 1
        with pytest.raises(OrderStatusUnknown, match="may be working"):
            await adapter.submit_order(
                AAPL, D(3), "limit", limit_price=D("150"), client_order_id="u-1"
            )
        assert len(tws.orders) == 1  # the venue has it
        # A fresh session (as after a crash) finds it by client order id.
        again, _ = await connected(tws, client_id=1)
        try:
            found = await again.get_order_by_client_id("u-1")
            assert found is not None and found["amount"] == 3 and found["status"] == "submitted"
        finally:
            await again.disconnect()
    finally:
        await adapter.disconnect()


async def test_after_a_restart_orders_are_found_and_cancelled_by_client_id(tws):
    first, _ = await connected(tws, client_id=5)
    await first.submit_order(AAPL, D(2), "market", client_order_id="done-1")
    await first.submit_order(AAPL, D(2), "limit", limit_price=D("150"), client_order_id="rest-1")
    await wait_for(lambda: len(tws.executions) == 1, "the market fill")
    await first.disconnect()  # the process "dies"; TWS keeps the working order

    second, events = await connected(tws, client_id=5)
    try:
        done = await second.get_order_by_client_id("done-1")
        assert done is not None and done["filled"] == 2
        assert await second.get_order_by_client_id("never-sent") is None
        # Fills from before the restart are replayed once, for the engine to dedupe.
        assert [f.client_order_id for f in fills(events)] == ["done-1"]
        await second.cancel_order(None, client_order_id="rest-1", asset=AAPL)
        await wait_for(lambda: any(isinstance(e, OrderCancelEvent) for e in events), "the cancel")
        assert [o.status for o in tws.orders.values()] == ["Filled", "Cancelled"]
        with pytest.raises(OrderNotFound):
            await second.cancel_order("999")
    finally:
        await second.disconnect()


async def test_disconnect_with_orders_working_loses_and_duplicates_nothing(tws):
    adapter, events = await connected(tws, reconnect_delay=0.05)
    try:
        await adapter.submit_order(AAPL, D(6), "limit", limit_price=D("185"), client_order_id="w")
        await tws.drop_connections()
        await wait_for(lambda: not adapter.is_connected, "the drop to be noticed")
        assert BrokerConnectionEvent(False, "connection to TWS lost") in events
        tws.push_bar("AAPL", "186", "186", "184", "184.5")  # fills while we are away
        await wait_for(lambda: adapter.is_connected, "the reconnect")
        await wait_for(lambda: fills(events), "the missed fill")
        assert [f.amount for f in fills(events)] == [6]
        assert any(isinstance(e, BrokerConnectionEvent) and e.connected for e in events)
        assert len(tws.orders) == 1  # nothing resent
        tws.push_bar("AAPL", "184", "184", "184", "184")
        await asyncio.sleep(0.2)
        assert len(fills(events)) == 1
    finally:
        await adapter.disconnect()


async def test_nightly_restart_is_survived_and_bars_are_resubscribed(tws):
    adapter, events = await connected(tws, reconnect_delay=0.05)
    try:
        await adapter.subscribe_market_data([AAPL])
        await tws.restart(downtime=0.3)
        await wait_for(lambda: adapter.is_connected and adapter.disconnects == 1, "reconnect", 10)
        await asyncio.sleep(0.1)
        tws.push_bar("AAPL", "190", "191", "189", "190.5", "1200")
        await wait_for(lambda: not adapter._bars.empty(), "a bar after the restart")
        bar = await adapter.get_next_market_data()
        assert bar.asset is AAPL and bar.close == D("190.5") and bar.volume == 1200
        assert bar.dt.tzinfo is not None
    finally:
        await adapter.disconnect()


async def test_not_connected_submit_is_refused_without_sending(tws):
    adapter, _ = await connected(tws, reconnect_delay=5)
    try:
        await tws.drop_connections()
        await wait_for(lambda: not adapter.is_connected, "the drop")
        with pytest.raises(OrderRejected, match="not sent"):
            await adapter.submit_order(AAPL, D(1), "market")
        assert not tws.orders
    finally:
        await adapter.disconnect()


def test_repr_names_the_endpoint_only():
    adapter = IBBrokerAdapter(port=7497, client_id=9)
    assert repr(adapter) == (
        "IBBrokerAdapter(host='127.0.0.1', port=7497, client_id=9, connected=False)"
    )


async def test_an_execution_correction_emits_the_size_change_once_and_alerts(tws):
    adapter, events = await connected(tws)
    try:
        await adapter.submit_order(AAPL, D(10), "market", client_order_id="c")
        await wait_for(lambda: fills(events), "the fill")
        first = tws.executions[0].exec_id
        corrected = tws.correct_execution(first, shares="8", price="190")
        assert corrected.endswith(".02") and corrected.rsplit(".", 1)[0] == first.rsplit(".", 1)[0]
        await wait_for(lambda: len(fills(events)) == 2, "the correction")
        assert [f.amount for f in fills(events)] == [10, -2]
        alerts = [e for e in events if isinstance(e, AlertEvent)]
        assert alerts and alerts[0].kind == "broker_correction"
        [pos] = await adapter.get_positions()
        assert pos["amount"] == 8
    finally:
        await adapter.disconnect()
