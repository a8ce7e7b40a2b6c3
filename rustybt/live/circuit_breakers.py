"""Circuit breakers: the last line of defence that halts new risk when something is wrong.

A breaker watches one signal (portfolio value, order submissions, errors, or an operator)
and trips when it crosses its limit. :class:`CircuitBreakerManager` holds a set of breakers,
answers ``can_trade()`` on every order from a cached flag, fans observations out to the
breakers that care about them, tells listeners (the engine) about every trip and reset the
moment it happens, and persists every breaker's state so a restart never clears a trip.

Pure module: no I/O, no engine imports. The risk gate asks ``can_trade()``; the engine feeds
``on_portfolio_value`` / ``on_order_submitted`` / ``on_error`` and registers a listener.

Conventions: money is ``Decimal``; percentages are fractions (``Decimal("0.10")`` = 10 %);
times are the tz-aware datetimes passed in (the engine's clock, never the wall clock), except
operator actions (halt, release, reset) which default to the wall clock in UTC.
See ``docs/circuit-breakers.md`` for the user guide.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from rustybt.exceptions import CheckpointCorrupted, ConfigError, DataError

__all__ = [
    "AlignmentCircuitBreaker",
    "CircuitBreaker",
    "CircuitBreakerManager",
    "CircuitBreakerState",
    "CircuitBreakerType",
    "DailyLossCircuitBreaker",
    "DrawdownCircuitBreaker",
    "ErrorRateCircuitBreaker",
    "ManualCircuitBreaker",
    "OrderRateCircuitBreaker",
    "default_breakers",
]

_log = structlog.get_logger(__name__)

STATE_VERSION = 1
_HISTORY_LEN = 200  # audit entries kept per breaker (and persisted)
_NEVER = Decimal("-Infinity")  # a floor no finite value reaches


class CircuitBreakerState(StrEnum):
    NORMAL = "normal"
    TRIPPED = "tripped"
    MANUALLY_HALTED = "manually_halted"
    RESETTING = "resetting"  # transient, inside reset(); trading is not allowed while in it


class CircuitBreakerType(StrEnum):
    DRAWDOWN = "drawdown"
    DAILY_LOSS = "daily_loss"
    ORDER_RATE = "order_rate"
    ERROR_RATE = "error_rate"
    MANUAL = "manual"
    ALIGNMENT = "alignment"


_NORMAL = CircuitBreakerState.NORMAL
_TRIPPED = CircuitBreakerState.TRIPPED
_HALTED = CircuitBreakerState.MANUALLY_HALTED

Listener = Callable[["CircuitBreaker", str], Any]


# --- validation helpers ----------------------------------------------------------------
def _decimal_param(name: str, value: Any, *, fraction: bool = False) -> Decimal:
    """A positive finite Decimal (≤ 1 when ``fraction``); floats refused, they are inexact."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ConfigError(
            f"{name}={value!r}: pass a Decimal, e.g. {name}=Decimal('{value}'), not a float"
        )
    try:
        out = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ConfigError(f"{name}={value!r} is not a number; pass a Decimal") from exc
    if not out.is_finite() or out <= 0:
        raise ConfigError(f"{name}={value!r} must be a finite number > 0")
    if fraction and out > 1:
        raise ConfigError(
            f"{name}={value!r} is a fraction: Decimal('0.10') means 10 %; it must be ≤ 1"
        )
    return out


def _int_param(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name}={value!r} must be a whole number > 0")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name}={value!r} must be a non-empty string (who / why, for the audit)")
    return value.strip()


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def _parse_dt(where: str, raw: Any) -> datetime | None:
    if raw is None:
        return None
    try:
        out = datetime.fromisoformat(raw)
    except (TypeError, ValueError) as exc:
        raise CheckpointCorrupted(f"{where}: {raw!r} is not an ISO datetime") from exc
    if out.tzinfo is None:
        raise CheckpointCorrupted(f"{where}: {raw!r} has no time zone")
    return out


def _parse_dec(where: str, raw: Any) -> Decimal:
    try:
        out = Decimal(raw) if isinstance(raw, str) else None
    except InvalidOperation:
        out = None
    if out is None or not out.is_finite():
        raise CheckpointCorrupted(f"{where}: {raw!r} is not a decimal string")
    return out


def _bad_value(breaker: CircuitBreaker, value: Any) -> None:
    raise DataError(
        f"{breaker.name}: portfolio value {value!r} is not a finite Decimal; "
        "the breaker cannot evaluate it (state unchanged). Fix the value source."
    )


