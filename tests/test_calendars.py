"""Session days: minute bars close at their stamp, daily bars carry their session date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from rustybt import run_algorithm
from rustybt.algorithm import TradingAlgorithm
from rustybt.calendars import SessionDays, calendar_tz, session_day


def test_daily_bar_stamped_midnight_utc_belongs_to_its_own_date_in_new_york():
    ny = calendar_tz("XNYS")
    assert session_day(datetime(2024, 1, 3, tzinfo=UTC), ny, minute_bars=False) == date(2024, 1, 3)


def test_minute_bar_stamped_midnight_closes_the_previous_day():
    utc = calendar_tz("24/7")
    assert session_day(datetime(2024, 1, 3, tzinfo=UTC), utc) == date(2024, 1, 2)


def test_daily_backtest_rows_carry_the_session_dates():
    class Hold(TradingAlgorithm):
        def initialize(self):
            self.asset = self.symbol("AAPL")

    result = run_algorithm(Hold(), data_frequency="daily", start="2024-01-02", end="2024-01-05")
    assert [row["date"] for row in result.daily] == [date(2024, 1, d) for d in (2, 3, 4, 5)]


@settings(max_examples=60, deadline=None)
@given(
    tz=st.sampled_from(
        ["America/New_York", "UTC", "Europe/London", "Asia/Tokyo", "America/Havana"]
    ),
    steps=st.lists(st.integers(min_value=-90, max_value=3000), min_size=1, max_size=200),
)
def test_session_days_cache_answers_like_session_day_across_days_and_dst(tz, steps):
    zone = ZoneInfo(tz)
    days = SessionDays(zone)
    t = datetime(2024, 3, 9, 23, 0, tzinfo=UTC)  # a weekend with DST changes nearby
    for minutes in steps:
        t += timedelta(minutes=minutes)
        assert days(t) == session_day(t, zone)
