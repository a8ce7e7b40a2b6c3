"""On-disk bundles of OHLCV bars: where they live, how they are written and read.

A bundle is a folder ``<root>/data/bundles/<name>/`` holding:

- ``assets.json``: the bundle's assets, a list of :meth:`rustybt.assets.Asset.to_dict`;
- ``minute.parquet`` and/or ``daily.parquet``: bars with columns ``symbol`` (Utf8),
  ``dt`` (``Datetime("us", "UTC")``; a daily bar is stamped midnight UTC of its session
  date) and ``open, high, low, close, volume`` as exact ``Decimal(38, 8)``, sorted by
  ``(symbol, dt)``;
- ``meta.json``: schema version, frequencies present, per-frequency date range, creation
  time. It is written last, so a folder without it is not (yet) a bundle.

Every file is written to a temporary file in the same folder, fsynced, then moved into
place with :func:`os.replace`, so a reader never sees a half-written file. The name
``demo`` is special: :func:`load_bundle` builds it (see :mod:`rustybt.data.demo`) the first
time it is asked for, and rebuilds it when the stored copy is from an older version.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from rustybt.assets import Asset, AssetFinder, asset_from_dict
from rustybt.exceptions import BundleNotFound, ConfigError, DataError, MalformedData

SCHEMA_VERSION = 1
FREQUENCIES = ("minute", "daily")
PRICE_COLUMNS = ("open", "high", "low", "close")
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
DECIMAL_DTYPE = pl.Decimal(precision=38, scale=8)
DT_DTYPE = pl.Datetime("us", "UTC")
SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "dt": DT_DTYPE,
    **{c: DECIMAL_DTYPE for c in VALUE_COLUMNS},
}

_FREQ_ALIASES = {
    "minute": "minute",
    "1m": "minute",
    "1min": "minute",
    "daily": "daily",
    "day": "daily",
    "1d": "daily",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


def normalize_frequency(frequency: str) -> str:
    """Map ``"minute"/"1m"`` and ``"daily"/"1d"`` to the canonical names; else ConfigError."""
    key = str(frequency).strip().lower() if frequency is not None else ""
    try:
        return _FREQ_ALIASES[key]
    except KeyError:
        raise ConfigError(
            f"unknown data frequency {frequency!r}; use 'minute' (or '1m') or 'daily' (or '1d')"
        ) from None


def rustybt_root() -> Path:
    """The RustyBT data folder: ``$RUSTYBT_ROOT`` if set, else ``~/.rustybt``."""
    env = os.environ.get("RUSTYBT_ROOT")
    return Path(env).expanduser() if env else Path.home() / ".rustybt"


def bundles_dir(root: Path | str | None = None) -> Path:
    return Path(root if root is not None else rustybt_root()) / "data" / "bundles"


def bundle_path(name: str, root: Path | str | None = None) -> Path:
    return bundles_dir(root) / _check_name(name)


def _check_name(name: str) -> str:
    # The name becomes a folder name: refuse anything that could escape the bundles folder.
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in {".", ".."}:
        raise ConfigError(
            f"invalid bundle name {name!r}; use letters, digits, '_', '-' or '.', "
            "not starting with '.' or '-' (e.g. 'my-bundle')"
        )
    return name


# --- calendars ----------------------------------------------------------------------
_KNOWN_TZ = {"XNYS": "America/New_York", "XNAS": "America/New_York", "24/7": "UTC"}


@lru_cache(maxsize=64)
def calendar_tz(calendar: str | None) -> str:
    """Time zone whose local date names a session of ``calendar`` (UTC if unknown)."""
    if not calendar:
        return "UTC"
    if calendar in _KNOWN_TZ:
        return _KNOWN_TZ[calendar]
    try:
        import exchange_calendars as xcals

        return str(xcals.get_calendar(calendar).tz)
    except Exception:
        return "UTC"


def session_label_expr(dt: pl.Expr, tz: str) -> pl.Expr:
    """Midnight UTC of the session date each bar timestamp belongs to.

    Minute bars are stamped at the end of their minute, so a bar stamped exactly at
    local midnight closes the previous day: step back 1 µs before taking the date.
    """
    local = (dt - pl.duration(microseconds=1)).dt.convert_time_zone(tz)
    return local.dt.date().cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def daily_from_minute(minute: pl.DataFrame, assets: Iterable[Asset]) -> pl.DataFrame:
    """Aggregate minute bars into session (daily) bars, grouped by each asset's calendar.

    Exact: open = first, high = max, low = min, close = last, volume = sum, all Decimal.
    """
    tz_by_symbol = {a.symbol: calendar_tz(a.calendar) for a in assets}
    if minute.height == 0:
        return minute.clear()
    tz_frame = pl.DataFrame(
        {"symbol": list(tz_by_symbol), "_tz": list(tz_by_symbol.values())},
        schema={"symbol": pl.Utf8, "_tz": pl.Utf8},
    )
    frame = minute.join(tz_frame, on="symbol", how="left").with_columns(
        pl.col("_tz").fill_null("UTC")
    )
    parts = []
    for (tz,), part in frame.partition_by("_tz", as_dict=True, maintain_order=True).items():
        parts.append(
            part.sort("symbol", "dt")
            .with_columns(session_label_expr(pl.col("dt"), tz).alias("_session"))
            .group_by("symbol", "_session", maintain_order=True)
            .agg(
                pl.col("open").first(),
                pl.col("high").max(),
                pl.col("low").min(),
                pl.col("close").last(),
                pl.col("volume").sum(),
            )
            .rename({"_session": "dt"})
        )
    return _conform(pl.concat(parts), "daily")


# --- writing ------------------------------------------------------------------------
def _atomic_write_bytes(path: Path, write: Callable[[Path], None]) -> None:
    """Write via ``write(tmp_path)`` into a temp file beside ``path``, then replace ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o644)  # mkstemp makes 0600; bundles are ordinary shared data
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    _atomic_write_bytes(path, lambda p: p.write_text(text, encoding="utf-8"))