# --- base -------------------------------------------------------------------------------
class CircuitBreaker(ABC):
    """One breaker. Subclasses override the observation hooks they need.

    Hooks return ``True`` only when *that call* tripped the breaker; they do no logging and
    no allocation on the non-tripping path.
    """

    breaker_type: ClassVar[CircuitBreakerType]

    def __init__(self, name: str | None = None) -> None:
        self._name = self.breaker_type.value if name is None else _text("name", name)
        self._state = _NORMAL
        self._reason: str | None = None
        self._tripped_at: datetime | None = None
        self._history: deque[dict[str, Any]] = deque(maxlen=_HISTORY_LEN)
        self._listeners: list[Listener] = []

    # --- read-only view ---------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def state(self) -> CircuitBreakerState:
        return self._state

    @property
    def tripped_at(self) -> datetime | None:
        return self._tripped_at

    @property
    def is_tripped(self) -> bool:
        """True in any state other than NORMAL (tripped, manually halted, resetting)."""
        return self._state is not _NORMAL

    @property
    def history(self) -> list[dict[str, Any]]:
        """Audit trail: ``{"event", "operator", "reason", "dt"}`` per trip/halt/reset."""
        return list(self._history)

    def get_trip_reason(self) -> str | None:
        return self._reason

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The configured limits (JSON-friendly), for status pages and checkpoints."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, state={self._state.value})"

    # --- observation hooks (no-ops unless overridden) ---------------------------------
    def on_portfolio_value(self, value: Decimal, dt: datetime) -> bool:
        return False

    def on_order_submitted(self, dt: datetime) -> bool:
        return False

    def on_error(self, dt: datetime) -> bool:
        return False

    def on_success(self, dt: datetime) -> None:  # noqa: B027 - optional hook
        """A strategy call or an order submission succeeded (consecutive-failure rules)."""

    # --- transitions ------------------------------------------------------------------
    def reset(self, operator: str = "", reason: str = "", dt: datetime | None = None) -> bool:
        """Return to NORMAL and clear the rolling data; ``operator`` is required (audit).

        Returns False (and records nothing) when the breaker was not tripped.
        """
        operator = _text("operator", operator)
        if self._state is _NORMAL:
            return False
        self._state = CircuitBreakerState.RESETTING
        self._clear_rolling()
        self._rearm("reset", operator, reason, dt or _now())
        return True

    def _trip(self, reason: str, dt: datetime, state: CircuitBreakerState = _TRIPPED) -> bool:
        self._state = state
        self._reason = reason
        self._tripped_at = dt
        event = "halted" if state is _HALTED else "tripped"
        self._history.append({"event": event, "operator": None, "reason": reason, "dt": _iso(dt)})
        self._notify("tripped")
        return True

    def _rearm(self, event: str, operator: str, reason: str, dt: datetime) -> None:
        self._state = _NORMAL
        self._reason = None
        self._tripped_at = None
        self._history.append(
            {"event": event, "operator": operator, "reason": reason, "dt": _iso(dt)}
        )
        self._notify("reset")

    def _notify(self, event: str) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(self, event)
            except Exception:  # a broken listener must not undo or hide a trip
                _log.exception(
                    "circuit_breaker_listener_failed", breaker=self._name, transition=event
                )

    def _subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _unsubscribe(self, listener: Listener) -> None:
        try:
            self._listeners.remove(listener)
        except ValueError:
            pass

    # --- rolling data: subclasses ------------------------------------------------------
    def _clear_rolling(self) -> None:
        """Forget the data the trip was computed from (called by reset)."""
        return None

    def _dump_rolling(self) -> dict[str, Any]:
        return {}

    def _parse_rolling(self, where: str, data: dict[str, Any]) -> Any:
        return None

    def _apply_rolling(self, parsed: Any) -> None:
        return None

    # --- persistence ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly state for checkpoints: trip status, rolling data and audit trail."""
        state = self._state
        if state is CircuitBreakerState.RESETTING:  # never persist a half-done reset
            state = _TRIPPED
        return {
            "name": self._name,
            "type": self.breaker_type.value,
            "state": state.value,
            "reason": self._reason,
            "tripped_at": _iso(self._tripped_at),
            "params": self.params(),
            "data": self._dump_rolling(),
            "history": list(self._history),
        }

    def load_state(self, d: dict[str, Any]) -> None:
        """Restore :meth:`to_dict` output. All-or-nothing; never clears a current trip.

        Thresholds come from this object's configuration, not from the saved ``params``.
        Raises :class:`CheckpointCorrupted` when ``d`` is malformed or of another type.
        """
        self._apply_state(self._parse_state(d))

    def _parse_state(self, d: Any) -> tuple[Any, ...]:
        where = f"circuit breaker {self._name!r} state"
        if not isinstance(d, dict):
            raise CheckpointCorrupted(f"{where}: expected a dict, got {type(d).__name__}")
        if d.get("type") != self.breaker_type.value:
            raise CheckpointCorrupted(
                f"{where}: saved type {d.get('type')!r} is not {self.breaker_type.value!r}"
            )
        try:
            state = CircuitBreakerState(d.get("state"))
        except ValueError as exc:
            raise CheckpointCorrupted(f"{where}: unknown state {d.get('state')!r}") from exc
        if state is CircuitBreakerState.RESETTING:
            state = _TRIPPED  # fail closed
        reason = d.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise CheckpointCorrupted(f"{where}: reason must be a string")
        if state is not _NORMAL and not reason:
            reason = f"{self._name}: restored tripped state (no reason saved)"
        tripped_at = _parse_dt(f"{where} tripped_at", d.get("tripped_at"))
        history = d.get("history", [])
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise CheckpointCorrupted(f"{where}: history must be a list of dicts")
        data = d.get("data", {})
        if not isinstance(data, dict):
            raise CheckpointCorrupted(f"{where}: data must be a dict")
        rolling = self._parse_rolling(where, data)
        return state, reason, tripped_at, history, rolling

    def _apply_state(self, parsed: tuple[Any, ...]) -> None:
        state, reason, tripped_at, history, rolling = parsed
        if self._state is not _NORMAL and state is _NORMAL:
            return  # loading never clears a trip that is active in memory
        was_normal = self._state is _NORMAL
        self._apply_rolling(rolling)
        self._history = deque(history, maxlen=_HISTORY_LEN)
        self._state = state
        self._reason = reason if state is not _NORMAL else None
        self._tripped_at = tripped_at if state is not _NORMAL else None
        if was_normal and state is not _NORMAL:
            self._notify("tripped")


