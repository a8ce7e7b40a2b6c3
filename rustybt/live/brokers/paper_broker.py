"""A realistic simulated venue: the paper broker.

It matches orders with the per-bar step the backtest runs
(:func:`~rustybt.finance.kernel.step_bar` with the same
:class:`~rustybt.finance.execution.ExecutionSimulator`: limit/stop/stop-limit semantics,
slippage, commission, volume-capped partial fills whose remainder rests), adds submission
latency with seeded jitter on the engine's clock, applies the same
:class:`~rustybt.finance.account_rules.AccountRules` as the backtest (buying power at the
order's worst-case price, short selling off unless ``allow_short=True``; a refusal raises
from ``submit_order``), and delivers acks, fills, cancels and rejects as events.

With ``state_path`` the account (cash, positions, orders and every client order id ever
received) outlives a crash of the trading process — the crash-test harness uses it as
"the venue". Each change is one appended line, in the OS before the venue reports it;
a worker thread folds the log into a snapshot now and then
(:mod:`rustybt.live.brokers.paper_store`).
"""

from __future__ import annotations

import asyncio
import copy
import random
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import chain
from pathlib import Path
from typing import Any

from rustybt.assets import Asset, asset_from_dict
from rustybt.data.bar import Bar
from rustybt.exceptions import (
    BrokerConnectionError,
    BrokerError,
    ConfigError,
    InsufficientFundsError,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
)
from rustybt.finance.account_rules import AccountRules
from rustybt.finance.decimal import config_decimal
from rustybt.finance.execution import ExecutionSimulator, Fill
from rustybt.finance.kernel import ExecutionRules, step_bar
from rustybt.finance.ledger import Ledger, Position
from rustybt.finance.order import Order, OrderStatus, OrderType, TimeInForce, validate_order
from rustybt.live.brokers.base import BrokerAdapter
from rustybt.live.brokers.paper_store import ChangeLog
from rustybt.live.events import OrderAckEvent, OrderCancelEvent, OrderFillEvent, OrderRejectEvent

_ZERO = Decimal(0)


def _dec(name: str, value: Any) -> Decimal:
    return config_decimal("PaperBroker", name, value)


