"""The local control channel of a running engine: halt, resume and status from outside.

A Unix socket at ``<state_dir>/control/<strategy>.sock`` with owner-only permissions
(0600, in a 0700 folder), speaking one JSON object per line:
``{"cmd": "halt", "reason": ..., "operator": ...}``, ``{"cmd": "resume", "operator": ...}``,
``{"cmd": "status"}``. ``rustybt live halt|resume|status`` are its clients. A halt trips
the engine's manual circuit breaker (adding one if the engine has none), which cancels
pending orders and blocks new submissions at once; the reply comes only once the halt is
on disk (the engine's halt file, fsynced), so a killed engine comes back halted. A resume
releases every tripped breaker and halt, with the operator and reason in the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from rustybt.exceptions import ConfigError, RustyBTError
from rustybt.live.circuit_breakers import CircuitBreakerType, ManualCircuitBreaker


def socket_path(state_dir: Path, strategy: str) -> Path:
    return Path(state_dir) / f"{strategy}.sock"


def manual_breaker(engine: Any) -> ManualCircuitBreaker:
    for b in engine.circuit_breakers.breakers:
        if b.breaker_type is CircuitBreakerType.MANUAL:
            return b
    breaker = ManualCircuitBreaker()
    engine.circuit_breakers.add_breaker(breaker)
    return breaker


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


class ControlServer:
    """Serves control commands for one engine on a Unix socket."""

    def __init__(self, engine: Any, directory: Path) -> None:
        self.engine = engine
        self.directory = Path(directory)
        self.path = socket_path(self.directory, engine.strategy_name)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        if self.path.exists():
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._handle, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            try:
                reply = await self.execute(json.loads(line or b"{}"))
            except (ValueError, RustyBTError) as exc:
                reply = {"ok": False, "error": str(exc)}
            writer.write(json.dumps(reply, default=_json_default).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def execute(self, msg: dict[str, Any]) -> dict[str, Any]:
        engine = self.engine
        cmd = msg.get("cmd")
        if cmd == "status":
            return {"ok": True, "status": engine.get_status()}
        if cmd == "halt":
            reason, operator = msg.get("reason") or "", msg.get("operator") or ""
            if not reason or not operator:
                raise ConfigError("halt needs --reason and --operator")
            await engine.halt(reason=reason, operator=operator)
            return {"ok": True, "halted": True, "durable": True, "status": engine.get_status()}
        if cmd == "resume":
            operator = msg.get("operator") or ""
            if not operator:
                raise ConfigError("resume needs --operator")
            await engine.resume(operator=operator, reason=msg.get("reason") or "")
            return {"ok": True, "halted": False, "status": engine.get_status()}
        raise ConfigError(f"unknown control command {cmd!r}; use halt, resume or status")


async def send_command(path: Path, msg: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Client side: send one command to a running engine and return its reply."""
    if not Path(path).exists():
        raise ConfigError(
            f"no running engine at {path}: start `rustybt live` first, or pass the same "
            "--state-dir and --strategy-name it uses"
        )
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), timeout)
    try:
        writer.write(json.dumps(msg).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    return json.loads(line)