# --- drawdown ---------------------------------------------------------------------------
class DrawdownCircuitBreaker(CircuitBreaker):
    """Trips when value falls ``max_drawdown_pct`` or more below the lookback-window peak.

    The peak is the highest value seen on the current day and the ``lookback_days - 1``
    days before it (days are calendar days of the ``dt`` passed in, UTC from the engine).
    Exactly at the threshold trips. Stays tripped until :meth:`reset`, which also forgets
    the peak (the next value seen is the new reference).
    """

    breaker_type = CircuitBreakerType.DRAWDOWN

    def __init__(
        self,
        max_drawdown_pct: Decimal,
        lookback_days: int = 30,
        *,
        initial_peak: Decimal | None = None,
        name: str | None = None,
    ) -> None:
        self.max_drawdown_pct = _decimal_param("max_drawdown_pct", max_drawdown_pct, fraction=True)
        self.lookback_days = _int_param("lookback_days", lookback_days)
        self._initial_peak = (
            None if initial_peak is None else _decimal_param("initial_peak", initial_peak)
        )
        super().__init__(name)
        self._keep = Decimal(1) - self.max_drawdown_pct
        # one [day ordinal, max value that day] per day in the window: ≤ lookback_days items
        self._days: deque[list[Any]] = deque()
        self._peak: Decimal | None = None
        self._floor: Decimal | None = None  # value at or below which we trip

    def params(self) -> dict[str, Any]:
        return {"max_drawdown_pct": str(self.max_drawdown_pct), "lookback_days": self.lookback_days}

    @property
    def peak(self) -> Decimal | None:
        """The reference peak in the current lookback window (None before any value)."""
        return self._peak

    def on_portfolio_value(self, value: Decimal, dt: datetime) -> bool:
        if value.__class__ is not Decimal or not value.is_finite():
            _bad_value(self, value)
        day = dt.toordinal()
        days = self._days
        if days and days[-1][0] == day:
            today = days[-1]
            if value > today[1]:
                today[1] = value
                if value > self._peak:
                    self._set_peak(value)
        else:
            self._new_day(day, value)
        if self._state is not _NORMAL:
            return False
        floor = self._floor
        if floor is not None and value <= floor:
            peak = self._peak
            dd = (peak - value) / peak
            return self._trip(
                f"drawdown {dd:.2%} from peak {peak} to {value} reached "
                f"max_drawdown_pct {self.max_drawdown_pct:%} (lookback {self.lookback_days} days)",
                dt,
            )
        return False

    def _set_peak(self, peak: Decimal | None) -> None:
        self._peak = peak
        # a non-positive peak has no meaningful percentage drawdown
        self._floor = peak * self._keep if peak is not None and peak > 0 else None

    def _new_day(self, day: int, value: Decimal) -> None:
        if self._initial_peak is not None and not self._days:
            value_for_day = max(value, self._initial_peak)
            self._initial_peak = None
        else:
            value_for_day = value
        days = self._days
        if days and day < days[-1][0]:
            # out-of-order timestamp: fold it into the latest day rather than reorder
            days[-1][1] = max(days[-1][1], value_for_day)
        else:
            days.append([day, value_for_day])
        oldest = day - self.lookback_days
        evicted = False
        while days[0][0] <= oldest:
            days.popleft()
            evicted = True
        if evicted:
            self._set_peak(max(d[1] for d in days))
        elif self._peak is None or value_for_day > self._peak:
            self._set_peak(value_for_day)

    def _clear_rolling(self) -> None:
        self._days.clear()
        self._initial_peak = None
        self._set_peak(None)

    def _dump_rolling(self) -> dict[str, Any]:
        return {
            "days": [[date.fromordinal(d).isoformat(), str(v)] for d, v in self._days],
            "initial_peak": None if self._initial_peak is None else str(self._initial_peak),
        }

    def _parse_rolling(self, where: str, data: dict[str, Any]) -> Any:
        raw = data.get("days", [])
        if not isinstance(raw, list):
            raise CheckpointCorrupted(f"{where}: data.days must be a list")
        days: list[list[Any]] = []
        for item in raw:
            if not isinstance(item, list) or len(item) != 2:
                raise CheckpointCorrupted(f"{where}: data.days item {item!r} is not [day, value]")
            try:
                ordinal = date.fromisoformat(item[0]).toordinal()
            except (TypeError, ValueError) as exc:
                raise CheckpointCorrupted(f"{where}: bad day {item[0]!r}") from exc
            days.append([ordinal, _parse_dec(f"{where} data.days", item[1])])
        init = data.get("initial_peak")
        initial_peak = None if init is None else _parse_dec(f"{where} initial_peak", init)
        return days, initial_peak

    def _apply_rolling(self, parsed: Any) -> None:
        days, initial_peak = parsed
        self._days = deque(days)
        self._initial_peak = initial_peak
        self._set_peak(max((d[1] for d in days), default=None))


