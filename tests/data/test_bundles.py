"""Bundle storage: layout, exact round trip, atomic writes, clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from rustybt.assets import Crypto, Equity
from rustybt.data.bundles import (
    DECIMAL_DTYPE,
    list_bundles,
    load_bundle,
    rustybt_root,
    write_bundle,
)
from rustybt.exceptions import BundleNotFound, ConfigError, DataNotFound, MalformedData


def _frame(rows: list[tuple[str, datetime, str, str, str, str, str]]) -> pl.DataFrame:
    cols = list(zip(*rows, strict=True))
    return pl.DataFrame(
        {
            "symbol": list(cols[0]),
            "dt": pl.Series(list(cols[1]), dtype=pl.Datetime("us", "UTC")),
            **{
                name: pl.Series(list(values)).cast(DECIMAL_DTYPE)
                for name, values in zip(
                    ("open", "high", "low", "close", "volume"), cols[2:], strict=True
                )
            },
        }
    )


T0 = datetime(2024, 1, 2, 14, 31, tzinfo=UTC)
T1 = datetime(2024, 1, 2, 14, 32, tzinfo=UTC)
ROWS = [
    ("XYZ", T1, "10.01", "10.05", "10.00", "10.02", "300"),
    ("XYZ", T0, "10.00", "10.03", "9.99", "10.01", "200"),
    ("BTCUSDT", T0, "42000.12", "42001.00", "41999.99", "42000.50", "0.12345"),
]


def test_root_comes_from_env_or_defaults_to_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RUSTYBT_ROOT", str(tmp_path))
    assert rustybt_root() == tmp_path
    monkeypatch.delenv("RUSTYBT_ROOT")
    assert rustybt_root() == Path.home() / ".rustybt"


def test_write_then_load_round_trips_exact_decimals_sorted(root: Path) -> None:
    assets = [Equity("XYZ", sid=1), Crypto("BTCUSDT", sid=2)]
    path = write_bundle("mine", assets, {"minute": _frame(ROWS)})
    assert path == root / "data" / "bundles" / "mine"
    assert {p.name for p in path.iterdir()} == {"assets.json", "meta.json", "minute.parquet"}
    bundle = load_bundle("mine")
    frame = bundle.frame("minute")
    assert frame["symbol"].to_list() == ["BTCUSDT", "XYZ", "XYZ"]
    assert frame["close"].to_list() == [Decimal("42000.5"), Decimal("10.01"), Decimal("10.02")]
    assert frame["volume"][0] == Decimal("0.12345")
    assert bundle.frame("1m") is frame  # cached, and "1m" is an alias
    assert bundle.start == T0 and bundle.end == T1
    assert bundle.frequencies == ["minute"]
    assert bundle.asset_finder.lookup_symbol("btcusdt") == Crypto("BTCUSDT")
    meta = json.loads((path / "meta.json").read_text())
    assert meta["schema_version"] == 1 and meta["frequencies"] == ["minute"]


def test_writes_leave_no_temporary_files_behind(root: Path) -> None:
    write_bundle("mine", [Equity("XYZ")], {"minute": _frame(ROWS[:2])})
    write_bundle("mine", [Equity("XYZ")], {"daily": _frame(ROWS[:1])})
    folder = root / "data" / "bundles" / "mine"
    assert sorted(p.name for p in folder.iterdir()) == [
        "assets.json",
        "daily.parquet",
        "meta.json",
    ]


def test_unknown_bundle_lists_available_ones_and_how_to_make_one(root: Path) -> None:
    write_bundle("alpha", [Equity("XYZ")], {"minute": _frame(ROWS[:2])})
    with pytest.raises(BundleNotFound) as info:
        load_bundle("nope")
    message = str(info.value)
    assert "'nope'" in message and "alpha" in message and "rustybt ingest" in message


def test_list_bundles_ignores_folders_without_metadata(root: Path) -> None:
    assert list_bundles() == []
    write_bundle("b2", [Equity("XYZ")], {"minute": _frame(ROWS[:2])})
    write_bundle("a1", [Equity("XYZ")], {"minute": _frame(ROWS[:2])})
    (root / "data" / "bundles" / "half-written").mkdir()
    assert list_bundles() == ["a1", "b2"]


@pytest.mark.parametrize("name", ["../escape", "", ".hidden", "a/b", "x" * 200])
def test_bundle_names_that_could_escape_the_folder_are_refused(root: Path, name: str) -> None:
    with pytest.raises(ConfigError):
        write_bundle(name, [Equity("XYZ")], {"minute": _frame(ROWS[:2])})
    assert not (root / "data").exists() or list_bundles() == []


def test_float_prices_are_refused(root: Path) -> None:
    frame = _frame(ROWS[:2]).with_columns(pl.col("close").cast(pl.Float64))
    with pytest.raises(MalformedData, match="never floats"):
        write_bundle("mine", [Equity("XYZ")], {"minute": frame})
    assert list_bundles() == []


def test_bars_for_a_symbol_without_an_asset_are_refused(root: Path) -> None:
    with pytest.raises(ConfigError, match="BTCUSDT"):
        write_bundle("mine", [Equity("XYZ")], {"minute": _frame(ROWS)})
    assert list_bundles() == []


def test_duplicate_bars_are_refused(root: Path) -> None:
    with pytest.raises(MalformedData, match="more than one bar"):
        write_bundle("mine", [Equity("XYZ")], {"minute": _frame([ROWS[0], ROWS[0]])})


def test_unknown_frequency_key_is_a_config_error(root: Path) -> None:
    with pytest.raises(ConfigError, match="minute"):
        write_bundle("mine", [Equity("XYZ")], {"hourly": _frame(ROWS[:2])})


def test_missing_frequency_raises_data_not_found_naming_what_exists(root: Path) -> None:
    write_bundle("mine", [Equity("XYZ")], {"minute": _frame(ROWS[:2])})
    with pytest.raises(DataNotFound, match="has no daily bars"):
        load_bundle("mine").frame("daily")
