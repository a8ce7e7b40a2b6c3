"""date_rules / time_rules / fire_times: real NYSE sessions, early closes, holidays, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rustybt.exceptions import SchedulerError
from rustybt.scheduling import (
    RuleTrigger,
    date_rules,
    fire_times,
    resolve_calendar_name,
    time_rules,
)

NY = ZoneInfo("America/New_York")


def _local(times: list[datetime]) -> list[str]:
    return [t.astimezone(NY).strftime("%Y-%m-%d %H:%M") for t in times]


def test_market_close_rule_fires_one_minute_before_early_close_and_skips_thanksgiving():
    times = fire_times(
        date_rules.every_day(),
        time_rules.market_close(),
        "NYSE",
        date(2024, 11, 27),
        date(2024, 11, 29),
    )
    assert _local(times) == ["2024-11-27 15:59", "2024-11-29 12:59"]


def test_market_open_default_is_one_minute_after_open():
    times = fire_times(
        date_rules.every_day(),
        time_rules.market_open(),
        "XNYS",
        date(2024, 11, 4),
        date(2024, 11, 4),
    )
    assert times == [datetime(2024, 11, 4, 14, 31, tzinfo=UTC)]


def test_market_open_hours_only_means_no_extra_minute():
    times = fire_times(
        date_rules.every_day(),
        time_rules.market_open(hours=1),
        "XNYS",
        date(2024, 11, 4),
        date(2024, 11, 4),
    )
    assert _local(times) == ["2024-11-04 10:30"]


def test_market_open_keeps_new_york_time_across_dst_end():
    times = fire_times(
        date_rules.every_day(),
        time_rules.market_open(minutes=30),
        "XNYS",
        date(2024, 11, 1),
        date(2024, 11, 4),
    )
    assert [t.strftime("%H:%M") for t in times] == ["14:00", "15:00"]  # UTC shifts, local does not
    assert _local(times) == ["2024-11-01 10:00", "2024-11-04 10:00"]


def test_time_rule_outside_an_early_close_session_does_not_fire_that_day():
    # 14:30 New York exists on a full day but is after the 13:00 early close.
    times = fire_times(
        date_rules.every_day(),
        time_rules.market_open(hours=5),
        "XNYS",
        date(2024, 11, 27),
        date(2024, 11, 29),
    )
    assert _local(times) == ["2024-11-27 14:30"]


def test_every_minute_labels_minutes_by_their_end_on_an_early_close_day():
    times = fire_times(
        date_rules.every_day(),
        time_rules.every_minute(),
        "XNYS",
        date(2024, 11, 29),
        date(2024, 11, 29),
    )
    assert len(times) == 210
    assert _local([times[0], times[-1]]) == ["2024-11-29 09:31", "2024-11-29 13:00"]
    assert all(b - a == timedelta(minutes=1) for a, b in zip(times, times[1:], strict=False))


def test_week_start_moves_to_tuesday_when_monday_is_a_holiday():
    times = fire_times(
        date_rules.week_start(),
        time_rules.market_open(),
        "XNYS",
        date(2024, 8, 26),
        date(2024, 9, 8),
    )
    assert [t.date() for t in times] == [date(2024, 8, 26), date(2024, 9, 3)]  # Labor Day 9/2


def test_week_end_with_offset_counts_back_from_last_session():
    times = fire_times(
        date_rules.week_end(days_offset=1),
        time_rules.market_close(),
        "XNYS",
        date(2024, 11, 25),
        date(2024, 11, 29),
    )
    # Thanksgiving week sessions: Mon Tue Wed Fri -> one before the last is Wednesday.
    assert [t.date() for t in times] == [date(2024, 11, 27)]


def test_month_start_and_month_end_pick_first_and_last_sessions():
    start, end = date(2024, 3, 1), date(2024, 6, 30)
    firsts = fire_times(date_rules.month_start(), time_rules.market_open(), "XNYS", start, end)
    lasts = fire_times(date_rules.month_end(), time_rules.market_open(), "XNYS", start, end)
    assert [t.date() for t in firsts] == [
        date(2024, 3, 1), date(2024, 4, 1), date(2024, 5, 1), date(2024, 6, 3)
    ]  # fmt: skip
    # 2024-03-29 is Good Friday, a NYSE holiday.
    assert [t.date() for t in lasts] == [
        date(2024, 3, 28), date(2024, 4, 30), date(2024, 5, 31), date(2024, 6, 28)
    ]  # fmt: skip


def test_month_start_is_correct_when_range_begins_mid_month():
    times = fire_times(
        date_rules.month_start(days_offset=2),
        time_rules.market_open(),
        "XNYS",
        date(2024, 11, 15),
        date(2024, 12, 31),
    )
    assert [t.date() for t in times] == [date(2024, 12, 4)]


def test_crypto_calendar_fires_every_day_including_weekends():
    times = fire_times(
        date_rules.every_day(),
        time_rules.market_open(minutes=0),
        "crypto",
        date(2024, 11, 29),
        date(2024, 12, 2),
    )
    assert times == [datetime(2024, 11, d, tzinfo=UTC) for d in (29, 30)] + [
        datetime(2024, 12, d, tzinfo=UTC) for d in (1, 2)
    ]


def test_fire_times_respects_datetime_bounds_inclusively():
    start = datetime(2024, 11, 4, 14, 31, tzinfo=UTC)
    end = datetime(2024, 11, 5, 14, 30, tzinfo=UTC)
    times = fire_times(date_rules.every_day(), time_rules.market_open(), "XNYS", start, end)
    assert times == [start]


def test_rule_trigger_yields_the_fire_times_sequence():
    rules = (date_rules.week_start(1), time_rules.market_close(minutes=15))
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 12, 31, 23, 59, tzinfo=UTC)
    expected = fire_times(*rules, "XNYS", start, end)
    trigger = RuleTrigger(*rules, calendar="NYSE")
    got, prev = [], None
    while True:
        prev = trigger.get_next_fire_time(prev, start)
        if prev is None or prev > end:
            break
        got.append(prev)
    assert got == expected
    assert len(got) == 53  # 2024-12-30/31 start ISO week 2025-W01


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("NYSE", "XNYS"),
        ("nasdaq", "XNYS"),  # exchange_calendars aliases XNAS to XNYS (identical sessions)
        ("LSE", "XLON"),
        ("CME", "CMES"),
        ("CRYPTO", "24/7"),
        ("24/7", "24/7"),
        ("XTKS", "XTKS"),
    ],
)
def test_exchange_names_resolve_to_calendar_codes(name, code):
    assert resolve_calendar_name(name) == code


def test_unknown_exchange_error_lists_examples():
    with pytest.raises(SchedulerError, match=r"unknown exchange 'MOONX'.*NYSE.*XNYS"):
        resolve_calendar_name("MOONX")


@pytest.mark.parametrize(
    "make",
    [
        lambda: date_rules.week_start(days_offset=7),
        lambda: date_rules.month_end(days_offset=-1),
        lambda: date_rules.month_start(days_offset=1.5),
        lambda: time_rules.market_open(minutes=-5),
        lambda: time_rules.market_close(hours=24),
        lambda: time_rules.market_open(minutes="5"),
        lambda: time_rules.market_open(offset=timedelta(minutes=1), minutes=1),
    ],
)
def test_bad_rule_arguments_raise_scheduler_error(make):
    with pytest.raises(SchedulerError):
        make()


def test_fire_times_rejects_bad_inputs():
    er, mo = date_rules.every_day(), time_rules.market_open()
    with pytest.raises(SchedulerError, match="no time zone"):
        fire_times(er, mo, "XNYS", datetime(2024, 1, 1), datetime(2024, 2, 1))
    with pytest.raises(SchedulerError, match="before start"):
        fire_times(er, mo, "XNYS", date(2024, 2, 1), date(2024, 1, 1))
    with pytest.raises(SchedulerError, match="date_rule"):
        fire_times("every_day", mo, "XNYS", date(2024, 1, 1), date(2024, 2, 1))
    with pytest.raises(SchedulerError, match="time_rule"):
        fire_times(er, None, "XNYS", date(2024, 1, 1), date(2024, 2, 1))
    with pytest.raises(SchedulerError, match="unknown exchange"):
        fire_times(er, mo, "NOPE", date(2024, 1, 1), date(2024, 2, 1))