# --- daily loss -------------------------------------------------------------------------
class DailyLossCircuitBreaker(CircuitBreaker):
    """Trips when today's loss reaches ``max_daily_loss`` or ``max_daily_loss_pct``.

    Loss = first portfolio value seen in the current day − current value. The day runs
    midnight to midnight in ``timezone`` (the exchange's; use "UTC" for 24/7 crypto).
    Exactly at a limit trips; either limit trips when both are set. Re-arms by itself on
    the first value of the next day; :meth:`reset` re-arms at once and makes the next value
    the day's new reference.
    """

    breaker_type = CircuitBreakerType.DAILY_LOSS

    def __init__(
        self,
        max_daily_loss: Decimal | None = None,
        max_daily_loss_pct: Decimal | None = None,
        timezone: str = "America/New_York",
        *,
        name: str | None = None,
    ) -> None:
        if max_daily_loss is None and max_daily_loss_pct is None:
            raise ConfigError(
                "DailyLossCircuitBreaker needs max_daily_loss (money, e.g. Decimal('5000')) "
                "and/or max_daily_loss_pct (fraction, e.g. Decimal('0.02'))"
            )
        self.max_daily_loss = (
            None if max_daily_loss is None else _decimal_param("max_daily_loss", max_daily_loss)
        )
        self.max_daily_loss_pct = (
            None
            if max_daily_loss_pct is None
            else _decimal_param("max_daily_loss_pct", max_daily_loss_pct, fraction=True)
        )
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"timezone={timezone!r} is not a known IANA time zone, e.g. 'America/New_York'"
            ) from exc
        self.timezone = timezone
        super().__init__(name)
        self._day: date | None = None
        self._day_end: datetime | None = None  # UTC instant the current day ends
        self._start: Decimal | None = None
        self._floor: Decimal | None = None  # value at or below which we trip

    def params(self) -> dict[str, Any]:
        return {
            "max_daily_loss": None if self.max_daily_loss is None else str(self.max_daily_loss),
            "max_daily_loss_pct": (
                None if self.max_daily_loss_pct is None else str(self.max_daily_loss_pct)
            ),
            "timezone": self.timezone,
        }

    @property
    def day_start_value(self) -> Decimal | None:
        """The reference value of the current day (None until the first value of the day)."""
        return self._start

    def on_portfolio_value(self, value: Decimal, dt: datetime) -> bool:
        if value.__class__ is not Decimal or not value.is_finite():
            _bad_value(self, value)
        day_end = self._day_end
        if day_end is None or dt >= day_end:
            self._begin_day(dt)
        if self._start is None:
            self._set_start(value)
            return False
        if self._state is not _NORMAL:
            return False
        if value <= self._floor:
            start = self._start
            loss = start - value
            limits = []
            if self.max_daily_loss is not None:
                limits.append(f"max_daily_loss {self.max_daily_loss}")
            if self.max_daily_loss_pct is not None:
                limits.append(f"max_daily_loss_pct {self.max_daily_loss_pct:%}")
            pct = loss / start if start > 0 else Decimal(0)
            return self._trip(
                f"daily loss {loss} ({pct:.2%}) from day start {start} to {value} on "
                f"{self._day} ({self.timezone}) reached {' / '.join(limits)}",
                dt,
            )
        return False

    def _begin_day(self, dt: datetime) -> None:
        if dt.tzinfo is None:
            raise DataError(f"{self._name}: dt={dt!r} has no time zone; pass a tz-aware datetime")
        day = dt.astimezone(self._tz).date()
        self._set_day(day)
        self._start = None
        self._floor = None
        if self._state is _TRIPPED:
            self._rearm("rearmed", "auto", f"new trading day {day} ({self.timezone})", dt)

    def _set_day(self, day: date | None) -> None:
        self._day = day
        if day is None:
            self._day_end = None
        else:
            end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self._tz)
            self._day_end = end.astimezone(UTC)

    def _set_start(self, start: Decimal | None) -> None:
        self._start = start
        if start is None:
            self._floor = None
            return
        allowed = []
        if self.max_daily_loss is not None:
            allowed.append(self.max_daily_loss)
        if self.max_daily_loss_pct is not None and start > 0:
            allowed.append(start * self.max_daily_loss_pct)
        # the tighter limit wins; a non-positive start has no percentage, only the money limit
        self._floor = start - min(allowed) if allowed else _NEVER

    def _clear_rolling(self) -> None:
        self._set_start(None)  # the next value becomes today's reference

    def _dump_rolling(self) -> dict[str, Any]:
        return {
            "day": None if self._day is None else self._day.isoformat(),
            "start_value": None if self._start is None else str(self._start),
        }

    def _parse_rolling(self, where: str, data: dict[str, Any]) -> Any:
        raw_day = data.get("day")
        try:
            day = None if raw_day is None else date.fromisoformat(raw_day)
        except (TypeError, ValueError) as exc:
            raise CheckpointCorrupted(f"{where}: bad day {raw_day!r}") from exc
        raw = data.get("start_value")
        start = None if raw is None else _parse_dec(f"{where} start_value", raw)
        return day, start

    def _apply_rolling(self, parsed: Any) -> None:
        day, start = parsed
        self._set_day(day)
        self._set_start(start)


# --- order rate -------------------------------------------------------------------------
class _SlidingWindowBreaker(CircuitBreaker):
    """A breaker counting timestamps in a sliding window: their shared persistence."""

    _times: deque[datetime]

    def _clear_rolling(self) -> None:
        self._times.clear()

    def _dump_rolling(self) -> dict[str, Any]:
        return {"times": [t.isoformat() for t in self._times]}

    def _parse_rolling(self, where: str, data: dict[str, Any]) -> Any:
        raw = data.get("times", [])
        if not isinstance(raw, list):
            raise CheckpointCorrupted(f"{where}: data.times must be a list")
        return [_parse_dt(f"{where} data.times", t) for t in raw]


