"""The asyncio event loop a live session runs on.

``uvloop`` (libuv) when it is installed: on the live benchmark it cuts the engine's CPU
per pushed event by about a fifth, all of it in the loop's own wake-up and scheduling
(docs/performance.md). The stock loop otherwise, or when the operator asks for it with
``RUSTYBT_EVENT_LOOP=asyncio`` (e.g. to rule the loop out while debugging). The engine
itself uses only the public asyncio API, so it behaves the same on both.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from rustybt.exceptions import ConfigError

T = TypeVar("T")

ENV_VAR = "RUSTYBT_EVENT_LOOP"
_CHOICES = ("auto", "uvloop", "asyncio")


def loop_factory() -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """(name, factory) for the loop chosen by ``RUSTYBT_EVENT_LOOP`` (default ``auto``:
    uvloop if importable, else the stock loop, whose factory is None)."""
    choice = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if choice not in _CHOICES:
        raise ConfigError(
            f"{ENV_VAR}={os.environ.get(ENV_VAR)!r} is not one of {', '.join(_CHOICES)}; "
            f"unset it (auto: uvloop when installed) or set {ENV_VAR}=asyncio"
        )
    if choice == "asyncio":
        return "asyncio", None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(
                f"{ENV_VAR}=uvloop but uvloop is not installed; install it "
                f"(pip install uvloop) or set {ENV_VAR}=asyncio"
            ) from None
        return "asyncio", None
    return "uvloop", uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the chosen loop."""
    _, factory = loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
