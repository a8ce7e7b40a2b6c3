"""Zipline-style schedule rules (``date_rules`` / ``time_rules``) and the calendar maths for them.

``TradingAlgorithm.schedule_function(func, date_rule, time_rule)`` must fire at the same instants
in a backtest and in live trading. Both modes therefore compute firing times here, from the same
``exchange_calendars`` sessions (holidays, early closes, DST):

* backtests call :func:`fire_times` (or drive a :class:`RuleTrigger` on a simulated clock);
* live trading hands a :class:`RuleTrigger` (an APScheduler trigger) to
  :class:`rustybt.live.scheduler.TradingScheduler`, which asks it for the next firing time.

:class:`RuleTrigger` is a thin cursor over :func:`fire_times`, so the two cannot drift apart.
Exchange-name resolution (``NYSE`` -> ``XNYS``, ``CRYPTO`` -> ``24/7`` ...) and a cached calendar
lookup live here too, because the live scheduler's market-open/close triggers share them.

Conventions (zipline's): a session's minutes are labelled by their end, so the first minute of a
09:30 open is 09:31 and the last is the close itself. ``market_open()`` with no offset fires one
minute after the open; ``market_close()`` with no offset fires one minute before the close.
"""

from __future__ import annotations

import threading
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import exchange_calendars as xcals
import numpy as np
import pandas as pd
from apscheduler.triggers.base import BaseTrigger

from rustybt.exceptions import SchedulerError

__all__ = [
    "DateRule",
    "TimeRule",
    "RuleTrigger",
    "date_rules",
    "time_rules",
    "fire_times",
    "get_calendar",
    "resolve_calendar_name",
]

_NS_PER_MINUTE = 60_000_000_000
_NS_PER_DAY = 86_400_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Friendly exchange names users type; MIC codes and exchange_calendars' own aliases
# (NYSE, NASDAQ, LSE, CME ...) are accepted as well.
EXCHANGE_ALIASES: dict[str, str] = {
    "NYSE": "XNYS",
    "NASDAQ": "XNAS",
    "LSE": "XLON",
    "CME": "CMES",
    "CRYPTO": "24/7",
    "24/7": "24/7",
    "BINANCE": "24/7",
    "BYBIT": "24/7",
    "HYPERLIQUID": "24/7",
}


# --- calendars ---------------------------------------------------------------------------------
def resolve_calendar_name(exchange: str) -> str:
    """The ``exchange_calendars`` code for an exchange name, MIC code or alias.

    ``"NYSE"`` -> ``"XNYS"``, ``"crypto"`` -> ``"24/7"``, ``"XLON"`` -> ``"XLON"``.
    Raises :class:`SchedulerError` naming a few valid choices when the name is unknown.
    """
    if not isinstance(exchange, str) or not exchange.strip():
        raise SchedulerError(
            f"exchange must be a non-empty string such as 'NYSE', 'XNYS' or '24/7', "
            f"got {exchange!r}"
        )
    raw = exchange.strip()
    known = set(xcals.get_calendar_names(include_aliases=True))
    for candidate in (raw, raw.upper()):
        candidate = EXCHANGE_ALIASES.get(candidate, candidate)
        if candidate in known:
            return xcals.resolve_alias(candidate)
    raise SchedulerError(
        f"unknown exchange {exchange!r}: use an exchange name (NYSE, NASDAQ, LSE, CME, CRYPTO), "
        f"a MIC code (XNYS, XNAS, XLON, CMES, XTKS ...) or '24/7' for round-the-clock venues; "
        f"exchange_calendars.get_calendar_names() lists every supported calendar"
    )


@dataclass(frozen=True, slots=True)
class _SessionTable:
    """Sessions of one calendar as int64 nanosecond arrays (UTC), for fast slicing."""

    sessions: np.ndarray  # session labels, ns since epoch (midnight of the session date)
    opens: np.ndarray
    closes: np.ndarray


_CAL_LOCK = threading.Lock()
_CALENDARS: dict[str, Any] = {}
_TABLES: dict[str, _SessionTable] = {}


