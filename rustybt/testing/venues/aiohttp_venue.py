"""What every aiohttp fake venue shares: lifecycle, user-stream faults, admin routes.

A fake venue (the fake Bybit, the fake Hyperliquid) is a real aiohttp server on
127.0.0.1 in front of the shared fake exchange
(:class:`~rustybt.testing.venues.binance.exchange.FakeExchange`). :class:`AiohttpVenue`
holds the parts that do not depend on the venue's wire format:

* ``start()`` / ``stop()`` (or ``async with``), ``base_url`` / ``ws_url``, loopback only;
* the user streams (websocket -> the channels it subscribed to) and the stream faults of
  the shared :class:`~rustybt.testing.venues.binance.faults.Faults`: a dropped connection
  (transport aborted, no close frame), a stall (messages held, then delivered in order),
  garbage frames;
* ``_publish(channel, data)``, which sends the venue's frame (:meth:`frame`) to every
  stream subscribed to ``channel`` unless a stall holds it;
* a seeded random-walk bar per symbol (``rustybt venue serve``);
* the admin routes (not the venue's): ``POST /_fake/fault``, ``POST /_fake/bar``,
  ``GET /_fake/state``.

A venue subclass builds its own routes in ``_build_app`` (calling :meth:`_admin_routes`)
and implements :meth:`frame`, :meth:`push_bar` and :meth:`state`.
"""

from __future__ import annotations

import asyncio
import random
import time
from decimal import Decimal
from typing import Any

from aiohttp import web

from rustybt.testing.venues.binance.exchange import FakeExchange, SymbolSpec, VenueError
from rustybt.testing.venues.binance.faults import Faults

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class AiohttpVenue:
    """Base of the aiohttp fake venues (see the module docstring)."""

    exchange: FakeExchange
    app: web.Application

    def _init_venue(self, host: str, port: int) -> None:
        if host not in LOOPBACK:
            raise ValueError("the fake venue listens on loopback only (127.0.0.1)")
        self.host = host
        self.port = port
        self.faults = Faults()
        self.faults._drop = self._drop_streams
        self.faults._stall = self._stall_streams
        self.faults._garbage = self._garbage
        self._streams: dict[web.WebSocketResponse, set[str]] = {}
        self._stall_until = 0.0
        self._held: list[tuple[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._walk_task: asyncio.Task[None] | None = None

    # --- what a venue supplies ---
    def frame(self, channel: str, data: Any) -> str:
        """The venue's websocket frame carrying ``data`` on ``channel``."""
        raise NotImplementedError

    def push_bar(
        self,
        symbol: str,
        open_: Decimal | str,
        high: Decimal | str,
        low: Decimal | str,
        close: Decimal | str,
        volume: Decimal | str | None = None,
    ) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """The venue's books as JSON (for tests and harnesses in another process)."""
        raise NotImplementedError

    def walk_price(self, spec: SymbolSpec, price: Decimal) -> Decimal:
        """A random-walk price as the venue would quote it (default: on the tick)."""
        return max(spec.tick_size, (price / spec.tick_size).quantize(Decimal(1)) * spec.tick_size)

    # --- lifecycle ---
    async def start(self) -> Any:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._walk_task is not None:
            self._walk_task.cancel()
        for ws in list(self._streams):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Any:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start_random_walk(
        self, interval: float = 1.0, seed: int = 0, steps: int | None = None
    ) -> None:
        """A seeded random-walk bar per symbol every ``interval`` s (``venue serve``)."""
        rng = random.Random(seed)

        async def walk() -> None:
            n = 0
            while steps is None or n < steps:
                await asyncio.sleep(interval)
                n += 1
                for sym, spec in self.exchange.symbols.items():
                    o = spec.price
                    c = self.walk_price(spec, o * Decimal(1 + rng.gauss(0, 0.001)))
                    self.push_bar(sym, o, max(o, c), min(o, c), c)

        self._walk_task = asyncio.get_running_loop().create_task(walk())

    # --- user streams ---
    def _publish(self, channel: str, data: Any) -> None:
        if time.monotonic() < self._stall_until:
            self._held.append((channel, data))
            return
        self._send_all(channel, data)

    def _send_all(self, channel: str, data: Any) -> None:
        msg = self.frame(channel, data)
        for ws, subs in list(self._streams.items()):
            if channel in subs and not ws.closed:
                asyncio.ensure_future(self._send(ws, msg))

    @staticmethod
    async def _send(ws: web.WebSocketResponse, text: str) -> None:
        try:
            await ws.send_str(text)
        except (ConnectionError, RuntimeError):
            pass

    def _drop_streams(self) -> int:
        n = 0
        for ws in list(self._streams):
            transport = ws._req.transport if ws._req is not None else None  # type: ignore[attr-defined]
            if transport is not None:
                transport.abort()  # no close frame: the way a connection really dies
                n += 1
            self._streams.pop(ws, None)
        return n

    def _stall_streams(self, seconds: float) -> None:
        self._stall_until = time.monotonic() + seconds

        async def release() -> None:
            await asyncio.sleep(seconds)
            held, self._held = self._held, []
            for channel, data in held:
                self._send_all(channel, data)

        asyncio.get_running_loop().create_task(release())

    def _garbage(self, n: int) -> None:
        for ws in list(self._streams):
            for i in range(n):
                asyncio.ensure_future(self._send(ws, f"\x00garbage frame {i} {{not json"))

    # --- admin (not the venue's) ---
    def _admin_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/_fake/fault", self._admin_fault)
        router.add_post("/_fake/bar", self._admin_bar)
        router.add_get("/_fake/state", self._admin_state)

    async def _admin_fault(self, request: web.Request) -> web.Response:
        try:
            self.faults.apply(await request.json())
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _admin_bar(self, request: web.Request) -> web.Response:
        b = await request.json()
        try:
            self.push_bar(b["symbol"], b["open"], b["high"], b["low"], b["close"], b.get("volume"))
        except (KeyError, ArithmeticError, VenueError) as exc:
            return web.json_response({"error": f"bad bar: {exc}"}, status=400)
        return web.json_response({"ok": True})

    async def _admin_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())
