"""Fast, exact ``data.history``: per-asset column buffers and the pandas views over them.

What the strategy gets: a :class:`HistorySeries` (one asset, one field) or a
:class:`HistoryFrame` (several assets, one field). Both are ordinary pandas objects
(subclasses of ``pd.Series``/``pd.DataFrame``) holding exact ``Decimal`` values in
``object`` columns, indexed by UTC bar-end stamps. Why ``Decimal`` objects: money stays
exact (no float drift), ``.iloc[-1]`` is a ``Decimal`` the strategy can compare with
``data.current`` or pass to ``order``. Why the subclasses: stock pandas converts object
columns to float for ``mean``/``sum`` and does it slowly (about 100 µs for 30 values);
these two classes override ``mean`` and ``sum`` (default arguments) to add the Decimals
directly, so ``h.iloc[-10:].mean() > h.mean()`` is exact — a ``3·Σ10 = Σ30`` tie stays a
tie — and costs a couple of microseconds. Everything else is plain pandas: ``.rolling()``,
``.std()``, ``np.log`` and friends see floats (``h.astype(float)``), as in pandas.

Why it is fast: each asset's bars live in a :class:`ColumnStore` — an ``int64`` stamp
buffer and one ``object`` buffer per field — with one full-length pandas object per field
built once over those buffers. A history call is an ``iloc`` slice of that object: a view,
no copy, no Python loop over bars. A multi-asset window is an :class:`AlignedFrame`: the
assets' bars aligned once on the union of their stamps (vectorised ``searchsorted``), then
sliced the same way; live, new rows are merged in incrementally (amortised O(new bars)).

Live buffers only grow by appending past the rows already handed out, and a buffer that
must change rows already handed out (a late bar, a compaction) is replaced by a copy, so
a window the strategy holds never changes under it. With copy-on-write (pandas ≥ 3) a
strategy writing into its window copies first; without it, views are copied on return.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

VALUE_FIELDS = ("open", "high", "low", "close", "volume")
_ZERO = Decimal(0)
_UTC = pd.DatetimeTZDtype(unit="ns", tz="UTC")
_COW = int(pd.__version__.split(".")[0]) >= 3 or bool(
    getattr(getattr(pd.options, "mode", None), "copy_on_write", False)
)


# --- the pandas types the strategy receives -----------------------------------------------
def _decimal_sum(values: np.ndarray) -> tuple[Decimal | int, int]:
    """Exact sum and count of the non-missing Decimals of a 1-D object array."""
    items = values.tolist()
    try:
        return sum(items, _ZERO), len(items)
    except TypeError:  # a missing bar (None); ``None in items`` would compare every value
        items = [v for v in items if v is not None]
        return sum(items, _ZERO), len(items)


def _plain_args(axis: Any, skipna: bool, kwargs: dict[str, Any], *, frame: bool) -> bool:
    ok_axis = axis in (0, "index") if frame else axis in (None, 0, "index")
    return ok_axis and skipna and not kwargs.get("numeric_only") and len(kwargs) <= 1


class HistorySeries(pd.Series):
    """A ``pd.Series`` of exact ``Decimal`` values whose ``mean``/``sum`` stay exact."""

    @property
    def _constructor(self) -> type:
        return HistorySeries

    @property
    def _constructor_expanddim(self) -> type:
        return HistoryFrame

    def _constructor_from_mgr(self, mgr: Any, axes: Any) -> HistorySeries:
        # pandas would rebuild a subclass through __init__ (slow); the manager is complete
        ser = HistorySeries._from_mgr(mgr, axes=axes)
        object.__setattr__(ser, "_name", None)
        return ser

    def sum(self, axis: Any = None, skipna: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.dtype == object and _plain_args(axis, skipna, kwargs, frame=False):
            total, _ = _decimal_sum(self.to_numpy())
            return total
        return super().sum(axis=axis, skipna=skipna, **kwargs)

    def mean(self, axis: Any = None, skipna: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.dtype == object and _plain_args(axis, skipna, kwargs, frame=False):
            total, count = _decimal_sum(self.to_numpy())
            return total / count if count else np.nan
        return super().mean(axis=axis, skipna=skipna, **kwargs)


class HistoryFrame(pd.DataFrame):
    """A ``pd.DataFrame`` (one column per asset) whose ``mean``/``sum`` stay exact."""

    @property
    def _constructor(self) -> type:
        return HistoryFrame

    @property
    def _constructor_sliced(self) -> type:  # type: ignore[override]
        return HistorySeries

    def _constructor_from_mgr(self, mgr: Any, axes: Any) -> HistoryFrame:
        return HistoryFrame._from_mgr(mgr, axes=axes)

    def _constructor_sliced_from_mgr(self, mgr: Any, axes: Any) -> HistorySeries:
        ser = HistorySeries._from_mgr(mgr, axes=axes)
        object.__setattr__(ser, "_name", None)
        return ser

    def _column_reduce(self, mean: bool) -> HistorySeries:
        values = self.to_numpy()
        out: list[Any] = []
        for j in range(values.shape[1]):
            total, count = _decimal_sum(values[:, j])
            out.append((total / count if count else np.nan) if mean else total)
        result = np.empty(len(out), dtype=object)
        result[:] = out
        return _series(result, self.columns, None, None)

    def sum(self, axis: Any = 0, skipna: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        if _all_object(self) and _plain_args(axis, skipna, kwargs, frame=True):
            return self._column_reduce(mean=False)
        return super().sum(axis=axis, skipna=skipna, **kwargs)

    def mean(self, axis: Any = 0, skipna: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        if _all_object(self) and _plain_args(axis, skipna, kwargs, frame=True):
            return self._column_reduce(mean=True)
        return super().mean(axis=axis, skipna=skipna, **kwargs)


def _all_object(frame: pd.DataFrame) -> bool:
    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)
    if blocks is not None:  # cheaper than frame.dtypes, which builds a Series
        return all(b.dtype == _OBJECT for b in blocks)
    return all(dt == _OBJECT for dt in frame.dtypes)  # pragma: no cover - other pandas


_OBJECT = np.dtype(object)


def utc_index(stamps: np.ndarray, name: str | None = None) -> pd.DatetimeIndex:
    """A UTC ``DatetimeIndex`` over an ``int64`` ns buffer, sharing its memory."""
    view = stamps.view("M8[ns]")
    try:
        arr = pd.arrays.DatetimeArray._simple_new(view, dtype=_UTC)  # type: ignore[attr-defined]
        return pd.DatetimeIndex._simple_new(arr, name=name)  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # pragma: no cover - other pandas versions
        return pd.DatetimeIndex(view, name=name).tz_localize("UTC")


# pandas' own constructors validate and infer (10+ µs a call); these build the same objects
# from their parts (a few µs). They are pandas internals, so any mismatch falls back to the
# public constructors. ``refs`` ties a window to its buffer's owner so that, with
# copy-on-write, a strategy writing into its window copies instead of writing through.
try:
    from pandas._libs.internals import BlockPlacement
    from pandas.core.internals.blocks import new_block
    from pandas.core.internals.managers import BlockManager, SingleBlockManager

    def _series(values: np.ndarray, index: pd.Index, name: Any, refs: Any) -> HistorySeries:
        mgr = SingleBlockManager.from_array(values, index, refs=refs)
        ser = HistorySeries._from_mgr(mgr, axes=mgr.axes)
        object.__setattr__(ser, "_name", name)
        return ser

    def _frame(block: np.ndarray, index: pd.Index, columns: pd.Index, refs: Any) -> HistoryFrame:
        placement = BlockPlacement(slice(0, len(columns)))
        blk = new_block(block.T, placement=placement, ndim=2, refs=refs)
        mgr = BlockManager((blk,), [columns, index], verify_integrity=False)
        return HistoryFrame._from_mgr(mgr, axes=mgr.axes)

    _probe = np.array([_ZERO], dtype=object)
    _probe_index = pd.Index([0])
    if _series(_probe, _probe_index, "p", None).iloc[0] != _ZERO or _frame(
        _probe.reshape(1, 1), _probe_index, pd.Index(["p"], dtype=object), None
    ).shape != (1, 1):  # pragma: no cover - other pandas versions
        raise TypeError("pandas internals changed")
except Exception:  # pragma: no cover - other pandas versions

    def _series(values: np.ndarray, index: pd.Index, name: Any, refs: Any) -> HistorySeries:
        return HistorySeries(values.copy(), index=index, name=name, copy=False)

    def _frame(block: np.ndarray, index: pd.Index, columns: pd.Index, refs: Any) -> HistoryFrame:
        return HistoryFrame(block.copy(), index=index, columns=columns, copy=False)


def _refs(owner: pd.Series | pd.DataFrame) -> Any:
    return owner._mgr.blocks[0].refs if _COW else None


def empty_series(asset: Any) -> HistorySeries:
    return HistorySeries([], index=utc_index(np.empty(0, np.int64), "dt"), dtype=object, name=asset)


# --- one asset's bars ---------------------------------------------------------------------
class ColumnStore:
    """One asset's bars of one frequency: an ``int64`` stamp buffer and object columns.

    Rows ``[0, n)`` are filled; the buffers may be longer (room to append live bars).
    The full-length pandas views are built on first use and reused until a buffer is
    replaced (growth, truncation, compaction), so a history call is one ``iloc`` slice.
    """

    __slots__ = ("asset", "ts", "cols", "n", "_ts_list", "_index", "_views", "version")

    def __init__(self, asset: Any, ts: np.ndarray, cols: dict[str, np.ndarray], n: int) -> None:
        self.asset = asset
        self.ts = ts
        self.cols = cols
        self.n = n
        self._ts_list: list[int] | None = None
        self._index: pd.DatetimeIndex | None = None
        self._views: dict[str, HistorySeries] = {}
        self.version = 0  # bumped whenever a buffer is replaced or rows are rewritten

    @classmethod
    def from_lists(
        cls, asset: Any, ts: np.ndarray, columns: dict[str, Sequence[Decimal]], spare: int = 0
    ) -> ColumnStore:
        n = len(ts)
        stamps = np.zeros(n + spare, dtype=np.int64)
        stamps[:n] = ts
        cols = {}
        for f in VALUE_FIELDS:
            buf = np.empty(n + spare, dtype=object)
            buf[:n] = columns[f] if n else []
            cols[f] = buf
        return cls(asset, stamps, cols, n)

    # -- views ---------------------------------------------------------------------------
    def index(self) -> pd.DatetimeIndex:
        if self._index is None:
            self._index = utc_index(self.ts, "dt")
        return self._index

    def view(self, field: str) -> HistorySeries:
        """The full-length Series of ``field`` over the buffer (rows past ``n`` unused)."""
        full = self._views.get(field)
        if full is None:
            full = HistorySeries(self.cols[field], index=self.index(), copy=False, name=self.asset)
            self._views[field] = full
        return full

    def window(self, field: str, end: int, count: int) -> HistorySeries:
        """The ``count`` rows ending before row ``end`` (fewer at the start)."""
        lo = end - count if end > count else 0
        values = self.cols[field][lo:end]
        if not _COW:
            values = values.copy()
        index = utc_index(self.ts[lo:end], "dt")
        return _series(values, index, self.asset, _refs(self.view(field)))

    def stamps(self) -> list[int]:
        """Filled stamps as Python ints (for ``bisect``), cached until the next change."""
        if self._ts_list is None or len(self._ts_list) != self.n:
            self._ts_list = self.ts[: self.n].tolist()
        return self._ts_list

    # -- live growth ---------------------------------------------------------------------
    def append(self, ts: int, o: Any, h: Any, lo: Any, c: Any, v: Any) -> None:
        """Add one bar after the last (amortised O(1); the caller keeps stamps ordered)."""
        n = self.n
        if n == len(self.ts):
            self._reallocate(n, max(64, 2 * n))
        self.ts[n] = ts
        cols = self.cols
        cols["open"][n] = o
        cols["high"][n] = h
        cols["low"][n] = lo
        cols["close"][n] = c
        cols["volume"][n] = v
        self.n = n + 1
        if self._ts_list is not None:
            self._ts_list.append(ts)

    def truncate(self, n: int) -> None:
        """Keep rows ``[0, n)``; into new buffers, so windows already handed out stay put."""
        self._reallocate(n, max(64, len(self.ts)))

    def compact(self, keep: int) -> None:
        """Keep only the last ``keep`` rows (bounded memory in long live sessions)."""
        start = self.n - keep
        if start > 0:
            self._reallocate(keep, max(64, 2 * keep), start=start)

    def _reallocate(self, n: int, capacity: int, start: int = 0) -> None:
        ts = np.zeros(capacity, dtype=np.int64)
        ts[:n] = self.ts[start : start + n]
        cols = {}
        for f, old in self.cols.items():
            buf = np.empty(capacity, dtype=object)
            buf[:n] = old[start : start + n]
            cols[f] = buf
        self.ts, self.cols, self.n = ts, cols, n
        self._ts_list = None
        self._index = None
        self._views = {}
        self.version += 1


# --- several assets aligned on the union of their stamps ------------------------------
class AlignedFrame:
    """Several assets' values of one field on the union of their stamps, as one block.

    ``price`` is forward-filled (also from before the window); other fields are the bar at
    exactly that stamp, ``None`` when the asset has none (``volume`` 0). Built with
    vectorised ``searchsorted``; :meth:`sync` merges rows the stores gained since (live).
    """

    __slots__ = ("assets", "field", "stores", "seen", "versions", "ts", "block", "n", "_frame")

    def __init__(self, assets: tuple[Any, ...], field: str, stores: list[ColumnStore]) -> None:
        self.assets = assets
        self.field = field
        self.stores = stores
        self._rebuild()

    def _rebuild(self) -> None:
        stores = self.stores
        stamps = [s.ts[: s.n] for s in stores]
        union = np.unique(np.concatenate(stamps)) if stamps else np.empty(0, np.int64)
        n = len(union)
        capacity = n + max(64, n // 4)
        self.ts = np.zeros(capacity, dtype=np.int64)
        self.ts[:n] = union
        self.block = np.empty((capacity, len(stores)), dtype=object)
        for j, store in enumerate(stores):
            self.block[:n, j] = self._column(store, union)
        self.n = n
        self.seen = [s.n for s in stores]
        self.versions = [s.version for s in stores]
        self._frame: HistoryFrame | None = None

    def _column(self, store: ColumnStore, at: np.ndarray) -> np.ndarray:
        return align_column(store, store.n, at, self.field)

    def sync(self) -> None:
        """Merge rows the stores gained since the last call (live); rebuild if rewritten."""
        stores, seen, versions = self.stores, self.seen, self.versions
        ones = True
        stamp = None
        for j, store in enumerate(stores):
            if store.version != versions[j]:
                self._rebuild()
                return
            gained = store.n - seen[j]
            if gained != 1:
                ones = False
            elif stamp is None:
                stamp = store.ts[store.n - 1]
            elif store.ts[store.n - 1] != stamp:
                ones = False
        n = self.n
        if ones and (n == 0 or stamp > self.ts[n - 1]):
            # the usual live step: one new bar per asset, all at the same new stamp
            if n == len(self.ts):
                self._grow(n + 1)
            self.ts[n] = stamp
            col = "close" if self.field == "price" else self.field
            row = self.block[n]
            for j, store in enumerate(stores):
                row[j] = store.cols[col][store.n - 1]
            self.n = n + 1
            self.seen = [s.n for s in stores]
            return
        fresh = [s.ts[k : s.n] for s, k in zip(stores, seen, strict=True) if s.n > k]
        if not fresh:
            return
        new = np.unique(np.concatenate(fresh))
        if n and new[0] <= self.ts[n - 1]:
            # a bar at or before a row already handed out: rebuild into new buffers
            self._rebuild()
            return
        m = len(new)
        if n + m > len(self.ts):
            self._grow(n + m)
        self.ts[n : n + m] = new
        for j, store in enumerate(stores):
            self.block[n : n + m, j] = self._column(store, new)
        self.n = n + m
        self.seen = [s.n for s in stores]

    def _grow(self, need: int) -> None:
        capacity = max(need + 64, 2 * len(self.ts))
        ts = np.zeros(capacity, dtype=np.int64)
        ts[: self.n] = self.ts[: self.n]
        block = np.empty((capacity, self.block.shape[1]), dtype=object)
        block[: self.n] = self.block[: self.n]
        self.ts, self.block, self._frame = ts, block, None

    def frame(self) -> HistoryFrame:
        full = self._frame
        if full is None:
            full = self._frame = HistoryFrame(
                self.block, index=utc_index(self.ts, "dt"), columns=list(self.assets), copy=False
            )
        return full

    def window(self, end: int, count: int) -> HistoryFrame:
        lo = end - count if end > count else 0
        block = self.block[lo:end]
        if not _COW:
            block = block.copy()
        full = self.frame()
        return _frame(block, utc_index(self.ts[lo:end], "dt"), full.columns, _refs(full))


def align_tail(
    assets: Sequence[Any], field: str, stores: list[ColumnStore], ends: list[int], count: int
) -> HistoryFrame:
    """A one-off aligned window (no cache): the last ``count`` stamps of the union.

    The union's last ``count`` stamps are among each asset's own last ``count``, so only
    those tails are merged; ``price`` still forward-fills from before the window.
    """
    tails = [s.ts[max(0, e - count) : e] for s, e in zip(stores, ends, strict=True)]
    union = np.unique(np.concatenate(tails))[-count:] if tails else np.empty(0, np.int64)
    block = np.empty((len(union), len(stores)), dtype=object)
    for j, (store, end) in enumerate(zip(stores, ends, strict=True)):
        block[:, j] = align_column(store, end, union, field)
    return HistoryFrame(block, index=utc_index(union, "dt"), columns=list(assets), copy=False)


def frame_of_series(
    assets: Sequence[Any], field: str, series: list[pd.Series], count: int
) -> HistoryFrame:
    """Align per-asset windows (e.g. daily, built one asset at a time) like a frame."""
    col = "close" if field == "price" else field
    stores = []
    for asset, one in zip(assets, series, strict=True):
        values = one.to_numpy(dtype=object)
        stamps = np.asarray(pd.DatetimeIndex(one.index).as_unit("ns").asi8, dtype=np.int64)
        stores.append(ColumnStore(asset, stamps, {col: values}, len(values)))
    return align_tail(assets, field, stores, [s.n for s in stores], count)


def align_column(store: ColumnStore, end: int, at: np.ndarray, field: str) -> np.ndarray:
    """Values of ``field`` from ``store``'s rows ``[0, end)`` at stamps ``at`` (vectorised)."""
    src_ts = store.ts[:end]
    out = np.empty(len(at), dtype=object)
    if field == "price":
        pos = np.searchsorted(src_ts, at, side="right") - 1
        hit = pos >= 0
        out[hit] = store.cols["close"][pos[hit]]
        out[~hit] = None
        return out
    pos = np.searchsorted(src_ts, at, side="left")
    if end:
        hit = (pos < end) & (src_ts[np.minimum(pos, end - 1)] == at)
    else:
        hit = np.zeros(len(at), dtype=bool)
    out[hit] = store.cols[field][pos[hit]]
    out[~hit] = _ZERO if field == "volume" else None
    return out


