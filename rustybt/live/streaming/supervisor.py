"""The engine's market-data streams: started, watched and stopped by the engine.

:class:`StreamSupervisor` connects each stream adapter, subscribes its assets, feeds
ticks and klines into the one :class:`~rustybt.live.streaming.bar_builder.BarBuilder`
(whose bar events go on the engine's queue, one per bar close for all assets), and
keeps ticks out of bar history: a tick only moves the last price (``data.current``).

Health: a stream that is not connected, or from which nothing arrived for its
``heartbeat_timeout``, puts a hold on new risk and raises an alert; the hold is lifted
when every stream is live again and the bars it missed are backfilled. A stream that
gave up after ``max_reconnect_attempts`` stays held (an operator must act). Gaps that
could not be backfilled are alerted and passed to the strategy's optional
``on_data_gap(gap)`` method.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from rustybt.assets import Asset
from rustybt.exceptions import ConfigError
from rustybt.live.events import MarketDataEvent
from rustybt.live.streaming.bar_builder import BarBuilder
from rustybt.live.streaming.base import CHANNELS
from rustybt.live.streaming.models import ConnectionState, DataGap, KlineData, TickData
from rustybt.live.streaming.source import MarketDataStream

log = structlog.get_logger("rustybt.live.streaming")

HOLD_KEY = "market_data_stream"


class _Stream:
    __slots__ = ("adapter", "assets", "channels", "down_since", "alerted")

    def __init__(self, adapter: MarketDataStream, assets: list[Asset], channels: list[str]):
        self.adapter = adapter
        self.assets = assets
        self.channels = channels
        self.down_since: float | None = None
        self.alerted = False


class StreamSupervisor:
    """Owns the streams and the bar builder of one engine.

    ``emit`` puts a bar event on the engine queue; ``on_price`` takes a tick's price
    (``asset, price, dt``); ``alert(kind, message, details)`` raises an operator alert;
    ``hold(reason)`` / ``release()`` block and unblock new risk; ``on_gap(gap)`` tells
    the strategy.
    """

    def __init__(
        self,
        emit: Callable[[MarketDataEvent], Any],
        on_price: Callable[[Asset, Any, datetime], Any],
        alert: Callable[[str, str, dict[str, Any]], Any],
        hold: Callable[[str], Any],
        release: Callable[[], Any],
        on_gap: Callable[[DataGap], Any] | None = None,
        *,
        interval: timedelta = timedelta(minutes=1),
        grace: timedelta = timedelta(seconds=2),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._emit = emit
        self._on_price = on_price
        self._alert = alert
        self._hold = hold
        self._release = release
        self._on_gap_cb = on_gap
        self.clock = clock or (lambda: datetime.now(UTC))
        self.streams: list[_Stream] = []
        self.builder = BarBuilder(
            emit,
            interval=interval,
            grace=grace,
            clock=self.clock,
            backfill=self._backfill,
            on_gap=self._on_gap,
            alive=self._alive,
        )
        self._by_asset: dict[Asset, _Stream] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False
        self._held: str | None = None
        self._alerted = False
        self.started = False

    def configure(
        self,
        *,
        interval: timedelta | None = None,
        grace: timedelta | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Change the bar interval, grace or clock (before the engine starts)."""
        if self.started:
            raise ConfigError("configure streams before the engine starts")
        if clock is not None:
            self.clock = clock
        interval = interval or self.builder.interval
        if grace is None:
            # The default 2 s, but never more than a fifth of a short (test) bar.
            grace = min(timedelta(seconds=2), interval / 5)
        self.builder = BarBuilder(
            self._emit,
            interval=interval,
            grace=grace,
            clock=self.clock,
            backfill=self._backfill,
            on_gap=self._on_gap,
            alive=self._alive,
        )

    def _alive(self, end: datetime) -> bool:
        for s in self.streams:
            a = s.adapter
            # A stream that is down is handled by the builder's taint (held, then backfilled).
            if a.state is ConnectionState.CONNECTED and not a.live_through(end):
                a.poke()
                return False
        return True

    @staticmethod
    def check(adapter: Any, channels: Sequence[str] | str) -> list[str]:
        """``channels`` as a list, after checking the adapter and the channels."""
        if not isinstance(adapter, MarketDataStream):
            raise ConfigError(
                f"a stream must be a rustybt.live.streaming stream (e.g. "
                f"BinanceWebSocketAdapter, IBRealTimeBarStream), got {type(adapter).__name__}"
            )
        channels = [channels] if isinstance(channels, str) else list(channels)
        for ch in channels:
            if ch not in CHANNELS:
                raise ConfigError(f"unknown channel {ch!r}; use one of {', '.join(CHANNELS)}")
        if not channels:
            raise ConfigError("a stream needs 'trade' or 'kline_1m'")
        return channels

    def add(
        self,
        adapter: MarketDataStream,
        assets: Sequence[Asset],
        channels: Sequence[str] = CHANNELS,
    ) -> None:
        channels = self.check(adapter, channels)
        adapter.check_interval(self.builder.interval)
        if not assets:
            raise ConfigError("add_stream needs the assets to subscribe, e.g. [symbol('BTCUSDT')]")
        for a in assets:
            if a in self._by_asset:
                raise ConfigError(f"{a.symbol} is already streamed by another stream")
        s = _Stream(adapter, list(assets), channels)
        self.streams.append(s)
        for a in assets:
            self._by_asset[a] = s
            adapter.map_asset(adapter.venue_symbol(a), a)
            if "kline_1m" in channels and adapter.KLINES_ARE_BARS:
                self.builder.kline_assets.add(a)
        adapter.on_tick = self.on_tick
        adapter.on_kline = self.on_kline
        adapter.on_state = self._on_state

    # --- data -------------------------------------------------------------------------------
    def on_tick(self, tick: TickData) -> None:
        """A trade: moves the last price now; counts in its bar when the bar closes."""
        asset = tick.asset
        if asset is None:
            return
        self._on_price(asset, tick.price, tick.timestamp)
        self.builder.add_tick(tick)

    def on_kline(self, k: KlineData) -> None:
        self.builder.add_kline(k)

    async def _backfill(self, asset: Asset, first: datetime, last: datetime) -> list[KlineData]:
        s = self._by_asset.get(asset)
        if s is None:
            raise ConfigError(f"no stream for {asset.symbol} to backfill from")
        return await s.adapter.fetch_klines(asset, first, last)

    def _on_gap(self, gap: DataGap) -> None:
        self._alert(
            "market_data_gap",
            f"{gap.symbol}: bars {gap.start:%H:%M:%S}..{gap.end:%H:%M:%S} UTC could not be "
            f"recovered ({gap.reason}); the strategy got no bar for them",
            {"asset": gap.symbol, "start": gap.start.isoformat(), "end": gap.end.isoformat()},
        )
        if self._on_gap_cb is not None:
            self._on_gap_cb(gap)

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and subscribe every stream, then close bars on time."""
        for s in self.streams:
            s.adapter.check_interval(self.builder.interval)
        self.started = True
        self._stopping = False
        loop = asyncio.get_running_loop()
        for s in self.streams:
            try:
                await s.adapter.connect()
                await s.adapter.subscribe(s.assets, s.channels)
            except Exception as exc:
                # Down at start: keep trying in the background; risk stays held meanwhile.
                log.error("stream_start_failed", venue=s.adapter.venue, error=str(exc))
                self._tasks.append(loop.create_task(self._retry_start(s)))
        # The bar joined mid-way is completed by a backfill where the source has one (a
        # sub-bar source without one drops it instead: see BarBuilder).
        self.builder.start(
            self.clock(), [a for s in self.streams if s.adapter.CAN_BACKFILL for a in s.assets]
        )
        self._tasks.append(loop.create_task(self.builder.run(lambda: self._stopping)))
        self._tasks.append(loop.create_task(self._watch()))

    async def _retry_start(self, s: _Stream) -> None:
        self.builder.stream_down(s.assets, None)
        while not self._stopping:
            await asyncio.sleep(s.adapter.config.reconnect_delay)
            try:
                await s.adapter.connect()
                await s.adapter.subscribe(s.assets, s.channels)
                self.builder.stream_up(s.assets)
                return
            except Exception as exc:
                log.error("stream_start_failed", venue=s.adapter.venue, error=str(exc))

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        for s in self.streams:
            with contextlib.suppress(Exception):
                await s.adapter.disconnect()

    def _on_state(self, adapter: MarketDataStream, state: ConnectionState) -> None:
        if self._stopping:
            return
        for s in self.streams:
            if s.adapter is not adapter:
                continue
            if state is ConnectionState.CONNECTED:
                if s.down_since is not None:
                    self.builder.stream_up(s.assets)
                    log.info("stream_recovered", venue=adapter.venue)
                s.down_since = None
            elif state is ConnectionState.CONNECTING:
                pass  # the first connection: nothing was missed yet
            elif s.down_since is None:
                s.down_since = time.monotonic()
                self.builder.stream_down(s.assets, adapter.last_event_at)
        self._check()

    async def _watch(self) -> None:
        """Re-check health often enough to notice a stale stream within its timeout."""
        while not self._stopping:
            self._check()
            waits = [s.adapter.config.heartbeat_timeout / 4 for s in self.streams] or [1.0]
            await asyncio.sleep(min(min(waits), 1.0))

    def problems(self) -> list[str]:
        out = []
        now = datetime.now(UTC)
        for s in self.streams:
            a = s.adapter
            if a.failed:
                out.append(
                    f"{a.venue} stream gave up after {a.config.max_reconnect_attempts} "
                    f"reconnect attempts ({a.last_error})"
                )
            elif a.state is not ConnectionState.CONNECTED:
                out.append(f"{a.venue} stream {a.state.value} ({a.last_error})")
            else:
                last = a.last_message_at or a.connected_at
                if last is not None and (now - last).total_seconds() > a.config.heartbeat_timeout:
                    out.append(
                        f"{a.venue} stream stale: nothing for {(now - last).total_seconds():.0f}s"
                    )
        if self.builder.held:
            out.append("bars held until the missed ones are backfilled")
        return out

    def _check(self) -> None:
        problems = self.problems()
        if problems:
            reason = "market data: " + "; ".join(problems)
            starting = all(
                s.adapter.connected_at is None and not s.adapter.failed for s in self.streams
            )
            if not self._alerted and not starting:
                # Not while the first connections are being made (start-up blocks risk
                # anyway): an alert means something broke.
                self._alerted = True
                self._alert("market_data_stream", reason, {"problems": problems})
            if reason != self._held:
                self._held = reason
                self._hold(reason)
        elif self._held is not None:
            self._held = None
            self._alerted = False
            self._release()
            log.info("market_data_streams_healthy")

    def status(self) -> dict[str, Any]:
        return {
            "streams": [
                {
                    "venue": s.adapter.venue,
                    "url": s.adapter.url,
                    "state": s.adapter.state.value,
                    "failed": s.adapter.failed,
                    "assets": [a.symbol for a in s.assets],
                    **s.adapter.stats,
                    **s.adapter.status_extra(),
                }
                for s in self.streams
            ],
            "bars": dict(self.builder.stats),
            "gaps": len(self.builder.gaps),
            "held": self._held,
        }

    def assets(self) -> Iterable[Asset]:
        return self._by_asset.keys()
