"""``rustybt venue serve <venue>``: run a loopback fake venue for rehearsals and tests.

Each fake speaks its venue's real wire protocol on 127.0.0.1 only, so an adapter (or any
other client of that venue) can be pointed at it unchanged. ``FAKE_VENUES`` maps a venue
name to the module whose coroutine ``serve(port, *, interval, seed)`` runs it until
cancelled, and the venue's usual port.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
from collections.abc import Coroutine
from typing import Any

import typer

from rustybt.cli.errors import EXIT_USAGE, Interrupted, exit_with, front_door
from rustybt.exceptions import ConfigError

venue_app = typer.Typer(add_completion=False, help="Loopback fake venues for offline rehearsal.")

#: venue name -> (module with ``serve``, default port)
FAKE_VENUES: dict[str, tuple[str, int]] = {
    "ib": ("rustybt.testing.venues.ib.server", 7497),
    "binance": ("rustybt.testing.venues.binance.server", 8080),
    "bybit": ("rustybt.testing.venues.bybit.server", 8081),
    "hyperliquid": ("rustybt.testing.venues.hyperliquid.server", 8082),
}
#: venues whose fake takes ``--market-type``
MARKET_TYPES: dict[str, tuple[str, ...]] = {
    "binance": ("spot", "futures"),
    "bybit": ("linear", "spot"),
}


@venue_app.command("serve")
def serve(
    venue: str = typer.Argument(..., help="Which venue to fake: " + ", ".join(FAKE_VENUES)),
    port: int = typer.Option(None, help="TCP port on 127.0.0.1 (default: the venue's own)."),
    interval: float = typer.Option(1.0, help="Seconds between the fake market's bars."),
    seed: int = typer.Option(0, help="Seed of the fake market's random walk."),
    market_type: str = typer.Option(
        None, help="binance: spot or futures (USDⓈ-M); bybit: linear or spot."
    ),
) -> None:
    """Serve a fake venue on 127.0.0.1 until Ctrl-C."""
    with front_door(f"fake {venue} venue stopped"):
        entry = FAKE_VENUES.get(venue.lower())
        if entry is None:
            raise ConfigError(f"no fake venue {venue!r}; available: {', '.join(FAKE_VENUES)}")
        module, default_port = entry
        port = default_port if port is None else port
        if not 0 <= port < 65536:
            raise ConfigError(f"--port {port} is not a TCP port (0-65535)")
        if interval <= 0:
            raise ConfigError(f"--interval must be > 0 seconds, got {interval}")
        extra: dict[str, str] = {}
        if market_type is not None:
            allowed = MARKET_TYPES.get(venue.lower(), ())
            if market_type not in allowed:
                raise ConfigError(
                    f"--market-type {market_type!r} is not one of the {venue} fake's: "
                    f"{', '.join(allowed) or 'none'}"
                )
            extra["market_type"] = market_type
        run = importlib.import_module(module).serve
        try:
            sig = asyncio.run(_until_signal(run(port, interval=interval, seed=seed, **extra)))
        except OSError as exc:
            raise exit_with(
                f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; pick another --port",
                EXIT_USAGE,
            ) from None
        if sig is signal.SIGINT:
            raise KeyboardInterrupt
        if sig is not None:
            raise Interrupted(sig)


async def _until_signal(main: Coroutine[Any, Any, None]) -> signal.Signals | None:
    """Run ``main`` until it ends or SIGTERM/SIGINT cancels it; the signal, if any.

    The signal is taken on the event loop: an exception raised from a plain signal handler
    can land inside a socket write of one of the fake's many connections, where asyncio
    reports and swallows it, and the process would not stop.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    got: list[signal.Signals] = []

    def stop(sig: signal.Signals) -> None:
        got.append(sig)
        task.cancel()

    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop, sig)
            installed.append(sig)
    try:
        await task
    except asyncio.CancelledError:
        if not got:
            raise
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    return got[0] if got else None
