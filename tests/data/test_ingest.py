"""CSV/Parquet ingest: exact Decimals, frequency detection, merges, and row-precise errors."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from rustybt.assets import Crypto
from rustybt.data.bundles import list_bundles, load_bundle
from rustybt.data.ingest import ingest
from rustybt.exceptions import ConfigError, MalformedData

HEADER = "symbol,dt,open,high,low,close,volume\n"
MINUTE_ROWS = [
    "AAA,2024-01-02 14:31:00,100.10,100.50,99.90,100.20,1000",
    "AAA,2024-01-02 14:32:00,100.20,100.30,100.00,100.25,1500",
    "AAA,2024-01-02 14:33:00,100.25,100.40,100.05,100.123456,900",
    "BBB,2024-01-02 14:31:00,0.00000002,0.00000003,0.00000001,0.00000002,12.5",
    "BBB,2024-01-02 14:32:00,0.00000002,0.00000002,0.00000002,0.00000002,0",
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _csv(tmp_path: Path, rows: list[str], name: str = "bars.csv", header: str = HEADER) -> Path:
    return _write(tmp_path / name, header + "\n".join(rows) + "\n")


def test_csv_round_trip_keeps_exact_decimals(root: Path, tmp_path: Path) -> None:
    summary = ingest("mine", [_csv(tmp_path, MINUTE_ROWS)])
    assert summary.frequency == "minute"
    assert summary.symbols == ["AAA", "BBB"]
    assert summary.rows == 5
    assert summary.start == datetime(2024, 1, 2, 14, 31, tzinfo=UTC)
    assert summary.end == datetime(2024, 1, 2, 14, 33, tzinfo=UTC)
    frame = load_bundle("mine").frame("minute")
    aaa = frame.filter(pl.col("symbol") == "AAA")
    assert aaa["close"].to_list() == [Decimal("100.20"), Decimal("100.25"), Decimal("100.123456")]
    bbb = frame.filter(pl.col("symbol") == "BBB")
    assert bbb["low"][0] == Decimal("0.00000001")
    assert bbb["volume"].to_list() == [Decimal("12.5"), Decimal("0")]


def test_minute_ingest_also_writes_session_daily_bars(root: Path, tmp_path: Path) -> None:
    ingest("mine", [_csv(tmp_path, MINUTE_ROWS)])
    bundle = load_bundle("mine")
    assert bundle.frequencies == ["minute", "daily"]
    day = bundle.frame("daily").filter(pl.col("symbol") == "AAA").row(0, named=True)
    assert day["dt"] == datetime(2024, 1, 2, tzinfo=UTC)
    assert (day["open"], day["high"], day["low"], day["close"], day["volume"]) == (
        Decimal("100.10"),
        Decimal("100.50"),
        Decimal("99.90"),
        Decimal("100.123456"),
        Decimal("3400"),
    )


def test_one_file_per_symbol_takes_the_symbol_from_the_file_name(
    root: Path, tmp_path: Path
) -> None:
    header = "Date,Open,High,Low,Close,Volume\n"
    days = [
        "2024-01-02,10,11,9,10.5,100",
        "2024-01-03,10.5,12,10,11,200",
        "2024-01-04,11,11,10,10,50",
    ]
    a = _csv(tmp_path, days, "spy.csv", header)
    b = _csv(tmp_path, days[:2], "qqq.csv", header)
    seen: list[tuple[int, int]] = []
    summary = ingest("d", [a, b], progress=lambda done, total: seen.append((done, total)))
    assert summary.frequency == "daily"
    assert summary.symbols == ["QQQ", "SPY"]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    frame = load_bundle("d").frame("daily")
    assert frame.filter(pl.col("symbol") == "SPY")["dt"].to_list() == [
        datetime(2024, 1, d, tzinfo=UTC) for d in (2, 3, 4)
    ]
    assert load_bundle("d").frequencies == ["daily"]


def test_a_folder_ingests_every_csv_and_parquet_in_it(root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _csv(folder, MINUTE_ROWS[:3], "a.csv")
    pl.DataFrame(
        {
            "symbol": ["CCC", "CCC"],
            "timestamp": pl.Series(
                [datetime(2024, 1, 2, 14, 31), datetime(2024, 1, 2, 14, 32)],
                dtype=pl.Datetime("ns"),
            ),
            "open": pl.Series(["1.5", "1.5"]).cast(pl.Decimal(10, 4)),
            "high": [2, 2],
            "low": [1, 1],
            "close": [1.25, 1.1],  # floats go through their shortest text, 1.1 stays 1.1
            "volume": [10, 20],
        }
    ).write_parquet(folder / "c.parquet")
    (folder / "notes.txt").write_text("ignored")
    summary = ingest("mine", [folder])
    assert summary.symbols == ["AAA", "CCC"]
    ccc = load_bundle("mine").frame("minute").filter(pl.col("symbol") == "CCC")
    assert ccc["close"].to_list() == [Decimal("1.25"), Decimal("1.1")]
    assert ccc["open"][0] == Decimal("1.5")


def test_utc_offsets_are_read_exactly(root: Path, tmp_path: Path) -> None:
    rows = [
        "X,2024-01-02T09:31:00-05:00,100,150,99,100,0.00001",
        "X,2024-01-02T14:32:00Z,100,100,100,100,0.0025",
    ]
    ingest("mine", [_csv(tmp_path, rows)], frequency="minute")
    frame = load_bundle("mine").frame("minute")
    assert frame["dt"].to_list() == [
        datetime(2024, 1, 2, 14, 31, tzinfo=UTC),
        datetime(2024, 1, 2, 14, 32, tzinfo=UTC),
    ]
    assert frame["high"][0] == Decimal("150")
    assert frame["volume"].to_list() == [Decimal("0.00001"), Decimal("0.0025")]


@pytest.mark.parametrize("cell", ["1e2", "1.5E2", "1e-05"])
def test_exponent_notation_is_refused_with_line_column_and_the_plain_form(
    root: Path, tmp_path: Path, cell: str
) -> None:
    rows = ["X,2024-01-02 14:31,100,100,100,100,1", f"X,2024-01-02 14:32,{cell},100,100,100,1"]
    with pytest.raises(MalformedData) as err:
        ingest("mine", [_csv(tmp_path, rows)], frequency="minute")
    msg = str(err.value)
    assert "line 3" in msg and "'open'" in msg and "exponent notation" in msg
    assert format(Decimal(cell), "f") in msg
    assert "mine" not in list_bundles()


def test_naive_times_are_read_in_the_given_timezone(root: Path, tmp_path: Path) -> None:
    rows = ["X,2024-01-02 09:31,1,1,1,1,1", "X,2024-01-02 09:32,1,1,1,1,1"]
    ingest("mine", [_csv(tmp_path, rows)], timezone="America/New_York")
    assert load_bundle("mine").frame("minute")["dt"][0] == datetime(2024, 1, 2, 14, 31, tzinfo=UTC)


def test_reingest_replaces_those_symbols_and_keeps_the_rest(root: Path, tmp_path: Path) -> None:
    ingest("mine", [_csv(tmp_path, MINUTE_ROWS)])
    sids = {a.symbol: a.sid for a in load_bundle("mine").assets}
    new_rows = [
        "BBB,2024-01-03 14:31:00,5,6,4,5,1",
        "BBB,2024-01-03 14:32:00,5,6,4,5.5,1",
        "CCC,2024-01-03 14:31:00,7,7,7,7,1",
    ]
    ingest("mine", [_csv(tmp_path, new_rows, "more.csv")], asset_class="crypto")
    bundle = load_bundle("mine")
    frame = bundle.frame("minute")
    assert frame.filter(pl.col("symbol") == "AAA").height == 3
    assert frame.filter(pl.col("symbol") == "BBB")["close"].to_list() == [
        Decimal("5"),
        Decimal("5.5"),
    ]
    assert bundle.asset_finder.lookup_symbol("BBB").sid == sids["BBB"]
    assert bundle.asset_finder.lookup_symbol("CCC").sid == max(sids.values()) + 1
    assert isinstance(bundle.asset_finder.lookup_symbol("CCC"), Crypto)
    daily = bundle.frame("daily")
    assert daily.filter(pl.col("symbol") == "BBB")["dt"].to_list() == [
        datetime(2024, 1, 3, tzinfo=UTC)
    ]
    assert daily.filter(pl.col("symbol") == "AAA").height == 1


def test_asset_settings_apply_to_ingested_symbols(root: Path, tmp_path: Path) -> None:
    ingest(
        "mine",
        [_csv(tmp_path, MINUTE_ROWS[:2])],
        asset_class="crypto",
        exchange="BYBIT",
        tick_size="0.1",
        lot_size="0.001",
        calendar="24/7",
    )
    asset = load_bundle("mine").asset_finder.lookup_symbol("AAA")
    assert (asset.exchange, asset.tick_size, asset.lot_size) == (
        "BYBIT",
        Decimal("0.1"),
        Decimal("0.001"),
    )


# --- malformed input: the message names file, line, column; nothing is written -----------
@pytest.mark.parametrize(
    ("bad_row", "column", "words"),
    [
        ("AAA,2024-01-02 14:34:00,abc,100.5,99.9,100.2,10", "open", "not a number"),
        ("AAA,2024-01-02 14:34:00,100,100.5,,100.2,10", "low", "missing value"),
        ("AAA,2024-01-02 14:34:00,100,99,100.5,100,10", "high", "high is below low"),
        ("AAA,2024-01-02 14:34:00,100,100.5,99.9,100.2,-5", "volume", "volume must be >= 0"),
        ("AAA,not-a-date,100,100.5,99.9,100.2,10", "dt", "cannot read 'not-a-date'"),
        ("AAA,2024-01-02 14:34:00,0,100.5,0,100.2,10", "open", "open must be > 0"),
        ("AAA,2024-01-02 14:34:00,100,100.5,99.9,101,10", "close", "outside [low, high]"),
        ("AAA,2024-01-02 14:34:00,100.123456789,101,99,100,10", "open", "8 decimal places"),
        ("AAA,2024-01-02 14:34:00,NaN,101,99,100,10", "open", "not a finite number"),
        ("AAA,2024-01-02 14:32:00,100,100.5,99.9,100.2,10", "dt", "second AAA bar"),
        ("AAA,2024-01-02 14:34:00,100,100.5,99.9,100.2", "volume", "missing value"),
    ],
)
def test_malformed_row_names_file_line_and_column_and_writes_nothing(
    root: Path, tmp_path: Path, bad_row: str, column: str, words: str
) -> None:
    path = _csv(tmp_path, [*MINUTE_ROWS, bad_row])
    with pytest.raises(MalformedData) as info:
        ingest("mine", [path])
    message = str(info.value)
    assert str(path) in message
    assert "line 7," in message  # header is line 1, the bad row is the 6th data line
    assert f"column {column!r}" in message
    assert words in message
    assert list_bundles() == []


def test_line_numbers_count_blank_lines_as_the_file_does(root: Path, tmp_path: Path) -> None:
    text = (
        HEADER + MINUTE_ROWS[0] + "\n\n" + MINUTE_ROWS[1] + "\nAAA,2024-01-02 14:33:00,x,1,1,1,1\n"
    )
    path = _write(tmp_path / "gaps.csv", text)
    with pytest.raises(MalformedData, match=r"line 5, column 'open'"):
        ingest("mine", [path])


def test_a_line_with_too_many_fields_is_reported_with_its_line(root: Path, tmp_path: Path) -> None:
    path = _csv(tmp_path, [*MINUTE_ROWS[:2], "AAA,2024-01-02 14:33:00,1,1,1,1,1,extra"])
    with pytest.raises(MalformedData, match=r"line 4"):
        ingest("mine", [path])


def test_a_missing_header_column_is_reported(root: Path, tmp_path: Path) -> None:
    path = _csv(tmp_path, ["AAA,2024-01-02,1,1,1,1"], header="symbol,dt,open,high,low,close\n")
    with pytest.raises(MalformedData, match=r"line 1, column 'volume'"):
        ingest("mine", [path])


def test_a_bad_row_leaves_an_existing_bundle_untouched(root: Path, tmp_path: Path) -> None:
    ingest("mine", [_csv(tmp_path, MINUTE_ROWS)])
    before = load_bundle("mine").frame("minute")
    bad = _csv(tmp_path, ["AAA,2024-01-05 14:31:00,1,1,2,1,1"], "bad.csv")
    with pytest.raises(MalformedData):
        ingest("mine", [bad], frequency="minute")
    assert load_bundle("mine").frame("minute").equals(before)


def test_parquet_errors_name_the_row(root: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pl.DataFrame(
        {
            "symbol": ["A", "A"],
            "dt": ["2024-01-02", "2024-01-03"],
            "open": ["1", "1"],
            "high": ["1", "1"],
            "low": ["1", "2"],
            "close": ["1", "1"],
            "volume": ["1", "1"],
        }
    ).write_parquet(path)
    with pytest.raises(MalformedData, match=r"row 2, column 'high'"):
        ingest("mine", [path])


def test_unrecognised_spacing_asks_for_an_explicit_frequency(root: Path, tmp_path: Path) -> None:
    rows = ["X,2024-01-02 14:00,1,1,1,1,1", "X,2024-01-02 15:00,1,1,1,1,1"]
    with pytest.raises(ConfigError, match="frequency="):
        ingest("mine", [_csv(tmp_path, rows)])


def test_minute_bars_must_sit_on_whole_minutes(root: Path, tmp_path: Path) -> None:
    rows = ["X,2024-01-02 14:31:30,1,1,1,1,1", "X,2024-01-02 14:32:30,1,1,1,1,1"]
    with pytest.raises(MalformedData, match=r"line 2, column 'dt'.*whole minutes"):
        ingest("mine", [_csv(tmp_path, rows)], frequency="minute")


def test_bad_arguments_are_config_errors(root: Path, tmp_path: Path) -> None:
    good = _csv(tmp_path, MINUTE_ROWS)
    with pytest.raises(ConfigError, match="built-in"):
        ingest("demo", [good])
    with pytest.raises(ConfigError, match="asset_class"):
        ingest("mine", [good], asset_class="bond")
    with pytest.raises(ConfigError, match="tick_size"):
        ingest("mine", [good], tick_size="-1")
    with pytest.raises(ConfigError, match="no such file"):
        ingest("mine", [tmp_path / "missing.csv"])
    with pytest.raises(ConfigError, match="unknown data frequency"):
        ingest("mine", [good], frequency="hourly")
    with pytest.raises(ConfigError, match="timezone"):
        ingest("mine", [good], timezone="Mars/Olympus")
    assert list_bundles() == []


def test_the_earliest_bad_line_is_reported_whatever_the_kind_of_problem(
    root: Path, tmp_path: Path
) -> None:
    rows = [
        "AAA,2024-01-02 14:31:00,100,99,100.5,100,10",  # line 2: high below low
        "AAA,2024-01-02 14:32:00,abc,1,1,1,1",  # line 3: not a number
        "AAA,nope,1,1,1,1,1",  # line 4: bad date
    ]
    with pytest.raises(MalformedData, match=r"line 2, column 'high'"):
        ingest("mine", [_csv(tmp_path, rows)], frequency="minute")
