"""Hyperliquid's user stream: the public websocket (``/ws``), subscribed per user.

There is no authentication: ccxt.pro's ``watch_my_trades`` sends ``{"method":
"subscribe", "subscription": {"type": "userFills", "user": <address>}}`` and
``watch_orders`` the same with ``orderUpdates``. Pushes are ``{"channel": "userFills",
"data": {"user", "fills": [...], "isSnapshot"?}}`` and ``{"channel": "orderUpdates",
"data": [{"order": {...}, "status", "statusTimestamp"}]}``; ccxt hands each fill / order
entry on as ``info`` and this module reads it (a fill has ``tid``).
"""

from __future__ import annotations

from typing import Any

from rustybt.live.brokers.ccxt.hyperliquid.execution import parse_order, parse_trade
from rustybt.live.brokers.ccxt.venue import FillView, OrderView


def stream_url(ex: Any) -> str:
    return str(ex.urls["api"]["ws"]["public"])


async def open_user_stream(ex: Any) -> None:
    """Return once the websocket is open (the subscriptions follow from the watchers)."""
    ex.open()
    client = ex.client(stream_url(ex))
    await client.connect(ex.session, 0)


def parse_stream_event(raw: dict[str, Any]) -> tuple[OrderView | None, FillView | None]:
    if "tid" in raw:
        return None, parse_trade(raw)
    if isinstance(raw.get("order"), dict) and "status" in raw:
        return parse_order(raw), None
    return None, None