def _conform(frame: pl.DataFrame, freq: str) -> pl.DataFrame:
    """Check a frame against the bundle schema and return it cast, sorted, column-ordered."""
    missing = [c for c in SCHEMA if c not in frame.columns]
    if missing:
        raise MalformedData(
            f"{freq} frame is missing column(s) {missing}; "
            f"a bundle frame needs columns {list(SCHEMA)}"
        )
    casts: list[pl.Expr] = [pl.col("symbol").cast(pl.Utf8)]
    dt_type = frame.schema["dt"]
    if not isinstance(dt_type, pl.Datetime) or dt_type.time_zone is None:
        raise MalformedData(
            f"{freq} frame column 'dt' has type {dt_type}; it must be a tz-aware Datetime "
            "(e.g. .dt.replace_time_zone('UTC'))"
        )
    casts.append(pl.col("dt").dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
    for col in VALUE_COLUMNS:
        dtype = frame.schema[col]
        if isinstance(dtype, pl.Decimal):
            if dtype.scale is not None and dtype.scale > 8:
                exact = frame[col].cast(DECIMAL_DTYPE).cast(dtype) == frame[col]
                if not exact.fill_null(True).all():
                    raise MalformedData(
                        f"{freq} frame column {col!r} has values with more than 8 decimal "
                        "places; bundles store 8 places exactly, round them first"
                    )
        elif not dtype.is_integer():
            raise MalformedData(
                f"{freq} frame column {col!r} has type {dtype}; use Decimal or integer "
                "columns (never floats for prices)"
            )
        casts.append(pl.col(col).cast(DECIMAL_DTYPE))
    out = frame.select(casts)
    nulls = {c: n for c, n in zip(out.columns, out.null_count().row(0), strict=True) if n}
    if nulls:
        raise MalformedData(f"{freq} frame has missing values {nulls}; drop or fill those rows")
    out = out.sort("symbol", "dt")
    if out.height and out.select(pl.struct("symbol", "dt").is_duplicated().any()).item():
        raise MalformedData(
            f"{freq} frame has more than one bar for the same (symbol, dt); keep one per minute/day"
        )
    return out


def write_bundle(
    name: str,
    assets: list[Asset],
    frames: dict[str, pl.DataFrame],
    *,
    root: Path | str | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> Path:
    """Write (or overwrite) bundle ``name`` and return its folder.

    ``frames`` maps ``"minute"``/``"daily"`` to bar frames in the bundle schema. Every
    symbol in a frame must be among ``assets``. Files are replaced atomically one by one;
    ``meta.json`` goes last. Frequencies not in ``frames`` are removed from the bundle.
    """
    folder = bundle_path(name, root)
    if not frames:
        raise ConfigError("write_bundle needs at least one frame ('minute' or 'daily')")
    conformed: dict[str, pl.DataFrame] = {}
    for key, frame in frames.items():
        freq = normalize_frequency(key)
        if not isinstance(frame, pl.DataFrame):
            raise ConfigError(f"frames[{key!r}] must be a polars DataFrame, got {type(frame)}")
        conformed[freq] = _conform(frame, freq)
    by_symbol: dict[str, Asset] = {}
    for asset in assets:
        if not isinstance(asset, Asset):
            raise ConfigError(f"assets must be rustybt.assets.Asset objects, got {asset!r}")
        if asset.symbol in by_symbol:
            raise ConfigError(f"asset symbol {asset.symbol!r} appears twice; symbols are unique")
        by_symbol[asset.symbol] = asset
    for freq, frame in conformed.items():
        unknown = sorted(set(frame["symbol"].unique().to_list()) - set(by_symbol))
        if unknown:
            raise ConfigError(
                f"{freq} bars reference symbols with no asset: {unknown[:10]}; "
                "add an Asset for each symbol"
            )

    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "meta.json"
    ordered = sorted(by_symbol.values(), key=lambda a: (a.sid if a.sid >= 0 else 1 << 62, a.symbol))
    # assets first: a concurrent reader then sees assets that are a superset of the bars.
    _atomic_write_json(folder / "assets.json", [a.to_dict() for a in ordered])
    ranges: dict[str, list[str]] = {}
    for freq, frame in conformed.items():
        _atomic_write_bytes(
            folder / f"{freq}.parquet", lambda p, f=frame: f.write_parquet(p, statistics=True)
        )
        if frame.height:
            ranges[freq] = [_iso(frame["dt"].min()), _iso(frame["dt"].max())]
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "frequencies": sorted(conformed, key=FREQUENCIES.index),
        "ranges": ranges,
        "start": min((r[0] for r in ranges.values()), default=None),
        "end": max((r[1] for r in ranges.values()), default=None),
        "symbols": sorted(by_symbol),
        "created": _iso(datetime.now(UTC)),
    }
    if extra_meta:
        meta.update(extra_meta)
    _atomic_write_json(meta_path, meta)
    for freq in FREQUENCIES:
        if freq not in conformed:
            (folder / f"{freq}.parquet").unlink(missing_ok=True)
    return folder


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


def _parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


# --- reading ------------------------------------------------------------------------
class Bundle:
    """A bundle on disk. Frames load lazily on first use and are then cached."""

    def __init__(self, name: str, path: Path, meta: dict[str, Any], assets: list[Asset]) -> None:
        self.name = name
        self.path = path
        self.meta = meta
        self.assets = assets
        self.asset_finder = AssetFinder(assets)
        self.frequencies: list[str] = list(meta.get("frequencies", []))
        self._ranges = {
            f: (_parse_iso(r[0]), _parse_iso(r[1])) for f, r in meta.get("ranges", {}).items()
        }
        self.start: datetime | None = _parse_iso(meta.get("start"))
        self.end: datetime | None = _parse_iso(meta.get("end"))
        self._frames: dict[str, pl.DataFrame] = {}

    def __repr__(self) -> str:
        return (
            f"Bundle({self.name!r}, frequencies={self.frequencies}, "
            f"symbols={len(self.assets)}, start={self.start}, end={self.end})"
        )

    def range(self, frequency: str) -> tuple[datetime, datetime] | None:
        """First and last bar timestamps of ``frequency`` (None when it has no bars)."""
        return self._ranges.get(normalize_frequency(frequency))

    def frame(self, frequency: str) -> pl.DataFrame:
        """All bars of ``frequency`` as a polars DataFrame in the bundle schema."""
        freq = normalize_frequency(frequency)
        cached = self._frames.get(freq)
        if cached is not None:
            return cached
        if freq not in self.frequencies:
            raise _no_frequency(self, freq)
        file = self.path / f"{freq}.parquet"
        try:
            frame = pl.read_parquet(file)
        except FileNotFoundError:
            raise DataError(
                f"bundle {self.name!r} lists {freq} bars but {file} is missing; "
                f"re-ingest the bundle (rustybt ingest --bundle {self.name} ...)"
            ) from None
        except Exception as exc:
            raise DataError(
                f"bundle {self.name!r}: cannot read {file} ({exc}); re-ingest the bundle"
            ) from exc
        if dict(frame.schema) != SCHEMA:
            raise DataError(
                f"bundle {self.name!r}: {file} has schema {dict(frame.schema)}, expected "
                f"{SCHEMA}; re-ingest the bundle"
            )
        self._frames[freq] = frame
        return frame


def _no_frequency(bundle: Bundle, freq: str) -> DataError:
    from rustybt.exceptions import DataNotFound

    return DataNotFound(
        f"bundle {bundle.name!r} has no {freq} bars (it has: {', '.join(bundle.frequencies)}); "
        f"ingest {freq} data into it (rustybt ingest --bundle {bundle.name} --frequency {freq} "
        "FILES) or use a frequency it has"
    )


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DataError(f"bundle metadata {folder / 'meta.json'} is unreadable ({exc})") from exc


def list_bundles(root: Path | str | None = None) -> list[str]:
    """Names of the complete bundles under the root (those with a ``meta.json``)."""
    folder = bundles_dir(root)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / "meta.json").is_file())


