"""Bybit's private websocket (``/v5/private``): authenticating, and reading its rows.

ccxt.pro connects and sends ``{"op": "auth", "args": [key, expires, sign]}`` where
``sign`` is the HMAC-SHA256 of ``"GET/realtime" + expires``; ``watch_orders`` and
``watch_my_trades`` subscribe to the ``order`` and ``execution`` topics. Each push is
``{"topic", "id", "creationTime", "data": [rows]}``; ccxt hands each row on as ``info``
and this module reads it: an ``execution`` row (it has ``execId``) is one fill, an
``order`` row the order's state.
"""

from __future__ import annotations

from typing import Any

from rustybt.live.brokers.ccxt.bybit.execution import parse_order, parse_trade
from rustybt.live.brokers.ccxt.venue import FillView, OrderView


def private_url(ex: Any) -> str:
    return ex.implode_hostname(ex.urls["api"]["ws"]["private"]["contract"])


async def open_user_stream(ex: Any) -> None:
    await ex.authenticate(private_url(ex))


def parse_stream_event(
    raw: dict[str, Any], settle: str
) -> tuple[OrderView | None, FillView | None]:
    if "execId" in raw:
        if raw.get("execType", "Trade") != "Trade":
            return None, None  # funding, ADL, settlement: not a fill of an order
        return None, parse_trade(raw, settle)
    if "orderId" in raw and "orderStatus" in raw:
        return parse_order(raw), None
    return None, None
