"""What a market-data stream carries and how it behaves: the spec's ``StreamConfig``,
``TickData`` and ``ConnectionState``, plus the closed venue candle (``KlineData``) and
the record of a hole in the data (``DataGap``).

Money is ``Decimal`` parsed straight from the venue's strings; times are tz-aware UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from rustybt.assets import Asset
from rustybt.exceptions import ConfigError, MalformedVenueMessage


class ConnectionState(Enum):
    """Where a stream's websocket connection is."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"


def _positive(name: str, value: Any, *, integer: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ConfigError(f"StreamConfig.{name} must be a number, got {value!r}")
    if integer and int(value) != value:
        raise ConfigError(f"StreamConfig.{name} must be a whole number, got {value!r}")
    if not math.isfinite(float(value)) or value <= 0:
        raise ConfigError(f"StreamConfig.{name} must be > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """How a stream keeps itself alive (all times in seconds).

    * ``heartbeat_interval``: send the venue's heartbeat (ping) this often.
    * ``heartbeat_timeout``: reconnect when nothing at all arrived for this long.
    * ``reconnect_delay``: first wait before reconnecting; doubles per failed attempt
      (capped at ``max_reconnect_delay``), each wait with up to ``jitter`` × itself of
      random extra so that many clients do not reconnect in lockstep.
    * ``max_reconnect_attempts``: consecutive failed attempts before the stream gives
      up (state DISCONNECTED, ``failed`` set; an engine blocks new risk and alerts).
    * ``max_consecutive_errors``: malformed messages in a row that force a reconnect.
    """

    heartbeat_interval: float = 30
    heartbeat_timeout: float = 90
    reconnect_delay: float = 5
    max_reconnect_attempts: int = 10
    max_consecutive_errors: int = 5
    max_reconnect_delay: float = 60
    jitter: float = 0.25
    rest_timeout: float = 10

    def __post_init__(self) -> None:
        _positive("heartbeat_interval", self.heartbeat_interval)
        _positive("heartbeat_timeout", self.heartbeat_timeout)
        _positive("reconnect_delay", self.reconnect_delay)
        _positive("max_reconnect_attempts", self.max_reconnect_attempts, integer=True)
        _positive("max_consecutive_errors", self.max_consecutive_errors, integer=True)
        _positive("max_reconnect_delay", self.max_reconnect_delay)
        _positive("rest_timeout", self.rest_timeout)
        if not isinstance(self.jitter, int | float) or not 0 <= self.jitter <= 1:
            raise ConfigError(f"StreamConfig.jitter must be between 0 and 1, got {self.jitter!r}")
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ConfigError(
                f"StreamConfig.heartbeat_timeout ({self.heartbeat_timeout}) must be longer than "
                f"heartbeat_interval ({self.heartbeat_interval}), or every quiet spell between "
                "two heartbeats would count as a dead connection"
            )
        if self.max_reconnect_delay < self.reconnect_delay:
            raise ConfigError(
                f"StreamConfig.max_reconnect_delay ({self.max_reconnect_delay}) must be at "
                f"least reconnect_delay ({self.reconnect_delay})"
            )


@dataclass(slots=True)
class TickData:
    """One trade from a venue: venue ``symbol`` (e.g. ``BTCUSDT``) and, once mapped, the
    RustyBT ``asset``; ``price``/``volume`` are ``Decimal``; ``timestamp`` is the venue's
    trade time, tz-aware UTC."""

    symbol: str
    price: Decimal
    volume: Decimal
    timestamp: datetime
    venue: str = ""
    asset: Asset | None = None
    trade_id: str | None = None
    side: str | None = None  # "buy" / "sell" (the taker's side) when the venue says
    received_ns: int = 0  # perf_counter_ns when the frame was parsed (latency measurement)


@dataclass(slots=True)
class KlineData:
    """One venue candle over ``[start, end)``; ``closed`` once the venue finalised it."""

    symbol: str
    start: datetime
    end: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    closed: bool
    venue: str = ""
    asset: Asset | None = None
    received_ns: int = 0


@dataclass(slots=True)
class DataGap:
    """Bars that could not be recovered: ``asset``'s bars from ``start`` to ``end`` (bar
    close times, inclusive) are missing. ``reason`` says why."""

    asset: Asset | None
    symbol: str
    start: datetime
    end: datetime
    reason: str
    venue: str = ""
    bars_missing: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def parse_decimal(value: Any, what: str) -> Decimal:
    """A venue number (string or int) as ``Decimal``; floats are refused (inexact)."""
    if isinstance(value, float) or isinstance(value, bool):
        raise MalformedVenueMessage(f"{what} {value!r} must be a decimal string, not a float")
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise MalformedVenueMessage(f"{what} {value!r} is not a number") from None
    if not d.is_finite():
        raise MalformedVenueMessage(f"{what} {value!r} is not finite")
    return d
