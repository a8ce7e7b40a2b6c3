"""Where live market data comes from: bundle replay, pushed ticks, or a broker stream.

* **Replay** of a bundle through the data portal at real time (``speed=1``), N× real
  time (``speed=N``) or as fast as possible (``speed="max"``, the default when an engine
  has only a bundle as its source). The engine pulls replay events one at a time, so a
  replay never floods the queue and fills/timers keep their priority.
* **Push**: :meth:`DataFeed.make_event` turns a ``TickData``, a ``Bar`` or a dict into a
  :class:`~rustybt.live.events.MarketDataEvent` (``engine.push_market_data``).
* **Broker subscription**: :meth:`DataFeed.pump_broker` reads
  ``broker.get_next_market_data()`` and pushes what it returns. A malformed message or an
  adapter error is reported (``on_error``) and skipped, never fatal to the pump; only
  ``max_consecutive_errors`` adapter errors in a row (with growing backoff) end it, and
  the engine's supervisor reports the dead feed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np

from rustybt.assets import Asset
from rustybt.data.bar import Bar
from rustybt.exceptions import ConfigError, DataNotFound, MalformedVenueMessage
from rustybt.live.events import MarketDataEvent

_ZERO = Decimal(0)


def _number(value: Any, what: str) -> Decimal:
    """A pushed price/volume as ``Decimal``: floats are refused (money is never a float)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise MalformedVenueMessage(
            f"market data {what} {value!r} is a float; pass Decimal('{value!r}') or the string "
            f"'{value!r}' (a float cannot hold most prices exactly)"
        )
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise MalformedVenueMessage(f"market data {what} {value!r} is not a number") from None


def parse_speed(speed: str | float | int | None) -> float | None:
    """``None`` means as fast as possible; otherwise a multiple of real time."""
    if speed is None:
        return None
    if isinstance(speed, str):
        s = speed.strip().lower()
        if s in ("max", "fast", "asap"):
            return None
        if s in ("realtime", "real-time", "1x"):
            return 1.0
        s = s.rstrip("x")
        try:
            value = float(s)
        except ValueError:
            raise ConfigError(
                f"speed={speed!r} is not valid; use 'max', 'realtime' or a multiple like '60x'"
            ) from None
    else:
        value = float(speed)
    if not value > 0:
        raise ConfigError(f"speed must be > 0 (a multiple of real time), got {speed!r}")
    return value


class _ReplayCursor:
    __slots__ = ("asset", "bars", "rows")

    def __init__(self, asset: Asset, bars: Any, clock_ns: np.ndarray) -> None:
        self.asset = asset
        self.bars = bars
        rows = np.searchsorted(bars.dts, clock_ns, side="left")
        ok = (rows < len(bars.dts)) & (
            bars.dts[np.minimum(rows, max(len(bars.dts) - 1, 0))] == clock_ns
        )
        self.rows: list[int] = np.where(ok, rows, -1).tolist()