def load_bundle(name: str, root: Path | str | None = None) -> Bundle:
    """Open bundle ``name``. ``demo`` is generated on first use (or when outdated)."""
    folder = bundle_path(name, root)
    meta = _read_meta(folder)
    if name == "demo":
        from rustybt.data.demo import DEMO_VERSION, build_demo_bundle

        if (
            meta is None
            or meta.get("schema_version") != SCHEMA_VERSION
            or meta.get("demo_version") != DEMO_VERSION
        ):
            build_demo_bundle(root)
            meta = _read_meta(folder)
    if meta is None:
        available = list_bundles(root)
        shown = ", ".join(available) if available else "none yet"
        raise BundleNotFound(
            f"no bundle named {name!r} in {bundles_dir(root)} (available: {shown}; the "
            f"built-in 'demo' bundle is always available). Make one with "
            f"`rustybt ingest --bundle {name} FILES...` or "
            f"rustybt.data.ingest.ingest({name!r}, [paths])"
        )
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise DataError(
            f"bundle {name!r} has schema version {meta.get('schema_version')!r}; this RustyBT "
            f"reads version {SCHEMA_VERSION}. Re-ingest it (rustybt ingest --bundle {name} ...)"
        )
    try:
        raw = json.loads((folder / "assets.json").read_text(encoding="utf-8"))
        assets = [asset_from_dict(d) for d in raw]
    except FileNotFoundError:
        raise DataError(f"bundle {name!r} has no assets.json; re-ingest it") from None
    except Exception as exc:
        raise DataError(
            f"bundle {name!r}: assets.json is unreadable ({exc}); re-ingest it"
        ) from exc
    return Bundle(name, folder, meta, assets)
