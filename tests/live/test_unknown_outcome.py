"""Unknown submit outcomes (issue #10 item 1): a submit that times out after the venue
accepted the order leaves it open in UNKNOWN, counted at full size, resolved by client
order id, never resent; only OrderRejected / InsufficientFundsError / RateLimited are
refusals.

The faults happen for real: a venue gateway on a 127.0.0.1 socket that takes the order
and never answers (the adapter's read times out), and a paper venue whose submit places
the order and then waits past an asyncio timeout.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from rustybt import TradingAlgorithm
from rustybt.data.bar import Bar
from rustybt.exceptions import (
    BrokerConnectionError,
    OrderStatusUnknown,
    RateLimited,
)
from rustybt.finance.order import OrderStatus
from rustybt.live.brokers.base import BrokerAdapter
from rustybt.live.brokers.paper_broker import PaperBroker
from tests.live.test_engine import TINY, audit_events, make_engine, run, wait_until

D = Decimal
T0 = datetime(2024, 1, 31, 14, 31, tzinfo=UTC)


class Target100(TradingAlgorithm):
    """Wants 100 AAPL on every bar: order_target must net what is already in flight."""

    def initialize(self):
        self.aapl = self.symbol("AAPL")
        self.msft = self.symbol("MSFT")
        self.extra: dict[str, Any] = {}
        self.probe = False

    def handle_data(self, context, data):
        self.order_target(self.aapl, 100)
        if self.probe:
            self.probe = False
            self.extra["aapl"] = self.order(self.aapl, 1)
            self.extra["msft"] = self.order(self.msft, 1)


# --- a venue gateway on a real socket ------------------------------------------------------
class Gateway:
    """Newline-delimited JSON over 127.0.0.1 in front of a paper venue.

    ``submit`` reaches the venue after ``place_delay`` seconds (``None``: never) and is
    never answered; ``lookup`` answers the venue's view of a client order id.
    """

    def __init__(self, venue: PaperBroker, place_delay: float | None) -> None:
        self.venue = venue
        self.place_delay = place_delay
        self.held: list[dict[str, Any]] = []  # submits the venue has not seen (yet)
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.lookups = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def release_held(self) -> None:
        """The venue finally processes the submits it was holding."""
        held, self.held = self.held, []
        for req in held:
            await self._place(req)

    async def _place(self, req: dict[str, Any]) -> None:
        asset = self.venue_asset(req["symbol"])
        await self.venue.submit_order(
            asset, D(req["amount"]), req["order_type"], client_order_id=req["cid"]
        )

    def venue_asset(self, symbol: str) -> Any:
        return self.assets[symbol]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                req = json.loads(line)
                if req["op"] == "submit":
                    if self.place_delay is None:
                        self.held.append(req)
                    else:
                        await asyncio.sleep(self.place_delay)
                        await self._place(req)
                    continue  # the reply never comes
                if req["op"] == "lookup":
                    self.lookups += 1
                    info = await self.venue.get_order_by_client_id(req["cid"])
                    writer.write(json.dumps(_wire(info)).encode() + b"\n")
                    await writer.drain()
        finally:
            writer.close()


def _wire(info: dict[str, Any] | None) -> Any:
    if info is None:
        return None
    out = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in info.items()}
    out["asset"] = info["asset"].symbol
    out["fills"] = [
        {k: (str(v) if v is not None and k != "fill_id" else v) for k, v in f.items()}
        for f in info.get("fills", ())
    ]
    return out


class GatewayAdapter(BrokerAdapter):
    """Submits and looks up orders over the gateway socket; everything else (account,
    positions, matching on bars, the user event stream) is the venue's."""

    name = "gateway"
    simulated = False

    def __init__(self, venue: PaperBroker, gateway: Gateway, user_stream: bool) -> None:
        super().__init__()
        self.venue = venue
        self.gateway = gateway
        self.user_stream = user_stream
        self.reply_timeout = 0.1
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None

    def set_order_event_handler(self, handler):
        super().set_order_event_handler(handler)
        # With the user stream down, acks and fills of the venue never reach us.
        self.venue.set_order_event_handler(handler if self.user_stream else None)

    def set_clock(self, clock):
        super().set_clock(clock)
        self.venue.set_clock(clock)

    async def connect(self) -> None:
        await self.venue.connect()
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.gateway.port)
        self._connected = True

    async def disconnect(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._connected = False

    async def submit_order(
        self,
        asset,
        amount,
        order_type,
        limit_price=None,
        stop_price=None,
        client_order_id=None,
        time_in_force="gtc",
    ) -> str:
        req = {
            "op": "submit",
            "cid": client_order_id,
            "symbol": asset.symbol,
            "amount": str(amount),
            "order_type": order_type,
        }
        self._writer.write(json.dumps(req).encode() + b"\n")
        await self._writer.drain()
        try:
            line = await asyncio.wait_for(self._reader.readline(), self.reply_timeout)
        except TimeoutError as exc:
            raise OrderStatusUnknown(
                f"no reply to submit {client_order_id} within {self.reply_timeout}s"
            ) from exc
        return json.loads(line)["order_id"]

    async def get_order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.gateway.port)
        try:
            writer.write(json.dumps({"op": "lookup", "cid": client_order_id}).encode() + b"\n")
            await writer.drain()
            info = json.loads(await asyncio.wait_for(reader.readline(), 2))
        finally:
            writer.close()
        if info is None:
            return None
        info["asset"] = self.gateway.venue_asset(info["asset"])
        for k in ("amount", "filled", "avg_fill_price", "commission"):
            if info.get(k) is not None:
                info[k] = D(info[k])
        return info

    async def cancel_order(self, broker_order_id, *, client_order_id=None, asset=None):
        await self.venue.cancel_order(broker_order_id, client_order_id=client_order_id)

    async def get_account_info(self):
        return await self.venue.get_account_info()

    async def get_positions(self):
        return await self.venue.get_positions()

    async def get_open_orders(self):
        return await self.venue.get_open_orders()

    async def subscribe_market_data(self, assets):
        return None

    async def get_next_market_data(self):
        return None

    def on_market_data(self, bars):
        self.venue.on_market_data(bars)


