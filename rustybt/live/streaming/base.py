"""The websocket stream every venue adapter shares: connect, subscribe, heartbeat,
reconnect with backoff, re-subscribe, and the REST kline fetch used to fill gaps.

A venue module (``binance.py``, ``bybit.py``, ``hyperliquid.py``) only says how its
frames look: the subscribe and heartbeat frames it sends, how a received frame becomes
:class:`~rustybt.live.streaming.models.TickData` / ``KlineData``, and how its REST
kline endpoint is asked. Everything that keeps a connection alive lives here, once.

Semantics of :class:`~rustybt.live.streaming.models.StreamConfig` (see
``docs/streaming.md``): a heartbeat every ``heartbeat_interval``; a connection on which
nothing arrived for ``heartbeat_timeout`` is dropped and reopened; reopening waits
``reconnect_delay`` doubled per failed attempt with jitter, up to
``max_reconnect_attempts`` in a row, after which the stream gives up (state
DISCONNECTED, :attr:`failed` set); ``max_consecutive_errors`` malformed frames in a row
force a reconnect; every subscription is sent again after each reconnect; a close by
the venue (even a clean 1000) is noticed at once and reconnected.

Built on the ``websockets`` library rather than ccxt.pro: market data needs these
semantics exactly (ccxt.pro hides reconnects, heartbeats and raw event times), and a
parse here is one ``msgspec`` decode per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import random
import time
import urllib.error
import urllib.request
from abc import abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import msgspec
import structlog
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from rustybt.assets import Asset
from rustybt.exceptions import BrokerConnectionError, ConfigError, MalformedVenueMessage
from rustybt.live.streaming.models import ConnectionState, KlineData, StreamConfig, TickData
from rustybt.live.streaming.source import MarketDataStream

log = structlog.get_logger("rustybt.live.streaming")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_decode = msgspec.json.Decoder().decode

#: Channels every adapter understands (Binance's names, as in the spec's example).
CHANNELS = ("trade", "kline_1m")


def ms_to_dt(ms: Any, what: str = "time") -> datetime:
    """Venue milliseconds since the epoch as tz-aware UTC."""
    if isinstance(ms, bool) or not isinstance(ms, int):
        try:
            ms = int(ms)
        except (TypeError, ValueError):
            raise MalformedVenueMessage(f"{what} {ms!r} is not epoch milliseconds") from None
    return _EPOCH + timedelta(milliseconds=ms)


def dt_to_ms(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


class _TooManyErrors(Exception):
    pass


Callback = Callable[[Any], Any]


class WebSocketStreamAdapter(MarketDataStream):
    """A venue's public market-data stream (trades and 1-minute klines)."""

    venue: ClassVar[str] = ""
    DEFAULT_URL: ClassVar[str] = ""
    DEFAULT_REST_URL: ClassVar[str] = ""

    def __init__(
        self,
        url: str | None = None,
        config: StreamConfig | None = None,
        on_tick: Callback | None = None,
        *,
        on_kline: Callback | None = None,
        on_state: Callable[[WebSocketStreamAdapter, ConnectionState], Any] | None = None,
        rest_url: str | None = None,
    ) -> None:
        url = url or self.DEFAULT_URL
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ConfigError(f"url={url!r} is not a websocket URL; use ws://host:port/path")
        rest_url = rest_url or self.DEFAULT_REST_URL
        if not isinstance(rest_url, str) or not rest_url.startswith(("http://", "https://")):
            raise ConfigError(f"rest_url={rest_url!r} is not an HTTP URL; use http://host:port")
        if config is not None and not isinstance(config, StreamConfig):
            raise ConfigError(f"config must be a StreamConfig, got {type(config).__name__}")
        for name, cb in (("on_tick", on_tick), ("on_kline", on_kline), ("on_state", on_state)):
            if cb is not None and not callable(cb):
                raise ConfigError(f"{name} must be callable, got {cb!r}")
        self.url = url
        self.rest_url = rest_url.rstrip("/")
        self.config = config or StreamConfig()
        self.on_tick = on_tick
        self.on_kline = on_kline
        self.on_state = on_state
        self._state = ConnectionState.DISCONNECTED
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.failed = False
        self.last_error: str | None = None
        # Channel → venue symbols, kept to re-subscribe after every reconnect.
        self._subscriptions: dict[str, list[str]] = {}
        self._assets: dict[str, Asset] = {}
        self._acks: dict[Any, asyncio.Future[Any]] = {}
        self._req_id = 0
        self._errors_in_row = 0
        self._last_rx = 0.0
        self.alive_wall = 0.0  # time.time() of the last frame or pong: the stream is live
        # Send time of the newest heartbeat the venue answered: everything it sent before
        # that moment has arrived (a stream is ordered), whatever the market did.
        self.proof_wall = 0.0
        self._pings: deque[float] = deque(maxlen=64)
        self._poked = 0.0
        self.last_event_at: datetime | None = None  # venue time of the last tick/kline
        self.connected_at: datetime | None = None
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

    # --- public API ------------------------------------------------------------------------
    @classmethod
    def default_url(cls, **options: Any) -> str:
        """The venue's public stream URL for these adapter options."""
        return cls.DEFAULT_URL

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def last_message_at(self) -> datetime | None:
        """Wall time of the last frame or heartbeat answer (None before the first)."""
        return datetime.fromtimestamp(self.alive_wall, UTC) if self.alive_wall else None

    def live_through(self, end: datetime) -> bool:
        """True once every trade the venue timed before ``end`` has been received: a
        later trade arrived, or a heartbeat sent after ``end`` was answered."""
        last = self.last_event_at
        return (last is not None and last >= end) or self.proof_wall >= end.timestamp()

    @property
    def is_connected(self) -> bool:
        return self._state is ConnectionState.CONNECTED

    @property
    def subscriptions(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self._subscriptions.items()}

    def map_asset(self, venue_symbol: str, asset: Asset) -> None:
        """Stamp ``asset`` on every tick/kline of ``venue_symbol``."""
        self._assets[self.normalize_symbol(venue_symbol)] = asset

    def venue_symbol(self, asset: Asset | str) -> str:
        """The venue's symbol for ``asset`` (``BTCUSDT`` for BTC/USDT on Binance)."""
        symbol = asset.symbol if isinstance(asset, Asset) else str(asset)
        return self.normalize_symbol(symbol.replace("/", "").replace("-", ""))

    def normalize_symbol(self, symbol: str) -> str:
        return symbol.strip().upper()

    async def connect(self) -> None:
        """Open the connection (retrying per the config) and start reading."""
        if self._task is not None and not self._task.done():
            return
        self._closing = False
        self.failed = False
        self._set_state(ConnectionState.CONNECTING)
        if not await self._open_with_retries():
            self._set_state(ConnectionState.DISCONNECTED)
            raise BrokerConnectionError(
                f"{self.venue} stream at {self.url} unreachable after "
                f"{self.config.max_reconnect_attempts} attempts: {self.last_error}; check the "
                "URL and the network"
            )
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def subscribe(
        self, symbols: Sequence[str | Asset], channels: Sequence[str] = CHANNELS
    ) -> None:
        """Subscribe ``symbols`` to ``channels`` (``"trade"``, ``"kline_1m"``).

        Waits for the venue's acknowledgement; raises ``BrokerConnectionError`` if the
        venue refuses or does not answer within ``config.rest_timeout``.
        """
        if isinstance(symbols, str):
            symbols = [symbols]
        if not symbols:
            raise ConfigError("subscribe needs at least one symbol, e.g. symbols=['BTCUSDT']")
        channels = [channels] if isinstance(channels, str) else list(channels)
        for ch in channels:
            if ch not in CHANNELS:
                raise ConfigError(f"unknown channel {ch!r}; use one of {', '.join(CHANNELS)}")
        venue_syms = []
        for s in symbols:
            vs = self.venue_symbol(s)
            if isinstance(s, Asset):
                self.map_asset(vs, s)
            venue_syms.append(vs)
        added: dict[str, list[str]] = {}
        for ch in channels:
            have = self._subscriptions.setdefault(ch, [])
            new = [s for s in venue_syms if s not in have]
            have.extend(new)
            if new:
                added[ch] = new
        ws = self._ws
        if ws is None or self._state is not ConnectionState.CONNECTED:
            return  # sent on (re)connect
        try:
            futures = await self._send_subscribe(ws, added)
        except ConnectionClosed:
            return  # the reconnect sends every subscription again
        if futures:
            try:
                await asyncio.wait_for(asyncio.gather(*futures), self.config.rest_timeout)
            except TimeoutError:
                raise BrokerConnectionError(
                    f"{self.venue} did not acknowledge the subscription to {added} within "
                    f"{self.config.rest_timeout}s"
                ) from None

    async def disconnect(self) -> None:
        """Close the connection for good (code 1000) and stop reading."""
        self._closing = True
        task, self._task = self._task, None
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1000, "client disconnect"), 2)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._ws = None
        for fut in self._acks.values():
            fut.cancel()
        self._acks.clear()
        self._set_state(ConnectionState.DISCONNECTED)

    async def fetch_klines(
        self, symbol: str | Asset, start: datetime, end: datetime
    ) -> list[KlineData]:
        """Closed 1-minute candles of ``symbol`` whose open time is in ``[start, end]``
        from the venue's REST API (used to fill gaps after a reconnect)."""
        vs = self.venue_symbol(symbol)
        method, path, params, body = self._kline_request(vs, dt_to_ms(start), dt_to_ms(end))
        payload = await asyncio.to_thread(self._http, method, path, params, body)
        klines = self._parse_rest_klines(vs, payload)
        asset = self._assets.get(vs) or (symbol if isinstance(symbol, Asset) else None)
        out = []
        for k in klines:
            if start <= k.start <= end:
                k.asset = asset
                out.append(k)
        out.sort(key=lambda k: k.start)
        return out

    # --- venue hooks -------------------------------------------------------------------------
    @abstractmethod
    def _subscribe_frames(self, subs: dict[str, list[str]]) -> list[tuple[Any, dict[str, Any]]]:
        """(ack key or None, frame) pairs that subscribe ``subs`` (channel → symbols)."""

    @abstractmethod
    async def _heartbeat(self, ws: ClientConnection) -> None:
        """Send the venue's heartbeat."""

    @abstractmethod
    def _parse(self, msg: Any) -> list[TickData | KlineData] | None:
        """Ticks/klines in a decoded frame; None for a control frame (ack, pong).

        Raises ``MalformedVenueMessage`` for a frame that is not the venue's format.
        """

    @abstractmethod
    def _kline_request(
        self, symbol: str, start_ms: int, end_ms: int
    ) -> tuple[str, str, dict[str, Any], Any]:
        """(method, path, query params, JSON body) of the REST kline request."""

    @abstractmethod
    def _parse_rest_klines(self, symbol: str, payload: Any) -> list[KlineData]: ...

    def _next_id(self) -> int:
        self._req_id += 1
        return self._req_id

    def _ack(self, key: Any, error: str | None = None) -> None:
        self.stats["subscribe_acks"] += 1
        fut = self._acks.pop(key, None)
        if fut is not None and not fut.done():
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(BrokerConnectionError(f"{self.venue} refused: {error}"))
        elif error is not None:
            log.error("stream_subscribe_refused", venue=self.venue, error=error)

    # --- connection management ----------------------------------------------------------------
    def _set_state(self, state: ConnectionState) -> None:
        if state is self._state:
            return
        self._state = state
        if state is ConnectionState.CONNECTED:
            self.connected_at = datetime.now(UTC)
        if self.on_state is not None:
            try:
                self.on_state(self, state)
            except Exception as exc:  # a listener's bug must not kill the stream
                log.error("stream_state_listener_failed", error=f"{type(exc).__name__}: {exc}")

    def _backoff(self, attempt: int) -> float:
        cfg = self.config
        base = min(cfg.reconnect_delay * 2 ** max(attempt - 1, 0), cfg.max_reconnect_delay)
        return base * (1 + random.random() * cfg.jitter)

    async def _open_with_retries(self, first_delay: bool = False) -> bool:
        cfg = self.config
        for attempt in range(1, cfg.max_reconnect_attempts + 1):
            if first_delay or attempt > 1:
                await asyncio.sleep(self._backoff(attempt))
            if self._closing:
                return False
            try:
                ws = await ws_connect(
                    self.url,
                    ping_interval=None,  # our own heartbeat, per StreamConfig
                    close_timeout=1,
                    open_timeout=cfg.rest_timeout,
                    max_size=2**22,
                )
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "stream_connect_failed",
                    venue=self.venue,
                    attempt=attempt,
                    of=cfg.max_reconnect_attempts,
                    error=self.last_error,
                )
                continue
            self._ws = ws
            self._pings.clear()  # answers to pings on the old connection never come
            self._errors_in_row = 0
            self._last_rx = time.monotonic()
            if self._subscriptions:
                try:
                    await self._send_subscribe(ws, self._subscriptions, wait=False)
                except ConnectionClosed as exc:
                    self.last_error = f"closed while subscribing: {exc}"
                    continue
            self._set_state(ConnectionState.CONNECTED)
            log.info("stream_connected", venue=self.venue, url=self.url, attempt=attempt)
            return True
        return False

    async def _send_subscribe(
        self, ws: ClientConnection, subs: dict[str, list[str]], wait: bool = True
    ) -> list[asyncio.Future[Any]]:
        futures = []
        loop = asyncio.get_running_loop()
        for key, frame in self._subscribe_frames(subs):
            if wait and key is not None:
                fut = self._acks[key] = loop.create_future()
                futures.append(fut)
            await ws.send(json.dumps(frame))
        return futures

    async def _run(self) -> None:
        while not self._closing:
            ws = self._ws
            if ws is None:
                break
            reason = await self._read(ws)
            if self._closing:
                break
            self._ws = None
            self.stats["disconnects"] += 1
            self.last_error = reason
            log.warning("stream_disconnected", venue=self.venue, reason=reason)
            self._set_state(ConnectionState.RECONNECTING)
            if not await self._open_with_retries(first_delay=True):
                if self._closing:
                    break
                self.failed = True
                log.error(
                    "stream_failed",
                    venue=self.venue,
                    attempts=self.config.max_reconnect_attempts,
                    error=self.last_error,
                )
                self._set_state(ConnectionState.DISCONNECTED)
                return
            self.stats["reconnects"] += 1

    async def _read(self, ws: ClientConnection) -> str:
        """Read ``ws`` until it ends; the reason it ended."""
        watchdog = asyncio.get_running_loop().create_task(self._watch(ws))
        try:
            async for raw in ws:
                self._last_rx = time.monotonic()
                self.alive_wall = time.time()
                await self._on_frame(raw)
            return f"closed by the venue (code {ws.close_code} {ws.close_reason!r})"
        except ConnectionClosed as exc:
            if watchdog.done() and not watchdog.cancelled() and watchdog.result():
                return watchdog.result()
            return f"connection lost ({exc})"
        except _TooManyErrors:
            ws.transport.abort()
            return f"{self._errors_in_row} malformed messages in a row"
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watchdog

    async def _watch(self, ws: ClientConnection) -> str:
        """Heartbeat every ``heartbeat_interval``; drop the connection when nothing has
        arrived for ``heartbeat_timeout``."""
        cfg = self.config
        next_beat = time.monotonic() + cfg.heartbeat_interval
        while True:
            now = time.monotonic()
            idle = now - self._last_rx
            if idle >= cfg.heartbeat_timeout:
                self.stats["stale_drops"] += 1
                ws.transport.abort()
                return f"no message for {idle:.1f}s (heartbeat_timeout {cfg.heartbeat_timeout}s)"
            if now >= next_beat:
                next_beat = now + cfg.heartbeat_interval
                try:
                    await self._beat(ws)
                    self.stats["heartbeats"] += 1
                except ConnectionClosed:
                    return ""
            wait = min(next_beat, self._last_rx + cfg.heartbeat_timeout) - time.monotonic()
            await asyncio.sleep(max(wait, 0.001))

    def poke(self) -> None:
        """Send a heartbeat now (at most every 0.2 s): its answer proves the stream live
        past a bar's end, so a quiet market's bar closes without waiting for a trade."""
        ws = self._ws
        now = time.monotonic()
        if ws is None or self._state is not ConnectionState.CONNECTED or now - self._poked < 0.2:
            return
        self._poked = now
        task = asyncio.get_running_loop().create_task(self._beat(ws))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _beat(self, ws: ClientConnection) -> None:
        self._pings.append(time.time())
        await self._heartbeat(ws)

    def _pong(self) -> None:
        """A heartbeat answer arrived (counts as traffic; answers come in order)."""
        self._last_rx = time.monotonic()
        self.alive_wall = time.time()
        if self._pings:
            sent = self._pings.popleft()
            if sent > self.proof_wall:
                self.proof_wall = sent

    async def _on_frame(self, raw: str | bytes) -> None:
        self.stats["messages"] += 1
        try:
            msg = _decode(raw)
            items = self._parse(msg)
        except (msgspec.DecodeError, MalformedVenueMessage, KeyError, TypeError, ValueError) as exc:
            self.stats["malformed"] += 1
            self._errors_in_row += 1
            text = raw if isinstance(raw, str) else repr(raw)
            log.warning(
                "stream_malformed_message",
                venue=self.venue,
                error=f"{type(exc).__name__}: {exc}",
                frame=text[:200],
                in_a_row=self._errors_in_row,
            )
            if self._errors_in_row >= self.config.max_consecutive_errors:
                raise _TooManyErrors from None
            return
        self._errors_in_row = 0
        if not items:
            return
        now_ns = time.perf_counter_ns()
        on_tick, on_kline, assets = self.on_tick, self.on_kline, self._assets
        for item in items:
            item.received_ns = now_ns
            if item.asset is None:
                item.asset = assets.get(item.symbol)
            if isinstance(item, TickData):
                self.stats["ticks"] += 1
                self.last_event_at = item.timestamp
                cb = on_tick
            else:
                self.stats["klines"] += 1
                # A kline of a later bar shows the venue moved past the earlier ones.
                if self.last_event_at is None or item.start > self.last_event_at:
                    self.last_event_at = item.start
                cb = on_kline
            if cb is None:
                continue
            try:
                result = cb(item)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # the consumer's bug is not the venue's fault
                log.error(
                    "stream_callback_failed",
                    venue=self.venue,
                    error=f"{type(exc).__name__}: {exc}",
                )

    # --- REST -----------------------------------------------------------------------------------
    def _http(self, method: str, path: str, params: dict[str, Any], body: Any) -> Any:
        """One blocking REST call (run in a worker thread); the decoded JSON."""
        from urllib.parse import urlencode

        url = self.rest_url + path + ("?" + urlencode(params) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.config.rest_timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise BrokerConnectionError(
                f"{self.venue} REST {method} {path} failed: HTTP {exc.code} {exc.reason}"
            ) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise BrokerConnectionError(
                f"{self.venue} REST {method} {path} unreachable: {exc}"
            ) from None
        try:
            return _decode(raw)
        except msgspec.DecodeError:
            raise MalformedVenueMessage(
                f"{self.venue} REST {path} answered with non-JSON: {raw[:200]!r}"
            ) from None


def symbols_of(items: Iterable[str | Asset]) -> list[str]:
    return [i.symbol if isinstance(i, Asset) else str(i) for i in items]
