"""PolarsDataPortal over the demo bundle: columnar arrays, spot values, windows, the clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from rustybt.assets import Asset, Equity
from rustybt.data.bar import Bar
from rustybt.data.bundles import DECIMAL_DTYPE, write_bundle
from rustybt.data.polars.data_portal import AssetBars, PolarsDataPortal
from rustybt.exceptions import BundleNotFound, ConfigError, DataNotFound, SymbolNotFound

T = pd.Timestamp


@pytest.fixture
def portal(demo_env: Path) -> PolarsDataPortal:
    return PolarsDataPortal(bundle_name="demo", data_frequency="minute")


@pytest.fixture
def aapl(portal: PolarsDataPortal) -> Asset:
    return portal.asset_finder.lookup_symbol("AAPL")


@pytest.fixture
def btc(portal: PolarsDataPortal) -> Asset:
    return portal.asset_finder.lookup_symbol("BTCUSDT")


def test_spec_constructor_exposes_bundle_facts(portal: PolarsDataPortal) -> None:
    assert portal.bundle_name == "demo" and portal.data_frequency == "minute"
    assert portal.start == T("2024-01-02 00:01", tz="UTC")
    assert portal.end == T("2024-01-31 00:00", tz="UTC")
    assert len(portal.asset_finder) == 12


def test_bad_frequency_is_config_error_and_missing_one_is_data_not_found(
    demo_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="unknown data frequency"):
        PolarsDataPortal("demo", "hourly")
    monkeypatch.setenv("RUSTYBT_ROOT", str(tmp_path))
    frame = pl.DataFrame(
        {
            "symbol": ["X"],
            "dt": pl.Series([datetime(2024, 1, 2, tzinfo=UTC)], dtype=pl.Datetime("us", "UTC")),
            **{c: pl.Series(["1"]).cast(DECIMAL_DTYPE) for c in ("open", "high", "low", "close")},
            "volume": pl.Series(["1"]).cast(DECIMAL_DTYPE),
        }
    )
    write_bundle("dailyonly", [Equity("X")], {"daily": frame})
    with pytest.raises(DataNotFound, match="no minute bars"):
        PolarsDataPortal("dailyonly", "minute")
    with pytest.raises(BundleNotFound):
        PolarsDataPortal("nothing-here")


def test_asset_bars_are_columnar_exact_decimals_and_cached(
    portal: PolarsDataPortal, aapl: Asset, btc: Asset
) -> None:
    bars = portal.asset_bars(aapl)
    assert isinstance(bars, AssetBars)
    assert portal.asset_bars(aapl) is bars
    assert bars.dts.dtype == np.int64 and len(bars) == 7800
    assert bool(np.all(np.diff(bars.dts) > 0))
    assert all(len(col) == 7800 for col in (bars.open, bars.high, bars.low, bars.close))
    assert all(isinstance(x, Decimal) for x in bars.close[:50] + bars.volume[:50])
    assert bars.open[0] == Decimal("184.61") and str(bars.open[0]) == "184.61"
    assert str(bars.volume[0]) == "221550"
    crypto_volume = portal.asset_bars(btc).volume[0]
    assert crypto_volume == crypto_volume.quantize(Decimal("0.00001"))
    assert bars.dts[0] == T("2024-01-02 14:31", tz="UTC").value


def test_asset_bars_match_the_bundle_frame_exactly(portal: PolarsDataPortal, aapl: Asset) -> None:
    frame = portal.bundle.frame("minute").filter(pl.col("symbol") == "AAPL")
    bars = portal.asset_bars(aapl)
    assert bars.close == frame["close"].to_list()
    assert bars.volume == frame["volume"].to_list()


def test_spot_values_are_exact_at_a_bar_and_price_forward_fills(
    portal: PolarsDataPortal, aapl: Asset
) -> None:
    bars = portal.asset_bars(aapl)
    dt = T("2024-01-05 15:00", tz="UTC")
    i = bars.index_at(dt.value)
    for field in ("open", "high", "low", "close", "volume"):
        assert portal.get_spot_value(aapl, field, dt) == getattr(bars, field)[i]
    assert portal.get_spot_value(aapl, "price", dt) == bars.close[i]
    # Saturday: no bar; price is Friday's last close, volume 0, the rest None
    saturday = datetime(2024, 1, 6, 15, 0, tzinfo=UTC)
    friday_close = bars.close[bars.index_at(T("2024-01-05 21:00", tz="UTC").value)]
    assert portal.get_spot_value(aapl, "price", saturday) == friday_close
    assert portal.get_spot_value(aapl, "volume", saturday) == Decimal(0)
    assert portal.get_spot_value(aapl, "close", saturday) is None
    # before the first bar there is no price at all
    assert portal.get_spot_value(aapl, "price", T("2024-01-02 14:00", tz="UTC")) is None


def test_unknown_field_and_naive_times_are_typed_errors(
    portal: PolarsDataPortal, aapl: Asset
) -> None:
    with pytest.raises(DataNotFound, match="unknown field 'prce'"):
        portal.get_spot_value(aapl, "prce", T("2024-01-05 15:00", tz="UTC"))
    with pytest.raises(ConfigError, match="no time zone"):
        portal.get_spot_value(aapl, "price", datetime(2024, 1, 5, 15, 0))
    with pytest.raises(SymbolNotFound):
        portal.get_spot_value("NOPE", "price", T("2024-01-05 15:00", tz="UTC"))


def test_get_bar_returns_the_exact_bar_or_none(portal: PolarsDataPortal, aapl: Asset) -> None:
    dt = T("2024-01-05 15:00", tz="UTC")
    bar = portal.get_bar(aapl, dt)
    assert isinstance(bar, Bar)
    assert bar.dt == dt and bar.asset == aapl
    assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
    assert portal.get_bar(aapl, T("2024-01-06 15:00", tz="UTC")) is None


def test_can_trade_only_where_a_bar_exists(
    portal: PolarsDataPortal, aapl: Asset, btc: Asset
) -> None:
    saturday = T("2024-01-06 15:00", tz="UTC")
    assert portal.can_trade(aapl, T("2024-01-05 15:00", tz="UTC"))
    assert not portal.can_trade(aapl, saturday)
    assert portal.can_trade(btc, saturday)
    assert not portal.can_trade(Equity("UNKNOWN"), saturday)


def test_timestamps_union_and_bounds(portal: PolarsDataPortal, aapl: Asset, btc: Asset) -> None:
    everything = portal.timestamps()
    assert len(everything) == 29 * 1440  # crypto minutes cover every equity minute
    day = portal.timestamps([aapl], "2024-01-05", "2024-01-05")
    assert len(day) == 390
    assert day[0] == T("2024-01-05 14:31", tz="UTC").value
    assert day[-1] == T("2024-01-05 21:00", tz="UTC").value
    both = portal.timestamps([aapl, btc], date(2024, 1, 5), date(2024, 1, 5))
    assert len(both) == 1440 and bool(np.all(np.diff(both) > 0))
    window = portal.timestamps(
        [aapl], T("2024-01-05 15:00", tz="UTC"), T("2024-01-05 15:09", tz="UTC")
    )
    assert len(window) == 10


def test_timestamps_outside_the_bundle_or_reversed_are_refused(
    portal: PolarsDataPortal, aapl: Asset
) -> None:
    with pytest.raises(DataNotFound, match="2024-01-02"):
        portal.timestamps([aapl], "2023-06-01", "2024-01-05")
    with pytest.raises(DataNotFound, match="outside bundle 'demo'"):
        portal.timestamps([aapl], "2024-01-05", "2024-03-01")
    with pytest.raises(ConfigError, match="after end"):
        portal.timestamps([aapl], "2024-01-10", "2024-01-05")


def test_minute_history_window_is_the_last_n_bars_with_decimal_columns(
    portal: PolarsDataPortal, aapl: Asset
) -> None:
    end = T("2024-01-05 15:00", tz="UTC")
    window = portal.get_history_window([aapl], end, 5, "close")
    assert list(window.columns) == [aapl]
    assert window.index[-1] == end and len(window) == 5
    assert str(window.index.tz) == "UTC"
    assert window[aapl].dtype == object
    bars = portal.asset_bars(aapl)
    i = bars.index_at(end.value)
    assert window[aapl].tolist() == bars.close[i - 4 : i + 1]


def test_history_across_calendars_forward_fills_price_only(
    portal: PolarsDataPortal, aapl: Asset, btc: Asset
) -> None:
    # 14:33 on Jan 2 is the third equity minute; crypto has traded since midnight
    end = T("2024-01-02 14:33", tz="UTC")
    window = portal.get_history_window([aapl, btc], end, 5, "price")
    assert len(window) == 5
    assert window[aapl].tolist()[:2] == [None, None]  # no AAPL price before 14:31
    assert all(isinstance(x, Decimal) for x in window[btc])
    overnight = T("2024-01-03 03:00", tz="UTC")
    prices = portal.get_history_window([aapl, btc], overnight, 3, "price")
    last_close = portal.get_spot_value(aapl, "close", T("2024-01-02 21:00", tz="UTC"))
    assert prices[aapl].tolist() == [last_close] * 3
    volumes = portal.get_history_window([aapl, btc], overnight, 3, "volume")
    assert volumes[aapl].tolist() == [Decimal(0)] * 3
    closes = portal.get_history_window([aapl, btc], overnight, 3, "close")
    assert closes[aapl].tolist() == [None] * 3


def test_daily_history_in_minute_mode_ends_with_the_session_so_far(
    portal: PolarsDataPortal, aapl: Asset
) -> None:
    end = T("2024-01-05 15:00", tz="UTC")  # 10:00 New York, mid-session
    window = portal.get_history_window([aapl], end, 3, "close", "1d")
    assert list(window.index) == [
        T("2024-01-03", tz="UTC"),
        T("2024-01-04", tz="UTC"),
        T("2024-01-05", tz="UTC"),
    ]
    daily = portal.bundle.frame("daily").filter(pl.col("symbol") == "AAPL")
    assert window[aapl].tolist()[:2] == daily["close"].to_list()[1:3]
    # today's value is the latest minute close, not the (future) session close
    assert window[aapl].tolist()[2] == portal.get_spot_value(aapl, "close", end)
    highs = portal.get_history_window([aapl], end, 1, "high", "1d")[aapl].tolist()
    bars = portal.asset_bars(aapl)
    lo = bars.index_at(T("2024-01-05 14:31", tz="UTC").value)
    assert highs == [max(bars.high[lo : bars.index_at(end.value) + 1])]


def test_daily_history_after_the_close_matches_the_daily_file(
    portal: PolarsDataPortal, aapl: Asset
) -> None:
    end = T("2024-01-05 21:00", tz="UTC")
    window = portal.get_history_window([aapl], end, 4, "volume", "1d")
    daily = portal.bundle.frame("daily").filter(pl.col("symbol") == "AAPL")
    assert window[aapl].tolist() == daily["volume"].to_list()[:4]


def test_daily_portal_history_includes_the_bar_at_end(demo_env: Path) -> None:
    portal = PolarsDataPortal("demo", "daily")
    aapl = portal.asset_finder.lookup_symbol("AAPL")
    window = portal.get_history_window([aapl], T("2024-01-05", tz="UTC"), 10, "close")
    assert len(window) == 4  # only four sessions exist by then: a shorter window
    assert window.index[-1] == T("2024-01-05", tz="UTC")


def test_history_window_argument_errors(portal: PolarsDataPortal, aapl: Asset) -> None:
    end = T("2024-01-05 15:00", tz="UTC")
    with pytest.raises(ConfigError, match="bar_count"):
        portal.get_history_window([aapl], end, 0, "close")
    with pytest.raises(ConfigError, match="bar_count"):
        portal.get_history_window([aapl], end, 2.5, "close")  # type: ignore[arg-type]
    with pytest.raises(DataNotFound, match="unknown field"):
        portal.get_history_window([aapl], end, 5, "vwap")
    with pytest.raises(ConfigError, match="unknown data frequency"):
        portal.get_history_window([aapl], end, 5, "close", "5m")


def test_current_and_history_are_at_the_bundles_last_bar(
    portal: PolarsDataPortal, aapl: Asset
) -> None:
    bars = portal.asset_bars(aapl)
    assert portal.current(aapl, "price") == bars.close[-1]
    assert portal.current(aapl, "close") is None  # AAPL has no bar at Jan 31 00:00
    window = portal.history("AAPL", "price", 3)
    assert window.iloc[-1, 0] == bars.close[-1]