def bar(asset, i: int) -> Bar:
    p = D("190") + i
    return Bar(asset, T0 + timedelta(minutes=i), p, p, p, p, D("1e6"))


async def _gateway_engine(place_delay, user_stream, **kw):
    venue = PaperBroker(starting_cash=D("100000"))
    gateway = Gateway(venue, place_delay)
    await gateway.start()
    strategy = Target100()
    adapter = GatewayAdapter(venue, gateway, user_stream)
    engine = make_engine(strategy, adapter, replay=False, stop_when_data_ends=False, **kw)
    gateway.assets = {s: engine.executor.asset_finder.lookup_symbol(s) for s in ("AAPL", "MSFT")}
    return venue, gateway, strategy, engine


def venue_amount(venue: PaperBroker, asset) -> Decimal:
    pos = venue.ledger.positions.get(asset)
    return pos.amount if pos is not None else D(0)


@pytest.mark.parametrize("user_stream", [True, False], ids=["events", "polling-only"])
async def test_order_target_after_a_submit_that_timed_out_at_an_accepting_venue_sends_once(
    user_stream,
):
    venue, gateway, strategy, engine = await _gateway_engine(0.3, user_stream)
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: engine.get_status()["reconciliation"] == "ok", "startup")
        aapl = strategy.aapl
        engine.push_market_data(bar(aapl, 0))
        await wait_until(lambda: engine.get_status()["unknown_orders"], "the unknown outcome")
        (order,) = engine.order_manager.open_orders(aapl)
        assert order.status is OrderStatus.UNKNOWN and order.amount == 100
        # Bars keep coming while the outcome is unknown: order_target nets the 100 in
        # flight and sends nothing more.
        for i in (1, 2):
            engine.push_market_data(bar(aapl, i))
        await wait_until(lambda: order.status is not OrderStatus.UNKNOWN, "resolution", 10)
        assert not engine.get_status()["unknown_orders"]
        if not user_stream:
            assert gateway.lookups >= 2  # resolved by asking, with backoff
            # The user stream reconnects: fills reach the engine again.
            venue.set_order_event_handler(engine.event_queue.put_nowait)
        for i in (3, 4, 5):
            engine.push_market_data(bar(aapl, i))
            await asyncio.sleep(0.02)
        await wait_until(lambda: venue_amount(venue, aapl) == 100, "the fill at the venue")
        await wait_until(lambda: order.status is OrderStatus.FILLED, "the local fill", 10)
        for i in (6, 7):
            engine.push_market_data(bar(aapl, i))
        await asyncio.sleep(0.3)
        assert venue_amount(venue, aapl) == 100  # not 200
        assert venue.submissions == [order.id]
        assert engine.ledger.positions[aapl].amount == 100
        kinds = [e["event"] for e in audit_events(engine)]
        assert "order_outcome_unknown" in kinds and "order_rejected" not in kinds
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)
        await gateway.stop()