class DataFeed:
    """Market data for the engine from a replay, pushes or a broker stream."""

    def __init__(
        self,
        portal: Any = None,
        speed: str | float | None = "max",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        self.portal = portal
        self.speed = parse_speed(speed)
        self.start = start
        self.end = end
        self._clock_ns: np.ndarray | None = None
        self._dts: list[datetime] = []
        self._cursors: list[_ReplayCursor] = []
        self._i = 0
        self._wall0: float | None = None
        self._sim0: datetime | None = None
        #: Adapter errors in a row after which the broker pump gives up (a dead feed).
        self.max_consecutive_errors = 20
        #: Longest wait between retries after adapter errors (doubling from 0.05 s).
        self.error_backoff_max_seconds = 5.0
        self.replaying = False

    # --- replay ---------------------------------------------------------------------------
    def configure_replay(
        self, assets: list[Asset] | None, skip_until: datetime | None = None
    ) -> int:
        """Prepare a replay of ``assets`` (all bundle assets if None); returns bar times."""
        portal = self.portal
        if portal is None:
            raise ConfigError("a replay needs a data_portal over a bundle")
        assets = assets or portal.asset_finder.assets
        clock_ns = portal.timestamps(assets, self.start, self.end)
        if len(clock_ns) == 0 and (self.start is not None or self.end is not None):
            raise DataNotFound(
                f"the replay window {self.start or 'start'} → {self.end or 'end'} holds no bars "
                f"of {', '.join(sorted(a.symbol for a in assets))}, whose bars run "
                f"{portal.bars_span(assets)}; widen --start/--end"
            )
        self._clock_ns = clock_ns
        self._dts = [datetime.fromtimestamp(int(t) / 1e9, UTC) for t in clock_ns]
        self._cursors = [_ReplayCursor(a, portal.asset_bars(a), clock_ns) for a in assets]
        self._i = 0
        if skip_until is not None:
            # After a restart, resume after the last bar the checkpoint saw.
            target = int(skip_until.timestamp() * 1_000_000) * 1000
            self._i = int(np.searchsorted(clock_ns, target, side="right"))
        self.replaying = True
        return len(clock_ns)

    @property
    def replay_total(self) -> int:
        return len(self._dts)

    @property
    def replay_position(self) -> int:
        return self._i

    def next_replay_event(self) -> MarketDataEvent | None:
        i = self._i
        if i >= len(self._dts):
            self.replaying = False
            return None
        self._i = i + 1
        dt = self._dts[i]
        bars: list[Bar] = []
        for cur in self._cursors:
            r = cur.rows[i]
            if r >= 0:
                b = cur.bars
                bars.append(
                    Bar(cur.asset, dt, b.open[r], b.high[r], b.low[r], b.close[r], b.volume[r])
                )
        return MarketDataEvent(dt, bars, time.perf_counter_ns())

    def replay_events(self, after: datetime | None, upto: datetime) -> Iterator[MarketDataEvent]:
        """The replay's events stamped in (``after``, ``upto``] (``after`` None: from the
        first), built as :meth:`next_replay_event` builds them, without moving the replay:
        the bars a restarted engine already traded, for the shadow to catch up on."""
        clock = self._clock_ns
        if clock is None:
            return
        lo = 0 if after is None else int(np.searchsorted(clock, _ns_of(after), side="right"))
        hi = int(np.searchsorted(clock, _ns_of(upto), side="right"))
        for i in range(lo, hi):
            saved, replaying = self._i, self.replaying
            self._i = i
            try:
                ev = self.next_replay_event()
            finally:
                self._i, self.replaying = saved, replaying
            if ev is not None:
                yield ev

    def unread(self) -> None:
        """Put the last replay event back (the engine had something more urgent)."""
        if self._i > 0:
            self._i -= 1

    def delay_for(self, event: MarketDataEvent) -> float:
        """Seconds to wait before delivering ``event`` at the configured speed."""
        if self.speed is None:
            return 0.0
        now = time.monotonic()
        if self._wall0 is None or self._sim0 is None:
            self._wall0, self._sim0 = now, event.dt
            return 0.0
        due = self._wall0 + (event.dt - self._sim0).total_seconds() / self.speed
        return max(0.0, due - now)

    # --- pushes ---------------------------------------------------------------------------
    @staticmethod
    def make_event(
        item: Any, lookup: Callable[[str], Asset], now: Callable[[], datetime]
    ) -> MarketDataEvent:
        """A MarketDataEvent from a ``TickData``, ``Bar``, ``MarketDataEvent`` or dict."""
        if isinstance(item, MarketDataEvent):
            return item
        if isinstance(item, Bar):
            for name in ("open", "high", "low", "close", "volume"):
                value = getattr(item, name)
                if value.__class__ is not Decimal:
                    setattr(item, name, _number(value, f"bar {name}"))
            return MarketDataEvent(item.dt, [item], time.perf_counter_ns())
        if isinstance(item, dict):
            get = item.get
        else:

            def get(key: str, default: Any = None) -> Any:
                return getattr(item, key, default)

        asset = get("asset")
        if asset is None:
            symbol = get("symbol")
            if not symbol:
                raise MalformedVenueMessage(
                    f"market data {item!r} has neither 'asset' nor 'symbol'; include one"
                )
            asset = lookup(symbol)
        dt = get("timestamp") or get("dt") or now()
        if not isinstance(dt, datetime):
            try:
                dt = datetime.fromisoformat(str(dt))
            except ValueError:
                raise MalformedVenueMessage(
                    f"market data timestamp {dt!r} is not ISO 8601"
                ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        price = get("price")
        if price is None:
            price = get("close")
        if price is None:
            raise MalformedVenueMessage(f"market data {item!r} has no price/close")
        close = _number(price, "price")
        if not close.is_finite() or close <= 0:
            raise MalformedVenueMessage(f"market data price {price!r} must be a finite number > 0")
        volume = get("volume", _ZERO)
        volume = _number(volume or 0, "volume")
        open_ = get("open")
        high = get("high")
        low = get("low")
        open_ = _number(open_, "open") if open_ is not None else close
        high = _number(high, "high") if high is not None else max(open_, close)
        low = _number(low, "low") if low is not None else min(open_, close)
        if not close.is_finite() or close <= 0:
            raise MalformedVenueMessage(f"market data price {price!r} must be a finite number > 0")
        return MarketDataEvent(
            dt, [Bar(asset, dt, open_, high, low, close, volume)], time.perf_counter_ns()
        )

    async def pump_broker(
        self,
        broker: Any,
        push: Callable[[Any], None],
        stopping: Callable[[], bool],
        idle_sleep: float = 0.05,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        """Forward ``broker.get_next_market_data()`` into ``push`` until stopped.

        A message ``push`` refuses (malformed) and an exception from the adapter are
        passed to ``on_error(kind, exc)`` (kind ``"malformed"`` / ``"adapter"``) and
        skipped. Adapter errors back off (0.05 s doubling to
        ``error_backoff_max_seconds``); after ``max_consecutive_errors`` in a row the last
        one is raised: the feed is dead and its supervisor reports it.
        """
        failures = 0
        while not stopping():
            try:
                item = await broker.get_next_market_data()
            except Exception as exc:
                failures += 1
                if on_error is not None:
                    on_error("adapter", exc)
                if failures >= self.max_consecutive_errors:
                    raise
                await asyncio.sleep(min(0.05 * 2 ** (failures - 1), self.error_backoff_max_seconds))
                continue
            failures = 0
            if item is None:
                await asyncio.sleep(idle_sleep)
                continue
            try:
                push(item)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error("malformed", exc)


def _ns_of(dt: datetime) -> int:
    """``dt`` in the clock's integer nanoseconds (as configure_replay's skip_until)."""
    return int(dt.timestamp() * 1_000_000) * 1000