class OrderRateCircuitBreaker(_SlidingWindowBreaker):
    """Trips when more than ``max_orders_per_minute`` orders fall within ``window_seconds``.

    Sliding window over the ``dt`` of each submission: an order exactly ``window_seconds``
    old has left the window. The count limit is ``max_orders_per_minute`` whatever the
    window length. Stays tripped until :meth:`reset` (a runaway loop must be looked at).
    """

    breaker_type = CircuitBreakerType.ORDER_RATE

    def __init__(
        self, max_orders_per_minute: int, window_seconds: int = 60, *, name: str | None = None
    ) -> None:
        self.max_orders_per_minute = _int_param("max_orders_per_minute", max_orders_per_minute)
        self.window_seconds = _int_param("window_seconds", window_seconds)
        super().__init__(name)
        self._window = timedelta(seconds=self.window_seconds)
        # bounded: one more than the limit is all we ever need to see a breach
        self._times: deque[datetime] = deque(maxlen=self.max_orders_per_minute + 1)

    def params(self) -> dict[str, Any]:
        return {
            "max_orders_per_minute": self.max_orders_per_minute,
            "window_seconds": self.window_seconds,
        }

    def on_order_submitted(self, dt: datetime) -> bool:
        times = self._times
        times.append(dt)
        cutoff = dt - self._window
        while times[0] <= cutoff:
            times.popleft()
        if len(times) > self.max_orders_per_minute and self._state is _NORMAL:
            return self._trip(
                f"{len(times)} orders within {self.window_seconds}s (first at "
                f"{times[0].isoformat()}) exceeded max_orders_per_minute "
                f"{self.max_orders_per_minute}",
                dt,
            )
        return False

    def _apply_rolling(self, parsed: Any) -> None:
        self._times = deque(parsed, maxlen=self.max_orders_per_minute + 1)


# --- error rate -------------------------------------------------------------------------
class ErrorRateCircuitBreaker(_SlidingWindowBreaker):
    """Trips when ``max_errors`` errors fall within ``window_seconds`` (reaching it trips),
    or after ``max_consecutive`` errors in a row with no success between.

    Sliding window over the ``dt`` of each error; an error exactly ``window_seconds`` old has
    left the window. The window runs on the engine's clock: bar time in a backtest or
    replay, wall time live; so one error per one-minute bar stays under "5 per 300 s" in a
    replay while the consecutive rule (default ``max_errors``) still stops a strategy that
    fails on every bar within ``max_consecutive`` bars, whatever the bar size. A success
    (a strategy call that returned, an order the broker took) resets the run. Stays
    tripped until :meth:`reset`.
    """

    breaker_type = CircuitBreakerType.ERROR_RATE

    def __init__(
        self,
        max_errors: int,
        window_seconds: int = 300,
        *,
        max_consecutive: int | None = None,
        name: str | None = None,
    ) -> None:
        self.max_errors = _int_param("max_errors", max_errors)
        self.window_seconds = _int_param("window_seconds", window_seconds)
        self.max_consecutive = (
            self.max_errors
            if max_consecutive is None
            else _int_param("max_consecutive", max_consecutive)
        )
        super().__init__(name)
        self._window = timedelta(seconds=self.window_seconds)
        self._times: deque[datetime] = deque(maxlen=self.max_errors)
        self._run = 0  # errors since the last success

    def params(self) -> dict[str, Any]:
        return {
            "max_errors": self.max_errors,
            "window_seconds": self.window_seconds,
            "max_consecutive": self.max_consecutive,
        }

    @property
    def consecutive_errors(self) -> int:
        """Errors since the last success."""
        return self._run

    def on_success(self, dt: datetime) -> None:
        self._run = 0

    def on_error(self, dt: datetime) -> bool:
        times = self._times
        times.append(dt)
        self._run += 1
        cutoff = dt - self._window
        while times[0] <= cutoff:
            times.popleft()
        if self._state is not _NORMAL:
            return False
        if len(times) >= self.max_errors:
            return self._trip(
                f"{len(times)} errors within {self.window_seconds}s reached max_errors "
                f"{self.max_errors}",
                dt,
            )
        if self._run >= self.max_consecutive:
            return self._trip(
                f"{self._run} consecutive errors with no success between reached "
                f"max_consecutive {self.max_consecutive}",
                dt,
            )
        return False

    def _clear_rolling(self) -> None:
        self._times.clear()
        self._run = 0

    def _dump_rolling(self) -> dict[str, Any]:
        return {"times": [t.isoformat() for t in self._times], "consecutive": self._run}

    def _parse_rolling(self, where: str, data: dict[str, Any]) -> Any:
        run = data.get("consecutive", 0)
        if not isinstance(run, int) or isinstance(run, bool) or run < 0:
            raise CheckpointCorrupted(f"{where}: data.consecutive must be an int >= 0")
        return super()._parse_rolling(where, data), run

    def _apply_rolling(self, parsed: Any) -> None:
        times, run = parsed
        self._times = deque(times, maxlen=self.max_errors)
        self._run = run


