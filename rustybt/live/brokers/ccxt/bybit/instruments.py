"""Bybit instruments: tick, lot and minimum notional from ``/v5/market/instruments-info``.

Read from the raw row ccxt keeps in ``market["info"]`` (strings -> ``Decimal``):
``priceFilter.tickSize``; ``lotSizeFilter.qtyStep`` (linear) or ``basePrecision`` (spot);
``lotSizeFilter.minNotionalValue`` (linear) or ``minOrderAmt`` (spot). Only ``Trading``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rustybt.assets import Asset, Crypto


def instrument(market: dict[str, Any], category: str) -> Asset | None:
    info = market.get("info") or {}
    if info.get("status") != "Trading":
        return None
    if category == "spot" and not market.get("spot"):
        return None
    if category == "linear" and not (market.get("linear") and market.get("swap")):
        return None
    price_filter = info.get("priceFilter") or {}
    lot = info.get("lotSizeFilter") or {}
    try:
        tick = Decimal(str(price_filter["tickSize"])).normalize()
        step = lot.get("qtyStep") if category == "linear" else lot.get("basePrecision")
        step_size = Decimal(str(step)).normalize()
    except (KeyError, TypeError, ArithmeticError):
        return None
    notional = lot.get("minNotionalValue") if category == "linear" else lot.get("minOrderAmt")
    return Crypto(
        str(info["symbol"]),
        exchange="BYBIT" if category == "spot" else "BYBIT_LINEAR",
        quote_currency=str(info.get("quoteCoin", "USDT")),
        tick_size=tick,
        lot_size=step_size,
        min_notional=Decimal(str(notional or "0")).normalize(),
    )
