"""The venue conformance suite: one set of behaviours every network venue adapter passes.

A venue's test module subclasses :class:`VenueConformance` and provides a ``venue``
fixture returning a :class:`VenueHarness` (a fake venue on 127.0.0.1 plus a factory of
connected adapters). What is tested follows the adapter's declared
``capabilities`` (order types, time in force, positions from balances or positions), so
Bybit, Hyperliquid or IB reuse this file unchanged with their own harness.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from rustybt.exceptions import (
    InsufficientFundsError,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
)
from rustybt.finance.ledger import Ledger
from rustybt.live.events import (
    BrokerConnectionEvent,
    OrderAckEvent,
    OrderCancelEvent,
    OrderFillEvent,
)
from rustybt.live.models import PositionSnapshot
from rustybt.live.reconciler import PositionReconciler

D = Decimal


@dataclass
class VenueHarness:
    """What the suite needs from a venue's test module."""

    make_adapter: Callable[[], Any]  # a new, unconnected adapter on the fake venue
    push_bar: Callable[[str, Decimal, Decimal, Decimal, Decimal, Decimal | None], None]
    received: Callable[[], list[str]]  # client ids of every order the venue received
    symbol: str  # an instrument to trade
    price: Decimal  # its current price
    big_amount: Decimal  # an amount more than one bar's liquidity (partial fills)
    small_amount: Decimal  # a valid small order
    unaffordable_amount: Decimal  # more than the account can pay for
    other_holdings: list[str] = field(default_factory=list)  # held, never traded (spot)
    adapters: list[Any] = field(default_factory=list)

    async def connect(self) -> tuple[Any, list[Any]]:
        adapter = self.make_adapter()
        events: list[Any] = []
        adapter.set_order_event_handler(events.append)
        await adapter.connect()
        self.adapters.append(adapter)
        await wait_for(lambda: adapter.stream_up)
        return adapter, events


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``cond`` until true; bounded in time."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met within timeout")
        await asyncio.sleep(0.02)


def fills(events: list[Any], cid: str | None = None) -> list[OrderFillEvent]:
    return [
        e
        for e in events
        if isinstance(e, OrderFillEvent) and (cid is None or e.client_order_id == cid)
    ]


def of(events: list[Any], kind: type, cid: str) -> list[Any]:
    return [e for e in events if isinstance(e, kind) and e.client_order_id == cid]


