"""The shared core of the fake venues' market-data streams (loopback only).

:class:`MarketSimulator` makes deterministic trades (a seeded random walk) at a chosen
rate and remembers them per bar, so the REST kline endpoint of a fake venue answers
with exactly the bars a client would have built from the trades it was sent — and with
the bars it missed while disconnected. :class:`MarketStreamServer` is a real websocket
server on 127.0.0.1 plus a small HTTP server for the REST klines; a venue module (for
example ``binance/market_stream.py``) supplies only the venue's frames.

Faults, each on demand: ``drop()`` aborts every connection (no close frame), ``stall()``
stops sending (the socket stays open), ``garbage()`` sends frames that are not the
venue's format, ``close_clean()`` closes with code 1000, ``restart()`` takes the server
down and up again on the same port, ``rest_fail`` makes REST answer 503, and a client
that does not read fast enough is disconnected as a slow consumer (its send queue is
bounded). Everything is bounded: history (``history_bars``), queues, and the rate.

A stream can also be *mounted* on a fake trading venue's own aiohttp port
(:meth:`MarketStreamServer.mount`, used by ``rustybt venue serve binance|bybit``): the
venue's public stream paths are served there, the simulator runs while the app runs, and
``on_trade`` / ``on_bar_closed`` let the venue's matching engine follow the same market.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import WSMsgType, web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

_CENT = Decimal("0.01")
_LOT = Decimal("0.001")


@dataclass(slots=True)
class Trade:
    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    time_ms: int
    buyer_maker: bool


@dataclass(slots=True)
class Kline:
    symbol: str
    start_ms: int
    end_ms: int  # exclusive
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int = 1


class MarketSimulator:
    """Seeded random-walk trades for ``symbols``; bars of ``bar_seconds`` remembered."""

    def __init__(
        self,
        symbols: dict[str, Decimal | str],
        *,
        bar_seconds: float = 60,
        seed: int = 7,
        history_bars: int = 5_000,
    ) -> None:
        self.prices = {s: Decimal(str(p)) for s, p in symbols.items()}
        self.bar_ms = int(bar_seconds * 1000)
        self.rng = random.Random(seed)
        self.history_bars = history_bars
        self.klines: dict[str, dict[int, Kline]] = {s: {} for s in symbols}
        self._order: dict[str, deque[int]] = {s: deque() for s in symbols}
        self._tid = 0

    def bar_start(self, ms: int) -> int:
        return ms - ms % self.bar_ms

    def trade(self, symbol: str, now_ms: int) -> Trade:
        rng = self.rng
        price = self.prices[symbol]
        step = (price * Decimal(rng.randint(-20, 20)) / Decimal(10_000)).quantize(_CENT)
        price = max(price + step, _CENT)
        self.prices[symbol] = price
        qty = (Decimal(rng.randint(1, 2_000)) * _LOT).quantize(_LOT)
        self._tid += 1
        t = Trade(symbol, self._tid, price, qty, now_ms, rng.random() < 0.5)
        self._record(t)
        return t

    def _record(self, t: Trade) -> None:
        start = self.bar_start(t.time_ms)
        book = self.klines[t.symbol]
        k = book.get(start)
        if k is None:
            k = book[start] = Kline(
                t.symbol, start, start + self.bar_ms, t.price, t.price, t.price, t.price, t.qty
            )
            order = self._order[t.symbol]
            order.append(start)
            while len(order) > self.history_bars:
                book.pop(order.popleft(), None)
            return
        k.high = max(k.high, t.price)
        k.low = min(k.low, t.price)
        k.close = t.price
        k.volume += t.qty
        k.trades += 1

    def kline_range(self, symbol: str, start_ms: int, end_ms: int, limit: int) -> list[Kline]:
        """Bars whose open time is within ``[start_ms, end_ms]``, oldest first."""
        book = self.klines.get(symbol, {})
        out = [k for s, k in sorted(book.items()) if start_ms <= s <= end_ms]
        return out[:limit]

    def forget(self, symbol: str, start_ms: int, end_ms: int) -> None:
        """Lose bars (the venue cannot serve them): for unfillable-gap tests."""
        book = self.klines.get(symbol, {})
        for s in [s for s in book if start_ms <= s <= end_ms]:
            del book[s]


@dataclass(eq=False)
class Client:
    """One websocket connection to the fake venue."""

    ws: Any  # a websockets ServerConnection, or _AiohttpConn on a mounted stream
    path: str
    subs: set[tuple[str, str]] = field(default_factory=set)  # (channel, venue symbol)
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(1_000))
    sent: int = 0
    combined: bool = False


class MarketStreamServer(ABC):
    """A fake venue's public market-data websocket + REST klines on 127.0.0.1."""

    venue = ""

    def __init__(
        self,
        symbols: dict[str, Decimal | str] | None = None,
        *,
        rate: float = 50.0,
        bar_seconds: float = 60,
        seed: int = 7,
        port: int = 0,
        rest_port: int = 0,
        send_queue: int = 1_000,
        kline_every: int = 10,
        server_ping_interval: float | None = None,
        send_buffer: int | None = None,
    ) -> None:
        self.sim = MarketSimulator(
            symbols or {"BTCUSDT": "42000", "ETHUSDT": "2300"}, bar_seconds=bar_seconds, seed=seed
        )
        self.rate = rate
        self.port = port
        self.rest_port = rest_port
        self.send_queue = send_queue
        self.kline_every = kline_every
        self.server_ping_interval = server_ping_interval
        self.send_buffer = send_buffer
        self.clients: set[Client] = set()
        self.connections = 0
        self.subscribe_log: list[tuple[int, list[str]]] = []  # (connection no., what)
        self.slow_consumers_dropped = 0
        self.frames_sent = 0
        self.stalled = False
        self.rest_fail = False
        self.rest_requests: list[tuple[str, str, dict[str, Any]]] = []
        self._server: Server | None = None
        self._rest: asyncio.Server | None = None
        self._gen: asyncio.Task[None] | None = None
        self._last_bar: dict[str, int] = {}
        self._since_kline: dict[str, int] = {}
        self.trades_made = 0
        #: Called with every trade made and every bar that closed (a mounted venue's
        #: matching engine follows the stream's market through these).
        self.on_trade: Callable[[Trade], Any] | None = None
        self.on_bar_closed: Callable[[Kline], Any] | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.default_path}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    default_path = "/ws"

    async def start(self) -> MarketStreamServer:
        await self._start_ws()
        self._rest = await asyncio.start_server(self._http, "127.0.0.1", self.rest_port)
        self.rest_port = self._rest.sockets[0].getsockname()[1]
        self.start_market()
        return self

    def start_market(self) -> None:
        """Start making trades (``start`` does; a mounted stream starts with its app)."""
        if self._gen is None or self._gen.done():
            self._gen = asyncio.get_running_loop().create_task(self._generate())

    async def _start_ws(self) -> None:
        self._server = await serve(
            self._handler, "127.0.0.1", self.port, ping_interval=self.server_ping_interval
        )
        self.port = self._server.sockets[0].getsockname()[1]  # type: ignore[index]

    async def stop(self) -> None:
        if self._gen is not None:
            self._gen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gen
        await self._stop_ws()
        if self._rest is not None:
            self._rest.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._rest.wait_closed(), 2)

    async def _stop_ws(self) -> None:
        for c in list(self.clients):
            c.ws.transport.abort()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> MarketStreamServer:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # --- faults -------------------------------------------------------------------------------
    def drop(self) -> None:
        """Abort every connection without a close frame (a network cut)."""
        for c in list(self.clients):
            c.ws.transport.abort()

    async def close_clean(self) -> None:
        """Close every connection with code 1000 (the venue ending the session)."""
        for c in list(self.clients):
            with contextlib.suppress(Exception):
                await c.ws.close(1000, "server closing")

    def stall(self, on: bool = True) -> None:
        """Stop (or resume) sending anything and reading the clients' frames (so no pong
        either), like a connection that hangs; trades go on being made."""
        self.stalled = on
        for c in list(self.clients):
            with contextlib.suppress(Exception):
                if on:
                    c.ws.transport.pause_reading()
                else:
                    c.ws.transport.resume_reading()

    async def garbage(self, n: int = 10) -> None:
        """Send ``n`` frames that are not the venue's format to every client."""
        junk = ["not json", "{", '{"unexpected": true}', "[1, 2, 3]", '"text"']
        for c in list(self.clients):
            for i in range(n):  # queued back to back: the client reads them in a row
                self._enqueue(c, junk[i % len(junk)])

    async def restart(self, down_for: float = 0.3) -> None:
        """Take the websocket server down (connections cut) and bring it back."""
        await self._stop_ws()
        await asyncio.sleep(down_for)
        await self._start_ws()

    # --- websocket ----------------------------------------------------------------------------
    async def _handler(self, ws: ServerConnection) -> None:
        await self._serve(ws, ws.request.path if ws.request is not None else "/")

    async def _serve(self, ws: Any, path: str) -> None:
        self.connections += 1
        conn_no = self.connections
        client = Client(ws, path, queue=asyncio.Queue(self.send_queue))
        sock = ws.transport.get_extra_info("socket")
        if sock is not None and self.send_buffer is not None:
            # A small kernel send buffer makes a slow reader visible quickly.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        self.on_open(client)
        self.clients.add(client)
        writer = asyncio.get_running_loop().create_task(self._writer(client))
        try:
            async for raw in ws:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                for reply in self.on_message(client, msg, conn_no):
                    self._enqueue(client, reply, control=True)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    async def _writer(self, client: Client) -> None:
        ws = client.ws
        q = client.queue
        while True:
            frame = await q.get()
            if frame is None:
                return
            while self.stalled:
                await asyncio.sleep(0.02)
            try:
                await ws.send(frame)
            except (ConnectionClosed, ConnectionError, RuntimeError):
                return
            client.sent += 1
            self.frames_sent += 1

    def _enqueue(self, client: Client, frame: str, control: bool = False) -> None:
        try:
            client.queue.put_nowait(frame)
        except asyncio.QueueFull:
            # Like a real venue: a client that cannot keep up is cut off.
            self.slow_consumers_dropped += 1
            self.clients.discard(client)
            client.ws.transport.abort()

    async def _generate(self) -> None:
        symbols = list(self.sim.prices)
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while True:
            next_at += interval
            now_ms = int(time.time() * 1000)
            self._close_bars(now_ms)
            on_trade = self.on_trade
            for sym in symbols:
                t = self.sim.trade(sym, now_ms)
                self.trades_made += 1
                if on_trade is not None:
                    on_trade(t)
                self._broadcast_trade(t)
            delay = next_at - time.monotonic()
            if delay > 0:
                # A venue closes its bar at the boundary, not at the next trade: wake there
                # too, so the final kline (and the REST row) exist as soon as the bar ends.
                ms = time.time() * 1000
                to_boundary = (self.sim.bar_start(int(ms)) + self.sim.bar_ms - ms) / 1000
                if to_boundary < delay:
                    await asyncio.sleep(to_boundary + 0.0005)
                    self._close_bars(int(time.time() * 1000))
                    delay = next_at - time.monotonic()
                await asyncio.sleep(max(delay, 0))
            else:
                next_at = time.monotonic()
                await asyncio.sleep(0)

    def _close_bars(self, now_ms: int) -> None:
        """Push the final kline of every bar that ended (the venue's 'closed' candle)."""
        start = self.sim.bar_start(now_ms)
        for sym, book in self.sim.klines.items():
            last = self._last_bar.get(sym)
            if last is not None and last < start and last in book:
                self._broadcast_kline(book[last], closed=True)
                if self.on_bar_closed is not None:
                    self.on_bar_closed(book[last])
            self._last_bar[sym] = start

    def _broadcast_trade(self, t: Trade) -> None:
        n = self._since_kline.get(t.symbol, 0) + 1
        kline = None
        if n >= self.kline_every:
            n = 0
            kline = self.sim.klines[t.symbol][self.sim.bar_start(t.time_ms)]
        self._since_kline[t.symbol] = n
        for c in list(self.clients):
            if ("trade", t.symbol) in c.subs:
                self._enqueue(c, self.trade_frame(c, t))
            if kline is not None and ("kline_1m", t.symbol) in c.subs:
                self._enqueue(c, self.kline_frame(c, kline, closed=False))

    def _broadcast_kline(self, k: Kline, closed: bool) -> None:
        for c in list(self.clients):
            if ("kline_1m", k.symbol) in c.subs:
                self._enqueue(c, self.kline_frame(c, k, closed))

    # --- venue hooks --------------------------------------------------------------------------
    def on_open(self, client: Client) -> None:  # noqa: B027 - optional hook
        """A connection opened (a venue may subscribe from the URL)."""

    @abstractmethod
    def on_message(self, client: Client, msg: Any, conn_no: int) -> list[str]:
        """Handle a client frame; frames to send back."""

    @abstractmethod
    def trade_frame(self, client: Client, t: Trade) -> str: ...

    @abstractmethod
    def kline_frame(self, client: Client, k: Kline, closed: bool) -> str: ...

    @abstractmethod
    def rest(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]: ...

    # --- mounted on a fake venue's aiohttp app ---------------------------------------------------
    def mount(self, app: web.Application, paths: Iterable[str]) -> None:
        """Serve this stream's websocket at ``paths`` of ``app`` (a fake trading venue's
        own port); the market runs while the app runs. Call before the app starts."""
        for path in paths:
            app.router.add_get(path, self.handle_aiohttp)

        async def started(_app: web.Application) -> None:
            self.start_market()

        async def shutting_down(_app: web.Application) -> None:
            # Before aiohttp waits for its handlers: open websockets would hold it up.
            await self.stop()

        app.on_startup.append(started)
        app.on_shutdown.append(shutting_down)

    def mount_on_venue(self, fake: Any, paths: Iterable[str]) -> None:
        """Mount on a fake trading venue (``FakeBinance``, ``FakeBybit``) and make this
        stream its market: every trade moves the symbol's last price (what a market order
        fills at) and every closed kline is pushed as the bar resting orders match
        against, with its own open and close times (what the venue's REST klines serve)."""
        specs = fake.exchange.symbols

        def on_trade(t: Trade) -> None:
            spec = specs[t.symbol]
            spec.price = max(spec.tick_size, t.price - t.price % spec.tick_size)

        def on_bar_closed(k: Kline) -> None:
            fake.push_bar(
                k.symbol,
                k.open,
                k.high,
                k.low,
                k.close,
                k.volume,
                start_ms=k.start_ms,
                end_ms=k.end_ms,
            )

        self.on_trade = on_trade
        self.on_bar_closed = on_bar_closed
        self.mount(fake.app, paths)
        fake.market_stream = self

    async def handle_aiohttp(self, request: web.Request) -> web.WebSocketResponse:
        """One websocket connection upgraded by an aiohttp app (see :meth:`mount`)."""
        ws = web.WebSocketResponse(heartbeat=self.server_ping_interval, max_msg_size=2**20)
        await ws.prepare(request)
        await self._serve(_AiohttpConn(ws, request), request.path_qs)
        return ws

    # --- REST over a small HTTP/1.1 server ------------------------------------------------------
    @property
    def venue_url(self) -> str:
        """``http://127.0.0.1:port`` serving REST and (upgraded) the websocket alike."""
        return self.rest_url

    async def _pipe_to_ws(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            writer.transport.abort()  # the websocket side is down (restart): refused
            return
        up_w.write(head)
        await asyncio.gather(_copy(reader, up_w), _copy(up_r, writer))

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            if headers.get("upgrade", "").lower() == "websocket":
                # One port for REST and websocket (like --venue-url http://host:port).
                await self._pipe_to_ws(head, reader, writer)
                return
            n = int(headers.get("content-length", "0") or 0)
            raw = await reader.readexactly(n) if n else b""
            parts = urlsplit(target)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            body = json.loads(raw) if raw else None
            self.rest_requests.append((method, parts.path, {**query, **(body or {})}))
            if self.rest_fail:
                status, payload = 503, {"msg": "service unavailable"}
            else:
                status, payload = self.rest(method, parts.path, query, body)
            data = json.dumps(payload).encode()
            reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ValueError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class _AiohttpConn:
    """An aiohttp websocket through the few calls the fake makes of a ``websockets``
    connection (send, close, iterate text frames, its transport for faults)."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self._ws = ws
        self.transport = request.transport

    async def send(self, frame: str) -> None:
        await self._ws.send_str(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code=code, message=reason.encode())

    async def __aiter__(self) -> Any:
        async for msg in self._ws:
            if msg.type is WSMsgType.TEXT:
                yield msg.data
            elif msg.type is WSMsgType.BINARY:
                yield msg.data.decode("utf-8", "replace")
            else:
                return


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        dst.close()


def dec(d: Decimal) -> str:
    """A venue's decimal string (no exponent)."""
    return format(d, "f")


def main(argv: list[str] | None = None) -> None:
    """Run a fake venue's market stream until Ctrl-C: an offline playground.

    ``python -m rustybt.testing.venues.market_sim binance --port 9443 --rest-port 9444``
    """
    import argparse
    import importlib

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("venue", choices=["binance", "bybit", "hyperliquid"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--rest-port", type=int, default=0)
    p.add_argument("--rate", type=float, default=20.0, help="trades per second per symbol")
    p.add_argument("--bar-seconds", type=float, default=60.0, help="length of a '1m' kline")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    mod = importlib.import_module(f"rustybt.testing.venues.{args.venue}.market_stream")
    cls = next(
        v
        for v in vars(mod).values()
        if isinstance(v, type) and issubclass(v, MarketStreamServer) and v.venue == args.venue
    )

    async def run() -> None:
        server = cls(
            rate=args.rate,
            bar_seconds=args.bar_seconds,
            seed=args.seed,
            port=args.port,
            rest_port=args.rest_port,
        )
        await server.start()
        print(f"{args.venue} market stream: {server.url}  REST: {server.rest_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":  # pragma: no cover - manual playground
    main()
