"""Binance instruments: tick size, lot size and minimum notional from exchangeInfo.

Read from the raw filters ccxt keeps in ``market["info"]`` (strings → ``Decimal``):
``PRICE_FILTER.tickSize``, ``LOT_SIZE.stepSize``, and ``NOTIONAL.minNotional`` (spot) or
``MIN_NOTIONAL.notional`` (USDⓈ-M futures). Only symbols with status ``TRADING``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rustybt.assets import Asset, Crypto


def instrument(market: dict[str, Any], market_type: str) -> Asset | None:
    info = market.get("info") or {}
    if info.get("status") != "TRADING":
        return None
    if market_type == "spot" and not market.get("spot"):
        return None
    if market_type == "futures" and not (market.get("linear") and market.get("swap")):
        return None
    filters = {f.get("filterType"): f for f in info.get("filters", [])}
    try:
        tick = Decimal(filters["PRICE_FILTER"]["tickSize"]).normalize()
        lot = Decimal(filters["LOT_SIZE"]["stepSize"]).normalize()
    except (KeyError, ArithmeticError):
        return None
    notional = (
        filters.get("NOTIONAL", {}).get("minNotional")
        or filters.get("MIN_NOTIONAL", {}).get("notional")
        or filters.get("MIN_NOTIONAL", {}).get("minNotional")
        or "0"
    )
    return Crypto(
        str(info["symbol"]),
        exchange="BINANCE" if market_type == "spot" else "BINANCE_FUTURES",
        quote_currency=str(info.get("quoteAsset", "USDT")),
        tick_size=tick,
        lot_size=lot,
        min_notional=Decimal(notional).normalize(),
    )