class PaperBroker(BrokerAdapter):
    """Simulated broker with realistic execution. Money is Decimal throughout."""

    name = "paper"
    #: The engine replays a bundle through a simulated venue (no market data stream).
    simulated = True
    #: In process: a submit it never registered can never arrive later.
    submit_expiry_seconds = 0.0

    def __init__(
        self,
        starting_cash: Decimal | int | str = Decimal("100000"),
        commission_model: Any = None,
        slippage_model: Any = None,
        order_latency_ms: int | float = 0,
        latency_jitter_pct: Decimal | int | str = Decimal("0"),
        volume_limit_pct: Decimal | str | None = None,
        seed: int = 0,
        allow_short: bool = False,
        state_path: str | Path | None = None,
        compact_every: int = 5_000,
        check_buying_power: bool = True,
    ) -> None:
        super().__init__()
        cash = _dec("starting_cash", starting_cash)
        if order_latency_ms < 0:
            raise ConfigError("PaperBroker order_latency_ms must be >= 0")
        jitter = _dec("latency_jitter_pct", latency_jitter_pct)
        if not 0 <= jitter <= 1:
            raise ConfigError("PaperBroker latency_jitter_pct must be within [0, 1], e.g. 0.2")
        vol = _dec("volume_limit_pct", volume_limit_pct) if volume_limit_pct is not None else None
        if vol is not None and not 0 < vol <= 1:
            raise ConfigError("PaperBroker volume_limit_pct must be within (0, 1], e.g. 0.025")
        self.starting_cash = cash
        self.order_latency_ms = order_latency_ms
        self.latency_jitter_pct = jitter
        self.volume_limit_pct = vol
        self.allow_short = allow_short
        self.rules = AccountRules(
            allow_short=bool(allow_short), check_buying_power=bool(check_buying_power)
        )
        self._rng = random.Random(seed)
        self._sim = ExecutionSimulator(slippage_model, commission_model, vol)
        self.ledger = Ledger(cash)
        self._orders: dict[str, Order] = {}  # broker id -> order (Order.id is the broker id)
        self._client_ids: dict[str, str] = {}  # broker id -> client id
        self._by_client: dict[str, str] = {}  # client id -> broker id
        self._eligible_at: dict[str, datetime] = {}
        self._open: dict[Asset, list[Order]] = {}
        self._last_price: dict[Asset, Decimal] = {}
        # Latency is measured on the market-data clock: the newest bar seen, so pushed
        # historical bars and replays fill exactly as live ticks would.
        self._market_now: datetime | None = None
        # Bars up to here were matched by an earlier process (a restarted engine replays
        # from its last processed bar): a venue never matches the same bar twice.
        self._seen_until: datetime | None = None
        self._seq = 0
        self._fill_seq = 0
        self.submissions: list[str] = []  # every client order id received, in order
        # broker id -> fills of that order, as reported in fill events (for crash recovery:
        # get_order_by_client_id returns them so the engine can apply each one by fill id)
        self._fills: dict[str, list[dict[str, Any]]] = {}
        self.state_path = Path(state_path) if state_path is not None else None
        self._log: ChangeLog | None = None
        if self.state_path is not None:
            if isinstance(compact_every, bool) or not isinstance(compact_every, int):
                raise ConfigError("PaperBroker compact_every must be an int >= 1, e.g. 5000")
            if compact_every < 1:
                raise ConfigError("PaperBroker compact_every must be an int >= 1, e.g. 5000")
            self._log = ChangeLog(self.state_path, compact_every)
            self._load_state()

    def set_cost_models(self, commission_model: Any = None, slippage_model: Any = None) -> None:
        """The strategy's ``set_commission``/``set_slippage``: same models as the backtest."""
        self._sim.set_models(slippage_model=slippage_model, commission_model=commission_model)

    def execution_rules(self) -> ExecutionRules:
        """Copies of this venue's execution simulator (slippage, commission, volume cap)
        and account rules, as they are now: the shadow engine fills by them."""
        return ExecutionRules(copy.deepcopy(self._sim), copy.deepcopy(self.rules))

    @property
    def market_now(self) -> datetime | None:
        """The newest bar time this venue has matched orders against (its clock)."""
        return self._market_now

    @property
    def is_persistent(self) -> bool:
        """True when the account outlives the process (``state_path``): checkpoints apply."""
        return self.state_path is not None

    # --- connection ---------------------------------------------------------------------
    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False
        if self._log is not None:
            # Leave a compact account behind (in a worker thread: never on the loop).
            await asyncio.to_thread(self._log.compact, self._scratch_snapshot, True)

    def _require_connected(self) -> None:
        if not self._connected:
            raise BrokerConnectionError("paper broker is not connected; call connect() first")

    # --- orders -------------------------------------------------------------------------
    async def submit_order(
        self,
        asset: Asset,
        amount: Decimal,
        order_type: str,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        client_order_id: str | None = None,
        time_in_force: str = "gtc",
    ) -> str:
        self._require_connected()
        otype = OrderType.parse(order_type) if isinstance(order_type, str) else order_type
        tif = TimeInForce.parse(time_in_force)
        validate_order(asset, amount, otype, limit_price, stop_price)
        if client_order_id is not None and client_order_id in self._by_client:
            raise OrderRejected(
                f"duplicate client order id {client_order_id!r}: the paper venue already has "
                f"it as {self._by_client[client_order_id]}"
            )
        self._check_account(asset, amount, otype, limit_price, stop_price)
        self._seq += 1
        broker_id = f"paper-{self._seq}"
        now = self._market_now or self._clock()
        order = Order(broker_id, asset, amount, otype, limit_price, stop_price, tif, now)
        order.transition(OrderStatus.SUBMITTED)
        cid = client_order_id or broker_id
        self._orders[broker_id] = order
        self._client_ids[broker_id] = cid
        self._by_client[cid] = broker_id
        self.submissions.append(cid)
        self._eligible_at[broker_id] = now + self._latency()
        self._open.setdefault(asset, []).append(order)
        self._record_submit(order, cid)
        self._emit(OrderAckEvent(cid, broker_id, now))
        return broker_id

    def _latency(self) -> timedelta:
        ms = Decimal(repr(self.order_latency_ms)) if self.order_latency_ms else _ZERO
        if ms and self.latency_jitter_pct:
            # jitter uniformly within ±pct, seeded: runs are reproducible
            u = Decimal(self._rng.randint(-10_000, 10_000)) / Decimal(10_000)
            ms = ms * (1 + u * self.latency_jitter_pct)
        return timedelta(microseconds=int(ms * 1000))

    def _check_account(
        self,
        asset: Asset,
        amount: Decimal,
        otype: OrderType,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
    ) -> None:
        """The account rules at submit (shared with the backtest); a refusal raises."""
        reason = self.rules.check_submit(
            self.ledger,
            chain.from_iterable(self._open.values()),
            asset,
            amount,
            otype,
            limit_price,
            stop_price,
            self._last_price.get,
        )
        if reason is not None:
            if reason.startswith("insufficient"):
                raise InsufficientFundsError(reason)
            raise OrderRejected(reason)

    async def cancel_order(
        self,
        broker_order_id: str | None,
        *,
        client_order_id: str | None = None,
        asset: Asset | None = None,
    ) -> None:
        self._require_connected()
        order = self._orders.get(broker_order_id) if broker_order_id else None
        if order is None and client_order_id is not None:
            order = self._orders.get(self._by_client.get(client_order_id, ""))
        if order is None:
            ref = broker_order_id or client_order_id
            raise OrderNotFound(f"paper broker has no order {ref!r}")
        if not order.is_open:
            return
        order.cancel("cancel requested")
        self._remove_open(order)
        self._record("order", order)
        # order.id, not broker_order_id: a cancel by client order id passes None.
        self._emit(
            OrderCancelEvent(self._client_ids[order.id], order.id, "cancelled", self._clock())
        )

    def _remove_open(self, order: Order) -> None:
        book = self._open.get(order.asset)
        if book and order in book:
            book.remove(order)
            if not book:
                del self._open[order.asset]

    # --- market data: matching -------------------------------------------------------------
    def on_market_data(self, bars: list[Bar]) -> None:
        """Match resting orders against new bars (called by the engine's feed).

        The matching is the shared per-bar step (:func:`rustybt.finance.kernel.step_bar`),
        the same function the backtest runs, with this venue as the account.
        """
        if not bars:
            return
        seen = self._seen_until
        last = self._last_price
        by_asset: dict[Asset, Bar] = {}
        newest = self._market_now
        for bar in bars:
            last[bar.asset] = bar.close
            if seen is not None and bar.dt <= seen:
                continue  # matched before the restart; its fills are already reported
            if newest is None or bar.dt > newest:
                newest = bar.dt
            by_asset[bar.asset] = bar
        self._market_now = newest
        step_bar(self, self._sim, self.rules, newest or bars[-1].dt, by_asset.get, last.get)

    # --- SimulatedAccount (what step_bar needs) -------------------------------------------
    @property
    def resting(self) -> dict[Asset, list[Order]]:
        return self._open

    def eligible(self, order: Order, bar: Bar) -> bool:
        return self._eligible_at[order.id] <= bar.dt

    def settle_fill(self, order: Order, fill: Fill, dt: datetime) -> None:
        asset = order.asset
        order.apply_fill(fill.amount, fill.price, fill.commission, dt)
        self.ledger.apply_fill(asset, fill.amount, fill.price, fill.commission)
        self._fill_seq += 1
        fill_id = f"{order.id}-f{self._fill_seq}"
        self._fills.setdefault(order.id, []).append(
            {
                "fill_id": fill_id,
                "amount": fill.amount,
                "price": fill.price,
                "commission": fill.commission,
                "dt": dt,
            }
        )
        final = not order.is_open
        if final:
            self._remove_open(order)
        self._record("fill", order, fill=self._fills[order.id][-1], fill_seq=self._fill_seq)
        self._emit(
            OrderFillEvent(
                self._client_ids[order.id],
                order.id,
                asset,
                fill.amount,
                fill.price,
                fill.commission,
                fill_id,
                dt,
                final,
            )
        )

    def settle_cancel(self, order: Order, reason: str, dt: datetime) -> None:
        self._expire(order, reason, dt)

    def settle_reject(self, order: Order, reason: str, dt: datetime) -> None:
        order.reject(reason)
        self._remove_open(order)
        self._record("order", order)
        self._emit(OrderRejectEvent(self._client_ids[order.id], order.id, reason, dt))

    def _expire(self, order: Order, reason: str, dt: datetime) -> None:
        """Cancel what is left of an order by venue rule (time in force)."""
        order.cancel(reason)
        self._remove_open(order)
        self._record("order", order)
        self._emit(OrderCancelEvent(self._client_ids[order.id], order.id, reason, dt))

    # --- queries ----------------------------------------------------------------------------
    async def get_account_info(self) -> dict[str, Decimal]:
        self._require_connected()
        led = self.ledger
        return {
            "cash": led.cash,
            "portfolio_value": led.portfolio_value,
            "buying_power": led.cash,
            "starting_cash": led.starting_cash,
        }

    async def get_positions(self) -> list[dict[str, Any]]:
        self._require_connected()
        return [
            {
                "asset": p.asset,
                "amount": p.amount,
                "average_price": p.cost_basis,
                "last_price": p.last_price,
            }
            for p in self.ledger.positions.values()
        ]

    def _order_dict(self, order: Order) -> dict[str, Any]:
        return {
            "order_id": order.id,
            "client_order_id": self._client_ids.get(order.id),
            "asset": order.asset,
            "amount": order.amount,
            "filled": order.filled,
            "order_type": order.order_type.value,
            "limit_price": order.limit_price,
            "stop_price": order.stop_price,
            "status": order.status.value,
            "avg_fill_price": order.avg_fill_price,
            "commission": order.commission,
        }

    async def get_open_orders(self) -> list[dict[str, Any]]:
        self._require_connected()
        return [self._order_dict(o) for book in self._open.values() for o in book]

    async def get_order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        """The order (open or closed) with this client id, with its ``fills``; None if the
        venue never received it."""
        self._require_connected()
        broker_id = self._by_client.get(client_order_id)
        if broker_id is None:
            return None
        out = self._order_dict(self._orders[broker_id])
        out["fills"] = [dict(f) for f in self._fills.get(broker_id, ())]
        return out

    async def get_current_price(self, asset: Asset) -> Decimal | None:
        return self._last_price.get(asset)

    async def subscribe_market_data(self, assets: list[Asset]) -> None:
        """The paper venue is fed by the engine's data feed; nothing to subscribe to."""

    async def get_next_market_data(self) -> dict | None:
        return None

    # --- persistence (the venue outlives the trading process) ----------------------------------
    def _record(self, kind: str, order: Order, **extra: Any) -> None:
        """Append one change (before the venue reports it); O(change)."""
        log = self._log
        if log is None:
            return
        change = {"t": kind, "order": order.to_dict(), "now": self._market_now, **extra}
        try:
            log.append(change)
        except OSError as exc:
            raise BrokerError(
                f"paper broker cannot write its state log {log.log_path}: {exc}; free disk "
                "space or fix permissions"
            ) from exc
        if log.due():
            log.compact(self._scratch_snapshot)

    def _record_submit(self, order: Order, cid: str) -> None:
        price = self._last_price.get(order.asset)
        self._record(
            "submit",
            order,
            cid=cid,
            seq=self._seq,
            eligible_at=self._eligible_at[order.id],
            px=None if price is None else str(price),
        )

    def _scratch_snapshot(self) -> dict[str, Any]:
        """Runs in the compaction worker: the account as the files describe it, read into
        a scratch broker (never the live one, which the event loop keeps changing)."""
        assert self.state_path is not None
        scratch = PaperBroker(starting_cash=self.starting_cash)
        scratch.state_path = self.state_path
        scratch._log = ChangeLog(self.state_path, read_live_log=False)
        scratch._load_state()
        return scratch._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        return {
            "version": 1,
            "applied_through": self._log.last_n if self._log is not None else 0,
            "seq": self._seq,
            "fill_seq": self._fill_seq,
            "market_now": self._market_now.isoformat() if self._market_now else None,
            "ledger": self.ledger.to_dict(),
            "orders": [o.to_dict() for o in self._orders.values()],
            "client_ids": self._client_ids,
            "eligible_at": {k: v.isoformat() for k, v in self._eligible_at.items()},
            "last_price": [[a.to_dict(), str(p)] for a, p in self._last_price.items()],
            "submissions": self.submissions,
            "fills": {
                bid: [
                    {
                        "fill_id": f["fill_id"],
                        "amount": str(f["amount"]),
                        "price": str(f["price"]),
                        "commission": str(f["commission"]),
                        "dt": f["dt"].isoformat() if f["dt"] is not None else None,
                    }
                    for f in fills
                ]
                for bid, fills in self._fills.items()
            },
        }

    def _load_state(self) -> None:
        log = self._log
        assert log is not None and self.state_path is not None
        try:
            state = log.read_snapshot()
            applied = 0
            if state is not None:
                self._load_snapshot(state)
                applied = int(state.get("applied_through", 0))
            last = applied
            for change in log.changes_after(applied):
                self._apply_change(change)
                last = change["n"]
            log.resume_numbering(last)
            self._seen_until = self._market_now
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            raise BrokerError(
                f"paper broker state file {self.state_path} is unreadable ({exc}); "
                "move it (and its .log files) away to start a fresh paper account"
            ) from exc

    def _load_snapshot(self, state: dict[str, Any]) -> None:
        self.ledger = Ledger.from_dict(state["ledger"])
        self._seq = int(state["seq"])
        self._fill_seq = int(state["fill_seq"])
        now = state.get("market_now")
        self._market_now = datetime.fromisoformat(now) if now else None
        self._client_ids = dict(state["client_ids"])
        self._by_client = {c: b for b, c in self._client_ids.items()}
        self._orders = {}
        self._open = {}
        for d in state["orders"]:
            order = Order.from_dict(d)
            self._orders[order.id] = order
            if order.is_open:
                self._open.setdefault(order.asset, []).append(order)
        self._eligible_at = {k: datetime.fromisoformat(v) for k, v in state["eligible_at"].items()}
        self._last_price = {asset_from_dict(a): Decimal(p) for a, p in state["last_price"]}
        self.submissions = list(state["submissions"])
        self._fills = {
            bid: [
                {
                    "fill_id": str(f["fill_id"]),
                    "amount": Decimal(f["amount"]),
                    "price": Decimal(f["price"]),
                    "commission": Decimal(f["commission"]),
                    "dt": datetime.fromisoformat(f["dt"]) if f.get("dt") else None,
                }
                for f in fills
            ]
            for bid, fills in state.get("fills", {}).items()
        }

    def _apply_change(self, change: dict[str, Any]) -> None:
        """Redo one logged change on a loading account."""
        order = Order.from_dict(change["order"])
        bid = order.id
        kind = change["t"]
        if kind == "submit":
            cid = str(change["cid"])
            self._orders[bid] = order
            self._client_ids[bid] = cid
            self._by_client[cid] = bid
            self.submissions.append(cid)
            self._seq = int(change["seq"])
            self._eligible_at[bid] = datetime.fromisoformat(change["eligible_at"])
            if change.get("px") is not None:
                self._last_price[order.asset] = Decimal(change["px"])
            if order.is_open:
                self._open.setdefault(order.asset, []).append(order)
        else:
            old = self._orders.get(bid)
            self._orders[bid] = order
            book = self._open.get(order.asset, [])
            i = next((k for k, o in enumerate(book) if o.id == bid), None) if old else None
            if i is not None:
                if order.is_open:
                    book[i] = order
                else:
                    del book[i]
                    if not book:
                        self._open.pop(order.asset, None)
            if kind == "fill":
                f = change["fill"]
                rec = {
                    "fill_id": str(f["fill_id"]),
                    "amount": Decimal(f["amount"]),
                    "price": Decimal(f["price"]),
                    "commission": Decimal(f["commission"]),
                    "dt": datetime.fromisoformat(f["dt"]) if f.get("dt") else None,
                }
                self.ledger.apply_fill(order.asset, rec["amount"], rec["price"], rec["commission"])
                self._fills.setdefault(bid, []).append(rec)
                self._fill_seq = int(change["fill_seq"])
        now = change.get("now")
        if now:
            dt = datetime.fromisoformat(now)
            if self._market_now is None or dt > self._market_now:
                self._market_now = dt

    # --- convenience for tests and the CLI --------------------------------------------------
    def positions_snapshot(self) -> dict[Asset, Position]:
        return dict(self.ledger.positions)

    def reset_price(self, asset: Asset, price: Decimal) -> None:
        """Seed a price (e.g. before the first bar) so orders can be costed."""
        if price <= 0:
            raise InvalidOrder(f"price for {asset.symbol} must be > 0")
        self._last_price[asset] = price
