"""Binance's user-data stream: subscribing, and reading its order events.

* Spot: the WebSocket API (``/ws-api/v3``) request ``userDataStream.subscribe.signature``
  (HMAC keys sign each request; the REST listenKey for spot was retired on 2026-02-20);
  events arrive wrapped as ``{"subscriptionId", "event"}``; ``executionReport`` carries
  the order state (``X``), the execution type (``x``), the trade id (``t``), last fill
  (``l`` at ``L``), fee ``n`` in asset ``N``; on a cancel ``c`` is the cancel request's
  own id and ``C`` the original client order id.
* USDⓈ-M futures: ``POST /fapi/v1/listenKey`` then the listenKey stream;
  ``ORDER_TRADE_UPDATE`` carries the same fields inside ``o``.

ccxt.pro keeps the connection; this module only tells it to subscribe and reads the
raw event (ccxt's ``info``), so no number passes through a float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rustybt.live.brokers.ccxt.binance.execution import _STATUS, _TYPES
from rustybt.live.brokers.ccxt.venue import FillView, OrderView


async def open_user_stream(ex: Any, market_type: str) -> None:
    if market_type == "spot":
        await ex.ensure_user_data_stream_ws_subscribe_signature("spot")
        return
    await ex.authenticate({"type": "future", "subType": "linear"})
    url = ex.get_private_ws_url("linear", ex.options["linear"]["listenKey"])
    client = ex.client(url)
    await client.connect(ex.session, 0)


def parse_stream_event(raw: dict[str, Any]) -> tuple[OrderView | None, FillView | None]:
    """``executionReport`` (spot) or the ``o`` of ``ORDER_TRADE_UPDATE`` (futures)."""
    if raw.get("e") == "ORDER_TRADE_UPDATE" and isinstance(raw.get("o"), dict):
        raw = raw["o"]
    if "i" not in raw or "X" not in raw:
        return None, None
    cid = str(raw.get("C") or "") or str(raw.get("c") or "")
    if raw.get("x") == "CANCELED" and raw.get("C"):
        cid = str(raw["C"])
    sign = 1 if str(raw.get("S", "BUY")).upper() == "BUY" else -1
    qty = Decimal(str(raw.get("q", "0")))
    filled = Decimal(str(raw.get("z", "0")))
    price = Decimal(str(raw.get("p", "0")))
    stop = Decimal(str(raw.get("P", raw.get("sp", "0")) or "0"))
    status = _STATUS.get(str(raw["X"]), "submitted")
    quote = raw.get("Z")
    view = OrderView(
        order_id=str(raw["i"]),
        client_id=cid,
        symbol=str(raw["s"]),
        amount=qty * sign,
        filled=filled * sign,
        order_type=_TYPES.get(str(raw.get("o")), "limit"),
        limit_price=price if price > 0 else None,
        stop_price=stop if stop > 0 else None,
        status=status,
        avg_price=(Decimal(str(quote)) / filled) if quote is not None and filled > 0 else None,
        reject_reason=str(raw.get("r") or "") if status == "rejected" else "",
    )
    fill = None
    if raw.get("x") == "TRADE":
        fill = FillView(
            fill_id=str(raw["t"]),
            order_id=str(raw["i"]),
            client_id=cid,
            symbol=str(raw["s"]),
            amount=Decimal(str(raw["l"])) * sign,
            price=Decimal(str(raw["L"])),
            fee=Decimal(str(raw.get("n") or "0")),
            fee_asset=str(raw.get("N") or ""),
            dt=datetime.fromtimestamp(int(raw.get("T", 0)) / 1000, UTC),
            final=status == "filled",
        )
    return view, fill
