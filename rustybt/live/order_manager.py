"""Live order management: the blotter whose accepted orders are journaled, then sent.

Every accepted order is written to the order journal *before* ``submit_order`` is
called (DESIGN.md invariant 4), under a client order id that is unique across restarts
(``<strategy>-<session>-<seq>``). The submission starts eagerly inside ``order()`` and
continues on a task only if the adapter awaits the network, so the strategy's synchronous
``order()`` never waits on I/O and an in-process venue is reached with no loop turn.
Broker events (ack,
fill, cancel, reject) come back through :meth:`LiveOrderManager.on_fill` and friends; a
fill id already applied is ignored, so a replayed fill never counts twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import datetime
from decimal import Decimal
from typing import Any

from rustybt.exceptions import BrokerError, InsufficientFundsError, JournalError, RustyBTError
from rustybt.finance.blotter import Blotter
from rustybt.finance.ledger import Ledger
from rustybt.finance.order import Order, OrderStatus
from rustybt.finance.risk_gate import RiskGate
from rustybt.live.audit import AuditLog
from rustybt.live.events import OrderAckEvent, OrderCancelEvent, OrderFillEvent, OrderRejectEvent


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
        self.submit_latencies_ns: list[int] | None = None  # benchmark hook
        self.last_event_enqueued_ns = 0
        # Skip building audit records at all when there is no audit file.
        self.on_risk_decision = self._audit_risk if self.audit.enabled else None
        self._asset_dicts: dict[Any, dict[str, Any]] = {}

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
        except Exception as exc:  # a broker refusal, or a broken adapter: never fatal
            known = isinstance(exc, InsufficientFundsError | BrokerError | RustyBTError)
            reason = f"{'' if known else 'submit failed: '}{type(exc).__name__}: {exc}"
            if self.journal is not None:
                self.journal.record("reject", order.id, reason=reason)
            self.audit.warning(
                "order_rejected" if known else "order_submit_error",
                client_order_id=order.id,
                reason=reason,
            )
            self.mark_rejected(order, reason)
            self._count_error(reason)
            return
        order.broker_order_id = broker_id
        self._by_broker_id[broker_id] = order
        if order.status is OrderStatus.NEW:
            order.transition(OrderStatus.SUBMITTED)
        if self.journal is not None:
            self.journal.record("submitted", order.id, broker_order_id=broker_id)
        self.audit.record("order_submitted", client_order_id=order.id, broker_order_id=broker_id)
        if order.id in self._pending_cancel and order.is_open:
            self._pending_cancel.discard(order.id)
            await self._cancel_at_broker(order, "cancel requested before submission completed")

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
            await self.broker.cancel_order(order.broker_order_id)
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
        if order.status is OrderStatus.NEW:
            order.transition(OrderStatus.SUBMITTED)
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
        self._count_error(event.reason)

    # --- recovery ------------------------------------------------------------------------
    def adopt(self, order: Order, applied_fill_ids: set[str] | None = None) -> None:
        """Take back an order known from a checkpoint or the journal (no resubmission)."""
        self.orders[order.id] = order
        if order.broker_order_id:
            self._by_broker_id[order.broker_order_id] = order
        if order.is_open:
            self._add_open(order)
        if applied_fill_ids:
            self._applied_fills |= applied_fill_ids

    def applied_fill_ids(self) -> set[str]:
        return set(self._applied_fills)

    def open_amount_value(self) -> Decimal:
        total = Decimal(0)
        for o in self.iter_open_orders():
            total += abs(o.open_amount)
        return total


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
