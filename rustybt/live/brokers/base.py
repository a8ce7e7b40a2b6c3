"""The broker adapter contract every venue implements (spec: ``BrokerAdapter``).

Return shapes are fixed by DESIGN.md ("Broker adapter contract") so that the engine, the
reconciler and every adapter agree: all numbers ``Decimal``, ``asset`` an
:class:`~rustybt.assets.Asset`, amounts signed (sell/short < 0), times tz-aware UTC.

Order events (ack, partial fill, fill, cancel, reject) reach the engine through the
handler installed with :meth:`BrokerAdapter.set_order_event_handler`; an adapter calls
``self._emit(event)`` for each, whenever it learns of it — including fills that arrive
between bars.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.finance.kernel import ExecutionRules
from rustybt.live.events import Event


@dataclass(frozen=True)
class Capabilities:
    """What a venue (one market type) supports: the adapter refuses anything else before
    sending, and the venue conformance suite reads it to choose what to test."""

    order_types: frozenset[str]  # subset of market, limit, stop, stop_limit
    time_in_force: frozenset[str]  # subset of gtc, ioc, fok, day
    positions_from: str  # "balances" (spot) or "positions" (derivatives)
    partial_fills: bool = True
    cancel_by_client_id: bool = True
    lookup_closed_by_client_id: bool = True
    shorting: bool = False


class BrokerAdapter(ABC):
    """Abstract broker. Subclasses implement the abstract methods."""

    name: str = "broker"
    #: Seconds after which a submit request the venue has not seen can never be executed
    #: (e.g. a venue that drops requests older than a receive window). When set, an order
    #: whose submit outcome is unknown and that ``get_order_by_client_id`` still does not
    #: find this long after sending is resolved as never received; ``None`` (unknown)
    #: keeps such an order open, blocking its asset, until the venue reports it.
    submit_expiry_seconds: float | None = None

    def __init__(self) -> None:
        self._event_handler: Callable[[Event], None] | None = None
        self._clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._connected = False

    # --- engine wiring ------------------------------------------------------------------
    def set_order_event_handler(self, handler: Callable[[Event], None] | None) -> None:
        """Install the callable that receives every order event (the engine's queue)."""
        self._event_handler = handler

    def set_clock(self, clock: Callable[[], datetime]) -> None:
        """Use the engine's clock (simulated time in a replay, wall time live)."""
        self._clock = clock

    def _emit(self, event: Event) -> None:
        handler = self._event_handler
        if handler is not None:
            handler(event)

    @property
    def is_connected(self) -> bool:
        return self._connected

    # --- the spec's interface -------------------------------------------------------------
    @abstractmethod
    async def connect(self) -> None:
        """Establish the broker connection."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Disconnect from the broker."""

    @abstractmethod
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
        """Submit an order; returns the broker's order id.

        ``client_order_id`` goes to the venue so the order can be found after a crash;
        ``time_in_force`` is one of gtc, day, ioc, fok.

        Errors: a definitive refusal raises ``OrderRejected``, ``InsufficientFundsError``
        or ``RateLimited`` (not processed). A timeout, dropped connection or 5xx after the
        request left raises ``OrderStatusUnknown``; the engine treats any other exception
        the same way (unknown outcome, resolved by client order id, never resent blind).
        """

    @abstractmethod
    async def cancel_order(
        self,
        broker_order_id: str | None,
        *,
        client_order_id: str | None = None,
        asset: Asset | None = None,
    ) -> None:
        """Cancel an order by broker id, or by client order id (and asset) after a restart.

        Venues that key cancels by symbol need ``asset``; after a crash the broker id may be
        unknown locally, so ``client_order_id`` alone must be enough where the venue allows.
        """

    @abstractmethod
    async def get_account_info(self) -> dict[str, Decimal]:
        """``{"cash", "portfolio_value", "buying_power", ...}``."""

    @abstractmethod
    async def get_positions(self) -> list[dict[str, Any]]:
        """``[{"asset", "amount", "average_price", "last_price"}, ...]``."""

    @abstractmethod
    async def get_open_orders(self) -> list[dict[str, Any]]:
        """``[{"order_id", "client_order_id", "asset", "amount", "filled", "order_type",
        "limit_price", "stop_price", "status"}, ...]``."""

    @abstractmethod
    async def subscribe_market_data(self, assets: list[Asset]) -> None:
        """Subscribe to real-time market data."""

    @abstractmethod
    async def get_next_market_data(self) -> dict | None:
        """Next market data tick, or None when there is none (yet)."""

    # --- additions the engine relies on ----------------------------------------------------
    async def get_current_price(self, asset: Asset) -> Decimal | None:
        """Last known trade price of ``asset``; None when unknown."""
        return None

    async def get_order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        """The broker's view of an order by our client order id (open or closed).

        Used after a crash to resolve an in-flight order without resubmitting it. The
        default looks through open orders; adapters whose venue can query closed orders by
        client id override it. Returns the open-order shape plus ``avg_fill_price`` and
        ``commission`` when known, or None when the broker never saw the id.
        """
        for order in await self.get_open_orders():
            if order.get("client_order_id") == client_order_id:
                return order
        return None

    def on_market_data(self, bars: list[Any]) -> None:  # noqa: B027 - optional hook
        """Simulated venues match resting orders against each bar here; real ones ignore it."""

    def execution_rules(self) -> ExecutionRules | None:
        """A simulated venue's fill rules (execution simulator and account rules), as
        copies that share nothing with the venue: what a simulated twin of it needs (the
        shadow engine fills by them). ``None`` for a real venue, whose fills no model
        describes."""
        return None
