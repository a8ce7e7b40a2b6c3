"""The strategy's ``data`` view: ``current``, ``history``, ``can_trade`` (zipline semantics).

Two sources, one surface. :class:`BacktestBarData` reads columnar per-asset arrays at
the simulated clock's index, so a lookup is a couple of list indexings and no object is
created per bar. :class:`LiveBarData` reads the latest bar received per asset and joins
the bundle's history with the rolling window of bars seen since start, so indicators are
warm from the first live bar.

``current`` returns ``Decimal`` (``None`` when the asset has no data yet). ``price`` is
forward-filled (the last close at or before now); ``open/high/low/close/volume`` are the
bar at exactly now (``None``, volume ``0``, when the asset did not trade this minute).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from rustybt.assets import Asset, Crypto, Equity, Future
from rustybt.data.bar import Bar
from rustybt.data.bundles import calendar_tz
from rustybt.data.history import (
    VALUE_FIELDS,
    AlignedFrame,
    ColumnStore,
    HistoryFrame,
    HistorySeries,
    SessionAggregator,
    align_tail,
    empty_series,
    frame_of_series,
    session_bounds,
    utc_index,
    with_partial,
)
from rustybt.exceptions import DataNotFound

FIELDS = ("open", "high", "low", "close", "volume", "price", "last_traded")
_FIELD_SET = frozenset(FIELDS)
_ASSET_CLASSES = frozenset({Asset, Equity, Crypto, Future})
_ZERO = Decimal(0)


def _check_field(field: str) -> str:
    if field not in FIELDS:
        raise DataNotFound(f"unknown field {field!r}; use one of {', '.join(FIELDS)}")
    return field


_HISTORY_FIELDS = ("open", "high", "low", "close", "volume", "price")


def _history_field(field: str) -> str:
    if field not in _HISTORY_FIELDS:
        raise DataNotFound(
            f"history has no field {field!r}; use one of {', '.join(_HISTORY_FIELDS)}"
        )
    return field


def _is_many(x: Any) -> bool:
    return isinstance(x, list | tuple | set | frozenset | pd.Index)


class BarData(ABC):
    """Shared argument handling; subclasses implement ``_current``/``_series``/``_can_trade``."""

    current_dt: datetime | None

    def current(self, assets: Asset | Iterable[Asset], fields: str | Iterable[str]) -> Any:
        """A Decimal for one asset and one field; a Series or DataFrame for several."""
        if not _is_many(assets):
            if isinstance(fields, str):
                return self._current(assets, _check_field(fields))  # type: ignore[arg-type]
            return pd.Series({f: self._current(assets, _check_field(f)) for f in fields})  # type: ignore[arg-type]
        assets = list(assets)  # type: ignore[arg-type]
        if isinstance(fields, str):
            _check_field(fields)
            return pd.Series({a: self._current(a, fields) for a in assets}, dtype=object)
        fields = [_check_field(f) for f in fields]
        return pd.DataFrame(
            {f: [self._current(a, f) for a in assets] for f in fields}, index=assets, dtype=object
        )

    def history(
        self,
        assets: Asset | Iterable[Asset],
        fields: str | Iterable[str],
        bar_count: int,
        frequency: str = "1m",
    ) -> Any:
        """The last ``bar_count`` bars up to now, exact (``Decimal``) and pandas-shaped.

        One asset and one field: a :class:`HistorySeries`; several assets: a
        :class:`HistoryFrame` with one column per asset on the union of their stamps
        (``price`` forward-filled, a missing bar ``None``/volume 0); one asset and several
        fields: a frame with one column per field. See :mod:`rustybt.data.history`.
        """
        if isinstance(bar_count, bool) or not isinstance(bar_count, int) or bar_count <= 0:
            raise DataNotFound(f"bar_count must be a positive int, got {bar_count!r}")
        if frequency not in ("1m", "1d"):
            raise DataNotFound(f"frequency must be '1m' or '1d', got {frequency!r}")
        if not _is_many(assets):
            if isinstance(fields, str):
                return self._series(assets, _history_field(fields), bar_count, frequency)  # type: ignore[arg-type]
            cols = {
                f: self._series(assets, _history_field(f), bar_count, frequency) for f in fields
            }  # type: ignore[arg-type]
            return HistoryFrame({f: s.to_numpy() for f, s in cols.items()} if cols else {},
                                index=next(iter(cols.values())).index if cols else None,
                                dtype=object)  # fmt: skip
        if isinstance(fields, str):
            field = _history_field(fields)
            many = tuple(assets)  # type: ignore[arg-type]
            if len(many) == 1:
                series = self._series(many[0], field, bar_count, frequency)
                return HistoryFrame({many[0]: series.to_numpy()}, index=series.index, dtype=object)
            return self._frame(many, field, bar_count, frequency)
        raise DataNotFound("history of several assets and several fields: call it per field")

    def history_values(
        self, asset: Asset, field: str, bar_count: int, frequency: str = "1m"
    ) -> np.ndarray:
        """The fast path: the same window as ``history`` as a read-only array of Decimals.

        No pandas object is built (about a microsecond); sum it with ``sum(values)``.
        """
        if isinstance(bar_count, bool) or not isinstance(bar_count, int) or bar_count <= 0:
            raise DataNotFound(f"bar_count must be a positive int, got {bar_count!r}")
        if frequency not in ("1m", "1d"):
            raise DataNotFound(f"frequency must be '1m' or '1d', got {frequency!r}")
        field = _history_field(field)
        fast = self._values(asset, field, bar_count, frequency)
        values = (
            fast
            if fast is not None
            else self._series(asset, field, bar_count, frequency).to_numpy()
        )
        values = values.view()
        values.flags.writeable = False
        return values

    def _values(self, asset: Asset, field: str, n: int, frequency: str) -> np.ndarray | None:
        return None  # subclasses slice their buffers directly where they can

    def can_trade(self, assets: Asset | Iterable[Asset]) -> Any:
        if _is_many(assets):
            return pd.Series({a: self._can_trade(a) for a in assets}, dtype=bool)  # type: ignore[union-attr]
        return self._can_trade(assets)  # type: ignore[arg-type]

    def is_stale(self, assets: Asset | Iterable[Asset]) -> Any:
        if _is_many(assets):
            return pd.Series({a: self._is_stale(a) for a in assets}, dtype=bool)  # type: ignore[union-attr]
        return self._is_stale(assets)  # type: ignore[arg-type]

    def _is_stale(self, asset: Asset) -> bool:
        return self._current(asset, "price") is not None and not self._can_trade(asset)

    @abstractmethod
    def _current(self, asset: Asset, field: str) -> Decimal | None: ...

    @abstractmethod
    def _series(self, asset: Asset, field: str, n: int, frequency: str) -> HistorySeries: ...

    @abstractmethod
    def _frame(
        self, assets: tuple[Asset, ...], field: str, n: int, frequency: str
    ) -> HistoryFrame: ...

    @abstractmethod
    def _can_trade(self, asset: Asset) -> bool: ...


class _AssetCursor:
    """Per-asset arrays plus, for each clock index, the row at or before it."""

    __slots__ = ("bars", "ffill_rows", "exact_rows", "columns")

    def __init__(self, bars: Any, clock_ns: np.ndarray) -> None:
        self.bars = bars
        rows = np.searchsorted(bars.dts, clock_ns, side="right") - 1
        exact = np.where((rows >= 0) & (bars.dts[np.maximum(rows, 0)] == clock_ns), rows, -1)
        self.ffill_rows: list[int] = rows.tolist()
        self.exact_rows: list[int] = exact.tolist()
        self.columns = {
            "open": bars.open,
            "high": bars.high,
            "low": bars.low,
            "close": bars.close,
            "volume": bars.volume,
        }


class BacktestBarData(BarData):
    """``data`` over a data portal at the backtest clock's current index."""

    def __init__(self, portal: Any, clock_ns: np.ndarray) -> None:
        self.portal = portal
        self.clock_ns = clock_ns
        self.index = 0
        self.current_dt = None
        self._cursors: dict[Asset, _AssetCursor] = {}
        self._freq = getattr(portal, "data_frequency", "daily")
        self._stores: dict[tuple[Asset, str], ColumnStore] = {}
        self._frames: dict[tuple[Any, str], tuple[AlignedFrame, list[int]]] = {}
        self._frame_asks: dict[tuple[Any, str], int] = {}
        self._prefix: dict[Asset, _SessionPrefix] = {}
        self._session_now: dict[tuple[int, str], tuple[int, int]] = {}

    def cursor(self, asset: Asset) -> _AssetCursor:
        cur = self._cursors.get(asset)
        if cur is None:
            cur = self._cursors[asset] = _AssetCursor(self.portal.asset_bars(asset), self.clock_ns)
        return cur

    def set_index(self, index: int, dt: datetime) -> None:
        self.index = index
        self.current_dt = dt

    def current(self, assets: Any, fields: Any) -> Any:
        # The hot path of every strategy: one asset, one field. Skip the generic handling.
        if fields.__class__ is str and assets.__class__ in _ASSET_CLASSES and fields in _FIELD_SET:
            # _current inlined for its commonest fields: one call per lookup, not two.
            cur = self._cursors.get(assets) or self.cursor(assets)
            if fields == "price":
                r = cur.ffill_rows[self.index]
                return cur.bars.close[r] if r >= 0 else None
            if fields == "close":
                r = cur.exact_rows[self.index]
                return cur.bars.close[r] if r >= 0 else None
            return self._current(assets, fields)
        return super().current(assets, fields)

    def _current(self, asset: Asset, field: str) -> Decimal | None:
        cur = self._cursors.get(asset) or self.cursor(asset)
        if field == "price":
            r = cur.ffill_rows[self.index]
            return cur.bars.close[r] if r >= 0 else None
        if field == "last_traded":
            r = cur.ffill_rows[self.index]
            return pd.Timestamp(int(cur.bars.dts[r]), tz="UTC") if r >= 0 else None  # type: ignore[return-value]
        r = cur.exact_rows[self.index]
        if r < 0:
            return _ZERO if field == "volume" else None
        return cur.columns[field][r]

    def bar(self, asset: Asset) -> Bar | None:
        """The bar of ``asset`` at exactly now, as an object (only built when needed)."""
        cur = self._cursors.get(asset) or self.cursor(asset)
        r = cur.exact_rows[self.index]
        if r < 0:
            return None
        b = cur.bars
        return Bar(asset, self.current_dt, b.open[r], b.high[r], b.low[r], b.close[r], b.volume[r])  # type: ignore[arg-type]

    def last_price(self, asset: Asset) -> Decimal | None:
        cur = self._cursors.get(asset) or self.cursor(asset)
        r = cur.ffill_rows[self.index]
        return cur.bars.close[r] if r >= 0 else None

    def _can_trade(self, asset: Asset) -> bool:
        cur = self._cursors.get(asset) or self.cursor(asset)
        return cur.exact_rows[self.index] >= 0

    # --- history -----------------------------------------------------------------------
    def _store(self, asset: Asset, freq: str) -> ColumnStore:
        store = self._stores.get((asset, freq))
        if store is None:
            if freq == self._freq:
                bars = (self._cursors.get(asset) or self.cursor(asset)).bars
            else:
                bars = self.portal.asset_bars(asset, freq)
            columns = {f: getattr(bars, f) for f in VALUE_FIELDS}
            store = self._stores[(asset, freq)] = ColumnStore.from_lists(asset, bars.dts, columns)
        return store

    def _series(self, asset: Asset, field: str, n: int, frequency: str) -> HistorySeries:
        col = "close" if field == "price" else field
        if frequency == "1d" and self._freq == "minute":
            return self._daily_series(asset, col, n)
        cur = self._cursors.get(asset) or self.cursor(asset)
        store = self._stores.get((asset, self._freq)) or self._store(asset, self._freq)
        return store.window(col, cur.ffill_rows[self.index] + 1, n)

    def _values(self, asset: Asset, field: str, n: int, frequency: str) -> np.ndarray | None:
        if frequency == "1d" and self._freq == "minute":
            return None
        cur = self._cursors.get(asset) or self.cursor(asset)
        store = self._stores.get((asset, self._freq)) or self._store(asset, self._freq)
        end = cur.ffill_rows[self.index] + 1
        return store.cols["close" if field == "price" else field][max(0, end - n) : end]

    def _frame(self, assets: tuple[Asset, ...], field: str, n: int, frequency: str) -> HistoryFrame:
        if frequency == "1d" and self._freq == "minute":
            col = "close" if field == "price" else field
            series = [self._daily_series(a, col, n) for a in assets]
            return frame_of_series(assets, field, series, n)
        key = (assets, field)
        entry = self._frames.get(key)
        if entry is None:
            stores = [self._store(a, self._freq) for a in assets]
            if self._frame_asks.get(key, 0) < 1:
                # a list seen once may never come back (a changing universe): align its tail
                self._frame_asks[key] = 1
                ends = [
                    (self._cursors.get(a) or self.cursor(a)).ffill_rows[self.index] + 1
                    for a in assets
                ]
                return align_tail(assets, field, stores, ends, n)
            frame = AlignedFrame(assets, field, stores)
            rows = np.searchsorted(frame.ts[: frame.n], self.clock_ns, side="right").tolist()
            entry = self._frames[key] = (frame, rows)
            if len(self._frames) > _MAX_FRAMES:
                self._frames.pop(next(iter(self._frames)))
        frame, rows = entry
        return frame.window(rows[self.index], n)

    def _daily_series(self, asset: Asset, col: str, n: int) -> HistorySeries:
        """Completed sessions from the daily bars, then the current session so far."""
        daily = self._stores.get((asset, "daily")) or self._store(asset, "daily")
        cur = self._cursors.get(asset) or self.cursor(asset)
        j = cur.ffill_rows[self.index]
        tz = calendar_tz(asset.calendar)
        key = (self.index, tz)
        bounds = self._session_now.get(key)
        if bounds is None:
            if len(self._session_now) > 64:
                self._session_now.clear()
            bounds = self._session_now[key] = session_bounds(int(self.clock_ns[self.index]), tz)
        session = bounds[0]
        done = bisect_left(daily.stamps(), session)
        prefix = self._prefix.get(asset) or self._session_prefix(asset)
        if j < 0 or prefix.session[j] != session:
            return daily.window(col, done, n)
        return with_partial(daily, col, done, n, session, prefix.cols[col][j])

    def _session_prefix(self, asset: Asset) -> _SessionPrefix:
        """Per minute row: its session and that session's open/high/low/volume so far."""
        bars = (self._cursors.get(asset) or self.cursor(asset)).bars
        sessions = self.portal.minute_sessions(bars)
        size = len(bars)
        cols = {f: np.empty(size, dtype=object) for f in VALUE_FIELDS}
        cols["close"][:] = bars.close
        o = h = lo = v = None
        prev = None
        opens, highs, lows, vols = bars.open, bars.high, bars.low, bars.volume
        for i, s in enumerate(sessions.tolist()):  # once per asset, not per call
            if s != prev:
                prev, o, h, lo, v = s, opens[i], highs[i], lows[i], vols[i]
            else:
                h = h if highs[i] is None or (h is not None and h >= highs[i]) else highs[i]
                lo = lo if lows[i] is None or (lo is not None and lo <= lows[i]) else lows[i]
                v = v + vols[i]
            cols["open"][i], cols["high"][i], cols["low"][i], cols["volume"][i] = o, h, lo, v
        prefix = self._prefix[asset] = _SessionPrefix(sessions, cols)
        return prefix