def with_partial(
    store: ColumnStore, field: str, end: int, count: int, stamp: int, value: Any
) -> HistorySeries:
    """Rows before ``end`` of ``store`` plus one more (the session still trading)."""
    lo = max(0, end - (count - 1))
    size = end - lo + 1
    values = np.empty(size, dtype=object)
    values[:-1] = store.cols[field][lo:end]
    values[-1] = value
    stamps = np.empty(size, dtype=np.int64)
    stamps[:-1] = store.ts[lo:end]
    stamps[-1] = stamp
    return HistorySeries(values, index=utc_index(stamps, "dt"), copy=False, name=store.asset)


class SessionAggregator:
    """Daily bars built from minute rows as they come: open first, high max, low min,
    close last, volume summed. Completed sessions go to a daily :class:`ColumnStore`."""

    __slots__ = ("tz", "daily", "session", "end_ns", "bar")

    def __init__(self, tz: str, daily: ColumnStore) -> None:
        self.tz = tz
        self.daily = daily
        self.session = -1
        self.end_ns = -1  # rows stamped after this belong to a later session
        self.bar: list[Any] | None = None

    def add(self, ns: int, o: Any, h: Any, lo: Any, c: Any, v: Any) -> None:
        bar = self.bar
        if bar is not None and ns <= self.end_ns:
            if h is not None and (bar[1] is None or h > bar[1]):
                bar[1] = h
            if lo is not None and (bar[2] is None or lo < bar[2]):
                bar[2] = lo
            if c is not None:
                bar[3] = c
            bar[4] = bar[4] + (v or _ZERO)
            return
        if bar is not None:
            self.daily.append(self.session, *bar)
        self.session, _, self.end_ns = session_bounds(ns, self.tz)
        self.bar = [o, h, lo, c, v or _ZERO]

    def value(self, field: str) -> Any:
        if self.bar is None:
            return None
        return self.bar[("open", "high", "low", "close", "volume").index(field)]


def session_bounds(ns: int, tz: str) -> tuple[int, int, int]:
    """(session label, first instant, last stamp) of the session of an end-stamped bar.

    The label is midnight UTC of the local trading date; the session holds the bars
    stamped in ``(first instant, last stamp]``, i.e. after local midnight up to and
    including the next local midnight (a bar stamped exactly at local midnight closes the
    previous day — the same rule as the bundle's daily aggregation).
    """
    zone = ZoneInfo(tz)
    local = (_EPOCH + timedelta(microseconds=(ns - 1000) // 1000)).astimezone(zone)
    day = local.date()
    label = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000_000
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = start + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
    first = int(start.astimezone(UTC).timestamp()) * 1_000_000_000
    return label, first, int(end.astimezone(UTC).timestamp()) * 1_000_000_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