# --- manual -----------------------------------------------------------------------------
class ManualCircuitBreaker(CircuitBreaker):
    """An operator's emergency stop: :meth:`trigger_halt` and :meth:`release`, both audited."""

    breaker_type = CircuitBreakerType.MANUAL

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name)
        self._operator: str | None = None

    def params(self) -> dict[str, Any]:
        return {}

    @property
    def halted_by(self) -> str | None:
        """The operator who halted trading (None when not halted)."""
        return self._operator

    def trigger_halt(self, reason: str, operator: str, dt: datetime | None = None) -> None:
        """Halt trading now. Halting an already-halted breaker only adds an audit entry."""
        reason = _text("reason", reason)
        operator = _text("operator", operator)
        dt = dt or _now()
        if self._state is _HALTED:
            self._history.append(
                {"event": "halted", "operator": operator, "reason": reason, "dt": _iso(dt)}
            )
            return
        self._operator = operator
        self._state = _HALTED
        self._reason = f"manual halt by {operator}: {reason}"
        self._tripped_at = dt
        self._history.append(
            {"event": "halted", "operator": operator, "reason": reason, "dt": _iso(dt)}
        )
        self._notify("tripped")

    def release(self, operator: str, reason: str = "", dt: datetime | None = None) -> bool:
        """Lift the halt; returns False when it was not halted."""
        operator = _text("operator", operator)
        if self._state is _NORMAL:
            return False
        self._operator = None
        self._rearm("released", operator, reason, dt or _now())
        return True

    def reset(self, operator: str = "", reason: str = "", dt: datetime | None = None) -> bool:
        return self.release(operator, reason, dt)

    def _dump_rolling(self) -> dict[str, Any]:
        return {"operator": self._operator}

    def _parse_rolling(self, where: str, data: dict[str, Any]) -> Any:
        op = data.get("operator")
        if op is not None and not isinstance(op, str):
            raise CheckpointCorrupted(f"{where}: operator must be a string")
        return op

    def _apply_rolling(self, parsed: Any) -> None:
        self._operator = parsed