def _calendar_range_for(code: str, start: pd.Timestamp, end: pd.Timestamp) -> Any:
    """A calendar covering [start, end], rebuilt wider (and cached) when a query falls outside."""
    with _CAL_LOCK:
        cal = _CALENDARS.get(code)
        if cal is not None and cal.first_session <= start and cal.last_session >= end:
            return cal
        lo = pd.Timestamp("2000-01-01")
        hi = pd.Timestamp.now().normalize() + pd.Timedelta(days=5 * 366)
        if cal is not None:
            lo = min(lo, cal.first_session)
            hi = max(hi, cal.last_session)
        lo = min(lo, start - pd.Timedelta(days=366))
        hi = max(hi, end + pd.Timedelta(days=366))
        with warnings.catch_warnings():
            # exchange_calendars trips a pandas deprecation inside its own constructor.
            warnings.filterwarnings("ignore", message=".*Series.values.*")
            cal = xcals.get_calendar(
                code, start=lo.strftime("%Y-%m-%d"), end=hi.strftime("%Y-%m-%d")
            )
        _CALENDARS[code] = cal
        _TABLES[code] = _SessionTable(
            sessions=np.asarray(cal.sessions.asi8, dtype=np.int64),
            opens=np.asarray(cal.opens_nanos, dtype=np.int64),
            closes=np.asarray(cal.closes_nanos, dtype=np.int64),
        )
        return cal


def get_calendar(exchange: str) -> Any:
    """The cached ``exchange_calendars`` calendar for an exchange name or code."""
    code = resolve_calendar_name(exchange)
    today = pd.Timestamp.now().normalize()
    return _calendar_range_for(code, today, today)


def _table(code: str, start_ns: int, end_ns: int) -> _SessionTable:
    start = pd.Timestamp(start_ns).normalize()
    end = pd.Timestamp(end_ns).normalize()
    _calendar_range_for(code, start, end)
    return _TABLES[code]


# --- rules -------------------------------------------------------------------------------------
class DateRule(ABC):
    """Chooses which sessions fire. Subclasses implement :meth:`select`."""

    @abstractmethod
    def select(self, sessions: pd.DatetimeIndex) -> np.ndarray:
        """Boolean mask over ``sessions`` (complete weeks/months are always passed)."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


class _EveryDay(DateRule):
    def select(self, sessions: pd.DatetimeIndex) -> np.ndarray:
        return np.ones(len(sessions), dtype=bool)

    def __repr__(self) -> str:
        return "every_day()"


class _NthInPeriod(DateRule):
    """The n-th session of each week/month, counted from the start or from the end."""

    _MAX = {"week": 7, "month": 31}

    def __init__(self, period: str, from_end: bool, days_offset: int) -> None:
        name = f"{period}_{'end' if from_end else 'start'}"
        limit = self._MAX[period]
        if isinstance(days_offset, bool) or not isinstance(days_offset, int | np.integer):
            raise SchedulerError(
                f"{name}(days_offset=...) needs a whole number of sessions, got {days_offset!r}"
            )
        if not 0 <= days_offset < limit:
            raise SchedulerError(
                f"{name}(days_offset={days_offset}) is out of range: use 0 to {limit - 1} "
                f"(0 = the {'last' if from_end else 'first'} session of the {period})"
            )
        self.period = period
        self.from_end = from_end
        self.days_offset = int(days_offset)

    def select(self, sessions: pd.DatetimeIndex) -> np.ndarray:
        if len(sessions) == 0:
            return np.zeros(0, dtype=bool)
        if self.period == "week":
            iso = sessions.isocalendar()
            keys = iso["year"].to_numpy() * 100 + iso["week"].to_numpy()
        else:
            keys = sessions.year.to_numpy() * 100 + sessions.month.to_numpy()
        positions = pd.Series(np.arange(len(sessions)))
        rank = positions.groupby(keys).cumcount(ascending=not self.from_end)
        return rank.to_numpy() == self.days_offset

    def __repr__(self) -> str:
        side = "end" if self.from_end else "start"
        return f"{self.period}_{side}(days_offset={self.days_offset})"


class TimeRule(ABC):
    """Chooses the instants within each chosen session. Subclasses implement :meth:`times`."""

    @abstractmethod
    def times(self, opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
        """Sorted int64 ns UTC firing times for sessions with these opens/closes."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


