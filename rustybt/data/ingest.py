"""Ingest OHLCV bars from CSV or Parquet files into a bundle, exactly and all-or-nothing.

Each file holds bars of one or many symbols: a ``symbol`` column, or one file per symbol
named after it (``AAPL.csv``). The time column may be called ``dt``, ``date``,
``timestamp``, ``datetime`` or ``time``; ``open, high, low, close, volume`` are required.
CSV is read with every column as text and numbers go from text straight to ``Decimal``
(no binary float ever touches a price). Every row is checked (missing value, bad number,
bad date, non-positive price, high < low, open/close outside [low, high], negative
volume, duplicate timestamp); the first bad row raises :class:`MalformedData` naming the
file, the line (as an editor shows it: header = line 1) and the column, and nothing is
written. Ingesting into an existing bundle replaces the re-ingested symbols' bars of that
frequency and keeps everything else. Minute bars also refresh the daily bars derived from
them (one per session of the asset's calendar).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path

import polars as pl

from rustybt.assets import Asset, Crypto, Equity, Future
from rustybt.calendars import check_calendar_name
from rustybt.data.bundles import (
    DECIMAL_DTYPE,
    PRICE_COLUMNS,
    SCHEMA,
    VALUE_COLUMNS,
    bundle_path,
    calendar_tz,
    daily_from_minute,
    load_bundle,
    normalize_frequency,
    write_bundle,
)
from rustybt.exceptions import BundleNotFound, ConfigError, InvalidOrder, MalformedData

_ASSET_CLASSES: dict[str, type[Asset]] = {"equity": Equity, "crypto": Crypto, "future": Future}
_TIME_COLUMNS = ("dt", "date", "timestamp", "datetime", "time")
_SYMBOL_COLUMNS = ("symbol", "ticker")
_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# at most 30 integer and 8 fractional digits: what Decimal(38, 8) holds exactly
_PLAIN_NUMBER = r"^[+-]?(?:\d{1,30}(?:\.\d{0,8})?|\.\d{1,8})$"
_NAIVE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y%m%d")
_AWARE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M%z")
_ONE_MINUTE_US = 60_000_000
_MAX_NUMBER = Decimal("1e30")
_EIGHT_PLACES = Decimal("1e-8")
_DATE_HINT = "use ISO 8601, e.g. 2024-01-02 or 2024-01-02T14:31:00Z"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IngestSummary:
    """What an :func:`ingest` call wrote."""

    bundle: str
    path: Path
    frequency: str
    symbols: list[str]
    rows: int
    start: datetime
    end: datetime
    files: list[Path] = field(default_factory=list)


def ingest(
    bundle_name: str,
    paths: Sequence[Path | str] | Path | str,
    frequency: str | None = None,
    asset_class: str = "equity",
    exchange: str | None = None,
    calendar: str | None = None,
    tick_size: Decimal | str | None = None,
    lot_size: Decimal | str | None = None,
    progress: Progress | None = None,
    *,
    timezone: str = "UTC",
    root: Path | str | None = None,
) -> IngestSummary:
    """Read OHLCV files into bundle ``bundle_name`` (created or merged into).

    ``paths`` are CSV/Parquet files or folders of them. ``frequency`` is ``"minute"`` or
    ``"daily"`` (detected from the timestamp spacing when None). ``asset_class``,
    ``exchange``, ``calendar``, ``tick_size`` and ``lot_size`` describe the assets created
    for the ingested symbols (defaults: the asset class's own). Timestamps without a UTC
    offset are read in ``timezone`` (default UTC). ``progress(done, total)`` is called
    after each file and after the final write.
    """
    if bundle_name == "demo":
        raise ConfigError("'demo' is the built-in bundle and cannot be ingested into; pick a name")
    folder = bundle_path(bundle_name, root)
    freq = normalize_frequency(frequency) if frequency is not None else None
    if calendar is not None:
        check_calendar_name(calendar)
    factory = _asset_factory(asset_class, exchange, calendar, tick_size, lot_size)
    _check_timezone(timezone)
    files = _expand_paths(paths)
    total = len(files) + 1

    parsed: list[pl.DataFrame] = []
    for done, file in enumerate(files, start=1):
        parsed.append(_parse_file(file, timezone))
        if progress is not None:
            progress(done, total)
    bars = pl.concat(parsed, how="vertical")
    if bars.height == 0:
        raise MalformedData(f"no bars found in {', '.join(map(str, files))}; the files are empty")

    freq = freq or _detect_frequency(bars)
    symbols = sorted(bars["symbol"].unique().to_list())
    existing = _load_existing(bundle_name, root)
    old_assets = {a.symbol: a for a in existing.assets} if existing else {}
    next_sid = max((a.sid for a in old_assets.values()), default=0) + 1
    new_assets: dict[str, Asset] = {}
    for symbol in symbols:
        old = old_assets.get(symbol)
        sid = old.sid if old is not None and old.sid >= 0 else next_sid
        if old is None or old.sid < 0:
            next_sid += 1
        new_assets[symbol] = factory(symbol, sid)

    bars = _finalise_times(bars, freq, new_assets)
    _check_duplicates(bars)
    frame = bars.select(list(SCHEMA)).sort("symbol", "dt")

    all_assets = {**old_assets, **new_assets}
    frames: dict[str, pl.DataFrame] = {}
    if existing is not None:
        for old_freq in existing.frequencies:
            frames[old_freq] = existing.frame(old_freq)
    replaced = pl.Series("symbol", symbols, dtype=pl.Utf8)
    frames[freq] = _merge(frames.get(freq), frame, replaced)
    if freq == "minute":
        derived = daily_from_minute(frame, list(new_assets.values()))
        frames["daily"] = _merge(frames.get("daily"), derived, replaced)
    write_bundle(
        bundle_name,
        list(all_assets.values()),
        frames,
        root=root,
        extra_meta={"kind": "ingested"},
    )
    if progress is not None:
        progress(total, total)
    return IngestSummary(
        bundle=bundle_name,
        path=folder,
        frequency=freq,
        symbols=symbols,
        rows=frame.height,
        start=frame["dt"].min(),
        end=frame["dt"].max(),
        files=files,
    )


# --- set-up -------------------------------------------------------------------------
def _asset_factory(
    asset_class: str,
    exchange: str | None,
    calendar: str | None,
    tick_size: Decimal | str | None,
    lot_size: Decimal | str | None,
) -> Callable[[str, int], Asset]:
    cls = _ASSET_CLASSES.get(str(asset_class).strip().lower())
    if cls is None:
        raise ConfigError(
            f"unknown asset_class {asset_class!r}; use one of {sorted(_ASSET_CLASSES)}"
        )

    def make(symbol: str, sid: int) -> Asset:
        return cls(
            symbol,
            sid=sid,
            exchange=exchange,
            calendar=calendar,
            tick_size=tick_size,
            lot_size=lot_size,
        )

    try:
        make("PROBE", -1)  # fail on a bad tick/lot size before reading any file
    except InvalidOrder as exc:
        raise ConfigError(f"invalid asset settings for ingest: {exc}") from exc
    return make


def _check_timezone(tz: str) -> None:
    try:
        pl.Series([0]).cast(pl.Datetime("us")).dt.replace_time_zone(tz)
    except Exception:
        raise ConfigError(
            f"unknown timezone {tz!r}; use an IANA name such as 'UTC' or 'America/New_York'"
        ) from None


def _expand_paths(paths: Sequence[Path | str] | Path | str) -> list[Path]:
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES)
            if not found:
                raise ConfigError(f"folder {path} has no .csv or .parquet files to ingest")
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in _SUFFIXES:
                raise ConfigError(
                    f"cannot ingest {path}: unsupported file type {path.suffix!r}; "
                    "use .csv or .parquet"
                )
            files.append(path)
        else:
            raise ConfigError(f"cannot ingest {path}: no such file or folder")
    if not files:
        raise ConfigError("ingest needs at least one CSV or Parquet file")
    return files


def _load_existing(name: str, root: Path | str | None):
    try:
        return load_bundle(name, root)
    except BundleNotFound:
        return None


# --- reading one file -----------------------------------------------------------------
class _Where:
    """Formats 'file, line N, column X' for one file (rows of a Parquet file have no lines)."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.unit = "line" if kind == "csv" else "row"

    def at(self, line: int, column: str) -> str:
        return f"{self.path}, {self.unit} {line}, column {column!r}"


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    except pl.exceptions.NoDataError:
        raise MalformedData(f"{path} is empty; it needs a header line and bars") from None
    except Exception as exc:
        line = _find_ragged_line(path)
        where = f"{path}, line {line}" if line else str(path)
        raise MalformedData(
            f"{where}: cannot parse CSV ({str(exc).splitlines()[0]}); every line needs the "
            "same columns as the header"
        ) from exc


def _find_ragged_line(path: Path) -> int | None:
    """1-based line of the first row with more fields than the header (error path only)."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return None
            for row in reader:
                if len(row) > len(header):
                    return reader.line_num
    except (OSError, csv.Error):
        return None
    return None


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:
        raise MalformedData(f"{path}: cannot read Parquet file ({exc})") from exc
    # Everything but real timestamps goes through text, the same exact path as CSV.
    return frame.select(
        pl.col(c) if frame.schema[c].is_temporal() else pl.col(c).cast(pl.Utf8)
        for c in frame.columns
    )


def _parse_file(path: Path, timezone: str) -> pl.DataFrame:
    kind = _SUFFIXES[path.suffix.lower()]
    raw = _read_csv(path) if kind == "csv" else _read_parquet(path)
    where = _Where(path, kind)
    first_line = 2 if kind == "csv" else 1
    raw = raw.rename({c: c.strip().lower() for c in raw.columns})

    time_col = next((c for c in _TIME_COLUMNS if c in raw.columns), None)
    if time_col is None:
        raise MalformedData(
            f"{where.at(1, 'dt')}: no time column (columns: {raw.columns}); "
            f"name it one of {list(_TIME_COLUMNS)}"
        )
    for col in VALUE_COLUMNS:
        if col not in raw.columns:
            raise MalformedData(
                f"{where.at(1, col)}: missing column {col!r} (columns: {raw.columns}); "
                "the header needs open, high, low, close and volume"
            )
    symbol_col = next((c for c in _SYMBOL_COLUMNS if c in raw.columns), None)

    frame = raw.with_row_index("_line", offset=first_line)
    if kind == "csv":
        # polars turns blank lines into all-null rows; they are not bars
        frame = frame.filter(~pl.all_horizontal(pl.exclude("_line").is_null()))
    if frame.height == 0:
        return _empty()

    if symbol_col is None:
        symbol = pl.lit(path.stem.strip().upper(), dtype=pl.Utf8)
    else:
        symbol = pl.col(symbol_col).str.strip_chars().str.to_uppercase()
    frame = frame.with_columns(
        symbol.alias("symbol"), pl.lit(str(path)).alias("_file"), pl.lit(where.unit).alias("_unit")
    )
    # Every check notes its first bad line; the earliest line of all is reported, so the
    # user fixes the file top to bottom.
    problems = _Problems(where)
    problems.first(
        frame,
        pl.col("symbol").is_null() | (pl.col("symbol") == ""),
        "symbol",
        "missing symbol; fill it in or remove the row",
    )
    times = _parse_times(frame, time_col, timezone, problems)
    values = [_parse_numbers(frame, col, problems) for col in VALUE_COLUMNS]
    frame = frame.with_columns(*times, *values)
    _check_bars(frame, problems)
    problems.raise_earliest()
    return frame.select(
        "symbol", "_naive", "_aware", "_local", *VALUE_COLUMNS, "_file", "_unit", "_line"
    )


class _Problems:
    """The first bad line of each check; raises the earliest one as MalformedData."""

    def __init__(self, where: _Where) -> None:
        self.where = where
        self.found: list[tuple[int, int, str]] = []

    def add(self, line: int, column: str, why: str) -> None:
        self.found.append((line, len(self.found), f"{self.where.at(line, column)}: {why}"))

    def first(self, frame: pl.DataFrame, bad: pl.Expr | pl.Series, column: str, why: str) -> None:
        if isinstance(bad, pl.Series):
            bad = pl.lit(bad)
        line = frame.select(pl.col("_line").filter(bad).first()).item()
        if line is not None:
            self.add(line, column, why)

    def raise_earliest(self) -> None:
        if self.found:
            raise MalformedData(min(self.found)[2])


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "symbol": pl.Utf8,
            "_naive": pl.Datetime("us"),
            "_aware": pl.Datetime("us", "UTC"),
            "_local": pl.Datetime("us", "UTC"),
            **{c: DECIMAL_DTYPE for c in VALUE_COLUMNS},
            "_file": pl.Utf8,
            "_unit": pl.Utf8,
            "_line": pl.UInt32,
        }
    )


def _parse_numbers(frame: pl.DataFrame, col: str, problems: _Problems) -> pl.Series:
    """Text -> Decimal(38, 8) exactly; a bad cell becomes null and is noted in ``problems``."""
    text = frame[col].str.strip_chars()
    missing = text.is_null() | (text == "")
    problems.first(
        frame,
        missing,
        col,
        "missing value; every bar needs open, high, low, close and volume — fill it in or "
        "remove the row",
    )
    plain = text.str.contains(_PLAIN_NUMBER).fill_null(False)
    odd = (~plain & ~missing).arg_true().to_list()
    if odd:
        # Rare forms (exponents, too many digits, junk): decide row by row with exact Decimal.
        fixed = text.to_list()
        lines = frame["_line"].to_list()
        for i in odd:
            fixed[i], why = _exact_plain(fixed[i])
            if why is not None:
                problems.add(lines[i], col, why)
                break  # later rows cannot be the earliest problem of this column
        text = pl.Series(col, fixed, dtype=pl.Utf8)
    return text.cast(DECIMAL_DTYPE, strict=False).alias(col)


def _exact_plain(value: str) -> tuple[str | None, str | None]:
    """(plain decimal text, None) for an exactly storable number, else (None, why not)."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None, f"{value!r} is not a number; write a plain decimal such as 185.25"
    if not number.is_finite():
        return None, f"{value!r} is not a finite number; fix or remove the row"
    if "e" in value.lower():
        # Exponent notation is how float writers print: the value may already be rounded.
        return None, (
            f"{value!r} is in exponent notation, not a plain decimal; write it out "
            f"(e.g. {format(number, 'f')}) from the source's exact value"
        )
    if abs(number) >= _MAX_NUMBER or number != number.quantize(_EIGHT_PLACES, ROUND_DOWN):
        return None, (
            f"{value!r} needs more than 8 decimal places or 30 integer digits, which a bundle "
            "cannot store exactly; round it to 8 decimal places"
        )
    return format(number, "f"), None


def _check_bars(frame: pl.DataFrame, problems: _Problems) -> None:
    """Note the first row breaking each OHLCV rule (rows with unparsed cells are skipped)."""
    o, h, lo, c, v = (pl.col(x) for x in VALUE_COLUMNS)
    zero = pl.lit(0, dtype=DECIMAL_DTYPE)
    rules: list[tuple[pl.Expr, str, str]] = [
        *[(pl.col(p) <= zero, p, f"{p} must be > 0") for p in PRICE_COLUMNS],
        (v < zero, "volume", "volume must be >= 0"),
        (h < lo, "high", "high is below low"),
        ((o < lo) | (o > h), "open", "open is outside [low, high]"),
        ((c < lo) | (c > h), "close", "close is outside [low, high]"),
    ]
    found = frame.select(
        *[
            pl.col("_line").filter(bad.fill_null(False)).first().alias(str(i))
            for i, (bad, _, _) in enumerate(rules)
        ]
    ).row(0)
    for (_, column, why), line in zip(rules, found, strict=True):
        if line is not None:
            row = frame.filter(pl.col("_line") == line).row(0, named=True)
            shown = ", ".join(f"{k}={row[k].normalize():f}" for k in VALUE_COLUMNS)
            problems.add(line, column, f"{why} ({shown}); fix the row or remove it")


def _parse_times(
    frame: pl.DataFrame, col: str, timezone: str, problems: _Problems
) -> list[pl.Series]:
    """Naive stamps (as written), aware ones (UTC), and the naive ones read in ``timezone``."""
    source = frame[col]
    n = frame.height
    if source.dtype.is_temporal():
        if source.dtype == pl.Date:
            source = source.cast(pl.Datetime("us"))
        if source.dtype.time_zone is None:
            naive = source.dt.cast_time_unit("us")
            aware = pl.Series([None] * n, dtype=pl.Datetime("us", "UTC"))
        else:
            naive = pl.Series([None] * n, dtype=pl.Datetime("us"))
            aware = source.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    else:
        text = (
            source.str.strip_chars()
            .str.replace(r"^(\d{4}-\d{2}-\d{2})[Tt]", "$1 ")
            .str.replace(r"\s*(?:[Zz]|UTC)$", "+00:00")
        )
        naive = _first_match(
            text.str.to_datetime(f, strict=False, time_unit="us") for f in _NAIVE_FORMATS
        )
        aware = _first_match(
            text.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
            for f in _AWARE_FORMATS
        )
    bad = naive.is_null() & aware.is_null()
    if bad.any():
        value = frame[col].filter(bad)[0]
        problems.first(frame, bad, col, f"cannot read {value!r} as a date/time; {_DATE_HINT}")
    # a naive time that does not exist (or exists twice) in ``timezone`` is an error too
    local = naive.dt.replace_time_zone(timezone, ambiguous="null", non_existent="null")
    bad = naive.is_not_null() & local.is_null()
    if bad.any():
        problems.first(
            frame,
            bad,
            col,
            f"{frame[col].filter(bad)[0]!r} does not exist or is ambiguous in time zone "
            f"{timezone} (a DST change); add a UTC offset",
        )
    return [
        naive.alias("_naive"),
        aware.alias("_aware"),
        local.dt.convert_time_zone("UTC").alias("_local"),
    ]


def _first_match(candidates: Iterable[pl.Series]) -> pl.Series:
    """Element-wise first non-null across parses with different formats."""
    out: pl.Series | None = None
    for series in candidates:
        out = series if out is None else out.fill_null(series)
    assert out is not None
    return out


# --- whole ingest -------------------------------------------------------------------
def _detect_frequency(bars: pl.DataFrame) -> str:
    stamps = bars.select(
        "symbol",
        pl.coalesce(pl.col("_aware"), pl.col("_local")).alias("t"),
    ).sort("symbol", "t")
    gaps = stamps.select(pl.col("t").diff().over("symbol").dt.total_seconds().alias("gap")).filter(
        pl.col("gap") > 0
    )["gap"]
    if gaps.len() == 0:
        raise ConfigError(
            "cannot detect the bar frequency (one bar per symbol); pass frequency='minute' "
            "or frequency='daily'"
        )
    median = gaps.median()
    if median == 60:
        return "minute"
    if 20 * 3600 <= median <= 5 * 86400:
        return "daily"
    raise ConfigError(
        f"bars are typically {median:g} seconds apart, neither minute (60 s) nor daily bars; "
        "pass frequency='minute' or frequency='daily' if that is what they are, or resample"
    )


def _finalise_times(bars: pl.DataFrame, freq: str, assets: dict[str, Asset]) -> pl.DataFrame:
    """Set ``dt``: UTC minute stamps, or midnight UTC of the session date for daily bars."""
    if freq == "minute":
        bars = bars.with_columns(pl.coalesce(pl.col("_aware"), pl.col("_local")).alias("dt"))
        off = bars.filter(pl.col("dt").dt.epoch("us") % _ONE_MINUTE_US != 0)
        if off.height:
            row = off.sort("_file", "_line").row(0, named=True)
            raise MalformedData(
                f"{row['_file']}, {row['_unit']} {row['_line']}, column 'dt': minute bars "
                f"must be stamped on whole minutes, got {row['dt']}; resample to 1-minute bars"
            )
        return bars
    # daily: the date as written for naive stamps, else the date in the asset's calendar zone
    tz_frame = pl.DataFrame(
        {"symbol": list(assets), "_tz": [calendar_tz(a.calendar) for a in assets.values()]}
    )
    parts = []
    for (tz,), part in (
        bars.join(tz_frame, on="symbol", how="left")
        .partition_by("_tz", as_dict=True, maintain_order=True)
        .items()
    ):
        day = pl.coalesce(
            pl.col("_naive").dt.date(), pl.col("_aware").dt.convert_time_zone(tz).dt.date()
        )
        parts.append(
            part.with_columns(
                day.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("dt")
            ).drop("_tz")
        )
    return pl.concat(parts)


def _check_duplicates(bars: pl.DataFrame) -> None:
    dup = bars.filter(pl.struct("symbol", "dt").is_duplicated())
    dup = dup.sort("symbol", "dt", "_file", "_line")
    if dup.height == 0:
        return
    first, second = dup.row(0, named=True), dup.row(1, named=True)
    raise MalformedData(
        f"{second['_file']}, {second['_unit']} {second['_line']}, column 'dt': a second "
        f"{second['symbol']} bar for {second['dt']} (the first is {first['_file']}, "
        f"{first['_unit']} {first['_line']}); "
        "keep one bar per symbol and timestamp"
    )


def _merge(old: pl.DataFrame | None, new: pl.DataFrame, replaced: pl.Series) -> pl.DataFrame:
    if old is None:
        return new
    kept = old.filter(~pl.col("symbol").is_in(replaced.implode()))
    return pl.concat([kept, new.select(kept.columns)]).sort("symbol", "dt")
