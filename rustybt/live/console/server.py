"""The console's HTTP server: JSON API, live event stream, dashboard and ``/metrics``.

Served with aiohttp on the engine's own event loop. Handlers only read the engine's
state (a dictionary copy, no locks needed: the loop runs one thing at a time) or call the
same halt/resume as the control socket, so serving never blocks trading; the one file
read (the audit tail) runs in a worker thread.

Endpoints (all need the token, ``Authorization: Bearer <token>`` or ``?token=``):

=========================  ==============================================================
``GET /``                  the dashboard (one page, no external assets)
``GET /api/status``        ``engine.get_status()``
``GET /api/positions``     positions with marks and unrealised PnL
``GET /api/orders``        open orders
``GET /api/fills``         the most recent fills (newest last)
``GET /api/breakers``      circuit breaker states
``GET /api/reconciliation``  the last reconciliation report
``GET /api/equity``        portfolio value sampled each ``event_interval`` and drawdown
                           (at most 500 points)
``GET /api/shadow``        the shadow report (404 when shadow trading is off)
``GET /api/audit``         the audit log's last lines
``GET /api/events``        server-sent events: the status once a second
``POST /api/halt``         ``{"reason": ..., "operator": ...}``: manual halt
``POST /api/resume``       ``{"reason": ..., "operator": ...}``: resume (409 while
                           reconciliation still fails)
``GET /metrics``           Prometheus text format
=========================  ==============================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from rustybt.exceptions import ConfigError
from rustybt.live.console.auth import load_or_create_token, token_matches, token_path
from rustybt.live.console.metrics import registry_for, render
from rustybt.live.events import OrderFillEvent

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_MAX_POINTS = 500


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, set | frozenset | tuple | deque):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "symbol"):
        return obj.symbol
    return str(obj)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, default=_default), status=status, content_type="application/json"
    )


class ConsoleServer:
    """``await start()`` on the engine's loop; ``url`` then says where to point a browser."""

    def __init__(
        self,
        engine: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 8787,
        allow_remote: bool = False,
        event_interval: float = 1.0,
        recent_fills: int = 200,
    ) -> None:
        if host not in LOOPBACK and not allow_remote:
            raise ConfigError(
                f"the console binds to {host}, which other machines can reach; pass "
                "allow_remote=True (--dashboard-allow-remote) if you mean it, and put it "
                "behind TLS"
            )
        if not 0 <= port < 65536:
            raise ConfigError(f"dashboard port {port} is not a TCP port (0-65535)")
        self.engine = engine
        self.host = host
        self.port = port
        self.allow_remote = allow_remote
        self.event_interval = event_interval
        self.token = load_or_create_token(engine.state_dir)
        self.token_file = token_path(engine.state_dir)
        self.fills: deque[dict[str, Any]] = deque(maxlen=recent_fills)
        # Portfolio value sampled by the console itself (the engine keeps one per day):
        # (unix time, value), the newest _MAX_POINTS * 4 samples.
        self.equity: deque[tuple[float, Decimal]] = deque(maxlen=_MAX_POINTS * 4)
        self._sampler: asyncio.Task[None] | None = None
        self.registry, self.latency = registry_for(engine)
        self._runner: web.AppRunner | None = None
        self._hook_fills()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth])
        r = app.router
        r.add_get("/", self._dashboard)
        r.add_get("/api/status", self._status)
        r.add_get("/api/positions", self._positions)
        r.add_get("/api/orders", self._orders)
        r.add_get("/api/fills", self._fills)
        r.add_get("/api/breakers", self._breakers)
        r.add_get("/api/reconciliation", self._reconciliation)
        r.add_get("/api/equity", self._equity)
        r.add_get("/api/shadow", self._shadow)
        r.add_get("/api/audit", self._audit)
        r.add_get("/api/events", self._events)
        r.add_post("/api/halt", self._halt)
        r.add_post("/api/resume", self._resume)
        r.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._sampler = asyncio.create_task(self._sample_equity(), name="console-equity")

    async def _sample_equity(self) -> None:
        loop = asyncio.get_running_loop()
        engine = self.engine
        while True:
            if engine.get_status()["running"] and engine.reconciliation_state != "unknown":
                # Only once the ledger is seeded from the broker (or a checkpoint).
                self.equity.append((loop.time(), engine.ledger.portfolio_value))
            await asyncio.sleep(self.event_interval)

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- plumbing ----------------------------------------------------------------------------
    def _hook_fills(self) -> None:
        """Keep the most recent applied fills (wraps the engine's fill handler)."""
        dispatcher = self.engine._dispatcher
        original = dispatcher._sync[OrderFillEvent]
        fills = self.fills

        def on_fill(ev: OrderFillEvent) -> Any:
            applied = original(ev)
            if applied is not False:
                fills.append(
                    {
                        "client_order_id": ev.client_order_id,
                        "asset": ev.asset.symbol,
                        "amount": ev.amount,
                        "price": ev.price,
                        "commission": ev.commission,
                        "fill_id": ev.fill_id,
                        "dt": ev.dt,
                    }
                )
            return applied

        dispatcher.register(OrderFillEvent, on_fill)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else request.query.get("token")
        if not token_matches(self.token, given):
            return web.json_response(
                {"error": f"missing or wrong token; it is in {self.token_file}"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="rustybt"'},
            )
        try:
            return await handler(request)
        except ConfigError as exc:
            return _json({"error": str(exc)}, status=400)

    # --- read endpoints ------------------------------------------------------------------------
    async def _dashboard(self, request: web.Request) -> web.Response:
        page = resources.files("rustybt.live.console").joinpath("dashboard.html").read_text()
        return web.Response(text=page, content_type="text/html")

    async def _status(self, request: web.Request) -> web.Response:
        return _json(self.engine.get_status())

    async def _positions(self, request: web.Request) -> web.Response:
        out = []
        for asset, pos in self.engine.ledger.positions.items():
            value = pos.amount * pos.last_price * asset.multiplier
            out.append(
                {
                    "asset": asset.symbol,
                    "amount": pos.amount,
                    "cost_basis": pos.cost_basis,
                    "last_price": pos.last_price,
                    "market_value": value,
                    "unrealized_pnl": value - pos.amount * pos.cost_basis * asset.multiplier,
                }
            )
        return _json(out)

    async def _orders(self, request: web.Request) -> web.Response:
        return _json(
            [
                {
                    "client_order_id": o.id,
                    "broker_order_id": o.broker_order_id,
                    "asset": o.asset.symbol,
                    "amount": o.amount,
                    "filled": o.filled,
                    "type": o.order_type,
                    "limit_price": o.limit_price,
                    "stop_price": o.stop_price,
                    "status": o.status,
                }
                for o in self.engine.order_manager.open_orders()
            ]
        )

    async def _fills(self, request: web.Request) -> web.Response:
        return _json(list(self.fills))

    async def _breakers(self, request: web.Request) -> web.Response:
        return _json(self.engine.circuit_breakers.get_status())

    async def _reconciliation(self, request: web.Request) -> web.Response:
        report = self.engine.last_reconciliation
        return _json(
            {
                "state": self.engine.reconciliation_state,
                "report": report.to_dict() if report is not None else None,
            }
        )

    async def _equity(self, request: web.Request) -> web.Response:
        values = [v for _, v in self.equity]
        step = max(1, len(values) // _MAX_POINTS)
        points, peak = [], None
        for i in range(0, len(values), step):
            v = values[i]
            peak = v if peak is None or v > peak else peak
            dd = (peak - v) / peak if peak else Decimal(0)
            points.append({"i": i, "value": v, "drawdown": dd})
        return _json({"points": points, "max_drawdown": self.engine.max_drawdown})

    async def _shadow(self, request: web.Request) -> web.Response:
        try:
            report = self.engine.get_shadow_report()
        except ConfigError as exc:
            return _json({"error": str(exc)}, status=404)
        return _json(report)

    async def _audit(self, request: web.Request) -> web.Response:
        try:
            n = min(max(int(request.query.get("lines", "50")), 1), 1000)
        except ValueError:
            raise ConfigError("lines must be a whole number") from None
        path: Path = self.engine.audit.path
        lines = await asyncio.to_thread(_tail, path, n)
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return _json(out)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        try:
            while True:
                payload = json.dumps(self.engine.get_status(), default=_default)
                await resp.write(f"event: status\ndata: {payload}\n\n".encode())
                await asyncio.sleep(self.event_interval)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    async def _metrics(self, request: web.Request) -> web.Response:
        body = render(self.registry)
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    # --- control -----------------------------------------------------------------------------
    async def _command(self, request: web.Request, cmd: str) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        reason = str(body.get("reason") or "").strip()
        if not reason:
            return _json({"error": f"{cmd} needs a reason"}, status=400)
        operator = str(body.get("operator") or "").strip() or f"dashboard@{request.remote}"
        from rustybt.live.control import ControlServer

        control = ControlServer(self.engine, self.engine.state_dir / "control")
        reply = await control.execute({"cmd": cmd, "reason": reason, "operator": operator})
        if cmd == "resume" and self.engine.reconciliation_state == "halted":
            return _json(
                {"error": "resume refused: reconciliation still finds discrepancies", **reply},
                status=409,
            )
        return _json(reply)

    async def _halt(self, request: web.Request) -> web.Response:
        return await self._command(request, "halt")

    async def _resume(self, request: web.Request) -> web.Response:
        return await self._command(request, "resume")


def _tail(path: Path, n: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 256 * n))
            return f.read().decode(errors="replace").splitlines()[-n:]
    except FileNotFoundError:
        return []