class _SessionPrefix:
    __slots__ = ("session", "cols")

    def __init__(self, session: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        self.session = session
        self.cols = cols


class LiveBarData(BarData):
    """``data`` over the bars received since start, joined with the bundle's history.

    The engine feeds it with :meth:`on_bar` (alias :meth:`update`) once per asset per
    market-data event — a replayed bundle row, a pushed tick, or a closed bar from a
    stream's bar builder — after setting ``current_dt``. Each asset's minute history is a
    :class:`ColumnStore`: the bundle's last ``window`` bars before the first live bar,
    then every live bar appended (amortised O(1)); it is compacted to the last ``window``
    rows when it reaches ``2 * window`` (bounded memory). Daily history is the bundle's
    daily bars before the first live session, then sessions aggregated from live bars.
    """

    def __init__(self, portal: Any = None, window: int = 2_000) -> None:
        self.portal = portal
        self.window = window
        self.current_dt = None
        self._latest: dict[Asset, Bar] = {}
        self._ticks: dict[Asset, tuple[datetime, Decimal]] = {}
        self._stores: dict[Asset, ColumnStore] = {}
        self._bundle_rows: dict[Asset, int] = {}  # rows [0, k) of a store came from the bundle
        self._frames: dict[tuple[Any, str], AlignedFrame] = {}
        self._frame_asks: dict[tuple[Any, str], int] = {}
        self._daily: dict[Asset, tuple[SessionAggregator, int]] = {}
        self._last_dt: Any = None
        self._last_ns = 0
        # In a replay of the portal's bundle, an asset with no bar received yet is priced
        # at its last close in the bundle, exactly as the backtest prices it.
        self.portal_prices = False

    def _portal_price(self, asset: Asset) -> Decimal | None:
        if not self.portal_prices or self.current_dt is None:
            return None
        try:
            return self.portal.get_spot_value(asset, "price", self.current_dt)
        except Exception:  # not in the bundle: no price
            return None

    def on_bar(self, bar: Bar) -> None:
        """Take a new bar (or tick) of one asset. Called once per asset per event."""
        asset = bar.asset
        dt = bar.dt
        latest = self._latest.get(asset)
        if latest is not None and dt < latest.dt:
            return  # a late tick never replaces a newer price
        self._latest[asset] = bar
        if dt is self._last_dt:  # every bar of one event shares its stamp
            ns = self._last_ns
        else:
            ns = self._last_ns = _ns(dt)
            self._last_dt = dt
        store = self._stores.get(asset)
        if store is None:
            store = self._seed(asset, ns, inclusive=False)
        elif store.n and store.n == self._bundle_rows.get(asset, 0) and ns <= store.ts[store.n - 1]:
            # seeded from the bundle by an early history call: the live bar wins
            cut = bisect_left(store.stamps(), ns)
            store.truncate(cut)
            self._bundle_rows[asset] = cut
        store.append(ns, bar.open, bar.high, bar.low, bar.close, bar.volume)
        daily = self._daily.get(asset)
        if daily is not None:
            daily[0].add(ns, bar.open, bar.high, bar.low, bar.close, bar.volume)
        if store.n >= 2 * self.window:
            if daily is None:
                # live bars are about to be dropped: build their sessions first, so a daily
                # history asked later still has every live bar of every session
                self._start_daily(asset)
            drop = store.n - self.window
            store.compact(self.window)
            self._bundle_rows[asset] = max(0, self._bundle_rows.get(asset, 0) - drop)

    update = on_bar

    def held_bars(self) -> int:
        """Minute bars held in memory over all assets (each store stays < ``2 * window``)."""
        return sum(store.n for store in self._stores.values())

    def _seed(self, asset: Asset, ns: int, inclusive: bool) -> ColumnStore:
        """A store holding the bundle's last ``window`` minute bars before (or at) ``ns``."""
        bars = self._bundle_bars(asset, "minute")
        if bars is None or not len(bars):
            store = ColumnStore.from_lists(asset, np.empty(0, np.int64), _EMPTY, spare=64)
        else:
            stamps = bars._dts
            hi = bisect_right(stamps, ns) if inclusive else bisect_left(stamps, ns)
            lo = max(0, hi - self.window)
            cols = {f: getattr(bars, f)[lo:hi] for f in VALUE_FIELDS}
            store = ColumnStore.from_lists(asset, bars.dts[lo:hi], cols, spare=self.window)
        self._stores[asset] = store
        self._bundle_rows[asset] = store.n
        return store

    def _bundle_bars(self, asset: Asset, freq: str) -> Any:
        if self.portal is None:
            return None
        try:
            return self.portal.asset_bars(asset, freq)
        except DataNotFound:
            return None

    def _now_ns(self) -> int:
        return _ns(self.current_dt or datetime.now(UTC))

    def _live_store(self, asset: Asset) -> ColumnStore:
        return self._stores.get(asset) or self._seed(asset, self._now_ns(), inclusive=True)

    def update_price(self, asset: Asset, price: Decimal, dt: datetime) -> None:
        """A trade between bar closes (a streamed tick): it moves ``price`` and
        ``last_price`` only; bar fields and history still come from closed bars."""
        old = self._ticks.get(asset)
        if old is None or dt >= old[0]:
            self._ticks[asset] = (dt, price)

    def last_price(self, asset: Asset) -> Decimal | None:
        bar = self._latest.get(asset)
        tick = self._ticks.get(asset)
        if tick is not None and (bar is None or tick[0] >= bar.dt):
            return tick[1]
        return bar.close if bar is not None else self._portal_price(asset)

    def bar(self, asset: Asset) -> Bar | None:
        bar = self._latest.get(asset)
        if bar is None or bar.dt != self.current_dt:
            return None
        return bar

    def _current(self, asset: Asset, field: str) -> Decimal | None:
        if field == "price" and self._ticks:
            return self.last_price(asset)
        bar = self._latest.get(asset)
        if bar is None:
            if field == "price":
                return self._portal_price(asset)
            return _ZERO if field == "volume" else None
        if field == "price":
            return bar.close
        if field == "last_traded":
            return bar.dt  # type: ignore[return-value]
        if bar.dt != self.current_dt:
            return _ZERO if field == "volume" else None
        return getattr(bar, field)

    def _can_trade(self, asset: Asset) -> bool:
        bar = self._latest.get(asset)
        return bar is not None and bar.dt == self.current_dt

    # --- history -----------------------------------------------------------------------
    def _series(self, asset: Asset, field: str, n: int, frequency: str) -> HistorySeries:
        col = "close" if field == "price" else field
        if frequency == "1d":
            return self._daily_series(asset, col, n)
        store = self._stores.get(asset) or self._live_store(asset)
        if n > store.n and self.portal is not None:
            older = self._older(asset, store, n - store.n, col)
            if older is not None:
                return older
        return store.window(col, store.n, n)

    def _values(self, asset: Asset, field: str, n: int, frequency: str) -> np.ndarray | None:
        store = self._stores.get(asset)
        if frequency != "1m" or store is None or n > store.n:
            return None
        return store.cols["close" if field == "price" else field][store.n - n : store.n]

    def _older(
        self, asset: Asset, store: ColumnStore, missing: int, col: str
    ) -> HistorySeries | None:
        """A request longer than the store: the bundle's bars before its first row."""
        bars = self._bundle_bars(asset, "minute")
        if bars is None:
            return None
        first = int(store.ts[0]) if store.n else self._now_ns() + 1
        hi = bisect_left(bars._dts, first)
        lo = max(0, hi - missing)
        if lo == hi:
            return None
        values = np.empty(hi - lo + store.n, dtype=object)
        values[: hi - lo] = getattr(bars, col)[lo:hi]
        values[hi - lo :] = store.cols[col][: store.n]
        stamps = np.concatenate([bars.dts[lo:hi], store.ts[: store.n]])
        return HistorySeries(values, index=utc_index(stamps, "dt"), copy=False, name=asset)

    def _frame(self, assets: tuple[Asset, ...], field: str, n: int, frequency: str) -> HistoryFrame:
        if frequency == "1d":
            col = "close" if field == "price" else field
            series = [self._daily_series(a, col, n) for a in assets]
            return frame_of_series(assets, field, series, n)
        stores = [self._stores.get(a) or self._live_store(a) for a in assets]
        key = (assets, field)
        frame = self._frames.get(key)
        if frame is None:
            if self._frame_asks.get(key, 0) < 1:
                self._frame_asks[key] = 1
                if len(self._frame_asks) > 4 * _MAX_FRAMES:
                    self._frame_asks.clear()
                return align_tail(assets, field, stores, [s.n for s in stores], n)
            frame = self._frames[key] = AlignedFrame(assets, field, stores)
            if len(self._frames) > _MAX_FRAMES:
                self._frames.pop(next(iter(self._frames)))
        else:
            frame.sync()
        return frame.window(frame.n, n)

    def _daily_series(self, asset: Asset, col: str, n: int) -> HistorySeries:
        """Bundle sessions before the first live one, then sessions built from live bars."""
        entry = self._daily.get(asset)
        if entry is None:
            entry = self._start_daily(asset)
            if entry is None:  # no live bar yet: the bundle's view up to now
                if self.portal is None:
                    return empty_series(asset)
                try:
                    window = self.portal.get_history_window([asset], self._now_ns(), n, col, "1d")
                except DataNotFound:
                    return empty_series(asset)
                column = window[asset]
                stamps = pd.DatetimeIndex(column.index).as_unit("ns").asi8
                values = column.to_numpy(dtype=object)
                return HistorySeries(values, index=utc_index(stamps, "dt"), copy=False, name=asset)
        agg = entry[0]
        daily = agg.daily
        if agg.bar is None:
            return daily.window(col, daily.n, n)
        return with_partial(daily, col, daily.n, n, agg.session, agg.value(col))

    def _start_daily(self, asset: Asset) -> tuple[SessionAggregator, int] | None:
        store = self._stores.get(asset)
        first_live = self._bundle_rows.get(asset, 0)
        if store is None or store.n <= first_live:
            return None
        tz = calendar_tz(asset.calendar)
        first_ns = int(store.ts[first_live])
        session, start, _ = session_bounds(first_ns, tz)
        bundle_daily = self._bundle_bars(asset, "daily")
        if bundle_daily is not None and len(bundle_daily):
            k = bisect_left(bundle_daily._dts, session)
            lo = max(0, k - self.window)
            cols = {f: getattr(bundle_daily, f)[lo:k] for f in VALUE_FIELDS}
            daily = ColumnStore.from_lists(asset, bundle_daily.dts[lo:k], cols, spare=64)
        else:
            daily = ColumnStore.from_lists(asset, np.empty(0, np.int64), _EMPTY, spare=64)
        agg = SessionAggregator(tz, daily)
        # the first live session's minutes before the first live bar, from the bundle
        minute = self._bundle_bars(asset, "minute")
        if minute is not None and len(minute):
            i = bisect_right(minute._dts, start)
            j = bisect_left(minute._dts, first_ns)
            for r in range(i, j):  # once, at most one session of bars
                agg.add(minute._dts[r], minute.open[r], minute.high[r], minute.low[r],
                        minute.close[r], minute.volume[r])  # fmt: skip
        cols = store.cols
        for r in range(first_live, store.n):  # once: the live bars held so far
            agg.add(int(store.ts[r]), cols["open"][r], cols["high"][r], cols["low"][r],
                    cols["close"][r], cols["volume"][r])  # fmt: skip
        entry = self._daily[asset] = (agg, 0)
        return entry


_MAX_FRAMES = 16
_EMPTY: dict[str, list[Decimal]] = {f: [] for f in VALUE_FIELDS}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _ns(dt: Any) -> int:
    value = getattr(dt, "value", None)  # pd.Timestamp
    if value is not None:
        return int(value)
    return (dt - _EPOCH) // _US * 1_000
