"""Routes each engine event to its handler by type.

Kept separate from the engine so the routing table is one readable place, and so a
handler can be swapped in tests. Dispatch is a dict lookup on the event's class.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rustybt.live.events import Event

Handler = Callable[[Any], Awaitable[None] | None]


class EventDispatcher:
    """Maps event classes to handlers; sync handlers are called, async ones awaited."""

    def __init__(self) -> None:
        self._sync: dict[type, Callable[[Any], None]] = {}
        self._async: dict[type, Callable[[Any], Awaitable[None]]] = {}

    def register(self, event_type: type[Event], handler: Handler, is_async: bool = False) -> None:
        if is_async:
            self._async[event_type] = handler  # type: ignore[assignment]
        else:
            self._sync[event_type] = handler  # type: ignore[assignment]

    async def dispatch(self, event: Event) -> None:
        cls = event.__class__
        handler = self._sync.get(cls)
        if handler is not None:
            handler(event)
            return
        ahandler = self._async.get(cls)
        if ahandler is not None:
            await ahandler(event)
            return
        raise LookupError(f"no handler registered for {cls.__name__}")

    def dispatch_sync(self, event: Event) -> bool:
        """Run a sync handler inline; False when the event needs the async path."""
        handler = self._sync.get(event.__class__)
        if handler is None:
            return False
        handler(event)
        return True
