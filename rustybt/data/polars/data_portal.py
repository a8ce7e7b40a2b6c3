"""``PolarsDataPortal``: exact, columnar access to a bundle's bars for backtest and live.

Bars are loaded from the bundle's Parquet files with polars, then split per asset into
:class:`AssetBars`: a sorted ``int64`` array of UTC nanosecond timestamps plus plain Python
lists of ``Decimal`` for open/high/low/close/volume. That is the hot-path representation:
the backtest clock indexes those lists directly, no object per bar, no float anywhere.

Conventions (shared with :mod:`rustybt.data.bundles`):

- Minute bars are stamped at the END of their minute (NYSE: 09:31 .. 16:00 New York time).
  Daily bars are stamped midnight UTC of their session date.
- ``price`` is the last close at or before ``dt`` (forward-filled); ``open/high/low/close``
  are the bar exactly at ``dt`` or ``None``; ``volume`` is ``Decimal(0)`` with no bar.
- A daily history asked for at an intraday time of a minute portal ends with the current
  session's bar built from the minutes so far (zipline's behaviour), so it never shows a
  close that has not happened yet.
- In minute mode, a ``start``/``end`` that is exactly midnight UTC means a whole session
  date: ``end=2024-01-30`` includes every bar of the 2024-01-30 session.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import polars as pl

from rustybt.assets import Asset
from rustybt.data.bar import Bar
from rustybt.data.bundles import (
    VALUE_COLUMNS,
    Bundle,
    calendar_tz,
    load_bundle,
    normalize_frequency,
    session_label_expr,
)
from rustybt.exceptions import ConfigError, DataNotFound, SymbolNotFound

FIELDS = ("open", "high", "low", "close", "volume", "price")
_ZERO = Decimal(0)
_NS_PER_DAY = 86_400_000_000_000
_NS_PER_US = 1_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TimeLike = datetime | date | pd.Timestamp | np.datetime64 | int | str


class AssetBars:
    """One asset's bars of one frequency, columnar: ``dts`` (int64 UTC ns) + Decimal lists."""

    __slots__ = ("asset", "frequency", "dts", "open", "high", "low", "close", "volume", "_dts")

    def __init__(
        self,
        asset: Asset,
        frequency: str,
        dts: np.ndarray,
        columns: dict[str, list[Decimal]],
    ) -> None:
        self.asset = asset
        self.frequency = frequency
        self.dts = dts
        self.open = columns["open"]
        self.high = columns["high"]
        self.low = columns["low"]
        self.close = columns["close"]
        self.volume = columns["volume"]
        # bisect on a list of ints is several times faster than np.searchsorted on a scalar
        self._dts: list[int] = dts.tolist()

    def __len__(self) -> int:
        return len(self._dts)

    def __repr__(self) -> str:
        return f"AssetBars({self.asset!r}, {self.frequency}, {len(self)} bars)"

    def index_at(self, dt_ns: int) -> int:
        """Row of the bar stamped exactly ``dt_ns``, or -1."""
        i = bisect_left(self._dts, dt_ns)
        return i if i < len(self._dts) and self._dts[i] == dt_ns else -1

    def index_at_or_before(self, dt_ns: int) -> int:
        """Row of the last bar stamped at or before ``dt_ns``, or -1."""
        return bisect_right(self._dts, dt_ns) - 1

    def bar(self, i: int) -> Bar:
        dt = _from_ns(self._dts[i])
        return Bar(self.asset, dt, self.open[i], self.high[i], self.low[i], self.close[i],
                   self.volume[i])  # fmt: skip


