"""Any ccxt venue: fills and order states, streamed (ccxt.pro) or polled.

Streaming (the exchange's ccxt.pro class has ``watchOrders`` and ``watchMyTrades``):
ccxt.pro opens and authenticates the private connection itself on the first watch, so
there is nothing to open beforehand and no way to know generically when the subscription
is active; the adapter's watchers hand every unified order and trade on, a resync runs
at every (re)connection, again 1 s later (what happened before the subscription took
effect) and then every 30 s as a safety net.

Polling (no such methods, or ``user_stream="poll"``): every ``poll_interval`` seconds
(1 s by default) the adapter asks for the open orders and, for each order of ours that
left that list or grew its filled amount, the order (``fetchOrder`` or the closed-order
list) and its trades (``fetchOrderTrades``, else ``fetchMyTrades`` filtered by order id).
A fill is therefore reported up to one interval (plus the requests' time) after it
happened; a failing poll is reported as a lost connection (new risk blocked) and a
succeeding one as its recovery.
"""

from __future__ import annotations

from typing import Any

from rustybt.live.brokers.ccxt.generic.execution import Symbols, parse_order, parse_trade
from rustybt.live.brokers.ccxt.venue import FillView, OrderView


def parse_stream_event(
    raw: dict[str, Any], symbols: Symbols
) -> tuple[OrderView | None, FillView | None]:
    """A unified order (it has ``status``) or a unified trade (it has ``takerOrMaker``
    or ``order`` without a status)."""
    if "status" in raw and raw.get("id") is not None:
        return parse_order(raw, symbols), None
    if raw.get("id") is not None and ("order" in raw or "takerOrMaker" in raw):
        return None, parse_trade(raw, symbols)
    return None, None
