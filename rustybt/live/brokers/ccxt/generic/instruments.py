"""Any ccxt venue: tick, lot and minimum notional from ccxt's unified market structure.

``market["precision"]`` is a tick size when the exchange class's ``precisionMode`` is
``TICK_SIZE`` and a number of decimals when it is ``DECIMAL_PLACES``; a venue whose
precision is in significant digits has no fixed tick, so its markets are skipped (the
adapter then says the instrument is unknown). ``limits.cost.min`` is the minimum
notional. Only active markets of the adapter's market type (spot, or linear swaps).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rustybt.assets import Asset, Crypto

_TICK_SIZE = 4
_DECIMAL_PLACES = 2


def _step(value: Any, mode: int) -> Decimal | None:
    if value in (None, ""):
        return None
    raw = Decimal(str(value))
    if mode == _DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(raw))
    if mode == _TICK_SIZE and raw > 0:
        return raw.normalize()
    return None


def instrument(
    market: dict[str, Any], market_type: str, precision_mode: int, exchange_id: str
) -> Asset | None:
    if market.get("active") is False:
        return None
    if market_type == "spot" and not market.get("spot"):
        return None
    if market_type == "swap" and not (market.get("swap") and market.get("linear")):
        return None
    precision = market.get("precision") or {}
    tick = _step(precision.get("price"), precision_mode)
    lot = _step(precision.get("amount"), precision_mode)
    if tick is None or lot is None:
        return None
    min_cost = ((market.get("limits") or {}).get("cost") or {}).get("min")
    return Crypto(
        str(market["id"]),
        exchange=f"CCXT_{exchange_id.upper()}" + ("" if market_type == "spot" else "_SWAP"),
        quote_currency=str(market.get("quote") or "USDT"),
        tick_size=tick,
        lot_size=lot,
        min_notional=Decimal(str(min_cost or "0")).normalize(),
    )