class PolarsDataPortal:
    """Historical bars of one bundle: spot values, history windows, the backtest clock.

    ``PolarsDataPortal(bundle_name='demo', data_frequency='minute')``. An unknown
    frequency raises :class:`ConfigError`; a frequency the bundle lacks raises
    :class:`DataNotFound`; an unknown bundle raises :class:`BundleNotFound`.
    """

    def __init__(
        self,
        bundle_name: str = "demo",
        data_frequency: str = "minute",
        *,
        root: Path | str | None = None,
    ) -> None:
        self.data_frequency = normalize_frequency(data_frequency)
        self.bundle: Bundle = load_bundle(bundle_name, root)
        self.bundle_name = bundle_name
        if self.data_frequency not in self.bundle.frequencies:
            raise DataNotFound(
                f"bundle {bundle_name!r} has no {self.data_frequency} bars (it has: "
                f"{', '.join(self.bundle.frequencies) or 'none'}); use "
                f"data_frequency={self.bundle.frequencies[0]!r} or ingest "
                f"{self.data_frequency} data (rustybt ingest --bundle {bundle_name} ...)"
            )
        self.asset_finder = self.bundle.asset_finder
        first, last = self._range(self.data_frequency)
        self.start: pd.Timestamp = pd.Timestamp(first).tz_convert("UTC")
        self.end: pd.Timestamp = pd.Timestamp(last).tz_convert("UTC")
        self._bars: dict[tuple[str, str], AssetBars] = {}
        self._parts: dict[str, dict[str, pl.DataFrame]] = {}
        self._all_dts: dict[str, np.ndarray] = {}
        self._sessions: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return (
            f"PolarsDataPortal(bundle_name={self.bundle_name!r}, "
            f"data_frequency={self.data_frequency!r}, start={self.start}, end={self.end})"
        )

    # --- per-asset arrays -----------------------------------------------------------
    def asset_bars(self, asset: Asset | str, data_frequency: str | None = None) -> AssetBars:
        """The asset's bars as columnar arrays; built once, then cached."""
        freq = self._freq(data_frequency)
        resolved = self._resolve(asset)
        key = (resolved.symbol, freq)
        bars = self._bars.get(key)
        if bars is None:
            bars = self._bars[key] = self._build(resolved, freq)
        return bars

    def _build(self, asset: Asset, freq: str) -> AssetBars:
        part = self._partitions(freq).get(asset.symbol)
        if part is None:
            empty: dict[str, list[Decimal]] = {c: [] for c in VALUE_COLUMNS}
            return AssetBars(asset, freq, np.empty(0, dtype=np.int64), empty)
        dts = part["dt"].dt.epoch("ns").to_numpy().astype(np.int64, copy=False)
        columns = {c: _decimal_list(part[c]) for c in VALUE_COLUMNS}
        return AssetBars(asset, freq, dts, columns)

    def _partitions(self, freq: str) -> dict[str, pl.DataFrame]:
        parts = self._parts.get(freq)
        if parts is None:
            frame = self.bundle.frame(freq)
            parts = {
                key[0]: part for key, part in frame.partition_by("symbol", as_dict=True).items()
            }
            self._parts[freq] = parts
        return parts

    # --- the clock ------------------------------------------------------------------
    def timestamps(
        self,
        assets: Iterable[Asset | str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        data_frequency: str | None = None,
    ) -> np.ndarray:
        """Sorted union of the bar stamps (int64 UTC ns) of ``assets`` within [start, end].

        ``assets=None`` means every asset of the bundle. In minute mode a midnight
        ``start``/``end`` covers that whole session date.
        """
        freq = self._freq(data_frequency)
        first, last = self._range(freq)
        lo_ns = _to_ns(first) if start is None else self._check_in_range(start, "start", freq)
        hi_ns = _to_ns(last) if end is None else self._check_in_range(end, "end", freq)
        if lo_ns > hi_ns:
            raise ConfigError(f"start {_from_ns(lo_ns)} is after end {_from_ns(hi_ns)}; swap them")
        if freq == "minute":
            # a date means its session: the bar stamped at midnight closes the previous day
            if start is not None and lo_ns % _NS_PER_DAY == 0:
                lo_ns += 1
            if end is not None and hi_ns % _NS_PER_DAY == 0:
                hi_ns += _NS_PER_DAY
        if assets is None:
            stamps = self._all_dts.get(freq)
            if stamps is None:
                arrays = [self.asset_bars(a, freq).dts for a in self.asset_finder.assets]
                stamps = self._all_dts[freq] = _union(arrays)
        else:
            stamps = _union([self.asset_bars(a, freq).dts for a in _as_list(assets)])
        i = int(np.searchsorted(stamps, lo_ns, side="left"))
        j = int(np.searchsorted(stamps, hi_ns, side="right"))
        return stamps[i:j]

    def _check_in_range(self, value: TimeLike, name: str, freq: str) -> int:
        ns = _to_ns(value, name)
        first, last = self._range(freq)
        # whole days: a session date that holds the first/last bar is inside the bundle
        lo = _to_ns(first) // _NS_PER_DAY * _NS_PER_DAY
        hi = (_to_ns(last) // _NS_PER_DAY + 1) * _NS_PER_DAY
        if not lo <= ns < hi:
            raise DataNotFound(
                f"{name}={_from_ns(ns)} is outside bundle {self.bundle_name!r}, whose {freq} "
                f"bars run from {first} to {last}; pick dates in that range or ingest more data"
            )
        return ns

    def _range(self, freq: str) -> tuple[datetime, datetime]:
        rng = self.bundle.range(freq)
        if rng is None or rng[0] is None or rng[1] is None:
            raise DataNotFound(f"bundle {self.bundle_name!r} has no {freq} bars")
        return rng  # type: ignore[return-value]

    # --- point lookups --------------------------------------------------------------
    def get_spot_value(
        self,
        asset: Asset | str,
        field: str,
        dt: TimeLike,
        data_frequency: str | None = None,
    ) -> Decimal | None:
        """``field`` of ``asset`` at ``dt``: price forward-filled, others exact (or None)."""
        field = _check_field(field)
        bars = self.asset_bars(asset, data_frequency)
        ns = _to_ns(dt)
        if field == "price":
            i = bars.index_at_or_before(ns)
            return bars.close[i] if i >= 0 else None
        i = bars.index_at(ns)
        if i < 0:
            return _ZERO if field == "volume" else None
        return getattr(bars, field)[i]

    def get_bar(
        self, asset: Asset | str, dt: TimeLike, data_frequency: str | None = None
    ) -> Bar | None:
        """The bar of ``asset`` stamped exactly ``dt``, or None."""
        bars = self.asset_bars(asset, data_frequency)
        i = bars.index_at(_to_ns(dt))
        return bars.bar(i) if i >= 0 else None

    def can_trade(
        self, asset: Asset | str, dt: TimeLike, data_frequency: str | None = None
    ) -> bool:
        """True when ``asset`` has a bar stamped exactly ``dt`` (False for unknown assets)."""
        try:
            bars = self.asset_bars(asset, data_frequency)
        except SymbolNotFound:
            return False
        return bars.index_at(_to_ns(dt)) >= 0

    # --- windows --------------------------------------------------------------------
    def get_history_window(
        self,
        assets: Asset | str | Sequence[Asset | str],
        end_dt: TimeLike,
        bar_count: int,
        field: str,
        data_frequency: str | None = None,
    ) -> pd.DataFrame:
        """The last ``bar_count`` bars at or before ``end_dt``: one Decimal column per asset.

        The index is the union of the assets' bar stamps (UTC). A missing bar is None
        (volume 0); ``price`` is forward-filled, also from before the window. With fewer
        bars available than asked, the window is shorter. ``data_frequency`` accepts
        ``"1m"``/``"minute"`` and ``"1d"``/``"daily"`` (default: the portal's).
        """
        field = _check_field(field)
        if isinstance(bar_count, bool) or not isinstance(bar_count, int | np.integer):
            raise ConfigError(f"bar_count must be a positive int, got {bar_count!r}")
        if bar_count <= 0:
            raise ConfigError(f"bar_count must be a positive int, got {bar_count!r}")
        bar_count = int(bar_count)
        freq = self._freq(data_frequency)
        end_ns = _to_ns(end_dt, "end_dt")
        wanted = _as_list(assets)
        series: list[tuple[np.ndarray, dict[str, list[Decimal]], Decimal | None]] = []
        for asset in wanted:
            if freq == "daily" and self.data_frequency == "minute":
                series.append(self._daily_upto(asset, end_ns, bar_count, field))
            else:
                series.append(_tail(self.asset_bars(asset, freq), end_ns, bar_count, field))

        index = _union([dts for dts, _, _ in series])[-bar_count:]
        columns: dict[Any, list[Decimal | None]] = {}
        for asset, (dts, cols, before) in zip(wanted, series, strict=True):
            columns[asset] = _align(index, dts, cols, field, before)
        return pd.DataFrame(
            columns,
            index=pd.DatetimeIndex(pd.to_datetime(index, utc=True), name="dt"),
            dtype=object,
        )

    def _daily_upto(
        self, asset: Asset | str, end_ns: int, n: int, field: str
    ) -> tuple[np.ndarray, dict[str, list[Decimal]], Decimal | None]:
        """Completed sessions before ``end_ns`` plus the current session's bar so far."""
        minute = self.asset_bars(asset, "minute")
        session = _session_of(end_ns, minute.asset)
        daily = self.asset_bars(asset, "daily")
        done = bisect_left(daily._dts, session)  # sessions strictly before the current one
        lo = max(0, done - n)
        dts = list(daily._dts[lo:done])
        cols = {c: list(getattr(daily, c)[lo:done]) for c in VALUE_COLUMNS}
        before = daily.close[lo - 1] if lo > 0 else None

        j = minute.index_at_or_before(end_ns) + 1
        sessions = self.minute_sessions(minute)
        i = int(np.searchsorted(sessions, session, side="left"))
        if i < j:  # minutes of the current session have happened: aggregate them
            dts.append(session)
            cols["open"].append(minute.open[i])
            cols["high"].append(max(minute.high[i:j]))
            cols["low"].append(min(minute.low[i:j]))
            cols["close"].append(minute.close[j - 1])
            cols["volume"].append(sum(minute.volume[i:j], _ZERO))
            if len(dts) > n:
                before = cols["close"][0]
                dts = dts[1:]
                cols = {c: v[1:] for c, v in cols.items()}
        return np.asarray(dts, dtype=np.int64), cols, before if field == "price" else None

    def minute_sessions(self, bars: AssetBars) -> np.ndarray:
        """Session label (midnight UTC ns) of each minute bar, for the asset's calendar."""
        key = bars.asset.symbol
        out = self._sessions.get(key)
        if out is None:
            tz = calendar_tz(bars.asset.calendar)
            stamps = pl.Series("dt", bars.dts).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")
            labels = stamps.to_frame().select(session_label_expr(pl.col("dt"), tz).dt.epoch("ns"))
            labels = labels.to_series()
            out = self._sessions[key] = labels.to_numpy().astype(np.int64, copy=False)
        return out

    # --- conveniences at the bundle's last bar --------------------------------------
    def current(self, asset: Asset | str, field: str) -> Decimal | None:
        """``get_spot_value`` at the bundle's last bar."""
        return self.get_spot_value(asset, field, self.end)

    def history(
        self,
        assets: Asset | str | Sequence[Asset | str],
        field: str,
        bar_count: int,
        frequency: str | None = None,
    ) -> pd.DataFrame:
        """``get_history_window`` ending at the bundle's last bar."""
        return self.get_history_window(assets, self.end, bar_count, field, frequency)

    # --- helpers --------------------------------------------------------------------
    def _freq(self, data_frequency: str | None) -> str:
        freq = (
            self.data_frequency if data_frequency is None else normalize_frequency(data_frequency)
        )
        if freq not in self.bundle.frequencies:
            raise DataNotFound(
                f"bundle {self.bundle_name!r} has no {freq} bars (it has: "
                f"{', '.join(self.bundle.frequencies)}); ingest {freq} data into it"
            )
        return freq

    def _resolve(self, asset: Asset | str) -> Asset:
        if isinstance(asset, Asset):
            found = self.asset_finder.lookup_symbol(asset.symbol)
            if found != asset:
                raise SymbolNotFound(
                    f"{asset!r} is not in bundle {self.bundle_name!r} (it has "
                    f"{found!r}); use portal.asset_finder.lookup_symbol({asset.symbol!r})"
                )
            return found
        if isinstance(asset, str):
            return self.asset_finder.lookup_symbol(asset)
        raise SymbolNotFound(f"expected an Asset or a symbol string, got {asset!r}")

    # --- module helpers -----------------------------------------------------------------

    def bars_span(self, assets: list[Any]) -> str:
        """``2024-01-02 14:31 → 2024-01-30 21:00 UTC``: the first and last bar of
        ``assets`` (for messages that say where the data is)."""
        stamps = [self.asset_bars(a).dts for a in assets]
        stamps = [s for s in stamps if len(s)]
        if not stamps:
            return "nowhere (no bars at all)"
        first = datetime.fromtimestamp(min(int(s[0]) for s in stamps) / 1e9, UTC)
        last = datetime.fromtimestamp(max(int(s[-1]) for s in stamps) / 1e9, UTC)
        return f"{first:%Y-%m-%d %H:%M} → {last:%Y-%m-%d %H:%M} UTC"


def _decimal_list(column: pl.Series) -> list[Decimal]:
    """Exact Decimals at the smallest scale that holds every value (185.12, not 185.12000000)."""
    scale = column.dtype.scale if isinstance(column.dtype, pl.Decimal) else 8
    for k in range(0, (scale or 0) + 1):
        narrowed = column.cast(pl.Decimal(38, k))
        if (narrowed.cast(column.dtype) == column).all():
            column = narrowed
            break
    # Prices repeat a lot (a minute series moves a few ticks at a time), so convert each
    # distinct value to a Decimal once and share the objects: several times faster than
    # converting every row, and the lists hold fewer distinct objects.
    distinct = column.unique().sort()
    lookup = distinct.to_list()
    if lookup and not isinstance(lookup[0], Decimal):  # pragma: no cover - polars contract
        raise TypeError(f"expected Decimal values from polars, got {type(lookup[0])}")
    if column.null_count():
        return column.to_list()
    return [lookup[i] for i in distinct.search_sorted(column).to_list()]


def _check_field(field: str) -> str:
    if field not in FIELDS:
        raise DataNotFound(f"unknown field {field!r}; use one of {', '.join(FIELDS)}")
    return field


def _as_list(assets: Any) -> list[Any]:
    if isinstance(assets, Asset | str):
        return [assets]
    return list(assets)


def _union(arrays: list[np.ndarray]) -> np.ndarray:
    if not arrays:
        return np.empty(0, dtype=np.int64)
    if len(arrays) == 1:
        return arrays[0]
    return np.unique(np.concatenate(arrays))


def _tail(
    bars: AssetBars, end_ns: int, n: int, field: str
) -> tuple[np.ndarray, dict[str, list[Decimal]], Decimal | None]:
    j = bars.index_at_or_before(end_ns) + 1
    i = max(0, j - n)
    cols = {c: getattr(bars, c)[i:j] for c in VALUE_COLUMNS}
    before = bars.close[i - 1] if field == "price" and i > 0 else None
    return bars.dts[i:j], cols, before


def _align(
    index: np.ndarray,
    dts: np.ndarray,
    cols: dict[str, list[Decimal]],
    field: str,
    before: Decimal | None,
) -> list[Decimal | None]:
    """Values of one asset on the window's index; price forward-filled from ``before``."""
    if len(index) == 0:
        return []
    if len(dts) == 0:
        return [_ZERO if field == "volume" else before] * len(index)
    source = cols["close" if field == "price" else field]
    if field == "price":
        pos = np.searchsorted(dts, index, side="right") - 1
        return [source[p] if p >= 0 else before for p in pos.tolist()]
    pos = np.searchsorted(dts, index, side="left")
    hit = (pos < len(dts)) & (dts[np.minimum(pos, len(dts) - 1)] == index)
    missing = _ZERO if field == "volume" else None
    return [source[p] if h else missing for p, h in zip(pos.tolist(), hit.tolist(), strict=True)]


def _session_of(ns: int, asset: Asset) -> int:
    """Midnight UTC (ns) of the session date an end-stamped bar at ``ns`` belongs to."""
    tz = calendar_tz(asset.calendar)
    local = _from_ns(ns - _NS_PER_US).astimezone(ZoneInfo(tz))
    day = local.date()
    return _to_ns(datetime(day.year, day.month, day.day, tzinfo=UTC))


def _from_ns(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC")


def _to_ns(value: Any, name: str = "dt") -> int:
    """UTC nanoseconds of a tz-aware time; a ``date`` means midnight UTC of that date."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is None:
            raise _naive(name, value)
        return int(value.value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _naive(name, value)
        delta = value - _EPOCH
        return (delta // timedelta(microseconds=1)) * _NS_PER_US
    if isinstance(value, date):
        return _to_ns(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, str):
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"{name}={value!r} is not a date/time; use e.g. '2024-01-05 14:31+00:00'"
            ) from exc
        if ts.tzinfo is None:
            if ts == ts.normalize() and len(value.strip()) <= 10:
                return int(ts.tz_localize("UTC").value)  # a bare date: midnight UTC
            raise _naive(name, value)
        return int(ts.value)
    raise ConfigError(f"{name}={value!r} is not a date/time; pass a tz-aware datetime")


def _naive(name: str, value: Any) -> ConfigError:
    return ConfigError(
        f"{name}={value!r} has no time zone; pass a tz-aware time, e.g. "
        f"pd.Timestamp('2024-01-05 14:31', tz='UTC')"
    )
