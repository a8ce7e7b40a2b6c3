"""A fake TWS on 127.0.0.1 that unmodified ``ib_async`` clients trade against.

It speaks the TWS API socket protocol (see :mod:`.wire`), keeps one paper account
(cash, positions, orders, executions) that outlives client connections as real TWS
does, and matches orders with the kernel's :class:`~rustybt.finance.execution.ExecutionSimulator`
against its own price per instrument: a market order against the current price at
once, resting orders whenever a bar is pushed (:meth:`FakeTWS.push_bar`). Commission
is IB's fixed US stock rate by default (USD 0.005 a share, minimum USD 1).

Faults, for tests and rehearsals:

* :meth:`FakeTWS.drop_connections` — TWS closes every client socket mid-session;
* :meth:`FakeTWS.restart` — the nightly restart: the port goes away for a while, then
  comes back with the same account and working orders;
* ``pacing_violations=N`` — the next N requests answer error 100 (pacing) instead;
* ``reject_next=N`` — the next N orders are rejected with error 201 (PreSubmitted,
  error 201, Inactive, in one write);
* ``reject_late_next=N`` — the next N orders are acknowledged, then rejected 50 ms later;
* ``silent_accept_next=N`` — the next N orders are accepted but no reply is sent
  (the client cannot tell whether they arrived: an unknown outcome);
* ``fill_size`` — at most this many shares fill per bar (partial fills).

Every message received is recorded in :attr:`FakeTWS.received` (message ids), so tests
can assert what a client sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from rustybt.assets import Asset
from rustybt.data.bar import Bar
from rustybt.finance.decimal.commission import PerShareCommission
from rustybt.finance.execution import ExecutionSimulator
from rustybt.finance.order import Order, OrderType, TimeInForce
from rustybt.testing.venues.ib import wire
from rustybt.testing.venues.ib.wire import Instrument, WireExecution, WireOrder

_ZERO = Decimal(0)
_EASTERN = ZoneInfo("US/Eastern")
_ORDER_TYPES = {
    "MKT": OrderType.MARKET,
    "LMT": OrderType.LIMIT,
    "STP": OrderType.STOP,
    "STP LMT": OrderType.STOP_LIMIT,
}
_TIFS = {"DAY": TimeInForce.DAY, "GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC}
_TIFS["FOK"] = TimeInForce.FOK


def default_instruments() -> list[Instrument]:
    """A small universe: US stocks, an ETF, an E-mini future and EUR.USD."""
    d = Decimal
    return [
        Instrument(265598, "AAPL", "STK", "SMART", "NASDAQ", "USD", d("0.01"), price=d("190")),
        Instrument(272093, "MSFT", "STK", "SMART", "NASDAQ", "USD", d("0.01"), price=d("410")),
        Instrument(756733, "SPY", "STK", "SMART", "ARCA", "USD", d("0.01"), price=d("520")),
        Instrument(
            637533641,
            "ES",
            "FUT",
            "CME",
            "CME",
            "USD",
            d("0.25"),
            multiplier="50",
            last_trade_date="20261218",
            local_symbol="ESZ6",
            trading_class="ES",
            price=d("6000"),
        ),
        Instrument(
            12087792,
            "EUR",
            "CASH",
            "IDEALPRO",
            "IDEALPRO",
            "USD",
            d("0.00005"),
            local_symbol="EUR.USD",
            trading_class="EUR.USD",
            price=d("1.08"),
        ),
    ]


@dataclass(eq=False)
class _Client:
    writer: asyncio.StreamWriter
    client_id: int = -1
    bars: dict[int, int] = field(default_factory=dict)  # reqId -> conId
    positions: bool = False  # subscribed with reqPositions
    account: bool = False  # subscribed with reqAccountUpdates


class FakeTWS:
    """The fake TWS. ``await start()``, use ``port``, ``await stop()``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        account: str = "DU1234567",
        cash: Decimal | str = "1000000",
        instruments: list[Instrument] | None = None,
        commission_per_share: Decimal | str = "0.005",
        min_commission: Decimal | str = "1",
        fill_size: Decimal | str | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fake TWS listens on loopback only")
        self.host = host
        self.port = port
        self.account = account
        self.cash = Decimal(cash)
        self.instruments = {i.con_id: i for i in (instruments or default_instruments())}
        self._assets = {
            cid: Asset(i.symbol, tick_size=i.min_tick, lot_size=i.size_increment)
            for cid, i in self.instruments.items()
        }
        # A bar's volume caps what it fills (all orders on the instrument together).
        self._sim = ExecutionSimulator(
            commission_model=PerShareCommission(
                Decimal(commission_per_share), Decimal(min_commission)
            ),
            volume_limit_pct=Decimal(1),
        )
        self.fill_size = Decimal(fill_size) if fill_size is not None else None
        self.positions: dict[int, tuple[Decimal, Decimal]] = {}  # conId -> (amount, avg cost)
        self.orders: dict[int, WireOrder] = {}
        self._sim_orders: dict[int, Order] = {}
        self.executions: list[WireExecution] = []
        self.received: list[int] = []
        #: orderRef of every order placed, accepted or not (duplicates show up twice).
        self.order_refs_received: list[str] = []
        self.pacing_violations = 0
        self.reject_next = 0
        self.silent_accept_next = 0
        self.reject_late_next = 0
        self._next_order_id = 1
        self._perm_ids = itertools.count(1_000_001)
        self._exec_seq = itertools.count(1)
        self._clients: set[_Client] = set()
        self._server: asyncio.base_events.Server | None = None
        self._bar_seq = itertools.count(1)

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def drop_connections(self) -> None:
        """Close every client socket, as TWS does when it goes down."""
        for client in list(self._clients):
            client.writer.close()
            with contextlib.suppress(Exception):
                await client.writer.wait_closed()
        self._clients.clear()

    async def restart(self, downtime: float = 0.5) -> None:
        """The nightly restart: sockets dropped, port closed for ``downtime`` s, then back."""
        await self.stop()
        await asyncio.sleep(downtime)
        await self.start()

    # --- the venue's market --------------------------------------------------------------
    def instrument(self, symbol: str) -> Instrument:
        for ins in self.instruments.values():
            if ins.symbol == symbol or ins.local_symbol == symbol:
                return ins
        raise KeyError(symbol)

    def set_price(self, symbol: str, price: Decimal | str) -> None:
        self.instrument(symbol).price = Decimal(price)

    def push_bar(
        self,
        symbol: str,
        open: Decimal | str,
        high: Decimal | str,
        low: Decimal | str,
        close: Decimal | str,
        volume: Decimal | str | None = "10000",
        *,
        start: int | None = None,
    ) -> None:
        """A 5-second bar traded on the venue: resting orders match, subscribers get it.

        ``start`` (epoch seconds) is the bar's time on the wire (TWS stamps a real-time
        bar with the start of its period); by default the 5-second period now in progress.
        """
        ins = self.instrument(symbol)
        o, h, lo, c, v = (Decimal(x) for x in (open, high, low, close, volume or "10000"))
        ins.price = c
        now = datetime.now(UTC)
        bar = Bar(self._assets[ins.con_id], now, o, h, lo, c, v)
        self._sim.reset()
        for oid, sim in list(self._sim_orders.items()):
            if sim.asset is bar.asset:
                self._match(self.orders[oid], sim, bar)
        epoch = int(now.timestamp()) // 5 * 5 if start is None else start
        for client in list(self._clients):
            for req_id, con_id in client.bars.items():
                if con_id == ins.con_id:
                    self._send(client, wire.real_time_bar(req_id, epoch, o, h, lo, c, v, c, 10))

    async def run_market(
        self,
        *,
        interval: float = 1.0,
        seed: int = 0,
        bars: int | None = None,
    ) -> None:
        """Trade every instrument: one bar each ``interval`` seconds, a seeded random walk.

        Stops after ``bars`` rounds (None: until cancelled). Moves are whole ticks, at most
        five either way, so prices stay on the contract's tick.
        """
        rng = random.Random(seed)
        done = 0
        while bars is None or done < bars:
            await asyncio.sleep(interval)
            for ins in list(self.instruments.values()):
                self._walk_bar(rng, ins)
            done += 1

    async def run_real_time_bars(
        self, *, seconds: int = 5, seed: int = 0, bars: int | None = None
    ) -> None:
        """Trade every instrument as TWS publishes real-time bars: at each boundary of
        ``seconds`` on the wall clock, one bar per instrument for the period that just
        ended, stamped with that period's start (TWS: 5 s; shorter for fast tests).

        Stops after ``bars`` periods (None: until cancelled)."""
        rng = random.Random(seed)
        done = 0
        while bars is None or done < bars:
            now = time.time()
            boundary = (int(now) // seconds + 1) * seconds
            await asyncio.sleep(boundary - now)
            for ins in list(self.instruments.values()):
                self._walk_bar(rng, ins, start=boundary - seconds)
            done += 1

    def _walk_bar(self, rng: random.Random, ins: Instrument, start: int | None = None) -> None:
        """One seeded random-walk bar: whole-tick moves, at most five either way."""
        tick = ins.min_tick
        o = ins.price
        c = max(tick, o + tick * rng.randint(-5, 5))
        h = max(o, c) + tick * rng.randint(0, 2)
        lo = max(tick, min(o, c) - tick * rng.randint(0, 2))
        volume = Decimal(rng.randint(100, 5000)) * ins.size_increment
        self.push_bar(ins.local_symbol or ins.symbol, o, h, lo, c, volume, start=start)

    # --- connection handling ---------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _Client(writer)
        try:
            prefix = await reader.readexactly(4)
            if prefix != b"API\0":
                return
            versions = wire.split_fields(await self._read_frame(reader))
            if not versions or not versions[0].startswith("v"):
                return
            hi = int(versions[0][1:].split("..")[-1].split(" ")[0])
            if hi < wire.SERVER_VERSION:
                self._send(
                    client, wire.error(-1, 503, "The TWS is out of date and must be upgraded.")
                )
                return
            stamp = datetime.now(_EASTERN).strftime("%Y%m%d %H:%M:%S US/Eastern")
            writer.write(wire.handshake_reply(stamp))
            self._clients.add(client)
            while True:
                fields = wire.split_fields(await self._read_frame(reader))
                if fields:
                    self._handle(client, fields)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._clients.discard(client)
            writer.close()

    @staticmethod
    async def _read_frame(reader: asyncio.StreamReader) -> bytes:
        size = int.from_bytes(await reader.readexactly(4), "big")
        return await reader.readexactly(size)

    def _send(self, client: _Client, msg: bytes) -> None:
        if not client.writer.is_closing():
            client.writer.write(msg)

    def _broadcast(self, order: WireOrder, msg: bytes) -> None:
        """Order updates go to the client that placed the order (and client 0, as TWS does)."""
        for client in list(self._clients):
            if client.client_id in (order.client_id, 0):
                self._send(client, msg)

    # --- requests --------------------------------------------------------------------------
    def _handle(self, client: _Client, f: list[str]) -> None:
        msg_id = int(f[0])
        self.received.append(msg_id)
        if msg_id == wire.START_API:
            client.client_id = int(f[2])
            self._send(client, wire.next_valid_id(self._next_order_id))
            self._send(client, wire.managed_accounts([self.account]))
            for code, text in (
                (2104, "Market data farm connection is OK:usfarm"),
                (2106, "HMDS data farm connection is OK:ushmds"),
                (2158, "Sec-def data farm connection is OK:secdefnj"),
            ):
                self._send(client, wire.error(-1, code, text))
            return
        if self.pacing_violations > 0 and msg_id not in (wire.CANCEL_ORDER,):
            self.pacing_violations -= 1
            req_id = int(f[2]) if msg_id in (wire.REQ_CONTRACT_DATA, wire.REQ_EXECUTIONS) else -1
            if msg_id == wire.PLACE_ORDER:
                req_id = int(f[1])
            self._send(
                client,
                wire.error(
                    req_id,
                    100,
                    "Max rate of messages per second has been exceeded:max=50 rec=51 (1)",
                ),
            )
            return
        handler = {
            wire.PLACE_ORDER: self._place_order,
            wire.CANCEL_ORDER: self._cancel_order,
            wire.REQ_OPEN_ORDERS: self._open_orders,
            wire.REQ_ALL_OPEN_ORDERS: self._open_orders,
            wire.REQ_ACCOUNT_DATA: self._account_updates,
            wire.REQ_EXECUTIONS: self._executions,
            wire.REQ_IDS: lambda c, _f: self._send(c, wire.next_valid_id(self._next_order_id)),
            wire.REQ_CONTRACT_DATA: self._contract_details,
            wire.REQ_CURRENT_TIME: lambda c, _f: self._send(
                c, wire.current_time(int(datetime.now(UTC).timestamp()))
            ),
            wire.REQ_REAL_TIME_BARS: self._real_time_bars,
            wire.CANCEL_REAL_TIME_BARS: lambda c, f: c.bars.pop(int(f[2]), None),
            wire.REQ_POSITIONS: self._positions,
            wire.REQ_ACCOUNT_SUMMARY: self._account_summary,
            wire.REQ_ACCOUNT_UPDATES_MULTI: self._account_updates_multi,
            wire.REQ_COMPLETED_ORDERS: lambda c, _f: self._send(c, wire.completed_orders_end()),
        }.get(msg_id)
        if handler is not None:
            handler(client, f)

    def _find_contract(self, f: list[str], start: int) -> Instrument | None:
        """The instrument a request's 12 contract fields (from index ``start``) name."""
        con_id = int(f[start] or 0)
        symbol, sec_type = f[start + 1], f[start + 2]
        local_symbol = f[start + 10]
        if con_id and con_id in self.instruments:
            return self.instruments[con_id]
        for ins in self.instruments.values():
            if sec_type and ins.sec_type != sec_type:
                continue
            if ins.symbol == symbol or (local_symbol and ins.local_symbol == local_symbol):
                return ins
        return None

    def _contract_details(self, client: _Client, f: list[str]) -> None:
        req_id = int(f[2])
        ins = self._find_contract(f, 3)
        if ins is None:
            self._send(
                client,
                wire.error(req_id, 200, "No security definition has been found for the request"),
            )
            return
        self._send(client, wire.contract_details(req_id, ins))
        self._send(client, wire.contract_details_end(req_id))

    def _place_order(self, client: _Client, f: list[str]) -> None:
        order_id = int(f[1])
        ins = self._find_contract(f, 2)
        if ins is None:
            self._send(
                client,
                wire.error(order_id, 200, "No security definition has been found for the request"),
            )
            return
        action, qty_s, otype, lmt_s, aux_s, tif = f[16], f[17], f[18], f[19], f[20], f[21]
        account, order_ref = f[23] or self.account, f[26]
        self.order_refs_received.append(order_ref)
        if order_id in self.orders:
            self._send(client, wire.error(order_id, 103, "Duplicate order id"))
            return
        try:
            qty = Decimal(qty_s)
            lmt = Decimal(lmt_s) if lmt_s else None
            aux = Decimal(aux_s) if aux_s else None
        except InvalidOperation:
            self._send(client, wire.error(order_id, 320, "Error reading request: bad number"))
            return
        self._next_order_id = max(self._next_order_id, order_id + 1)
        order = WireOrder(
            order_id=order_id,
            client_id=client.client_id,
            perm_id=next(self._perm_ids),
            instrument=ins,
            action=action,
            total_quantity=qty,
            order_type=otype,
            lmt_price=lmt,
            aux_price=aux,
            tif=tif or "DAY",
            account=account,
            order_ref=order_ref,
        )
        reason = self._check(order)
        if reason is not None or self.reject_next > 0:
            if reason is None:
                self.reject_next -= 1
                reason = "Order rejected - reason:The order was rejected by the fake venue"
            order.status = "PreSubmitted"
            self._send(client, wire.order_status(order))
            self._send(client, wire.error(order_id, 201, reason))
            order.status = "Inactive"
            self._send(client, wire.order_status(order))
            return
        self.orders[order_id] = order
        sim = Order(
            f"ib-{order_id}",
            self._assets[ins.con_id],
            qty if action == "BUY" else -qty,
            _ORDER_TYPES[otype],
            lmt,
            aux,
            _TIFS.get(order.tif, TimeInForce.GTC),
        )
        self._sim_orders[order_id] = sim
        order.status = "Submitted"
        if self.silent_accept_next > 0:
            self.silent_accept_next -= 1
            return
        if self.reject_late_next > 0:
            # Accepted, then refused downstream a moment later (e.g. by the exchange).
            self.reject_late_next -= 1
            order.status = "PreSubmitted"
            self._broadcast(order, wire.open_order(order))
            self._broadcast(order, wire.order_status(order))
            asyncio.get_running_loop().call_later(0.05, self._reject_late, order)
            return
        self._broadcast(order, wire.open_order(order))
        self._broadcast(order, wire.order_status(order))
        if otype == "MKT" or (otype == "LMT" and lmt is not None):
            p = ins.price
            volume = self.fill_size * 40 if self.fill_size is not None else qty * 40
            self._sim.reset()
            self._match(order, sim, Bar(sim.asset, datetime.now(UTC), p, p, p, p, volume))
        if order.tif == "IOC" and order.status == "Submitted":
            self._cancel(order, "IOC remainder")

    def _reject_late(self, order: WireOrder) -> None:
        self._sim_orders.pop(order.order_id, None)
        self._broadcast(
            order,
            wire.error(order.order_id, 201, "Order rejected - reason:Rejected by the exchange"),
        )
        order.status = "Inactive"
        self._broadcast(order, wire.order_status(order))

    def _check(self, order: WireOrder) -> str | None:
        ins = order.instrument
        if order.order_type not in _ORDER_TYPES:
            return f"Order rejected - reason:Unsupported order type {order.order_type}"
        if order.action not in ("BUY", "SELL") or order.total_quantity <= 0:
            return "Order rejected - reason:Invalid action or quantity"
        if order.total_quantity % ins.size_increment != 0:
            return f"Order rejected - reason:The size increment is {ins.size_increment}"
        for price in (order.lmt_price, order.aux_price):
            if price is not None and price % ins.min_tick != 0:
                return (
                    "Order rejected - reason:The price does not conform to the minimum price "
                    f"variation for this contract ({ins.min_tick})"
                )
        if order.order_type in ("LMT", "STP LMT") and order.lmt_price is None:
            return "Order rejected - reason:Limit price required"
        if order.order_type in ("STP", "STP LMT") and order.aux_price is None:
            return "Order rejected - reason:Stop price required"
        if order.action == "BUY":
            ref = max(ins.price, order.lmt_price or _ZERO, order.aux_price or _ZERO)
            mult = Decimal(ins.multiplier) if ins.multiplier else Decimal(1)
            if ins.sec_type == "STK" and ref * order.total_quantity * mult > self.cash:
                return "Order rejected - reason:Insufficient buying power"
        return None

    def _match(self, order: WireOrder, sim: Order, bar: Bar) -> None:
        fill = self._sim.process(sim, bar)
        if fill is None:
            return
        amount = fill.amount
        if self.fill_size is not None and abs(amount) > self.fill_size:
            amount = self.fill_size if amount > 0 else -self.fill_size
            fill.commission = self._sim.commission_model.calculate(sim, fill.price, amount)
        sim.apply_fill(amount, fill.price, fill.commission, bar.dt)
        shares = abs(amount)
        order.filled += shares
        notional = order.avg_fill_price * (order.filled - shares) + fill.price * shares
        order.avg_fill_price = notional / order.filled
        order.last_fill_price = fill.price
        order.commission += fill.commission
        self._apply_to_account(order.instrument, amount, fill.price, fill.commission)
        self._publish_position(order.instrument)
        stamp = bar.dt.astimezone(_EASTERN).strftime("%Y%m%d %H:%M:%S US/Eastern")
        execution = WireExecution(
            exec_id=f"0000e0d5.{next(self._exec_seq) + 0x6577A000:08x}.01.01",
            order=order,
            time=stamp,
            shares=shares,
            price=fill.price,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            commission=fill.commission,
        )
        self.executions.append(execution)
        if order.remaining == 0:
            order.status = "Filled"
            self._sim_orders.pop(order.order_id, None)
        self._broadcast(order, wire.exec_details(-1, execution))
        self._broadcast(order, wire.order_status(order))
        if order.status == "Filled":
            self._broadcast(order, wire.open_order(order))
        self._broadcast(order, wire.commission_report(execution))

    def _apply_to_account(
        self, ins: Instrument, amount: Decimal, price: Decimal, fee: Decimal
    ) -> None:
        mult = Decimal(ins.multiplier) if ins.multiplier else Decimal(1)
        held, avg = self.positions.get(ins.con_id, (_ZERO, _ZERO))
        new = held + amount
        if new == 0:
            self.positions.pop(ins.con_id, None)
        elif held == 0 or (held > 0) == (amount > 0):
            self.positions[ins.con_id] = (new, (held * avg + amount * price * mult) / new)
        elif (new > 0) == (held > 0):
            self.positions[ins.con_id] = (new, avg)
        else:
            self.positions[ins.con_id] = (new, price * mult)
        if ins.sec_type != "FUT":
            self.cash -= amount * price * mult
        self.cash -= fee

    def correct_execution(
        self, exec_id: str, *, shares: Decimal | str, price: Decimal | str
    ) -> str:
        """Send a correction of an execution, as IB does after a bust or price adjustment.

        The corrected execution keeps the id with its last part (the revision) bumped;
        the account moves by the difference. Returns the new execution id.
        """
        old = next(ex for ex in self.executions if ex.exec_id == exec_id)
        head, _, rev = exec_id.rpartition(".")
        shares, price = Decimal(shares), Decimal(price)
        order = old.order
        sign = Decimal(1) if order.action == "BUY" else Decimal(-1)
        self._apply_to_account(order.instrument, -sign * old.shares, old.price, _ZERO)
        self._apply_to_account(order.instrument, sign * shares, price, _ZERO)
        order.filled += shares - old.shares
        new = WireExecution(
            exec_id=f"{head}.{int(rev) + 1:02d}",
            order=order,
            time=old.time,
            shares=shares,
            price=price,
            cum_qty=order.filled,
            avg_price=price,
            commission=old.commission,
        )
        self.executions.append(new)
        self._broadcast(order, wire.exec_details(-1, new))
        self._broadcast(order, wire.commission_report(new))
        self._publish_position(order.instrument)
        return new.exec_id

    def _publish_position(self, ins: Instrument) -> None:
        """Subscribers of reqPositions / reqAccountUpdates hear of a changed position."""
        amount, avg = self.positions.get(ins.con_id, (_ZERO, _ZERO))
        for client in list(self._clients):
            if client.positions:
                self._send(client, wire.position(self.account, ins, amount, avg))
            if client.account:
                for key, value, cur in self._account_values():
                    self._send(client, wire.account_value(key, value, cur, self.account))
                self._send(client, wire.portfolio_value(ins, amount, ins.price, avg, self.account))

    def _cancel(self, order: WireOrder, reason: str = "") -> None:
        order.status = "Cancelled"
        self._sim_orders.pop(order.order_id, None)
        self._broadcast(order, wire.order_status(order))
        self._broadcast(order, wire.error(order.order_id, 202, f"Order Canceled - reason:{reason}"))

    def _cancel_order(self, client: _Client, f: list[str]) -> None:
        order_id = int(f[2])
        order = self.orders.get(order_id)
        if order is None:
            self._send(
                client,
                wire.error(
                    order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found."
                ),
            )
            return
        if order.status in ("Filled", "Cancelled", "Inactive"):
            self._send(
                client,
                wire.error(
                    order_id,
                    10148,
                    f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                    f"state: {order.status}.",
                ),
            )
            return
        self._cancel(order)

    def _open_orders(self, client: _Client, _f: list[str]) -> None:
        for order in self.orders.values():
            if order.status in ("PreSubmitted", "Submitted"):
                self._send(client, wire.open_order(order))
                self._send(client, wire.order_status(order))
        self._send(client, wire.open_order_end())

    def _executions(self, client: _Client, f: list[str]) -> None:
        req_id = int(f[2])
        for ex in self.executions:
            self._send(client, wire.exec_details(req_id, ex))
            self._send(client, wire.commission_report(ex))
        self._send(client, wire.exec_details_end(req_id))

    def _positions(self, client: _Client, _f: list[str]) -> None:
        client.positions = True
        for con_id, (amount, avg) in self.positions.items():
            self._send(client, wire.position(self.account, self.instruments[con_id], amount, avg))
        self._send(client, wire.position_end())

    def _account_values(self) -> list[tuple[str, Decimal, str]]:
        equity = self.cash
        for con_id, (amount, _avg) in self.positions.items():
            ins = self.instruments[con_id]
            if ins.sec_type != "FUT":
                mult = Decimal(ins.multiplier) if ins.multiplier else Decimal(1)
                equity += amount * ins.price * mult
        return [
            ("NetLiquidation", equity, "USD"),
            ("TotalCashValue", self.cash, "USD"),
            ("CashBalance", self.cash, "USD"),
            ("AvailableFunds", self.cash, "USD"),
            ("BuyingPower", self.cash * 4 if self.cash > 0 else _ZERO, "USD"),
            ("EquityWithLoanValue", equity, "USD"),
        ]

    def _account_updates(self, client: _Client, f: list[str]) -> None:
        client.account = f[2] == "1"
        if not client.account:
            return
        for key, value, cur in self._account_values():
            self._send(client, wire.account_value(key, value, cur, self.account))
        for con_id, (amount, avg) in self.positions.items():
            ins = self.instruments[con_id]
            self._send(client, wire.portfolio_value(ins, amount, ins.price, avg, self.account))
        self._send(client, wire.account_update_time(datetime.now(_EASTERN).strftime("%H:%M")))
        self._send(client, wire.account_download_end(self.account))

    def _account_updates_multi(self, client: _Client, f: list[str]) -> None:
        req_id = int(f[2])
        for key, value, cur in self._account_values():
            self._send(client, wire.account_update_multi(req_id, self.account, key, value, cur))
        self._send(client, wire.account_update_multi_end(req_id))

    def _account_summary(self, client: _Client, f: list[str]) -> None:
        req_id = int(f[2])
        for key, value, cur in self._account_values():
            self._send(client, wire.account_summary(req_id, self.account, key, value, cur))
        self._send(client, wire.account_summary_end(req_id))

    def _real_time_bars(self, client: _Client, f: list[str]) -> None:
        req_id = int(f[2])
        ins = self._find_contract(f, 3)
        if ins is None:
            self._send(
                client,
                wire.error(req_id, 200, "No security definition has been found for the request"),
            )
            return
        client.bars[req_id] = ins.con_id


async def serve(port: int = 7497, *, interval: float = 1.0, seed: int = 0) -> None:
    """Run a fake TWS on 127.0.0.1:``port`` with a moving market until cancelled.

    A whole number of seconds publishes real-time bars as TWS does: one per period of
    ``interval`` seconds on the wall clock, sent when it ends, stamped with its start
    (``--interval 5`` is TWS's own bar). A fraction of a second pushes a bar that often,
    stamped with the 5-second period in progress (a fast market for rehearsals)."""
    fake = FakeTWS(port=port)
    await fake.start()
    print(
        f"fake TWS (server version {wire.SERVER_VERSION}) on 127.0.0.1:{fake.port}, account "
        f"{fake.account}; instruments: "
        + ", ".join(i.local_symbol or i.symbol for i in fake.instruments.values()),
        flush=True,
    )
    try:
        if interval >= 1 and interval == int(interval):
            await fake.run_real_time_bars(seconds=int(interval), seed=seed)
        else:
            await fake.run_market(interval=interval, seed=seed)
    finally:
        await fake.stop()