def _offset_ns(name: str, offset: timedelta | None, hours: int | None, minutes: int | None) -> int:
    """Zipline's offset rules: nothing given -> one minute; must be >= 0 and under a day."""
    if offset is not None and (hours is not None or minutes is not None):
        raise SchedulerError(
            f"{name}: pass either offset=timedelta(...) or hours/minutes, not both"
        )
    if offset is not None:
        if not isinstance(offset, timedelta):
            raise SchedulerError(f"{name}: offset must be a datetime.timedelta, got {offset!r}")
        total = offset
    elif hours is None and minutes is None:
        total = timedelta(minutes=1)
    else:
        for label, value in (("hours", hours), ("minutes", minutes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise SchedulerError(f"{name}: {label} must be a whole number, got {value!r}")
        total = timedelta(hours=hours or 0, minutes=minutes or 0)
    if total < timedelta(0) or total >= timedelta(days=1):
        raise SchedulerError(
            f"{name}: offset {total} is out of range; use a non-negative offset under one day "
            f"(market_open counts forward from the open, market_close backward from the close)"
        )
    return total // timedelta(microseconds=1) * 1000


class _SessionAnchor(TimeRule):
    """A fixed offset from the open or the close.

    ``within_session`` (the zipline rules) drops sessions where the instant falls outside
    [open, close], e.g. ``market_open(hours=5)`` on a 13:00 early close. The live scheduler's
    ``schedule_market_open/close`` use a signed offset that may fall outside the session.
    """

    def __init__(self, anchor: str, signed_offset_ns: int, within_session: bool, label: str):
        self.anchor = anchor
        self.signed_offset_ns = signed_offset_ns
        self.within_session = within_session
        self._label = label

    def times(self, opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
        base = opens if self.anchor == "open" else closes
        out = base + self.signed_offset_ns
        if self.within_session:
            out = out[(out >= opens) & (out <= closes)]
        return out

    def __repr__(self) -> str:
        return self._label


class _EveryMinute(TimeRule):
    def times(self, opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
        if len(opens) == 0:
            return np.zeros(0, dtype=np.int64)
        counts = (closes - opens) // _NS_PER_MINUTE
        starts = np.repeat(opens, counts)
        # position of each minute inside its session: 1..count (bars labelled by their end)
        within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
            np.cumsum(counts) - counts, counts
        )
        return starts + (within + 1) * _NS_PER_MINUTE

    def __repr__(self) -> str:
        return "every_minute()"


def _fmt_offset(hours: int | None, minutes: int | None, offset: timedelta | None) -> str:
    if offset is not None:
        return f"offset={offset!r}"
    parts = []
    if hours is not None:
        parts.append(f"hours={hours}")
    if minutes is not None:
        parts.append(f"minutes={minutes}")
    return ", ".join(parts)


class date_rules:  # noqa: N801 - zipline's public spelling
    """Which sessions a scheduled function runs on (zipline-compatible)."""

    @staticmethod
    def every_day() -> DateRule:
        """Every trading session."""
        return _EveryDay()

    @staticmethod
    def week_start(days_offset: int = 0) -> DateRule:
        """The ``days_offset``-th session (0 = first) of each ISO week (Monday to Sunday)."""
        return _NthInPeriod("week", from_end=False, days_offset=days_offset)

    @staticmethod
    def week_end(days_offset: int = 0) -> DateRule:
        """The ``days_offset``-th session counted back from the last session of each week."""
        return _NthInPeriod("week", from_end=True, days_offset=days_offset)

    @staticmethod
    def month_start(days_offset: int = 0) -> DateRule:
        """The ``days_offset``-th session (0 = first) of each calendar month."""
        return _NthInPeriod("month", from_end=False, days_offset=days_offset)

    @staticmethod
    def month_end(days_offset: int = 0) -> DateRule:
        """The ``days_offset``-th session counted back from the last session of each month."""
        return _NthInPeriod("month", from_end=True, days_offset=days_offset)


class time_rules:  # noqa: N801 - zipline's public spelling
    """When within a session a scheduled function runs (zipline-compatible)."""

    @staticmethod
    def market_open(
        offset: timedelta | None = None, hours: int | None = None, minutes: int | None = None
    ) -> TimeRule:
        """``offset`` after the open; with no arguments one minute after (09:31 on NYSE)."""
        ns = _offset_ns("market_open", offset, hours, minutes)
        label = f"market_open({_fmt_offset(hours, minutes, offset)})"
        return _SessionAnchor("open", ns, within_session=True, label=label)

    @staticmethod
    def market_close(
        offset: timedelta | None = None, hours: int | None = None, minutes: int | None = None
    ) -> TimeRule:
        """``offset`` before the close; with no arguments one minute before (15:59 on NYSE,
        12:59 on an early-close day)."""
        ns = _offset_ns("market_close", offset, hours, minutes)
        label = f"market_close({_fmt_offset(hours, minutes, offset)})"
        return _SessionAnchor("close", -ns, within_session=True, label=label)

    @staticmethod
    def every_minute() -> TimeRule:
        """Every minute of every chosen session, labelled by the minute's end (09:31 ... 16:00)."""
        return _EveryMinute()


def _session_anchor(anchor: str, offset_minutes: int) -> TimeRule:
    """Signed-offset open/close instant for the live scheduler's market-open/close jobs."""
    sign = f"{offset_minutes:+d}m" if offset_minutes else ""
    return _SessionAnchor(
        anchor,
        offset_minutes * _NS_PER_MINUTE,
        within_session=False,
        label=f"market_{anchor}{sign}",
    )


# --- firing times ------------------------------------------------------------------------------
def _to_ns(value: datetime | date | str, name: str, end_of_day: bool = False) -> int:
    if isinstance(value, str):
        try:
            value = pd.Timestamp(value).to_pydatetime()
        except (ValueError, TypeError) as exc:
            raise SchedulerError(f"{name}={value!r} is not a date or datetime: {exc}") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise SchedulerError(
                f"{name}={value!r} has no time zone; pass an aware datetime, e.g. "
                f"datetime(2024, 11, 1, tzinfo=ZoneInfo('UTC'))"
            )
        return (value - _EPOCH) // timedelta(microseconds=1) * 1000
    if isinstance(value, date):
        midnight = datetime(value.year, value.month, value.day, tzinfo=UTC)
        ns = (midnight - _EPOCH) // timedelta(microseconds=1) * 1000
        return ns + _NS_PER_DAY - 1 if end_of_day else ns
    raise SchedulerError(f"{name} must be a datetime, date or ISO string, got {value!r}")


def _ns_to_datetime(ns: int, tz: tzinfo = UTC) -> datetime:
    return (_EPOCH + timedelta(microseconds=int(ns) // 1000)).astimezone(tz)


def _check_rules(date_rule: Any, time_rule: Any) -> None:
    if not isinstance(date_rule, DateRule):
        raise SchedulerError(
            f"date_rule must come from rustybt.scheduling.date_rules (e.g. date_rules.every_day()),"
            f" got {date_rule!r}"
        )
    if not isinstance(time_rule, TimeRule):
        raise SchedulerError(
            f"time_rule must come from rustybt.scheduling.time_rules "
            f"(e.g. time_rules.market_open(minutes=30)), got {time_rule!r}"
        )


def _fire_ns(date_rule: DateRule, time_rule: TimeRule, code: str, lo: int, hi: int) -> np.ndarray:
    """Firing times in [lo, hi] (int64 ns UTC, sorted)."""
    # Pad by more than a month so every week/month touching [lo, hi] is seen whole and
    # week_start/month_end count from the right session.
    pad = 40 * _NS_PER_DAY
    table = _table(code, lo - pad, hi + pad)
    i0, i1 = np.searchsorted(table.sessions, [lo - pad, hi + pad])
    sessions = pd.DatetimeIndex(table.sessions[i0:i1].astype("datetime64[ns]"))
    mask = date_rule.select(sessions)
    opens = table.opens[i0:i1][mask]
    closes = table.closes[i0:i1][mask]
    times = np.sort(time_rule.times(opens, closes))
    return times[(times >= lo) & (times <= hi)]


def fire_times(
    date_rule: DateRule,
    time_rule: TimeRule,
    calendar: str = "XNYS",
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
) -> list[datetime]:
    """Every instant (tz-aware UTC, sorted) in [start, end] at which the rule pair fires.

    ``calendar`` is an exchange name or code (``"NYSE"``, ``"XNYS"``, ``"24/7"``). A ``date``
    bound covers that whole UTC day. This is what the backtest clock uses; the live scheduler's
    :class:`RuleTrigger` yields exactly the same instants.
    """
    _check_rules(date_rule, time_rule)
    if start is None or end is None:
        raise SchedulerError("fire_times needs both start and end")
    code = resolve_calendar_name(calendar)
    lo = _to_ns(start, "start")
    hi = _to_ns(end, "end", end_of_day=True)
    if hi < lo:
        raise SchedulerError(f"end ({end!r}) is before start ({start!r})")
    return [_ns_to_datetime(ns) for ns in _fire_ns(date_rule, time_rule, code, lo, hi)]


class RuleTrigger(BaseTrigger):
    """APScheduler trigger firing at a date rule x time rule over an exchange calendar.

    It reads the same :func:`fire_times` sequence the backtest uses, so live and backtest fire
    at identical instants. Next-fire lookups are served from a cached window of times.
    """

    _WINDOW_DAYS = 62
    _MAX_LOOKAHEAD_DAYS = 5 * 366

    def __init__(
        self,
        date_rule: DateRule,
        time_rule: TimeRule,
        calendar: str = "XNYS",
        timezone: tzinfo = UTC,
    ) -> None:
        _check_rules(date_rule, time_rule)
        self.date_rule = date_rule
        self.time_rule = time_rule
        self.calendar = resolve_calendar_name(calendar)
        self.timezone = timezone
        self._win_lo = 0
        self._win_hi = -1
        self._win_times = np.zeros(0, dtype=np.int64)

    def _next_ns(self, threshold: int) -> int | None:
        if self._win_lo <= threshold <= self._win_hi:
            i = int(np.searchsorted(self._win_times, threshold))
            if i < len(self._win_times):
                return int(self._win_times[i])
        span = self._WINDOW_DAYS * _NS_PER_DAY
        lo = threshold
        while lo - threshold <= self._MAX_LOOKAHEAD_DAYS * _NS_PER_DAY:
            hi = lo + span
            times = _fire_ns(self.date_rule, self.time_rule, self.calendar, lo, hi)
            if len(times):
                self._win_lo, self._win_hi, self._win_times = threshold, hi, times
                return int(times[0])
            lo = hi + 1
        return None  # the rule never fires again (e.g. an offset outside every session)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is not None:
            threshold = _to_ns(previous_fire_time, "previous_fire_time") + 1000  # strictly after
        else:
            threshold = _to_ns(now, "now")
        nxt = self._next_ns(threshold)
        return None if nxt is None else _ns_to_datetime(nxt, self.timezone)

    def __str__(self) -> str:
        return f"rule[{self.date_rule!r} {self.time_rule!r} {self.calendar}]"

    def __repr__(self) -> str:
        return (
            f"RuleTrigger({self.date_rule!r}, {self.time_rule!r}, calendar={self.calendar!r}, "
            f"timezone={self.timezone!s})"
        )
