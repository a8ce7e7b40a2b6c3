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
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from rustybt.assets import Asset, Crypto, Equity, Future
from rustybt.data.bar import Bar
from rustybt.exceptions import DataNotFound

FIELDS = ("open", "high", "low", "close", "volume", "price", "last_traded")
_FIELD_SET = frozenset(FIELDS)
_ASSET_CLASSES = frozenset({Asset, Equity, Crypto, Future})
_ZERO = Decimal(0)


def _check_field(field: str) -> str:
    if field not in FIELDS:
        raise DataNotFound(f"unknown field {field!r}; use one of {', '.join(FIELDS)}")
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
        """The last ``bar_count`` bars up to now: Series, or DataFrame (assets or fields)."""
        if not isinstance(bar_count, int) or bar_count <= 0:
            raise DataNotFound(f"bar_count must be a positive int, got {bar_count!r}")
        if frequency not in ("1m", "1d"):
            raise DataNotFound(f"frequency must be '1m' or '1d', got {frequency!r}")
        if not _is_many(assets):
            if isinstance(fields, str):
                return self._series(assets, _check_field(fields), bar_count, frequency)  # type: ignore[arg-type]
            return pd.DataFrame(
                {f: self._series(assets, _check_field(f), bar_count, frequency) for f in fields}  # type: ignore[arg-type]
            )
        if isinstance(fields, str):
            _check_field(fields)
            return pd.DataFrame(
                {a: self._series(a, fields, bar_count, frequency) for a in assets}  # type: ignore[union-attr]
            )
        raise DataNotFound("history of several assets and several fields: call it per field")

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
    def _series(self, asset: Asset, field: str, n: int, frequency: str) -> pd.Series: ...

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

    def _series(self, asset: Asset, field: str, n: int, frequency: str) -> pd.Series:
        if frequency == "1d" and getattr(self.portal, "data_frequency", "daily") != "daily":
            window = self.portal.get_history_window(
                [asset], self.current_dt, n, "close" if field == "price" else field, "1d"
            )
            return window[asset]
        cur = self._cursors.get(asset) or self.cursor(asset)
        r = cur.ffill_rows[self.index]
        if r < 0:
            return pd.Series([], dtype=object, name=asset)
        lo = max(0, r - n + 1)
        col = cur.bars.close if field in ("price", "close") else cur.columns.get(field)
        if col is None:
            raise DataNotFound(f"history has no field {field!r}")
        idx = pd.DatetimeIndex(cur.bars.dts[lo : r + 1], tz="UTC")
        return pd.Series(col[lo : r + 1], index=idx, dtype=object, name=asset)


class LiveBarData(BarData):
    """``data`` over the bars received since start, joined with the bundle's history."""

    def __init__(self, portal: Any = None, window: int = 2_000) -> None:
        self.portal = portal
        self.window = window
        self.current_dt = None
        self._latest: dict[Asset, Bar] = {}
        self._recent: dict[Asset, deque[Bar]] = {}
        self._ticks: dict[Asset, tuple[datetime, Decimal]] = {}

    def update(self, bar: Bar) -> None:
        """Take a new bar (or tick) of one asset. Called once per asset per event."""
        asset = bar.asset
        latest = self._latest.get(asset)
        if latest is not None and bar.dt < latest.dt:
            return  # a late tick never replaces a newer price
        self._latest[asset] = bar
        recent = self._recent.get(asset)
        if recent is None:
            recent = self._recent[asset] = deque(maxlen=self.window)
        recent.append(bar)

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
        return bar.close if bar is not None else None

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
            return None
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

    def _series(self, asset: Asset, field: str, n: int, frequency: str) -> pd.Series:
        attr = "close" if field == "price" else field
        recent = self._recent.get(asset, ())
        values: list[Decimal] = []
        stamps: list[datetime] = []
        if frequency == "1m":
            tail = list(recent)[-n:]
            values = [getattr(b, attr) for b in tail]
            stamps = [b.dt for b in tail]
        missing = n - len(values)
        if missing > 0 and self.portal is not None:
            now = self.current_dt or datetime.now(UTC)
            if frequency == "1m":
                # Continue the bundle's history right before the oldest bar still held, so
                # a request longer than the rolling window has no gap (when the bundle has
                # those bars, as in a replay).
                end = (recent[0].dt if recent else now) - timedelta(microseconds=1)
            else:
                end = now
            try:
                past = self.portal.get_history_window([asset], end, missing, attr, frequency)[asset]
                values = list(past.values) + values
                stamps = list(past.index) + stamps
            except DataNotFound:
                pass
        return pd.Series(values, index=pd.DatetimeIndex(stamps), dtype=object, name=asset)
