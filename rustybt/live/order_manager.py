"""Live order management: the blotter whose accepted orders are journaled, then sent.

Every accepted order is written to the order journal *before* ``submit_order`` is
called (DESIGN.md invariant 4), under a client order id that is unique across restarts
(``<strategy>-<session>-<seq>``). The submission starts eagerly inside ``order()`` and
continues on a task only if the adapter awaits the network, so the strategy's synchronous
``order()`` never waits on I/O and an in-process venue is reached with no loop turn.
Broker events (ack,
fill, cancel, reject) come back through :meth:`LiveOrderManager.on_fill` and friends; a
fill id already applied is ignored, so a replayed fill never counts twice.

A submit has three outcomes. Accepted: the adapter returned a broker id. Refused: it
raised ``OrderRejected``, ``InsufficientFundsError`` or ``RateLimited`` (the venue did
not take it). Anything else (``OrderStatusUnknown``, a connection error, a bug in the
adapter) is an *unknown outcome*: the venue may hold the order, so it stays open in
``OrderStatus.UNKNOWN``, counted at full size by ``order_target*`` and every risk limit,
and is resolved by asking the broker by client order id with bounded backoff (acks and
fills that arrive for it meanwhile apply as usual). It is never resubmitted. Past
``unknown_deadline_seconds`` the engine is told (``on_unknown_overdue``) so it can block
new risk on the asset and alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from rustybt.exceptions import (
    InsufficientFundsError,
    JournalError,
    OrderRejected,
    RateLimited,
)
from rustybt.finance.blotter import Blotter
from rustybt.finance.ledger import Ledger
from rustybt.finance.order import Order, OrderStatus
from rustybt.finance.risk_gate import RiskGate
from rustybt.live import crashpoints
from rustybt.live.audit import AuditLog
from rustybt.live.events import OrderAckEvent, OrderCancelEvent, OrderFillEvent, OrderRejectEvent

log = structlog.get_logger("rustybt.live")

#: A submit that raised one of these was refused: nothing is open at the venue. Every
#: other exception leaves the outcome unknown (fail safe: never assume a reject).
DEFINITIVE_REFUSALS: tuple[type[Exception], ...] = (
    OrderRejected,
    InsufficientFundsError,
    RateLimited,
)


class RecentIds:
    """A set of the most recent ``limit`` ids (oldest forgotten first).

    Fill ids are remembered so a replayed fill is never applied twice; venues replay
    recent fills (after a reconnect), so a bounded memory keeps a months-long session
    from growing without end.
    """

    __slots__ = ("_ids", "limit")

    def __init__(self, limit: int) -> None:
        self._ids: dict[str, None] = {}
        self.limit = limit

    def add(self, fill_id: str) -> None:
        ids = self._ids
        ids[fill_id] = None
        if len(ids) > self.limit:
            del ids[next(iter(ids))]

    def update(self, fill_ids: Any) -> None:
        for fill_id in fill_ids:
            self.add(fill_id)

    def __ior__(self, fill_ids: Any) -> RecentIds:
        self.update(fill_ids)
        return self

    def __contains__(self, fill_id: object) -> bool:
        return fill_id in self._ids

    def __iter__(self) -> Any:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


class LiveOrderManager(Blotter):
    """Order book + journal + asynchronous submission to a broker adapter."""

    def __init__(
        self,
        ledger: Ledger,
        risk_gate: RiskGate,
        broker: Any,
        strategy_name: str,
        session_id: str,
        clock: Callable[[], datetime | None],
        journal: Any = None,
        audit: AuditLog | None = None,
        max_closed_orders: int = 10_000,
    ) -> None:
        super().__init__(ledger, risk_gate, f"{strategy_name[:12]}-{session_id}", clock)
        self.broker = broker
        self.journal = journal
        self.audit = audit or AuditLog(None, session_id, strategy_name)
        self.strategy_name = strategy_name
        self._by_broker_id: dict[str, Order] = {}
        self._applied_fills = RecentIds(200_000)
        self._pending_cancel: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.errors = 0
        # A session may run for months: keep the most recent closed orders in memory (late
        # fills and get_order find them); older ones live on in the journal only.
        self.max_closed_orders = max_closed_orders
        self._closed_ids: deque[str] = deque()
        self.on_error: Callable[[str], None] | None = None
        self.on_success: Callable[[], None] | None = None
        self.submit_latencies_ns: list[int] | None = None  # benchmark hook
        self.last_event_enqueued_ns = 0
        # Skip building audit records at all when there is no audit file.
        self.on_risk_decision = self._audit_risk if self.audit.enabled else None
        self._asset_dicts: dict[Any, dict[str, Any]] = {}
        # Unknown-outcome orders: client order id -> monotonic time the submit was sent.
        self._unknown: dict[str, float] = {}
        self._overdue: set[str] = set()
        self._resolvers: dict[str, asyncio.Task[Any]] = {}
        self.unknown_poll_initial_seconds = 0.05
        self.unknown_poll_max_seconds = 2.0
        self.unknown_deadline_seconds = 30.0
        self.on_unknown_overdue: Callable[[Order], None] | None = None
        self.on_unknown_resolved: Callable[[Order], None] | None = None

    # --- audit ---------------------------------------------------------------------------
    def _audit_risk(self, order: Order, reason: str | None) -> None:
        self.audit.record(
            "order_intent",
            client_order_id=order.id,
            asset=order.asset.symbol,
            amount=order.amount,
            order_type=order.order_type.value,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
        )
        if reason is None:
            self.audit.record("risk_decision", client_order_id=order.id, decision="accept")
        else:
            self.audit.warning(
                "risk_decision", client_order_id=order.id, decision="reject", reason=reason
            )

    # --- sending -------------------------------------------------------------------------
    def _send(self, order: Order) -> None:
        journal = self.journal
        if journal is not None:
            # Write before send: the intent reaches the OS before the broker sees it.
            try:
                journal.record(
                    "intent",
                    order.id,
                    asset=self._asset_dict(order.asset),
                    amount=order.amount,
                    order_type=order.order_type.value,
                    limit_price=order.limit_price,
                    stop_price=order.stop_price,
                    tif=order.tif.value,
                    dt=order.created_dt,
                    strategy=self.strategy_name,
                )
            except JournalError as exc:
                # Not journalled means not sent; and no new risk until the journal works
                # again (fail closed). Cancels stay possible.
                reason = f"order journal unwritable, order not sent: {exc}"
                self.mark_rejected(order, reason)
                self.risk_gate.block(reason)
                self.audit.warning("journal_write_failed", client_order_id=order.id, error=str(exc))
                self._count_error(reason)
                return
            if crashpoints.ARMED:
                crashpoints.reached("after_intent")
        self._start(self._submit(order))

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` now, up to its first real wait; a task finishes it from there.

        An in-process venue (the paper broker) never waits, so the order reaches
        ``submit_order`` within the strategy's ``order()`` call, with no event-loop turn
        in between; a network adapter's first ``await`` hands the rest to the loop, so the
        strategy is never blocked. (Python 3.12's eager tasks do the same.)
        """
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return
        task = asyncio.get_running_loop().create_task(_finish(coro, waiting_on))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _retired(self, order: Order) -> None:
        closed = self._closed_ids
        closed.append(order.id)
        while len(closed) > self.max_closed_orders:
            old = self.orders.pop(closed.popleft(), None)
            if old is not None and old.broker_order_id is not None:
                self._by_broker_id.pop(old.broker_order_id, None)

    def _asset_dict(self, asset: Any) -> dict[str, Any]:
        d = self._asset_dicts.get(asset)
        if d is None:
            d = self._asset_dicts[asset] = asset.to_dict()
        return d

    async def _submit(self, order: Order) -> None:
        if self.submit_latencies_ns is not None:
            self.submit_latencies_ns.append(time.perf_counter_ns() - self.last_event_enqueued_ns)
        sent = time.monotonic()
        try:
            broker_id = await self.broker.submit_order(
                order.asset,
                order.amount,
                order.order_type.value,
                order.limit_price,
                order.stop_price,
                client_order_id=order.id,
                time_in_force=order.tif.value,
            )
        except DEFINITIVE_REFUSALS as exc:  # the venue did not take it
            reason = f"{type(exc).__name__}: {exc}"
            if self.journal is not None:
                self.journal.record("reject", order.id, reason=reason)
            self.audit.warning("order_rejected", client_order_id=order.id, reason=reason)
            self.mark_rejected(order, reason)
            self._count_error(reason)
            return
        except Exception as exc:  # timeout, lost connection, adapter bug: never a reject
            await self._outcome_unknown(order, exc, sent)
            return
        if crashpoints.ARMED:
            crashpoints.reached("after_submit")
        order.broker_order_id = broker_id
        self._by_broker_id[broker_id] = order
        if order.status is OrderStatus.NEW:
            order.transition(OrderStatus.SUBMITTED)
        if self.on_success is not None:
            self.on_success()
        if self.journal is not None:
            self.journal.record("submitted", order.id, broker_order_id=broker_id)
        self.audit.record("order_submitted", client_order_id=order.id, broker_order_id=broker_id)
        if order.id in self._pending_cancel and order.is_open:
            self._pending_cancel.discard(order.id)
            await self._cancel_at_broker(order, "cancel requested before submission completed")

    # --- unknown submit outcomes -----------------------------------------------------------
    async def _outcome_unknown(self, order: Order, exc: BaseException, sent: float) -> None:
        reason = f"submit outcome unknown ({type(exc).__name__}: {exc})"
        self._count_error(reason)
        if order.status is not OrderStatus.NEW:
            # An ack or a fill for it arrived before the error: the venue has the order
            # and only the reply was lost.
            self.audit.warning("submit_reply_lost", client_order_id=order.id, error=reason)
            return
        order.transition(OrderStatus.UNKNOWN, reason)
        if self.journal is not None:
            try:
                self.journal.record("submit_unknown", order.id, error=reason)
            except JournalError as jexc:
                self.audit.warning(
                    "journal_write_failed", client_order_id=order.id, error=str(jexc)
                )
        self.audit.warning(
            "order_outcome_unknown",
            client_order_id=order.id,
            asset=order.asset.symbol,
            amount=order.amount,
            error=reason,
        )
        log.warning("order_outcome_unknown", client_order_id=order.id, error=reason)
        self.track_unknown(order, sent)
        # Ask at once: an in-process venue answers within this submission (a replay stays
        # deterministic); a network venue is then asked again with backoff.
        if not await self._poll_unknown(order):
            self._start_resolver(order)

    def track_unknown(self, order: Order, since: float | None = None) -> None:
        """Resolve ``order`` (status UNKNOWN) by client order id from now on."""
        self._unknown.setdefault(order.id, time.monotonic() if since is None else since)

    def _start_resolver(self, order: Order) -> None:
        if order.id in self._resolvers:
            return
        task = asyncio.get_running_loop().create_task(self._resolve_unknown(order))
        self._resolvers[order.id] = task
        task.add_done_callback(lambda _t, coid=order.id: self._resolvers.pop(coid, None))

    def start_resolvers(self) -> None:
        """Start resolving every tracked unknown-outcome order (e.g. after a restart)."""
        for coid in list(self._unknown):
            order = self.orders.get(coid)
            if order is not None:
                self._start_resolver(order)

    async def _resolve_unknown(self, order: Order) -> None:
        delay = self.unknown_poll_initial_seconds
        since = self._unknown.get(order.id, time.monotonic())
        while True:
            if (
                order.id not in self._overdue
                and time.monotonic() - since >= self.unknown_deadline_seconds
            ):
                self._overdue.add(order.id)
                self.audit.warning(
                    "order_outcome_unknown_overdue",
                    client_order_id=order.id,
                    asset=order.asset.symbol,
                    seconds=self.unknown_deadline_seconds,
                )
                if self.on_unknown_overdue is not None:
                    self.on_unknown_overdue(order)
            await asyncio.sleep(delay)
            if await self._poll_unknown(order):
                return
            delay = min(delay * 2, self.unknown_poll_max_seconds)

    async def _poll_unknown(self, order: Order) -> bool:
        """Ask the broker about an unknown-outcome order once; True when it is settled."""
        if order.status is not OrderStatus.UNKNOWN:
            self._settle_unknown(order)
            return True
        try:
            info = await self.broker.get_order_by_client_id(order.id)
        except Exception as exc:
            log.info("unknown_order_poll_failed", client_order_id=order.id, error=repr(exc))
            return False
        if info is None:
            # The venue does not know it (yet): a request can still be on its way. Only
            # an adapter whose venue drops requests older than a window can conclude.
            expiry = getattr(self.broker, "submit_expiry_seconds", None)
            since = self._unknown.get(order.id, 0.0)
            if (
                order.status is OrderStatus.UNKNOWN
                and expiry is not None
                and time.monotonic() - since >= expiry
            ):
                reason = "the venue never received it (unknown submit outcome resolved)"
                self.mark_rejected(order, reason)
                self._journal_resolved(order, "not_at_broker")
                self.audit.warning(
                    "order_resolved", client_order_id=order.id, outcome="not_at_broker"
                )
        else:
            self.apply_broker_report(order, info)
            self._journal_resolved(order, str(info.get("status") or "unknown"))
            self.audit.record(
                "order_resolved",
                client_order_id=order.id,
                outcome=str(info.get("status") or ""),
                local_status=order.status.value,
            )
        if order.status is OrderStatus.UNKNOWN:
            return False
        self._settle_unknown(order)
        if order.id in self._pending_cancel and order.is_open:
            self._pending_cancel.discard(order.id)
            await self._cancel_at_broker(order, "cancel requested while the outcome was unknown")
        return True

    def _journal_resolved(self, order: Order, outcome: str) -> None:
        if self.journal is not None:
            self.journal.record(
                "resolved",
                order.id,
                outcome=outcome,
                status=journal_status(order),
                broker_order_id=order.broker_order_id,
            )

    def _settle_unknown(self, order: Order) -> None:
        if self._unknown.pop(order.id, None) is None:
            return
        self._overdue.discard(order.id)
        log.info("order_outcome_resolved", client_order_id=order.id, status=order.status.value)
        if self.on_unknown_resolved is not None:
            self.on_unknown_resolved(order)

    def _event_settles(self, order: Order) -> None:
        """A broker event for an unknown-outcome order is the venue's answer."""
        if order.id in self._unknown and order.status is not OrderStatus.UNKNOWN:
            self._settle_unknown(order)

    def unknown_orders(self) -> list[dict[str, Any]]:
        """Orders whose submit outcome is still unknown (for ``get_status()``)."""
        now = time.monotonic()
        out = []
        for coid, since in self._unknown.items():
            order = self.orders.get(coid)
            if order is None:
                continue
            out.append(
                {
                    "client_order_id": coid,
                    "asset": order.asset.symbol,
                    "amount": order.amount,
                    "seconds": round(now - since, 3),
                    "overdue": coid in self._overdue,
                }
            )
        return out

    async def stop_resolvers(self) -> None:
        tasks = list(self._resolvers.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- what the broker reports about one order --------------------------------------------
    def apply_broker_report(self, order: Order, info: dict[str, Any]) -> None:
        """Adopt the broker's view of ``order`` (``get_order_by_client_id`` shape).

        Its broker id; fills we have not applied (each venue fill id once, or one
        aggregate fill when the venue gives only totals, priced so the order's notional
        matches the venue's average); a terminal status. Nothing is ever resubmitted.
        """
        bid = info.get("order_id")
        if bid is not None:
            bid = str(bid)
            order.broker_order_id = bid
            self._by_broker_id[bid] = order
        if order.status is OrderStatus.NEW or order.status is OrderStatus.UNKNOWN:
            order.transition(OrderStatus.SUBMITTED)
        fills = info.get("fills")
        if fills is not None:
            for f in self._fills_not_yet_counted(order, info, fills):
                fid = str(f["fill_id"])
                amount = Decimal(f["amount"])
                if amount and (amount < 0) != (order.amount < 0):
                    amount = abs(amount).copy_sign(order.amount)
                self.settle_reported_fill(
                    order, fid, amount, Decimal(f["price"]), Decimal(f.get("commission") or 0)
                )
        else:
            missing = Decimal(info.get("filled") or 0) - order.filled
            avg = info.get("avg_fill_price")
            if missing != 0 and avg is not None:
                done_value = (order.avg_fill_price or Decimal(0)) * abs(order.filled)
                price = (Decimal(avg) * abs(Decimal(info["filled"])) - done_value) / abs(missing)
                charged = Decimal(info.get("commission") or 0)
                commission = max(Decimal(0), charged - order.commission)
                self.settle_reported_fill(
                    order,
                    f"{order.broker_order_id}-recovered-{info['filled']}",
                    missing,
                    price,
                    commission,
                )
            elif missing != 0:
                self.audit.warning(
                    "recovered_fill_without_price",
                    client_order_id=order.id,
                    missing=missing,
                    hint="reconciliation will report the position difference",
                )
        status = str(info.get("status") or "").lower()
        if order.is_open and status in ("cancelled", "canceled", "expired"):
            self.mark_cancelled(order, f"broker reports {status}")
        elif order.is_open and status == "rejected":
            self.mark_rejected(order, "broker reports rejected")
        if self._unknown:
            self._event_settles(order)

    def _fills_not_yet_counted(
        self, order: Order, info: dict[str, Any], fills: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The venue's fills of ``order`` that the ledger does not hold yet.

        Fill ids we know are skipped. After a machine crash cut the journal's tail, a
        checkpoint may hold fills whose ids were only in the lost lines: the order's
        filled amount says how many of the unknown ones are new, the newest ones (a venue
        lists fills in order)."""
        unknown = [f for f in fills if str(f["fill_id"]) not in self._applied_fills]
        total = info.get("filled")
        if not unknown or total is None:
            return unknown
        missing = abs(Decimal(total)) - abs(order.filled)
        keep: list[dict[str, Any]] = []
        counted = Decimal(0)
        for f in reversed(unknown):
            if counted >= missing:
                break
            keep.append(f)
            counted += abs(Decimal(f["amount"]))
        if len(keep) < len(unknown):
            self.audit.warning(
                "recovered_fills_already_counted",
                client_order_id=order.id,
                fill_ids=[str(f["fill_id"]) for f in unknown[: len(unknown) - len(keep)]],
                hint="the checkpoint had applied them; their journal lines were lost",
            )
        return keep[::-1]

    def settle_reported_fill(
        self, order: Order, fill_id: str, amount: Decimal, price: Decimal, commission: Decimal
    ) -> None:
        """Journal, then apply, a fill learnt by asking the broker (not from an event)."""
        if self.journal is not None:
            self.journal.record(
                "fill",
                order.id,
                fill_id=fill_id,
                amount=amount,
                price=price,
                commission=commission,
                dt=None,
                recovered=True,
            )
        self._applied_fills.add(fill_id)
        if order.is_open:
            try:
                self.apply_fill(order, amount, price, commission)
                return
            except Exception:
                pass  # does not fit the order: still the venue's truth, settle below
        self.ledger.apply_fill(order.asset, amount, price, commission)
        self.fill_count += 1

    def _count_error(self, reason: str) -> None:
        self.errors += 1
        if self.on_error is not None:
            self.on_error(reason)

    # --- cancelling ----------------------------------------------------------------------
    def _request_cancel(self, order: Order, reason: str) -> None:
        if self.journal is not None:
            self.journal.record("cancel_requested", order.id, reason=reason)
        self.audit.record("cancel_requested", client_order_id=order.id, reason=reason)
        if order.broker_order_id is None:
            self._pending_cancel.add(order.id)
            return
        self._start(self._cancel_at_broker(order, reason))

    async def _cancel_at_broker(self, order: Order, reason: str) -> None:
        try:
            await self.broker.cancel_order(
                order.broker_order_id, client_order_id=order.id, asset=order.asset
            )
        except Exception as exc:
            self.audit.warning(
                "cancel_failed", client_order_id=order.id, error=f"{type(exc).__name__}: {exc}"
            )
            self._count_error(f"cancel failed: {exc}")

    async def drain(self) -> None:
        """Wait for in-flight submissions and cancels (used at shutdown and in replays)."""
        if self._tasks:
            # One loop turn completes submissions to a simulated venue; only a real
            # network round trip needs the heavier gather.
            await asyncio.sleep(0)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- broker events -------------------------------------------------------------------
    def _find(self, client_order_id: str, broker_order_id: str | None) -> Order | None:
        order = self.orders.get(client_order_id)
        if order is None and broker_order_id is not None:
            order = self._by_broker_id.get(broker_order_id)
        return order

    def on_ack(self, event: OrderAckEvent) -> None:
        order = self._find(event.client_order_id, event.broker_order_id)
        if order is None:
            self.audit.warning("unknown_order_ack", client_order_id=event.client_order_id)
            return
        if order.broker_order_id is None:
            order.broker_order_id = event.broker_order_id
            self._by_broker_id[event.broker_order_id] = order
        if order.status is OrderStatus.NEW or order.status is OrderStatus.UNKNOWN:
            order.transition(OrderStatus.SUBMITTED)
            if self._unknown:
                self._event_settles(order)
        if self.journal is not None:
            self.journal.record("ack", order.id, broker_order_id=event.broker_order_id)
        self.audit.record(
            "broker_ack", client_order_id=order.id, broker_order_id=event.broker_order_id
        )

    def on_fill(self, event: OrderFillEvent) -> bool:
        """Apply a fill once; returns False for a duplicate or unknown fill."""
        if event.fill_id in self._applied_fills:
            return False
        order = self._find(event.client_order_id, event.broker_order_id)
        if order is None:
            self.audit.warning(
                "unknown_order_fill", client_order_id=event.client_order_id, fill_id=event.fill_id
            )
            return False
        if order.broker_order_id is None:
            order.broker_order_id = event.broker_order_id
            self._by_broker_id[event.broker_order_id] = order
        # Journal the broker's truth first, then settle it.
        if self.journal is not None:
            self.journal.record(
                "fill",
                order.id,
                fill_id=event.fill_id,
                amount=event.amount,
                price=event.price,
                commission=event.commission,
                dt=event.dt,
            )
        if order.is_open:
            self.apply_fill(order, event.amount, event.price, event.commission, event.dt)
        else:
            # The venue filled an order we already consider closed (a fill that raced a
            # cancel): the broker is the truth about what happened, so settle the ledger
            # and flag it loudly.
            self.ledger.apply_fill(order.asset, event.amount, event.price, event.commission)
            self.fill_count += 1
            self.audit.warning(
                "fill_after_terminal_state", client_order_id=order.id, status=order.status.value
            )
        self._applied_fills.add(event.fill_id)
        if self._unknown:
            self._event_settles(order)
        self.audit.record(
            "fill",
            client_order_id=order.id,
            fill_id=event.fill_id,
            amount=event.amount,
            price=event.price,
            commission=event.commission,
        )
        return True

    def on_cancel(self, event: OrderCancelEvent) -> None:
        order = self._find(event.client_order_id, event.broker_order_id)
        if order is None:
            return
        if self.journal is not None:
            self.journal.record("cancel", order.id, reason=event.reason)
        self.audit.record("order_cancelled", client_order_id=order.id, reason=event.reason)
        self.mark_cancelled(order, event.reason)
        if self._unknown:
            self._event_settles(order)

    def on_broker_reject(self, event: OrderRejectEvent) -> None:
        """A reject from the venue. (Not ``on_reject``: that name is the Blotter's
        risk-refusal callback attribute, which would shadow this method.)"""
        order = self._find(event.client_order_id, event.broker_order_id)
        if order is None:
            return
        if self.journal is not None:
            self.journal.record("reject", order.id, reason=event.reason)
        self.audit.warning("order_rejected", client_order_id=order.id, reason=event.reason)
        self.mark_rejected(order, event.reason)
        if self._unknown:
            self._event_settles(order)
        self._count_error(event.reason)

    # --- recovery ------------------------------------------------------------------------
    def adopt(self, order: Order, applied_fill_ids: set[str] | None = None) -> None:
        """Take back an order known from a checkpoint or the journal (no resubmission)."""
        self.orders[order.id] = order
        if order.broker_order_id:
            self._by_broker_id[order.broker_order_id] = order
        if order.is_open:
            self._add_open(order)
            if order.status is OrderStatus.UNKNOWN:
                self.track_unknown(order)
        if applied_fill_ids:
            self._applied_fills |= applied_fill_ids

    def applied_fill_ids(self) -> set[str]:
        return set(self._applied_fills)

    def open_amount_value(self) -> Decimal:
        total = Decimal(0)
        for o in self.iter_open_orders():
            total += abs(o.open_amount)
        return total


def journal_status(order: Order) -> str:
    """The journal's status word for ``order`` (what a later replay should adopt)."""
    st = order.status
    if st is OrderStatus.FILLED:
        return "filled"
    if st is OrderStatus.PARTIALLY_FILLED:
        return "partially_filled"
    if st is OrderStatus.REJECTED:
        return "rejected"
    if st in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
        return "cancelled"
    if st is OrderStatus.UNKNOWN:
        return "submitted"
    return "acked"


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive a coroutine that :meth:`LiveOrderManager._start` began, to its end.

    ``waiting_on`` is what the coroutine yielded: an asyncio future it awaits, or ``None``
    for a bare yield to the loop (``asyncio.sleep(0)``).
    """
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)
            else:
                # The coroutine's own await flagged the future as blocking; the task
                # protocol expects to see that flag set by the awaiting side, so clear
                # it and await the future from here.
                waiting_on._asyncio_future_blocking = False
                await waiting_on
        except BaseException as exc:  # cancellation or the awaited future's error
            try:
                waiting_on = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return