# --- manager ----------------------------------------------------------------------------
# --- shadow alignment -------------------------------------------------------------------
class AlignmentCircuitBreaker(CircuitBreaker):
    """Trips when the live session stops behaving like its shadow backtest.

    Fed by shadow trading (:mod:`rustybt.live.shadow`): :meth:`on_misalignment` once per
    bar whose live signals differ from the shadow's (the ``max_misalignment_count``-th
    trips), :meth:`on_execution_quality` with the live fill rate (below
    ``execution_quality_threshold`` trips). The count is kept in checkpoints and cleared
    only by :meth:`reset`.
    """

    breaker_type = CircuitBreakerType.ALIGNMENT

    def __init__(
        self,
        max_misalignment_count: int,
        execution_quality_threshold: Decimal = Decimal("0"),
        *,
        name: str | None = None,
    ) -> None:
        self.max_misalignment_count = _int_param("max_misalignment_count", max_misalignment_count)
        if isinstance(execution_quality_threshold, bool | float):
            raise ConfigError(
                f"execution_quality_threshold={execution_quality_threshold!r}: pass a Decimal "
                "fraction, e.g. Decimal('0.90')"
            )
        q = Decimal(execution_quality_threshold)
        if not q.is_finite() or not 0 <= q <= 1:
            raise ConfigError(
                f"execution_quality_threshold={execution_quality_threshold!r} must be within "
                "[0, 1], e.g. Decimal('0.90')"
            )
        self.execution_quality_threshold = q
        super().__init__(name)
        self._count = 0

    def params(self) -> dict[str, Any]:
        return {
            "max_misalignment_count": self.max_misalignment_count,
            "execution_quality_threshold": str(self.execution_quality_threshold),
        }

    @property
    def misalignments(self) -> int:
        """Misaligned bars counted since the session began (or the last reset)."""
        return self._count

    def on_misalignment(self, dt: datetime, detail: str = "") -> bool:
        if self._state is not _NORMAL:
            return False  # already halted: the report keeps the bars, the count stops
        self._count += 1
        if self._count >= self.max_misalignment_count:
            return self._trip(
                f"{self._count} misaligned bars between live and shadow reached "
                f"max_misalignment_count {self.max_misalignment_count} (last at "
                f"{dt.isoformat()}: {detail})",
                dt,
            )
        return False

    def on_execution_quality(self, quality: Decimal, dt: datetime) -> bool:
        if self._state is _NORMAL and quality < self.execution_quality_threshold:
            return self._trip(
                f"live execution quality {quality} fell below execution_quality_threshold "
                f"{self.execution_quality_threshold}",
                dt,
            )
        return False

    def _clear_rolling(self) -> None:
        self._count = 0

    def _dump_rolling(self) -> dict[str, Any]:
        return {"misalignments": self._count}

    def _parse_rolling(self, where: str, data: dict[str, Any]) -> Any:
        n = data.get("misalignments", 0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise CheckpointCorrupted(f"{where}: data.misalignments must be an int >= 0")
        return n

    def _apply_rolling(self, parsed: Any) -> None:
        self._count = parsed


def _overrides(breaker: CircuitBreaker, hook: str) -> bool:
    return getattr(type(breaker), hook) is not getattr(CircuitBreaker, hook)


class CircuitBreakerManager:
    """A named set of breakers; trading is allowed only while every breaker is NORMAL."""

    def __init__(self) -> None:
        self._breakers: dict[str, CircuitBreaker] = {}
        self._pv: list[CircuitBreaker] = []
        self._orders: list[CircuitBreaker] = []
        self._errors: list[CircuitBreaker] = []
        self._successes: list[CircuitBreaker] = []
        self._listeners: list[Listener] = []
        self._halted = False

    # --- membership -------------------------------------------------------------------
    def add_breaker(self, breaker: CircuitBreaker) -> CircuitBreaker:
        """Add ``breaker`` (names are unique); returns it for chaining."""
        if not isinstance(breaker, CircuitBreaker):
            raise ConfigError(f"add_breaker expects a CircuitBreaker, got {breaker!r}")
        if breaker.name in self._breakers:
            raise ConfigError(
                f"a breaker named {breaker.name!r} is already added; give the new one a "
                f"different name=..."
            )
        self._breakers[breaker.name] = breaker
        self._rebuild()
        breaker._subscribe(self._on_transition)
        self._halted = self._halted or breaker.is_tripped
        return breaker

    def remove_breaker(self, name_or_breaker: str | CircuitBreaker) -> CircuitBreaker:
        """Remove a breaker. A tripped breaker must be reset first (no silent un-halting)."""
        breaker = self._resolve(name_or_breaker)
        if breaker.is_tripped:
            raise ConfigError(
                f"breaker {breaker.name!r} is {breaker.state.value}; reset it (with an "
                "operator) before removing it"
            )
        del self._breakers[breaker.name]
        breaker._unsubscribe(self._on_transition)
        self._rebuild()
        self._recompute()
        return breaker

    def get(self, name: str) -> CircuitBreaker:
        try:
            return self._breakers[name]
        except KeyError:
            raise ConfigError(
                f"no breaker named {name!r}; known: {sorted(self._breakers)}"
            ) from None

    @property
    def breakers(self) -> list[CircuitBreaker]:
        return list(self._breakers.values())

    def __len__(self) -> int:
        return len(self._breakers)

    def __contains__(self, name: object) -> bool:
        return name in self._breakers

    def _resolve(self, name_or_breaker: str | CircuitBreaker) -> CircuitBreaker:
        if isinstance(name_or_breaker, CircuitBreaker):
            if self._breakers.get(name_or_breaker.name) is not name_or_breaker:
                raise ConfigError(f"{name_or_breaker!r} is not in this manager")
            return name_or_breaker
        return self.get(name_or_breaker)

    def _rebuild(self) -> None:
        bs = self._breakers.values()
        self._pv = [b for b in bs if _overrides(b, "on_portfolio_value")]
        self._orders = [b for b in bs if _overrides(b, "on_order_submitted")]
        self._errors = [b for b in bs if _overrides(b, "on_error")]
        self._successes = [b for b in bs if _overrides(b, "on_success")]

    # --- listening --------------------------------------------------------------------
    def add_listener(self, callback: Listener) -> None:
        """``callback(breaker, event)`` runs synchronously on every ``"tripped"`` / ``"reset"``."""
        if not callable(callback):
            raise ConfigError(f"listener {callback!r} is not callable")
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        try:
            self._listeners.remove(callback)
        except ValueError:
            raise ConfigError(f"listener {callback!r} was not added") from None

    def _on_transition(self, breaker: CircuitBreaker, event: str) -> None:
        self._recompute()
        for listener in tuple(self._listeners):
            try:
                listener(breaker, event)
            except Exception:  # the trip stands even if a listener fails
                _log.exception(
                    "circuit_breaker_listener_failed", breaker=breaker.name, transition=event
                )

    def _recompute(self) -> None:
        self._halted = any(b._state is not _NORMAL for b in self._breakers.values())

    # --- queries ----------------------------------------------------------------------
    def can_trade(self) -> bool:
        """True when no breaker is tripped or halted (a cached flag: O(1))."""
        return not self._halted

    def any_tripped(self) -> bool:
        return self._halted

    def get_tripped(self) -> list[CircuitBreaker]:
        return [b for b in self._breakers.values() if b.is_tripped]

    def get_trip_reasons(self) -> list[str]:
        return [b.get_trip_reason() or b.name for b in self._breakers.values() if b.is_tripped]

    def get_status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "type": b.breaker_type.value,
                "state": b.state.value,
                "reason": b.get_trip_reason(),
                "tripped_at": _iso(b.tripped_at),
                "params": b.params(),
            }
            for name, b in self._breakers.items()
        }

    # --- observations -----------------------------------------------------------------
    def on_portfolio_value(self, value: Decimal, dt: datetime) -> list[CircuitBreaker]:
        """Feed a portfolio value; returns the breakers this call tripped."""
        tripped: list[CircuitBreaker] = []
        for b in self._pv:
            if b.on_portfolio_value(value, dt):
                tripped.append(b)
        return tripped

    def on_order_submitted(self, dt: datetime) -> list[CircuitBreaker]:
        tripped: list[CircuitBreaker] = []
        for b in self._orders:
            if b.on_order_submitted(dt):
                tripped.append(b)
        return tripped

    def on_error(self, dt: datetime) -> list[CircuitBreaker]:
        tripped: list[CircuitBreaker] = []
        for b in self._errors:
            if b.on_error(dt):
                tripped.append(b)
        return tripped

    def on_success(self, dt: datetime) -> None:
        """A strategy call or an order submission succeeded."""
        for b in self._successes:
            b.on_success(dt)

    def alignment_breakers(self) -> list[AlignmentCircuitBreaker]:
        """The shadow-alignment breakers (shadow trading feeds them)."""
        return [b for b in self._breakers.values() if isinstance(b, AlignmentCircuitBreaker)]

    def on_misalignment(self, dt: datetime, detail: str = "") -> list[CircuitBreaker]:
        """A bar whose live signals differ from the shadow's; returns the breakers tripped."""
        return [b for b in self.alignment_breakers() if b.on_misalignment(dt, detail)]

    def on_execution_quality(self, quality: Decimal, dt: datetime) -> list[CircuitBreaker]:
        """The live fill rate against the shadow's; returns the breakers tripped."""
        return [b for b in self.alignment_breakers() if b.on_execution_quality(quality, dt)]

    # --- operator ---------------------------------------------------------------------
    def reset(self, name: str | None = None, operator: str = "", reason: str = "") -> list[str]:
        """Reset one breaker (``name``) or every tripped one (None); returns the names reset.

        ``operator`` is required. Resetting all also releases manual halts.
        """
        _text("operator", operator)
        targets = [self.get(name)] if name is not None else self.get_tripped()
        done = []
        for b in targets:
            if b.reset(operator=operator, reason=reason):
                done.append(b.name)
        return done

    # --- persistence ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "breakers": [b.to_dict() for b in self._breakers.values()],
        }

    def load_state(self, d: dict[str, Any]) -> list[str]:
        """Restore every breaker's state from :meth:`to_dict` output, matched by name.

        All-or-nothing: a malformed state raises :class:`CheckpointCorrupted` and changes
        nothing. A saved breaker that is not configured now (or whose type changed) is
        reported in the returned list; if it was tripped, a MANUALLY_HALTED
        :class:`ManualCircuitBreaker` named ``restored_<name>`` is added so the halt
        survives until an operator releases it.
        """
        if not isinstance(d, dict) or not isinstance(d.get("breakers"), list):
            raise CheckpointCorrupted("circuit breaker state: expected {'version', 'breakers'}")
        if d.get("version") != STATE_VERSION:
            raise CheckpointCorrupted(
                f"circuit breaker state: unknown version {d.get('version')!r} "
                f"(this RustyBT reads version {STATE_VERSION})"
            )
        plan: list[tuple[CircuitBreaker, tuple[Any, ...]]] = []
        unknown: list[str] = []
        restored: list[ManualCircuitBreaker] = []
        taken = set(self._breakers)
        for entry in d["breakers"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise CheckpointCorrupted(f"circuit breaker state: bad entry {entry!r}")
            name = entry["name"]
            current = self._breakers.get(name)
            if current is not None and entry.get("type") == current.breaker_type.value:
                plan.append((current, current._parse_state(entry)))
                continue
            unknown.append(name)
            if entry.get("state") in (None, _NORMAL.value):
                continue
            if entry.get("type") == CircuitBreakerType.MANUAL.value and name not in taken:
                halt = ManualCircuitBreaker(name=name)  # e.g. a restored halt from a past restart
                plan.append((halt, halt._parse_state(entry)))
            else:
                new_name = f"restored_{name}"
                n = 2
                while new_name in taken:
                    new_name, n = f"restored_{name}_{n}", n + 1
                halt = ManualCircuitBreaker(name=new_name)
                when = entry.get("tripped_at") or "unknown time"
                reason = (
                    f"restored from checkpoint: {entry.get('type')} breaker {name!r} was "
                    f"tripped at {when} ({entry.get('reason')}); it is not configured now. "
                    f"Review, then release {new_name!r}."
                )
                halt_state = {
                    "type": "manual",
                    "state": _HALTED.value,
                    "reason": reason,
                    "tripped_at": entry.get("tripped_at"),
                    "data": {"operator": "checkpoint"},
                    "history": [],
                }
                plan.append((halt, halt._parse_state(halt_state)))
            taken.add(halt.name)
            restored.append(halt)
        # everything parsed: now apply (nothing above has changed any state)
        for halt in restored:
            self.add_breaker(halt)
        for breaker, parsed in plan:
            breaker._apply_state(parsed)
        self._recompute()
        if unknown:
            _log.warning(
                "circuit_breaker_state_unmatched",
                names=unknown,
                restored_halts=[h.name for h in restored],
            )
        return unknown


def default_breakers(
    starting_value: Decimal | None = None, *, timezone: str = "America/New_York"
) -> CircuitBreakerManager:
    """A sensible default set (see docs/circuit-breakers.md for the numbers and why).

    - ``manual``: emergency stop;
    - ``order_rate``: more than 60 orders within 60 s;
    - ``error_rate``: 10 errors within 300 s;
    - ``drawdown``: 20 % below the 30-day peak (``starting_value`` seeds the peak, so a loss
      from the very first value counts);
    - ``daily_loss``: 5 % below the first value of the day in ``timezone``.
    """
    manager = CircuitBreakerManager()
    manager.add_breaker(ManualCircuitBreaker())
    manager.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=60, window_seconds=60))
    manager.add_breaker(ErrorRateCircuitBreaker(max_errors=10, window_seconds=300))
    manager.add_breaker(
        DrawdownCircuitBreaker(
            max_drawdown_pct=Decimal("0.20"), lookback_days=30, initial_peak=starting_value
        )
    )
    manager.add_breaker(
        DailyLossCircuitBreaker(max_daily_loss_pct=Decimal("0.05"), timezone=timezone)
    )
    return manager
