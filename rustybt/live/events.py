"""Engine events and the priority queue that orders them.

Priority, highest first (lowest number): system error / breaker trip, order fill,
order ack/reject/cancel, scheduled trigger, market data. Ties keep arrival order via a
monotonically increasing sequence number, so a replay is deterministic. Events are
plain slotted classes: constructing one is on the hot path.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from typing import Any

from rustybt.assets import Asset
from rustybt.data.bar import Bar


class EventPriority(IntEnum):
    SYSTEM_ERROR = 0
    ORDER_FILL = 1
    ORDER_UPDATE = 2  # ack, reject, cancel
    SCHEDULED_TRIGGER = 3
    MARKET_DATA = 4


class Event:
    """Base class; subclasses set ``priority``."""

    __slots__ = ()
    priority: int = EventPriority.MARKET_DATA


@dataclass(slots=True)
class MarketDataEvent(Event):
    """Bars (or ticks as bars) for one timestamp; handle_data runs once per event."""

    dt: datetime
    bars: list[Bar]
    enqueued_ns: int = 0  # perf_counter_ns at enqueue, for tick-to-submit measurement

    priority = EventPriority.MARKET_DATA  # type: ignore[assignment]


@dataclass(slots=True)
class OrderAckEvent(Event):
    client_order_id: str
    broker_order_id: str
    dt: datetime | None = None

    priority = EventPriority.ORDER_UPDATE  # type: ignore[assignment]


@dataclass(slots=True)
class OrderFillEvent(Event):
    """A (partial) fill. ``fill_id`` is unique per fill so a replay is never applied twice."""

    client_order_id: str
    broker_order_id: str
    asset: Asset
    amount: Decimal  # signed: sells are negative
    price: Decimal
    commission: Decimal
    fill_id: str
    dt: datetime | None = None
    is_final: bool = False  # True when the order is now completely filled

    priority = EventPriority.ORDER_FILL  # type: ignore[assignment]


@dataclass(slots=True)
class OrderRejectEvent(Event):
    client_order_id: str
    broker_order_id: str | None
    reason: str
    dt: datetime | None = None

    priority = EventPriority.ORDER_UPDATE  # type: ignore[assignment]


@dataclass(slots=True)
class OrderCancelEvent(Event):
    client_order_id: str
    broker_order_id: str | None
    reason: str = ""
    dt: datetime | None = None

    priority = EventPriority.ORDER_UPDATE  # type: ignore[assignment]


@dataclass(slots=True)
class ScheduledTriggerEvent(Event):
    """A scheduler job fired; the engine runs ``callback`` on its loop."""

    callback: Callable[[], Any]
    job_id: str
    scheduled_time: datetime | None = None

    priority = EventPriority.SCHEDULED_TRIGGER  # type: ignore[assignment]


@dataclass(slots=True)
class SystemErrorEvent(Event):
    """An engine-internal failure; the engine shuts down gracefully after handling it."""

    error: str
    exception: BaseException | None = None
    fatal: bool = True

    priority = EventPriority.SYSTEM_ERROR  # type: ignore[assignment]


@dataclass(slots=True)
class CircuitBreakerTripEvent(Event):
    breaker_type: str
    reason: str

    priority = EventPriority.SYSTEM_ERROR  # type: ignore[assignment]


@dataclass(slots=True)
class BrokerConnectionEvent(Event):
    """The broker's order connection (session, user data stream) went down or came back.

    Down: the engine blocks new risk and alerts. Back: the adapter has resynced the open
    orders and fills it missed; the engine reconciles, which lifts the block when the
    positions agree.
    """

    connected: bool
    reason: str = ""

    priority = EventPriority.SYSTEM_ERROR  # type: ignore[assignment]


@dataclass(slots=True)
class AlertEvent(Event):
    """Something an operator must look at (e.g. HALT_AND_ALERT reconciliation)."""

    kind: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    priority = EventPriority.SYSTEM_ERROR  # type: ignore[assignment]


class EventQueue:
    """A priority queue of events for one asyncio loop, ties broken by arrival order.

    ``put_nowait`` is safe from the loop's thread; ``put_threadsafe`` from any thread.
    """

    __slots__ = ("_heap", "_seq", "_waiter", "_loop")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Event]] = []
        self._seq = itertools.count()
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def put_nowait(self, event: Event) -> None:
        heapq.heappush(self._heap, (event.priority, next(self._seq), event))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # The scheduler and the spec call ``put`` on the queue; alias it.
    put = put_nowait

    def put_threadsafe(self, event: Event) -> None:
        if self._loop is None:
            self.put_nowait(event)
        else:
            self._loop.call_soon_threadsafe(self.put_nowait, event)

    def get_nowait(self) -> Event | None:
        if self._heap:
            return heapq.heappop(self._heap)[2]
        return None

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds.

        ``None`` on timeout, or when :meth:`wake` interrupts the wait.
        """
        if not self._heap:
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            try:
                if timeout is None:
                    await self._waiter
                else:
                    try:
                        await asyncio.wait_for(self._waiter, timeout)
                    except TimeoutError:
                        return None
            finally:
                self._waiter = None
            if not self._heap:
                return None
        return heapq.heappop(self._heap)[2]

    def wake(self) -> None:
        """Interrupt a pending :meth:`get` (it returns None); safe from the loop thread."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pop_before(self, priority: int) -> Event | None:
        """The next event if it outranks ``priority`` (lower number), else None."""
        heap = self._heap
        if heap and heap[0][0] < priority:
            return heapq.heappop(heap)[2]
        return None

    def qsize(self) -> int:
        return len(self._heap)

    def empty(self) -> bool:
        return not self._heap

    def __len__(self) -> int:
        return len(self._heap)
