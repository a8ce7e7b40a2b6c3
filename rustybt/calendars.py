"""Trading-calendar facts the kernel needs on its hot paths: time zones and session days.

Kept apart from ``exchange_calendars`` (slow to import) for the calendars we know; any
other calendar name is looked up there once and cached.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

_ONE_US = timedelta(microseconds=1)
_CALENDAR_TZ = {
    "24/7": "UTC",
    "24/5": "UTC",
    "always_open": "UTC",
    "XNYS": "America/New_York",
    "XNAS": "America/New_York",
    "CMES": "America/Chicago",
    "XLON": "Europe/London",
    "XTKS": "Asia/Tokyo",
}


@lru_cache(maxsize=32)
def calendar_tz(calendar: str) -> ZoneInfo:
    """The time zone in which ``calendar``'s trading days start and end."""
    known = _CALENDAR_TZ.get(calendar)
    if known is not None:
        return ZoneInfo(known)
    import exchange_calendars as xcals  # slow to import: only for calendars not listed

    try:
        return ZoneInfo(str(xcals.get_calendar(calendar).tz))
    except Exception:
        return ZoneInfo("UTC")


def session_day(dt: datetime, tz: ZoneInfo, minute_bars: bool = True) -> date:
    """The trading day a bar belongs to.

    Minute bars are stamped at the end of their minute, so the bar stamped 00:00 closes
    the previous day (it matters for 24/7 calendars); daily bars carry their date: they
    are stamped midnight UTC of the session date, which in New York is still the evening
    before, so their day is read in UTC.
    """
    if minute_bars:
        return (dt - _ONE_US).astimezone(tz).date()
    return dt.astimezone(UTC).date()


class SessionDays:
    """:func:`session_day` for minute bars in one time zone, remembering the current
    day's bounds: the live engine asks for every event, and nearly all fall in the day
    it answered last (about 0.2 µs instead of 2 µs)."""

    __slots__ = ("tz", "_lo", "_hi", "_day")

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._lo: datetime | None = None
        self._hi: datetime | None = None
        self._day: date | None = None

    def __call__(self, dt: datetime) -> date:
        lo = self._lo
        if lo is not None and lo < dt <= self._hi:  # type: ignore[operator]
            return self._day  # type: ignore[return-value]
        day = session_day(dt, self.tz)
        # The day's minute bars are stamped in (its midnight, the next midnight]. Kept in
        # UTC, the bars' own zone: comparing datetimes of one tzinfo skips the utcoffset
        # lookups (0.3 µs a call instead of 3.4 µs with the exchange's zone).
        lo = datetime.combine(day, datetime.min.time(), self.tz).astimezone(UTC)
        hi = datetime.combine(day + timedelta(days=1), datetime.min.time(), self.tz).astimezone(UTC)
        if lo < dt <= hi:  # else a zone without a midnight that day: do not cache
            self._lo, self._hi, self._day = lo, hi, day
        return day


def check_calendar_name(calendar: str, label: str = "calendar") -> str:
    """``calendar`` if it names a known trading calendar, else :class:`ConfigError`."""
    from rustybt.exceptions import ConfigError

    if calendar in _CALENDAR_TZ:
        return calendar
    import exchange_calendars as xcals  # slow to import: only for calendars not listed

    if calendar in xcals.get_calendar_names(include_aliases=True):
        return calendar
    raise ConfigError(
        f"{label} {calendar!r} is not a known trading calendar; use e.g. XNYS, XNAS, CMES, "
        "24/7 or another exchange_calendars code"
    )