async def test_unknown_outcome_past_its_deadline_blocks_the_asset_and_alerts_until_resolved():
    venue, gateway, strategy, engine = await _gateway_engine(
        None, True, unknown_order_deadline_seconds=0.2
    )
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: engine.get_status()["reconciliation"] == "ok", "startup")
        aapl, msft = strategy.aapl, strategy.msft
        engine.push_market_data(bar(aapl, 0))
        await wait_until(lambda: engine.get_status()["unknown_orders"], "the unknown outcome")
        order_1 = engine.get_status()["unknown_orders"][0]["client_order_id"]
        await wait_until(lambda: engine.get_status()["holds"], "the asset hold", 5)
        status = engine.get_status()
        ((key, reason),) = status["holds"].items()
        assert key.startswith("AAPL:") and "unknown submit outcome" in reason
        assert status["unknown_orders"][0]["overdue"] is True
        await wait_until(
            lambda: any(a.kind == "order_outcome_unknown" for a in engine.alerts), "the alert"
        )
        # New risk on AAPL is refused; MSFT trades.
        engine.push_market_data(Bar(msft, T0 + timedelta(minutes=1), *[D("380")] * 4, D("1e6")))
        await wait_until(lambda: engine.get_status()["market_events"] == 2, "the MSFT bar")
        strategy.probe = True
        engine.push_market_data(bar(aapl, 2))
        await wait_until(lambda: "msft" in strategy.extra, "the probe orders")
        assert strategy.extra["aapl"] is None  # refused
        (refused,) = [
            o for o in engine.order_manager.orders.values() if o.amount == 1 and o.asset == aapl
        ]
        assert refused.status is OrderStatus.REJECTED
        assert "trading blocked on AAPL" in refused.reason
        assert strategy.extra["msft"] is not None
        # MSFT passed the risk gate and went to the venue; the refused AAPL order never left.
        assert [r["cid"] for r in gateway.held] == [order_1, strategy.extra["msft"]]
        # The venue finally processes the held submit: the order resolves, the hold lifts.
        await gateway.release_held()
        await wait_until(lambda: not engine.get_status()["holds"], "the hold to lift", 10)
        assert not engine.get_status()["unknown_orders"]
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)
        await gateway.stop()


# --- a paper venue whose reply times out -----------------------------------------------------
class TimesOutAfterAccepting(PaperBroker):
    """Places the first order, then the reply never comes (or the adapter breaks)."""

    def __init__(self, error: str, **kw) -> None:
        super().__init__(**kw)
        self.error = error
        self.failed = 0

    async def submit_order(self, *args, **kwargs) -> str:
        broker_id = await super().submit_order(*args, **kwargs)
        if self.failed:
            return broker_id
        self.failed += 1
        if self.error == "timeout":
            await asyncio.wait_for(asyncio.Event().wait(), 0.05)  # raises TimeoutError
        if self.error == "connection":
            raise BrokerConnectionError("connection reset by peer after sending")
        raise KeyError("adapter bug: 'orderId'")


@pytest.mark.parametrize("error", ["timeout", "connection", "adapter-bug"])
async def test_any_submit_error_that_is_not_a_refusal_is_an_unknown_outcome_never_a_reject(error):
    # The venue fills two bars later: the strategy runs twice while the order is open.
    broker = TimesOutAfterAccepting(error, starting_cash=D("100000"), order_latency_ms=120_000)
    strategy = Target100()
    engine = make_engine(strategy, broker, **TINY)
    await run(engine)
    aapl = strategy.aapl
    # The old code rejected the first order locally, bought 100 more on the next bar
    # (200 at the venue) and then sold 100 back: three orders for one target.
    assert [o.amount for o in broker._orders.values()] == [100]
    assert venue_amount(broker, aapl) == 100
    assert len(broker.submissions) == 1
    assert engine.ledger.positions[aapl].amount == 100
    (order,) = engine.order_manager.orders.values()
    assert order.status is OrderStatus.FILLED
    events = audit_events(engine)
    assert [e for e in events if e["event"] == "order_outcome_unknown"]
    assert [e for e in events if e["event"] == "order_resolved"]
    assert engine.get_status()["broker_errors"] == 1


class RateLimitedOnce(PaperBroker):
    async def submit_order(self, *args, **kwargs) -> str:
        if not getattr(self, "limited", False):
            self.limited = True
            raise RateLimited("too many requests", retry_after=1.0)
        return await super().submit_order(*args, **kwargs)


async def test_a_definitive_refusal_is_still_a_reject_and_the_next_bar_may_send_again():
    broker = RateLimitedOnce(starting_cash=D("100000"))
    strategy = Target100()
    engine = make_engine(strategy, broker, **TINY)
    await run(engine)
    orders = list(engine.order_manager.orders.values())
    assert orders[0].status is OrderStatus.REJECTED and "RateLimited" in orders[0].reason
    assert venue_amount(broker, strategy.aapl) == 100
    assert not engine.get_status()["unknown_orders"]
