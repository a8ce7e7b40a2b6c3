"""``data.history`` against a straightforward reference, in backtest and live, 1m and 1d.

The reference recomputes every window from the raw bars with plain Python (filter, sort,
group by session), so it shares no code with the column stores, the aligned frames or the
session aggregation it checks. Live: the bundle holds the bars before a cut; the engine's
entry point ``LiveBarData.on_bar`` then receives every bar from a live start at or before
the cut (overlap, as in a replay) through bars past the bundle's end (pushed), with a small
window so that compaction runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rustybt.assets import Crypto, Equity
from rustybt.data.bar import Bar
from rustybt.data.bar_data import BacktestBarData, LiveBarData
from rustybt.data.bundles import daily_from_minute, write_bundle
from rustybt.data.history import HistoryFrame, HistorySeries
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.exceptions import DataNotFound

BASE = datetime(2024, 1, 2, 12, 0, tzinfo=UTC)
FIELDS = ("open", "high", "low", "close", "volume", "price")
ASSETS = [
    Crypto("BTCUSDT", sid=1, calendar="24/7", exchange="BINANCE", quote_currency="USDT"),
    Equity("AAPL", sid=2),
    Crypto("ETHUSDT", sid=3, calendar="24/7", exchange="BINANCE", quote_currency="USDT"),
]
CENT = Decimal("0.01")


# --- the reference --------------------------------------------------------------------
def _session(ns: int, tz: str) -> int:
    local = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000 - 1)).astimezone(
        ZoneInfo(tz)
    )
    d = local.date()
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 10**9


def _tz(asset) -> str:
    return "UTC" if asset.calendar == "24/7" else "America/New_York"


def ref_minutes(bars: list[tuple], now: int) -> list[tuple]:
    return sorted(b for b in bars if b[0] <= now)


def ref_daily(asset, bars: list[tuple], now: int) -> list[tuple]:
    """Sessions of the bars at or before now: (label, o, h, l, c, v)."""
    days: dict[int, list[tuple]] = {}
    for b in ref_minutes(bars, now):
        days.setdefault(_session(b[0], _tz(asset)), []).append(b)
    out = []
    for label in sorted(days):
        rows = days[label]
        out.append(
            (
                label,
                rows[0][1],
                max(r[2] for r in rows),
                min(r[3] for r in rows),
                rows[-1][4],
                sum((r[5] for r in rows), Decimal(0)),
            )
        )
    return out


_COL = {"open": 1, "high": 2, "low": 3, "close": 4, "volume": 5, "price": 4}


def ref_series(rows: list[tuple], field: str, n: int) -> tuple[list[int], list[Decimal]]:
    tail = rows[-n:]
    return [r[0] for r in tail], [r[_COL[field]] for r in tail]


def ref_frame(per_asset: list[list[tuple]], field: str, n: int):
    stamps = sorted({r[0] for rows in per_asset for r in rows})[-n:]
    columns = []
    for rows in per_asset:
        col = []
        for t in stamps:
            if field == "price":
                before = [r for r in rows if r[0] <= t]
                col.append(before[-1][4] if before else None)
            else:
                hit = [r for r in rows if r[0] == t]
                col.append(
                    hit[0][_COL[field]] if hit else (Decimal(0) if field == "volume" else None)
                )
            # (a bar per stamp per asset: ``hit`` has at most one row)
        columns.append(col)
    return stamps, columns


def check_series(got, stamps: list[int], values: list[Decimal], asset) -> None:
    assert isinstance(got, HistorySeries) and isinstance(got, pd.Series)
    assert got.name == asset
    assert got.index.asi8.tolist() == stamps
    assert str(got.index.tz) == "UTC"
    assert got.tolist() == values
    assert all(type(v) is Decimal for v in got.tolist())


def check_frame(got, stamps: list[int], columns: list[list], assets) -> None:
    assert isinstance(got, HistoryFrame) and isinstance(got, pd.DataFrame)
    assert list(got.columns) == list(assets)
    assert got.index.asi8.tolist() == stamps
    for j, asset in enumerate(assets):
        assert got[asset].tolist() == columns[j], asset


# --- data -----------------------------------------------------------------------------
@st.composite
def scenarios(draw):
    k = draw(st.integers(1, 3))
    assets = ASSETS[:k]
    horizon = 3 * 1440  # three days of minutes, so windows cross session boundaries
    bars = {}
    for asset in assets:
        minutes = draw(
            st.lists(st.integers(0, horizon), min_size=1, max_size=40, unique=True).map(sorted)
        )
        rows = []
        for m in minutes:
            c = draw(st.integers(100, 100_000))
            o = draw(st.integers(100, 100_000))
            hi = max(o, c) + draw(st.integers(0, 50))
            lo = max(1, min(o, c) - draw(st.integers(0, 50)))
            v = draw(st.integers(0, 10_000))
            ns = int((BASE + timedelta(minutes=m)).timestamp()) * 10**9
            rows.append((ns, o * CENT, hi * CENT, lo * CENT, c * CENT, Decimal(v)))
        bars[asset] = rows
    stamps = sorted({r[0] for rows in bars.values() for r in rows})
    cut = draw(st.integers(1, len(stamps)))  # the bundle holds stamps[:cut]
    live_start = draw(st.integers(0, cut))  # live bars from stamps[live_start:] (overlap)
    window = draw(st.integers(3, 12))
    asks = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(stamps) - 1),
                st.sampled_from(FIELDS),
                st.integers(1, window),
                st.sampled_from(["1m", "1d"]),
                st.booleans(),  # several assets?
            ),
            min_size=1,
            max_size=8,
        )
    )
    return assets, bars, stamps, cut, live_start, window, asks


def _bundle(root: Path, name: str, assets, bars, upto: int) -> PolarsDataPortal:
    rows = [
        {
            "symbol": a.symbol,
            "dt": r[0] // 1000,
            "open": r[1],
            "high": r[2],
            "low": r[3],
            "close": r[4],
            "volume": r[5],
        }  # fmt: skip
        for a in assets
        for r in bars[a]
        if r[0] < upto
    ]
    if not rows:
        return None
    schema = {"symbol": pl.Utf8, "dt": pl.Int64}
    schema.update({c: pl.Decimal(38, 8) for c in ("open", "high", "low", "close", "volume")})
    minute = pl.DataFrame(rows, schema=schema).with_columns(
        pl.col("dt").cast(pl.Datetime("us", "UTC"))
    )
    daily = daily_from_minute(minute, assets)
    write_bundle(name, assets, {"minute": minute, "daily": daily}, root=root)
    return PolarsDataPortal(name, "minute", root=root)


# --- the properties ---------------------------------------------------------------------
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(case=scenarios())
def test_backtest_history_matches_the_reference(case, tmp_path_factory) -> None:
    assets, bars, stamps, _cut, _live, _window, asks = case
    root = tmp_path_factory.mktemp("bt")
    portal = _bundle(root, "h", assets, bars, upto=stamps[-1] + 1)
    clock = portal.timestamps(assets)
    data = BacktestBarData(portal, clock)
    # asks are answered in clock order, like a run, and each twice (a cache is built)
    for i, field, n, freq, many in sorted(asks) * 2:
        now = int(clock[i])
        data.set_index(i, datetime.fromtimestamp(now / 1e9, UTC))
        _check(data, assets, bars, now, field, n, freq, many)


@SETTINGS
@given(case=scenarios())
def test_live_history_matches_the_reference(case, tmp_path_factory) -> None:
    assets, bars, stamps, cut, live_start, window, asks = case
    root = tmp_path_factory.mktemp("live")
    portal = _bundle(root, "h", assets, bars, upto=stamps[cut - 1] + 1)
    data = LiveBarData(portal, window=window)
    by_step: dict[int, list] = {}
    for i, field, n, freq, many in asks:
        by_step.setdefault(max(i, live_start), []).append((field, n, freq, many))
    for i in range(live_start, len(stamps)):
        now = stamps[i]
        dt = datetime.fromtimestamp(now / 1e9, UTC)
        data.current_dt = dt
        for a in assets:
            for r in bars[a]:
                if r[0] == now:
                    data.on_bar(Bar(a, dt, *r[1:]))
        for field, n, freq, many in by_step.get(i, []) * 2:
            _check(data, assets, bars, now, field, n, freq, many)


@pytest.mark.slow
@settings(SETTINGS, max_examples=400)
@given(case=scenarios())
def test_history_matches_the_reference_over_many_more_cases(case, tmp_path_factory) -> None:
    test_backtest_history_matches_the_reference.hypothesis.inner_test(case, tmp_path_factory)
    test_live_history_matches_the_reference.hypothesis.inner_test(case, tmp_path_factory)


def _check(data, assets, bars, now, field, n, freq, many) -> None:
    if many and len(assets) > 1:
        got = data.history(assets, field, n, freq)
        if freq == "1m":
            per = [ref_minutes(bars[a], now) for a in assets]
        else:
            per = [ref_daily(a, bars[a], now) for a in assets]
        check_frame(got, *ref_frame(per, field, n), assets)
        return
    a = assets[0]
    rows = ref_minutes(bars[a], now) if freq == "1m" else ref_daily(a, bars[a], now)
    check_series(data.history(a, field, n, freq), *ref_series(rows, field, n), a)
    if freq == "1m":
        assert data.history_values(a, field, n, freq).tolist() == ref_series(rows, field, n)[1]


# --- exactness and pandas behaviour ---------------------------------------------------------
def _series(values: list[str]) -> HistorySeries:
    stamps = (np.arange(len(values), dtype=np.int64) + 1) * 60 * 10**9
    return HistorySeries(
        [Decimal(v) for v in values], index=pd.DatetimeIndex(stamps, tz="UTC"), dtype=object
    )


# 30 closes in cents whose last 10 sum to a third of all 30: 3·Σ10 = Σ30 exactly. With
# floats, pandas gets 480.28600000000006 for the last 10 and 480.28599999999994 for all 30.
TIE_CENTS = [28519, 13302, 64944, 4715, 52093, 57723, 80618, 1276, 92204, 59377, 35908, 95573,
             30984, 78483, 14399, 42606, 5009, 3925, 4335, 194579, 18611, 75606, 9271, 34432,
             16455, 65937, 59915, 62898, 86405, 50756]  # fmt: skip


def test_mean_is_an_exact_decimal_and_a_three_to_one_tie_stays_a_tie() -> None:
    h = _series([str(Decimal(c) / 100) for c in TIE_CENTS])
    assert 3 * h.iloc[-10:].sum() == h.sum()
    fast, slow = h.iloc[-10:].mean(), h.mean()
    assert type(fast) is Decimal and type(slow) is Decimal
    assert fast == slow == Decimal("480.286")
    assert not fast > slow and not fast < slow
    floats = h.astype(float)  # what stock pandas (and float data) would decide
    assert floats.iloc[-10:].mean() > floats.mean()


def test_frame_mean_and_sum_are_exact_per_column() -> None:
    h = _series(["1.01", "1.02", "1.04"])
    frame = HistoryFrame({"a": h.to_numpy(), "b": h.to_numpy()}, index=h.index, dtype=object)
    means = frame.mean()
    assert isinstance(means, HistorySeries)
    assert means.tolist() == [Decimal("3.07") / 3] * 2
    assert frame.sum().tolist() == [Decimal("3.07")] * 2
    assert frame.iloc[-2:].mean().tolist() == [Decimal("1.03")] * 2


def test_missing_bars_are_skipped_by_mean_and_rolling_still_works() -> None:
    h = HistorySeries([Decimal("1"), None, Decimal("2")], dtype=object)
    assert h.mean() == Decimal("1.5")
    rolled = _series(["1", "2", "3", "4"]).rolling(2).mean()
    assert rolled.iloc[-1] == 3.5  # pandas rolls in float, as documented


def test_a_window_never_changes_after_it_was_handed_out(tmp_path: Path) -> None:
    asset = ASSETS[0]
    data = LiveBarData(None, window=3)
    seen = []
    for m in range(20):
        dt = BASE + timedelta(minutes=m)
        data.current_dt = dt
        data.on_bar(Bar.from_tick(asset, dt, Decimal(m + 1)))
        window = data.history(asset, "price", 3, "1m")
        frame = data.history([asset, ASSETS[2]], "price", 3, "1m")
        seen.append((window, window.tolist(), frame, frame[asset].tolist()))
    for window, values, frame, column in seen:
        assert window.tolist() == values
        assert frame[asset].tolist() == column
    # and a strategy writing into its window does not write into the next one
    w = data.history(asset, "price", 3, "1m")
    w.iloc[-1] = Decimal(-1)
    assert data.history(asset, "price", 3, "1m").iloc[-1] == Decimal(20)


def test_history_rejects_bad_arguments_with_a_typed_error() -> None:
    data = LiveBarData(None)
    asset = ASSETS[0]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(DataNotFound, match="bar_count"):
            data.history(asset, "price", bad)
    with pytest.raises(DataNotFound, match="frequency"):
        data.history(asset, "price", 3, "5m")
    with pytest.raises(DataNotFound, match="no field 'last_traded'"):
        data.history(asset, "last_traded", 3)
    with pytest.raises(DataNotFound, match="several assets and several fields"):
        data.history([asset, ASSETS[2]], ["open", "close"], 3)
