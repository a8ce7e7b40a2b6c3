"""Interactive Brokers real-time bars as an engine-owned market-data stream.

TWS has no public market-data websocket: its 5-second real-time bars
(``reqRealTimeBars``) arrive on the API socket the broker adapter already holds.
:class:`IBRealTimeBarStream` takes them from an
:class:`~rustybt.live.brokers.ib_adapter.IBBrokerAdapter` and hands them to the engine's
stream supervisor as closed klines shorter than the bar, so the bar builder aggregates
them into the strategy's bars (one multi-asset event per bar close, on the timer, as with
the crypto streams) instead of each 5-second bar being a market event of its own.

* **Liveness**: a bar closes once every asset's 5-second bar ending at the bar's end has
  arrived, or once a ``reqCurrentTime`` round trip sent at least a second after the bar's
  end was answered (TWS answers in order, after the bars it published before), so a
  quiet contract's bar closes on time and a stalled feed holds the close.
* **Heartbeat**: a ``reqCurrentTime`` every ``heartbeat_interval``; nothing for
  ``heartbeat_timeout`` makes the stream stale (the supervisor holds new risk and alerts).
  The broker adapter owns the socket and its reconnects; the stream follows its state.
* **Gaps**: the adapter re-subscribes the bars after a reconnect; bars missed meanwhile
  are **recorded as gaps** (alerted, logged, passed to the strategy's ``on_data_gap``):
  there is no REST backfill of IB bars here (``reqHistoricalData`` is not used).
* **Start**: the bar in progress when the subscription began lacks its first 5-second
  bars and is not emitted; the first bar the strategy sees is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import structlog

from rustybt.assets import Asset
from rustybt.data.bar import Bar
from rustybt.exceptions import BrokerConnectionError, ConfigError
from rustybt.live.streaming.base import CHANNELS
from rustybt.live.streaming.models import ConnectionState, KlineData, StreamConfig
from rustybt.live.streaming.source import MarketDataStream

log = structlog.get_logger("rustybt.live.streaming")

#: How long after a 5-second period TWS may take to publish its bar: a liveness proof
#: (a ``reqCurrentTime`` answer) counts for a bar end only if sent this much later.
_PUBLISH_DELAY = 1.0


class IBRealTimeBarStream(MarketDataStream):
    """TWS real-time bars of ``broker`` for the engine (see the module docstring).

    ``bar_seconds`` is the length of TWS's real-time bars (5, the only size TWS offers;
    the loopback fake TWS can be run with shorter bars for fast tests). The strategy's
    bar interval must be a multiple of it.
    """

    venue: ClassVar[str] = "ib"
    KLINES_ARE_BARS: ClassVar[bool] = False
    CAN_BACKFILL: ClassVar[bool] = False

    def __init__(
        self,
        broker: Any,
        config: StreamConfig | None = None,
        *,
        bar_seconds: int = 5,
        on_kline: Callable[[KlineData], Any] | None = None,
        on_state: Callable[[IBRealTimeBarStream, ConnectionState], Any] | None = None,
    ) -> None:
        from rustybt.live.brokers.ib_adapter import IBBrokerAdapter

        if not isinstance(broker, IBBrokerAdapter):
            raise ConfigError(
                f"IBRealTimeBarStream needs the IBBrokerAdapter whose TWS connection carries "
                f"the bars, got {type(broker).__name__}"
            )
        if config is not None and not isinstance(config, StreamConfig):
            raise ConfigError(f"config must be a StreamConfig, got {type(config).__name__}")
        if isinstance(bar_seconds, bool) or not isinstance(bar_seconds, int) or bar_seconds <= 0:
            raise ConfigError(
                f"bar_seconds must be a whole number of seconds > 0 (TWS sends 5), got "
                f"{bar_seconds!r}"
            )
        for name, cb in (("on_kline", on_kline), ("on_state", on_state)):
            if cb is not None and not callable(cb):
                raise ConfigError(f"{name} must be callable, got {cb!r}")
        self.broker = broker
        self.config = config or StreamConfig()
        self.sub_bar = timedelta(seconds=bar_seconds)
        self.url = f"tws://{broker.config.host}:{broker.config.port}"
        self.on_tick: Callable[[Any], Any] | None = None  # TWS bars only: no ticks
        self.on_kline = on_kline
        self.on_state = on_state
        self._state = ConnectionState.DISCONNECTED
        self.failed = False
        self.last_error: str | None = None
        self.connected_at: datetime | None = None
        self.alive_wall = 0.0
        self.proof_wall = 0.0
        self._assets: dict[str, Asset] = {}
        self._subscribed: list[Asset] = []
        self._last_end: dict[Asset, datetime] = {}
        self._task: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None
        self._closing = False
        self.stats = {
            "messages": 0,
            "ticks": 0,
            "klines": 0,
            "malformed": 0,
            "reconnects": 0,
            "disconnects": 0,
            "heartbeats": 0,
            "subscribe_acks": 0,
            "stale_drops": 0,
        }

    # --- state ------------------------------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def is_connected(self) -> bool:
        return self._state is ConnectionState.CONNECTED

    @property
    def last_message_at(self) -> datetime | None:
        return datetime.fromtimestamp(self.alive_wall, UTC) if self.alive_wall else None

    @property
    def last_event_at(self) -> datetime | None:
        """Venue time up to which every subscribed contract's bars have arrived."""
        if not self._subscribed or any(a not in self._last_end for a in self._subscribed):
            return None
        return min(self._last_end[a] for a in self._subscribed)

    def live_through(self, end: datetime) -> bool:
        last = self.last_event_at
        if last is not None and last >= end:
            return True
        return self.proof_wall >= end.timestamp() + _PUBLISH_DELAY

    def _set_state(self, state: ConnectionState) -> None:
        if state is self._state:
            return
        self._state = state
        if state is ConnectionState.CONNECTED:
            self.connected_at = datetime.now(UTC)
        if self.on_state is not None:
            try:
                self.on_state(self, state)
            except Exception as exc:  # a listener's bug must not stop the stream
                log.error("stream_state_listener_failed", error=f"{type(exc).__name__}: {exc}")

    # --- symbols ----------------------------------------------------------------------------
    def map_asset(self, venue_symbol: str, asset: Asset) -> None:
        self._assets[venue_symbol] = asset

    def venue_symbol(self, asset: Asset | str) -> str:
        return asset.symbol if isinstance(asset, Asset) else str(asset).strip().upper()

    def check_interval(self, interval: timedelta) -> None:
        if interval % self.sub_bar:
            raise ConfigError(
                f"IB real-time bars are {self.sub_bar.total_seconds():g} s long: the bar "
                f"interval ({interval.total_seconds():g} s) must be a multiple of them, e.g. 60"
            )

    def status_extra(self) -> dict[str, Any]:
        return {"bar_seconds": self.sub_bar.total_seconds()}

    # --- lifecycle --------------------------------------------------------------------------
    async def connect(self) -> None:
        """Start taking the broker's real-time bars (the broker must be connected)."""
        if self._task is not None and not self._task.done():
            return
        self._closing = False
        self.failed = False
        self._set_state(ConnectionState.CONNECTING)
        if not self.broker.is_connected:
            self.last_error = "the IB broker adapter is not connected to TWS"
            self._set_state(ConnectionState.DISCONNECTED)
            raise BrokerConnectionError(
                f"IB real-time bars need the broker's TWS connection ({self.url}); connect "
                "the IBBrokerAdapter first (the engine does at start)"
            )
        self.broker.bar_listener = self._on_bar
        if self._on_connection not in self.broker.connection_listeners:
            self.broker.connection_listeners.append(self._on_connection)
        self.alive_wall = time.time()
        self._set_state(ConnectionState.CONNECTED)
        log.info("stream_connected", venue=self.venue, url=self.url)
        self._task = asyncio.get_running_loop().create_task(self._heartbeat())

    async def subscribe(
        self, symbols: Sequence[str | Asset], channels: Sequence[str] = CHANNELS
    ) -> None:
        """Subscribe the real-time bars of ``symbols`` (Assets, or symbols the broker
        loaded with ``instruments=``). TWS has one bar feed: ``channels`` only need to be
        valid names (``"trade"``, ``"kline_1m"``)."""
        if isinstance(symbols, str):
            symbols = [symbols]
        if not symbols:
            raise ConfigError("subscribe needs at least one symbol, e.g. symbols=['AAPL']")
        channels = [channels] if isinstance(channels, str) else list(channels)
        for ch in channels:
            if ch not in CHANNELS:
                raise ConfigError(f"unknown channel {ch!r}; use one of {', '.join(CHANNELS)}")
        assets = [s if isinstance(s, Asset) else self.broker.asset(str(s)) for s in symbols]
        for a in assets:
            self.map_asset(self.venue_symbol(a), a)
            if a not in self._subscribed:
                self._subscribed.append(a)
        if self.is_connected:
            await self.broker.subscribe_market_data(assets)
            self.stats["subscribe_acks"] += len(assets)

    async def disconnect(self) -> None:
        """Stop taking bars (the broker's own connection is left to the broker)."""
        self._closing = True
        for task in (self._task, self._probe):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._probe = None
        if self.broker.bar_listener == self._on_bar:
            self.broker.bar_listener = None
        with contextlib.suppress(ValueError):
            self.broker.connection_listeners.remove(self._on_connection)
        self._set_state(ConnectionState.DISCONNECTED)

    async def fetch_klines(
        self, symbol: str | Asset, start: datetime, end: datetime
    ) -> list[KlineData]:
        raise NotImplementedError(
            "IB real-time bars missed while TWS was away are not backfilled "
            "(reqHistoricalData is not used)"
        )

    # --- data -------------------------------------------------------------------------------
    def _on_bar(self, bar: Bar) -> None:
        self.alive_wall = time.time()
        self.stats["messages"] += 1
        self.stats["klines"] += 1
        asset = bar.asset
        start = bar.dt if bar.dt.tzinfo else bar.dt.replace(tzinfo=UTC)
        end = start + self.sub_bar
        last = self._last_end.get(asset)
        if last is not None and last - self.sub_bar < start < last:
            # Bars closer together than bar_seconds: "live through" would run ahead of
            # what has arrived. Said loudly once; the bar builder still aggregates them.
            self.stats["bar_length_mismatch"] = self.stats.get("bar_length_mismatch", 0) + 1
            if self.stats["bar_length_mismatch"] == 1:
                log.error(
                    "ib_bar_length_mismatch",
                    asset=asset.symbol,
                    apart_s=(start - (last - self.sub_bar)).total_seconds(),
                    bar_seconds=self.sub_bar.total_seconds(),
                    hint="TWS sends 5-second bars; a fake TWS must be served with --interval 5 "
                    "(or give IBRealTimeBarStream the bar_seconds it publishes)",
                )
        if last is None or end > last:
            self._last_end[asset] = end
        cb = self.on_kline
        if cb is None:
            return
        k = KlineData(
            asset.symbol,
            start,
            end,
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
            True,
            venue=self.venue,
            asset=asset,
            received_ns=time.perf_counter_ns(),
        )
        try:
            cb(k)
        except Exception as exc:  # the consumer's bug is not the venue's fault
            log.error("stream_callback_failed", venue=self.venue, error=f"{type(exc).__name__}")

    def _on_connection(self, connected: bool, gave_up: bool) -> None:
        if self._closing:
            return
        if connected:
            self.stats["reconnects"] += 1
            self.alive_wall = time.time()
            self._set_state(ConnectionState.CONNECTED)
            return
        self.stats["disconnects"] += 1
        self.last_error = "connection to TWS lost" if not gave_up else "TWS reconnects gave up"
        if gave_up:
            self.failed = True
            self._set_state(ConnectionState.DISCONNECTED)
        else:
            self._set_state(ConnectionState.RECONNECTING)

    # --- heartbeat ----------------------------------------------------------------------------
    def poke(self) -> None:
        """A ``reqCurrentTime`` round trip now (one at a time)."""
        if self._state is not ConnectionState.CONNECTED:
            return
        if self._probe is not None and not self._probe.done():
            return
        self._probe = asyncio.get_running_loop().create_task(self._round_trip())

    async def _round_trip(self) -> None:
        sent = time.time()
        try:
            await self.broker.current_time()
        except Exception as exc:  # noqa: BLE001 - a failed probe is just no proof
            self.last_error = f"reqCurrentTime: {type(exc).__name__}: {exc}"
            return
        self.alive_wall = time.time()
        if sent > self.proof_wall:
            self.proof_wall = sent

    async def _heartbeat(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.config.heartbeat_interval)
            if self._state is ConnectionState.CONNECTED:
                self.poke()
                self.stats["heartbeats"] += 1