class VenueConformance:
    """Subclass and provide a ``venue`` fixture (a :class:`VenueHarness`)."""

    # --- connect and instruments ---
    async def test_connect_loads_instruments_and_opens_the_user_stream(self, venue):
        adapter, events = await venue.connect()
        assert adapter.is_connected
        assert adapter.stream_up
        asset = adapter.asset(venue.symbol)
        assert asset.tick_size > 0 and asset.lot_size > 0 and asset.min_notional >= 0
        # connected from the start: nothing to report to the engine
        assert not [e for e in events if isinstance(e, BrokerConnectionEvent)]

    async def test_orders_breaking_tick_lot_or_min_notional_are_refused_before_sending(self, venue):
        adapter, _ = await venue.connect()
        asset = adapter.asset(venue.symbol)
        before = list(venue.received())
        off_tick = venue.price - asset.tick_size / 2
        with pytest.raises(InvalidOrder, match="off tick"):
            await adapter.submit_order(
                asset, venue.small_amount, "limit", off_tick, client_order_id="conf-tick-1"
            )
        with pytest.raises(InvalidOrder, match="lot size"):
            await adapter.submit_order(
                asset,
                venue.small_amount + asset.lot_size / 2,
                "limit",
                venue.price,
                client_order_id="conf-lot-1",
            )
        if asset.min_notional > 0:
            with pytest.raises(InvalidOrder, match="below the venue minimum"):
                await adapter.submit_order(
                    asset, asset.lot_size, "limit", venue.price, client_order_id="conf-min-1"
                )
        assert venue.received() == before

    async def test_unsupported_order_types_and_time_in_force_are_refused(self, venue):
        adapter, _ = await venue.connect()
        caps = adapter.capabilities
        asset = adapter.asset(venue.symbol)
        for otype in {"market", "limit", "stop", "stop_limit"} - set(caps.order_types):
            with pytest.raises(InvalidOrder, match="does not take"):
                await adapter.submit_order(
                    asset,
                    venue.small_amount,
                    otype,
                    venue.price,
                    venue.price + asset.tick_size,
                    client_order_id=f"conf-type-{otype}",
                )
        for tif in {"gtc", "ioc", "fok", "day"} - set(caps.time_in_force):
            with pytest.raises(InvalidOrder, match="time in force"):
                await adapter.submit_order(
                    asset,
                    venue.small_amount,
                    "limit",
                    venue.price,
                    client_order_id=f"conf-tif-{tif}",
                    time_in_force=tif,
                )

    # --- orders ---
    async def test_market_order_is_acked_and_filled_on_the_stream(self, venue):
        adapter, events = await venue.connect()
        asset = adapter.asset(venue.symbol)
        oid = await adapter.submit_order(
            asset, venue.small_amount, "market", client_order_id="conf-mkt-1"
        )
        await wait_for(lambda: any(f.is_final for f in fills(events, "conf-mkt-1")))
        assert of(events, OrderAckEvent, "conf-mkt-1")[0].broker_order_id == oid
        got = fills(events, "conf-mkt-1")
        assert sum(f.amount for f in got) == venue.small_amount
        assert all(isinstance(f.price, Decimal) and isinstance(f.commission, Decimal) for f in got)
        assert len({f.fill_id for f in got}) == len(got)

    async def test_limit_order_rests_then_fills_when_a_bar_trades_through_it(self, venue):
        adapter, events = await venue.connect()
        asset = adapter.asset(venue.symbol)
        limit = venue.price - 100 * asset.tick_size
        await adapter.submit_order(
            asset, venue.small_amount, "limit", limit, client_order_id="conf-lmt-1"
        )
        await asyncio.sleep(0.2)
        assert not fills(events, "conf-lmt-1")
        opens = await adapter.get_open_orders()
        assert [o["client_order_id"] for o in opens] == ["conf-lmt-1"]
        assert opens[0]["limit_price"] == limit and opens[0]["amount"] == venue.small_amount
        venue.push_bar(venue.symbol, venue.price, venue.price, limit, limit, None)
        await wait_for(lambda: any(f.is_final for f in fills(events, "conf-lmt-1")))
        assert fills(events, "conf-lmt-1")[0].price == limit

    async def test_stop_limit_order_waits_for_its_trigger(self, venue):
        adapter, events = await venue.connect()
        if "stop_limit" not in adapter.capabilities.order_types:
            pytest.skip("venue declares no stop_limit orders")
        asset = adapter.asset(venue.symbol)
        stop = venue.price + 10 * asset.tick_size
        limit = stop + 10 * asset.tick_size
        await adapter.submit_order(
            asset, venue.small_amount, "stop_limit", limit, stop, client_order_id="conf-stp-1"
        )
        await asyncio.sleep(0.2)
        assert not fills(events, "conf-stp-1")
        (o,) = await adapter.get_open_orders()
        assert o["order_type"] == "stop_limit" and o["stop_price"] == stop
        venue.push_bar(venue.symbol, venue.price, stop, venue.price, stop, None)
        await wait_for(lambda: any(f.is_final for f in fills(events, "conf-stp-1")))
        assert fills(events, "conf-stp-1")[0].price <= limit

    async def test_partial_fills_arrive_one_by_one_with_unique_fill_ids(self, venue):
        adapter, events = await venue.connect()
        if not adapter.capabilities.partial_fills:
            pytest.skip("venue declares no partial fills")
        asset = adapter.asset(venue.symbol)
        limit = venue.price - 10 * asset.tick_size
        await adapter.submit_order(
            asset, venue.big_amount, "limit", limit, client_order_id="conf-part-1"
        )
        third = asset.round_amount(venue.big_amount / 3)
        for _ in range(4):
            venue.push_bar(venue.symbol, venue.price, venue.price, limit, limit, third)
            await asyncio.sleep(0.1)
        await wait_for(lambda: any(f.is_final for f in fills(events, "conf-part-1")))
        got = fills(events, "conf-part-1")
        assert len(got) >= 3
        assert sum(f.amount for f in got) == venue.big_amount
        assert len({f.fill_id for f in got}) == len(got)
        assert [f.is_final for f in got] == [False] * (len(got) - 1) + [True]

    async def test_cancel_removes_the_order_and_reports_it(self, venue):
        adapter, events = await venue.connect()
        asset = adapter.asset(venue.symbol)
        limit = venue.price - 100 * asset.tick_size
        oid = await adapter.submit_order(
            asset, venue.small_amount, "limit", limit, client_order_id="conf-cxl-1"
        )
        await adapter.cancel_order(oid)
        await wait_for(lambda: bool(of(events, OrderCancelEvent, "conf-cxl-1")))
        assert await adapter.get_open_orders() == []
        assert len(of(events, OrderCancelEvent, "conf-cxl-1")) == 1
        with pytest.raises(OrderNotFound):
            await adapter.cancel_order(oid)

    async def test_lookup_by_client_id_returns_the_order_with_its_fills(self, venue):
        adapter, events = await venue.connect()
        asset = adapter.asset(venue.symbol)
        await adapter.submit_order(
            asset, venue.small_amount, "market", client_order_id="conf-look-1"
        )
        await wait_for(lambda: any(f.is_final for f in fills(events, "conf-look-1")))
        got = await adapter.get_order_by_client_id("conf-look-1")
        assert got["client_order_id"] == "conf-look-1"
        assert got["status"] == "filled" and got["filled"] == venue.small_amount
        assert {f["fill_id"] for f in got["fills"]} == {
            f.fill_id for f in fills(events, "conf-look-1")
        }
        assert await adapter.get_order_by_client_id("conf-never-sent") is None

    # --- rejects ---
    async def test_an_unaffordable_order_raises_insufficient_funds(self, venue):
        adapter, _ = await venue.connect()
        asset = adapter.asset(venue.symbol)
        with pytest.raises(InsufficientFundsError, match="code"):
            await adapter.submit_order(
                asset,
                venue.unaffordable_amount,
                "limit",
                venue.price,
                client_order_id="conf-poor-1",
            )
        assert await adapter.get_open_orders() == []

    async def test_a_duplicate_client_id_is_rejected_by_the_venue(self, venue):
        adapter, _ = await venue.connect()
        asset = adapter.asset(venue.symbol)
        limit = venue.price - 100 * asset.tick_size
        await adapter.submit_order(
            asset, venue.small_amount, "limit", limit, client_order_id="conf-dup-1"
        )
        with pytest.raises(OrderRejected, match="code"):
            await adapter.submit_order(
                asset, venue.small_amount, "limit", limit, client_order_id="conf-dup-1"
            )
        assert len(await adapter.get_open_orders()) == 1

    # --- balances, positions, reconciliation ---
    async def test_positions_follow_fills_and_untraded_holdings_are_not_reported(self, venue):
        adapter, events = await venue.connect()
        asset = adapter.asset(venue.symbol)
        assert await adapter.get_positions() == []
        await adapter.submit_order(
            asset, venue.small_amount, "market", client_order_id="conf-pos-1"
        )
        await wait_for(lambda: any(f.is_final for f in fills(events, "conf-pos-1")))
        (pos,) = await adapter.get_positions()
        assert pos["asset"] == asset
        assert pos["amount"] == sum(f.amount for f in fills(events, "conf-pos-1"))
        acct = await adapter.get_account_info()
        assert all(isinstance(acct[k], Decimal) for k in ("cash", "portfolio_value"))
        held = {p["asset"].symbol for p in await adapter.get_positions()}
        assert not held & set(venue.other_holdings)

    async def test_a_ledger_fed_by_the_adapter_reconciles_clean_with_the_venue(self, venue):
        adapter, events = await venue.connect()
        asset = adapter.asset(venue.symbol)
        start = await adapter.get_account_info()
        ledger = Ledger(start["cash"])
        await adapter.submit_order(
            asset, venue.small_amount, "market", client_order_id="conf-rec-1"
        )
        limit = venue.price - 10 * asset.tick_size
        await adapter.submit_order(
            asset, venue.big_amount, "limit", limit, client_order_id="conf-rec-2"
        )
        venue.push_bar(venue.symbol, venue.price, venue.price, limit, limit, venue.big_amount / 2)
        await wait_for(lambda: len(fills(events)) >= 2)
        await asyncio.sleep(0.2)
        for f in fills(events):
            ledger.apply_fill(f.asset, f.amount, f.price, f.commission)
        local = [
            PositionSnapshot(p.asset, p.amount, p.amount * p.cost_basis)
            for p in ledger.positions.values()
        ]
        opens = await adapter.get_open_orders()
        assert [o["client_order_id"] for o in opens] == ["conf-rec-2"]
        if adapter.capabilities.positions_from == "positions":
            # derivatives: the venue's cash is the wallet (margin), not spent notional
            return
        report = await PositionReconciler(adapter).reconcile_all(local, ledger.cash, [])
        assert report.position_discrepancies == []
        assert report.cash_discrepancy is None or report.cash_discrepancy.difference == 0

    # --- restart ---
    async def test_after_a_restart_orders_are_found_cancelled_and_filled_by_client_id(self, venue):
        first, _ = await venue.connect()
        asset = first.asset(venue.symbol)
        limit = venue.price - 100 * asset.tick_size
        await first.submit_order(
            asset, venue.small_amount, "limit", limit, client_order_id="conf-rst-1"
        )
        await first.submit_order(
            asset, venue.small_amount, "limit", limit, client_order_id="conf-rst-2"
        )
        await first.disconnect()  # the process dies; the orders stay at the venue

        second, events = await venue.connect()
        found = await second.get_order_by_client_id("conf-rst-1")
        assert found is not None and found["status"] == "submitted"
        assert {o["client_order_id"] for o in await second.get_open_orders()} == {
            "conf-rst-1",
            "conf-rst-2",
        }
        if second.capabilities.cancel_by_client_id:
            await second.cancel_order(None, client_order_id="conf-rst-2", asset=asset)
            await wait_for(lambda: bool(of(events, OrderCancelEvent, "conf-rst-2")))
        venue.push_bar(venue.symbol, venue.price, venue.price, limit, limit, None)
        await wait_for(lambda: any(f.is_final for f in fills(events, "conf-rst-1")))
        assert venue.received().count("conf-rst-1") == 1


async def close_all(
    adapters: list[Any], extra: Callable[[], Awaitable[None]] | None = None
) -> None:
    for a in adapters:
        await a.disconnect()
    if extra is not None:
        await extra()
