"""What the engine's stream supervisor asks of a market-data stream, whatever carries it.

:class:`MarketDataStream` is the interface shared by the venue websocket adapters
(:class:`~rustybt.live.streaming.base.WebSocketStreamAdapter`) and the Interactive Brokers
real-time bars (:class:`~rustybt.live.streaming.ib.IBRealTimeBarStream`), so both go
through one supervisor and one bar builder: connection state and health, subscriptions,
ticks and klines out through ``on_tick``/``on_kline``, proof of liveness for closing a bar
on time, and the REST backfill of missed bars (when the source has one).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from rustybt.assets import Asset
from rustybt.live.streaming.models import KlineData


class MarketDataStream(ABC):
    """A source of ticks and klines the engine can own (see the module docstring).

    Implementations carry ``venue``, ``url``, ``config`` (a ``StreamConfig``),
    ``state``, ``failed``, ``last_error``, ``stats``, ``connected_at``,
    ``last_event_at`` (venue time up to which data has arrived), ``last_message_at``
    (wall time of the last sign of life) and the ``on_tick``/``on_kline``/``on_state``
    callbacks.
    """

    venue: ClassVar[str] = ""
    #: Its klines are whole one-minute bars (a venue's ``kline_1m``), preferred over
    #: trades; False for shorter bars that are aggregated into the strategy's bars.
    KLINES_ARE_BARS: ClassVar[bool] = True
    #: Missed bars can be fetched (``fetch_klines``); False: they are recorded as gaps.
    CAN_BACKFILL: ClassVar[bool] = True

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def subscribe(self, symbols: Sequence[str | Asset], channels: Sequence[str]) -> None: ...

    @abstractmethod
    async def disconnect(self) -> None: ...

    @abstractmethod
    async def fetch_klines(
        self, symbol: str | Asset, start: datetime, end: datetime
    ) -> list[KlineData]: ...

    @abstractmethod
    def live_through(self, end: datetime) -> bool:
        """True once everything the venue timed before ``end`` has been received."""

    @abstractmethod
    def poke(self) -> None:
        """Ask for a sign of life now (its answer can prove :meth:`live_through`)."""

    @abstractmethod
    def map_asset(self, venue_symbol: str, asset: Asset) -> None: ...

    @abstractmethod
    def venue_symbol(self, asset: Asset | str) -> str: ...

    def check_interval(self, interval: timedelta) -> None:  # noqa: B027 - optional check
        """Raise ``ConfigError`` when bars of ``interval`` cannot be built from this source."""

    def status_extra(self) -> dict[str, Any]:
        return {}
