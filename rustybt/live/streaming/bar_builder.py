"""Trades (and venue klines) → one multi-asset bar event per bar close, on a timer.

A bar covers ``[start, start + interval)`` by **venue event time** and is stamped at its
end (like the bundles' minute bars). It is closed by a timer when the clock passes its
end plus ``grace`` (for trades that arrive a little late), never by the next trade, so a
quiet market still gets its bar on time. A trade for a bar already closed is counted
(``stats["late_trades"]``) and dropped: bars are final once the strategy saw them.

When a venue kline of the asset was received for the bar (the asset has a kline
subscription), the kline is used: it is the venue's own aggregate, complete even when a
trade frame was missed. Otherwise the bar is built from the trades. Klines *shorter* than
the bar (Interactive Brokers' 5-second real-time bars) are aggregated like trades: open
of the first, highest high, lowest low, close of the last, summed volume. A bar whose
first such sub-bar arrived after the bar had begun (we joined mid-bar) is incomplete and
is not emitted.

Gaps: a stream that drops marks its assets' bars from the one in progress at the drop
as *tainted*; while the stream is down bar closing is held (the strategy sees no bar
built from partial data). After the reconnect, the tainted bars up to the one in
progress at the reconnect are fetched from the venue's REST klines (``backfill``)
before they are emitted, in order. A bar that cannot be fetched is recorded as a
:class:`~rustybt.live.streaming.models.DataGap`, logged and passed to ``on_gap``; it is
not emitted from partial data. The clock and the interval are injectable, so tests run
bars of a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from rustybt.assets import Asset
from rustybt.data.bar import Bar
from rustybt.exceptions import ConfigError
from rustybt.live.events import MarketDataEvent
from rustybt.live.streaming.models import DataGap, KlineData, TickData

log = structlog.get_logger("rustybt.live.streaming")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: ``backfill(asset, first_bar_start, last_bar_start)`` → closed klines of that range.
Backfill = Callable[[Asset, datetime, datetime], Awaitable[list[KlineData]]]


class _Agg:
    __slots__ = ("open", "high", "low", "close", "volume")

    def __init__(self, price: Decimal, volume: Decimal) -> None:
        self.open = self.high = self.low = self.close = price
        self.volume = volume

    def add(self, price: Decimal, volume: Decimal) -> None:
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.close = price
        self.volume += volume

    def merge(self, k: KlineData) -> None:
        if k.high > self.high:
            self.high = k.high
        if k.low < self.low:
            self.low = k.low
        self.close = k.close
        self.volume += k.volume


class BarBuilder:
    """Builds bars of ``interval`` from ticks/klines and emits one event per bar close."""

    def __init__(
        self,
        emit: Callable[[MarketDataEvent], Any],
        *,
        interval: timedelta = timedelta(minutes=1),
        grace: timedelta = timedelta(seconds=2),
        clock: Callable[[], datetime] | None = None,
        backfill: Backfill | None = None,
        on_gap: Callable[[DataGap], Any] | None = None,
        backfill_attempts: int = 3,
        alive: Callable[[datetime], bool] | None = None,
    ) -> None:
        if not isinstance(interval, timedelta) or interval <= timedelta(0):
            raise ConfigError(f"bar interval must be a positive timedelta, got {interval!r}")
        if not isinstance(grace, timedelta) or grace < timedelta(0) or grace >= interval:
            raise ConfigError(
                f"grace must be a timedelta in [0, interval), got {grace!r} for {interval!r}"
            )
        self.emit = emit
        self.interval = interval
        self.grace = grace
        self.clock = clock or (lambda: datetime.now(UTC))
        self.backfill = backfill
        self.on_gap = on_gap
        self.backfill_attempts = backfill_attempts
        # alive(end): every stream delivered something after ``end`` (so every trade of a
        # bar ending then has arrived); a stalled stream holds the close until it is
        # declared dead and its bars are backfilled.
        self.alive = alive
        self.kline_assets: set[Asset] = set()
        self._trades: dict[datetime, dict[Asset, _Agg]] = {}
        self._klines: dict[datetime, dict[Asset, KlineData]] = {}
        self._next: datetime | None = None  # start of the next bar to close
        # asset → [first tainted bar start, last tainted bar start or None while down]
        self._taint: dict[Asset, list[datetime | None]] = {}
        self.gaps: list[DataGap] = []
        # Backfilled klines fetched ahead (one request covers every due tainted bar).
        self._cache: dict[tuple[Asset, datetime], KlineData] = {}
        self.last_emitted: datetime | None = None
        self.stats = {
            "bars_emitted": 0,
            "events_emitted": 0,
            "late_trades": 0,
            "late_klines": 0,
            "backfilled_bars": 0,
            "backfill_requests": 0,
            "gap_bars": 0,
        }
        self.close_lag_ns: list[int] = []  # bar end → emitted, bounded ring for benchmarks
        self._lag_i = 0
        # Sub-bar sources: the last sub-bar start per asset (repeats are dropped), and the
        # bar of an asset we joined mid-bar (incomplete: not emitted).
        self._sub_last: dict[Asset, datetime] = {}
        self._partial: dict[Asset, datetime] = {}
        self.stats["partial_first_bars"] = 0
        self.stats["duplicate_sub_bars"] = 0

    # --- time ------------------------------------------------------------------------------
    def bar_start(self, dt: datetime) -> datetime:
        return dt - (dt - _EPOCH) % self.interval

    def start(self, now: datetime | None = None, assets: Iterable[Asset] = ()) -> None:
        """Begin with the bar in progress at ``now``; it is tainted (we joined it late)
        for ``assets`` when a backfill is available, so its first bar is complete."""
        now = now or self.clock()
        first = self.bar_start(now)
        if self._next is None:
            self._next = first
        if self.backfill is not None:
            for a in assets:
                if a not in self.kline_assets:
                    self._taint[a] = [first, first]

    @property
    def held(self) -> bool:
        """True while some stream is down (bar closing waits for its backfill)."""
        return any(t[1] is None for t in self._taint.values())

    # --- input ----------------------------------------------------------------------------
    def add_tick(self, tick: TickData) -> None:
        asset = tick.asset
        if asset is None:
            return
        b = self.bar_start(tick.timestamp)
        nxt = self._next
        if nxt is None:
            self._next = b
        elif b < nxt:
            self.stats["late_trades"] += 1
            return
        book = self._trades.get(b)
        if book is None:
            book = self._trades[b] = {}
        agg = book.get(asset)
        if agg is None:
            book[asset] = _Agg(tick.price, tick.volume)
        else:
            agg.add(tick.price, tick.volume)

    def add_kline(self, k: KlineData) -> None:
        asset = k.asset
        if asset is None:
            return
        if k.end - k.start < self.interval:
            self._add_sub_bar(asset, k)
            return
        b = self.bar_start(k.start)
        if self._next is not None and b < self._next:
            if k.closed:
                self.stats["late_klines"] += 1
            return
        if self._next is None:
            self._next = b
        book = self._klines.setdefault(b, {})
        old = book.get(asset)
        if old is None or not old.closed or k.closed:
            book[asset] = k

    def _add_sub_bar(self, asset: Asset, k: KlineData) -> None:
        """A closed kline shorter than the bar: aggregated into its bar like trades."""
        last = self._sub_last.get(asset)
        if last is not None and k.start <= last:
            self.stats["duplicate_sub_bars"] += 1
            return
        self._sub_last[asset] = k.start
        b = self.bar_start(k.start)
        nxt = self._next
        if nxt is None:
            self._next = b
        elif b < nxt:
            self.stats["late_klines"] += 1
            return
        if last is None and k.start != b:
            self._partial[asset] = b  # joined mid-bar: this bar lacks its first sub-bars
        book = self._trades.get(b)
        if book is None:
            book = self._trades[b] = {}
        agg = book.get(asset)
        if agg is None:
            agg = book[asset] = _Agg(k.open, k.volume)
            agg.high, agg.low, agg.close = k.high, k.low, k.close
        else:
            agg.merge(k)

    # --- gaps -----------------------------------------------------------------------------
    def stream_down(self, assets: Iterable[Asset], last_event: datetime | None) -> None:
        """The stream of ``assets`` dropped; bars from the one at ``last_event`` on are
        incomplete until backfilled."""
        at = self.bar_start(last_event or self.clock())
        if self._next is not None and at < self._next:
            at = self._next
        for a in assets:
            t = self._taint.get(a)
            if t is None or t[1] is not None:
                self._taint[a] = [min(at, t[0]) if t else at, None]  # type: ignore[type-var]

    def stream_up(self, assets: Iterable[Asset], now: datetime | None = None) -> None:
        """The stream is back: bars up to the one in progress now need the backfill."""
        last = self.bar_start(now or self.clock())
        for a in assets:
            t = self._taint.get(a)
            if t is not None and t[1] is None:
                t[1] = last

    # --- closing --------------------------------------------------------------------------
    def due(self, now: datetime) -> bool:
        nxt = self._next
        return nxt is not None and nxt + self.interval + self.grace <= now

    async def close_due(self, now: datetime | None = None) -> int:
        """Close every bar whose end + grace has passed; the number of events emitted."""
        now = now or self.clock()
        n = 0
        while self.due(now):
            b = self._next
            assert b is not None
            if self._held_at(b) or (self.alive is not None and not self.alive(b + self.interval)):
                break
            await self._close(b, now)
            n += 1
        return n

    def _held_at(self, b: datetime) -> bool:
        for first, last in self._taint.values():
            if last is None and first is not None and first <= b:
                return True
        return False

    def _tainted_at(self, b: datetime) -> list[Asset]:
        return [
            a
            for a, (first, last) in self._taint.items()
            if first is not None and last is not None and first <= b <= last
        ]

    async def _close(self, b: datetime, now: datetime) -> None:
        end = b + self.interval
        trades = self._trades.pop(b, {})
        klines = self._klines.pop(b, {})
        missing: set[Asset] = set()
        for a in self._tainted_at(b):
            k = klines.get(a)
            if k is not None and k.closed:
                continue  # the venue's final kline is complete
            fetched = await self._fetch(a, b, now)
            if fetched is None:
                missing.add(a)
            else:
                klines[a] = fetched
        if self._partial:
            for a in [a for a, at in self._partial.items() if at <= b]:
                if self._partial.pop(a) == b and trades.pop(a, None) is not None:
                    self.stats["partial_first_bars"] += 1
                    log.info(
                        "bar_incomplete_at_start",
                        asset=a.symbol,
                        bar=end.isoformat(),
                        hint="joined mid-bar; the first complete bar is the next one",
                    )
        bars = []
        for a in sorted(set(trades) | set(klines) | missing):
            if a in missing:
                continue
            k = klines.get(a)
            if k is not None:
                bars.append(Bar(a, end, k.open, k.high, k.low, k.close, k.volume))
                continue
            agg = trades.get(a)
            if agg is not None:
                bars.append(Bar(a, end, agg.open, agg.high, agg.low, agg.close, agg.volume))
        # Taints that ended with this bar are resolved.
        for a in [a for a, (_, last) in self._taint.items() if last is not None and last <= b]:
            del self._taint[a]
        self._next = end
        if self._cache:
            for key in [key for key in self._cache if key[1] <= b]:
                del self._cache[key]
        if bars:
            self.stats["bars_emitted"] += len(bars)
            self.stats["events_emitted"] += 1
            self.last_emitted = end
            ev = MarketDataEvent(end, bars, time.perf_counter_ns())
            lag = int((self.clock() - end).total_seconds() * 1e9)
            ring = self.close_lag_ns
            if len(ring) < 4096:
                ring.append(lag)
            else:
                ring[self._lag_i] = lag
                self._lag_i = (self._lag_i + 1) % 4096
            self.emit(ev)

    async def _fetch(self, asset: Asset, b: datetime, now: datetime) -> KlineData | None:
        """The closed venue kline of ``asset`` for bar ``b`` (fetched with every other
        due tainted bar in one request), or None after recording the gap."""
        cache = self._cache
        hit = cache.pop((asset, b), None)
        if hit is not None:
            self.stats["backfilled_bars"] += 1
            return hit
        reason = "no backfill source"
        if self.backfill is not None:
            # Every tainted bar of this asset that is due now, in one request.
            last = b
            t = self._taint.get(asset)
            while last + 2 * self.interval + self.grace <= now and t and t[1] and last < t[1]:
                last += self.interval
            for attempt in range(self.backfill_attempts):
                self.stats["backfill_requests"] += 1
                try:
                    rows = await self.backfill(asset, b, last)
                except NotImplementedError as exc:
                    reason = str(exc) or "the stream has no backfill"
                    break
                except Exception as exc:
                    reason = f"REST backfill failed: {type(exc).__name__}: {exc}"
                    log.warning("backfill_failed", asset=asset.symbol, attempt=attempt + 1)
                    await asyncio.sleep(min(0.2 * 2**attempt, 2))
                    continue
                got = {self.bar_start(k.start): k for k in rows}
                for s, k in got.items():
                    if b < s <= last:
                        k.closed = True
                        cache[(asset, s)] = k
                k = got.get(b)
                if k is not None:
                    k.closed = True
                    self.stats["backfilled_bars"] += 1
                    return k
                reason = "the venue has no kline for this bar"
                break
        self._gap(asset, b, reason)
        return None

    def _gap(self, asset: Asset, b: datetime, reason: str) -> None:
        end = b + self.interval
        self.stats["gap_bars"] += 1
        last = self.gaps[-1] if self.gaps else None
        if last is not None and last.asset == asset and last.end + self.interval == end:
            last.end = end  # extend a running gap (told once, when it began)
            last.bars_missing += 1
            log.error("market_data_gap_continues", asset=asset.symbol, bar=end.isoformat())
            return
        else:
            gap = DataGap(asset, asset.symbol, end, end, reason, bars_missing=1)
            self.gaps.append(gap)
            del self.gaps[:-1000]
        log.error(
            "market_data_gap",
            asset=asset.symbol,
            bar=end.isoformat(),
            reason=reason,
            hint="the strategy gets no bar for this asset at this time",
        )
        if self.on_gap is not None:
            self.on_gap(gap)

    async def run(self, stopping: Callable[[], bool] = lambda: False) -> None:
        """Close bars on time until ``stopping()``; sleeps until the next bar is due."""
        while not stopping():
            now = self.clock()
            nxt = self._next
            if nxt is None or self.held:
                await asyncio.sleep(min(self.interval.total_seconds() / 4, 0.25))
                continue
            due_at = nxt + self.interval + self.grace
            wait = (due_at - now).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))
                continue
            if not await self.close_due(now):
                # Held (a stream is silent or down): look again shortly.
                await asyncio.sleep(min(self.interval.total_seconds() / 10, 0.05))
