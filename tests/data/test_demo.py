"""The built-in demo bundle: deterministic, exact, calendar-correct, OHLC-consistent."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import exchange_calendars as xcals
import polars as pl
import pytest

from rustybt.assets import Crypto, Equity
from rustybt.data.bundles import DECIMAL_DTYPE, load_bundle
from rustybt.data.demo import build_demo_bundle, generate_demo_frames

EQUITIES = ["AAPL", "MSFT", "SPY", "GOOG", "AMZN", "NVDA", "META", "TSLA", "JPM", "QQQ"]


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return generate_demo_frames()


def test_two_builds_write_identical_bars(tmp_path: Path) -> None:
    a = build_demo_bundle(tmp_path / "a")
    b = build_demo_bundle(tmp_path / "b")
    for name in ("minute.parquet", "daily.parquet", "assets.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_generation_is_deterministic_in_memory(frames: dict[str, pl.DataFrame]) -> None:
    again = generate_demo_frames()
    assert again["minute"].equals(frames["minute"])
    assert again["daily"].equals(frames["daily"])


def test_demo_has_ten_equities_and_two_crypto_pairs_with_fixed_sids(demo_env: Path) -> None:
    bundle = load_bundle("demo")
    finder = bundle.asset_finder
    assert finder.symbols == sorted([*EQUITIES, "BTCUSDT", "ETHUSDT"])
    for sid, symbol in enumerate(EQUITIES, start=1):
        asset = finder.lookup_symbol(symbol)
        assert isinstance(asset, Equity)
        assert asset.sid == sid and asset.calendar == "XNYS" and asset.tick_size == Decimal("0.01")
    btc, eth = finder.lookup_symbol("BTCUSDT"), finder.lookup_symbol("ETHUSDT")
    assert (btc.sid, eth.sid) == (11, 12)
    for pair in (btc, eth):
        assert isinstance(pair, Crypto)
        assert pair.exchange == "BINANCE" and pair.quote_currency == "USDT"
        assert pair.lot_size == Decimal("0.00001") and pair.min_notional == Decimal("5")
        assert pair.calendar == "24/7"


def test_columns_are_exact_decimals_sorted_by_symbol_then_time(
    frames: dict[str, pl.DataFrame],
) -> None:
    for frame in frames.values():
        assert frame.schema["dt"] == pl.Datetime("us", "UTC")
        for col in ("open", "high", "low", "close", "volume"):
            assert frame.schema[col] == DECIMAL_DTYPE
        assert frame.equals(frame.sort("symbol", "dt"))
    first = frames["minute"].row(0, named=True)
    assert isinstance(first["close"], Decimal)


def test_ohlc_is_consistent_and_prices_are_on_tick(frames: dict[str, pl.DataFrame]) -> None:
    for frame in frames.values():
        bad = frame.filter(
            (pl.col("low") > pl.col("open"))
            | (pl.col("low") > pl.col("close"))
            | (pl.col("high") < pl.col("open"))
            | (pl.col("high") < pl.col("close"))
            | (pl.col("low") <= 0)
            | (pl.col("volume") <= 0)
        )
        assert bad.height == 0
    minute = frames["minute"]
    for col in ("open", "high", "low", "close"):
        cents = minute[col].cast(pl.Decimal(38, 2))
        assert (cents.cast(DECIMAL_DTYPE) == minute[col]).all(), col


def test_equity_volumes_are_whole_shares_and_crypto_volumes_have_at_most_five_places(
    frames: dict[str, pl.DataFrame],
) -> None:
    minute = frames["minute"]
    eq = minute.filter(pl.col("symbol").is_in(EQUITIES))["volume"]
    assert (eq.cast(pl.Decimal(38, 0)).cast(DECIMAL_DTYPE) == eq).all()
    cr = minute.filter(pl.col("symbol").is_in(["BTCUSDT", "ETHUSDT"]))["volume"]
    assert (cr.cast(pl.Decimal(38, 5)).cast(DECIMAL_DTYPE) == cr).all()
    assert not (cr.cast(pl.Decimal(38, 0)).cast(DECIMAL_DTYPE) == cr).all()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_equities_trade_the_nyse_minutes_of_twenty_sessions(
    frames: dict[str, pl.DataFrame],
) -> None:
    cal = xcals.get_calendar("XNYS", side="right", start="2023-12-01", end="2024-03-01")
    sessions = cal.sessions_in_range("2024-01-02", "2024-01-30")
    assert len(sessions) == 20
    expected = cal.sessions_minutes(sessions[0], sessions[-1])
    minute = frames["minute"]
    for symbol in EQUITIES:
        stamps = minute.filter(pl.col("symbol") == symbol)["dt"].dt.epoch("ns").to_numpy()
        assert (stamps == expected.asi8).all(), symbol
    per_day = (
        minute.filter(pl.col("symbol") == "AAPL")
        .group_by(pl.col("dt").dt.date())
        .len()["len"]
        .to_list()
    )
    # no early close in January 2024: every session has the full 390 minutes
    assert per_day == [390] * 20
    aapl = minute.filter(pl.col("symbol") == "AAPL")["dt"]
    assert str(aapl[0]) == "2024-01-02 14:31:00+00:00"  # 09:31 New York, end of first minute
    assert str(aapl[389]) == "2024-01-02 21:00:00+00:00"  # 16:00 New York


def test_crypto_trades_every_minute_of_every_calendar_day(
    frames: dict[str, pl.DataFrame],
) -> None:
    minute = frames["minute"]
    for symbol in ("BTCUSDT", "ETHUSDT"):
        dts = minute.filter(pl.col("symbol") == symbol)["dt"]
        assert dts.len() == 29 * 1440
        gaps = dts.diff().drop_nulls().dt.total_seconds().unique().to_list()
        assert gaps == [60]
        assert str(dts[0]) == "2024-01-02 00:01:00+00:00"
        assert str(dts[-1]) == "2024-01-31 00:00:00+00:00"


def test_daily_bars_aggregate_each_session_exactly(frames: dict[str, pl.DataFrame]) -> None:
    minute, daily = frames["minute"], frames["daily"]
    aapl_day = daily.filter(pl.col("symbol") == "AAPL")
    assert aapl_day.height == 20
    assert str(aapl_day["dt"][0]) == "2024-01-02 00:00:00+00:00"
    first = minute.filter(
        (pl.col("symbol") == "AAPL") & (pl.col("dt").dt.date() == pl.date(2024, 1, 2))
    )
    row = aapl_day.row(0, named=True)
    assert row["open"] == first["open"][0]
    assert row["close"] == first["close"][-1]
    assert row["high"] == first["high"].max()
    assert row["low"] == first["low"].min()
    assert row["volume"] == first["volume"].sum()
    btc_day = daily.filter(pl.col("symbol") == "BTCUSDT")
    assert btc_day.height == 29  # the 00:00 bar of Jan 31 closes Jan 30's day
    assert str(btc_day["dt"][-1]) == "2024-01-30 00:00:00+00:00"


def test_starting_prices_are_plausible(frames: dict[str, pl.DataFrame]) -> None:
    firsts = frames["minute"].group_by("symbol").agg(pl.col("open").first())
    start = {r["symbol"]: r["open"] for r in firsts.iter_rows(named=True)}
    assert Decimal("170") < start["AAPL"] < Decimal("200")
    assert Decimal("450") < start["SPY"] < Decimal("490")
    assert Decimal("40000") < start["BTCUSDT"] < Decimal("44000")
    assert Decimal("2100") < start["ETHUSDT"] < Decimal("2500")


def test_load_bundle_builds_demo_on_first_use_and_rebuilds_an_outdated_one(root: Path) -> None:
    bundle = load_bundle("demo")
    assert (bundle.path / "minute.parquet").is_file()
    assert bundle.frequencies == ["minute", "daily"]
    meta_path = bundle.path / "meta.json"
    meta_path.write_text(meta_path.read_text().replace('"demo_version": 1', '"demo_version": 0'))
    again = load_bundle("demo")
    assert again.meta["demo_version"] == 1
