"""Hyperliquid perpetuals as assets, and Hyperliquid's price rule.

From ``metaAndAssetCtxs``' universe (ccxt keeps the row in ``market["info"]``): a
market is named by its coin (``BTC``), which is also what orders, fills and positions
carry. ``szDecimals`` fixes the size step (``10**-szDecimals``) and the most decimals a
price may have (``6 - szDecimals``: that is the asset's ``tick_size``); every order is
worth at least 10 USDC. Prices also have at most **5 significant figures**, unless
they are whole numbers (always allowed): :func:`check_price` enforces that, naming the
rule and the nearest valid price.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from rustybt.assets import Asset, Crypto
from rustybt.exceptions import InvalidOrder

MAX_DECIMALS = 6  # perpetuals (spot: 8)
SIG_FIGS = 5
MIN_ORDER_VALUE = Decimal(10)


def instrument(market: dict[str, Any]) -> Asset | None:
    info = market.get("info") or {}
    if info.get("isDelisted") or not market.get("swap"):
        return None
    try:
        sz = int(info["szDecimals"])
        name = str(info["name"])
    except (KeyError, TypeError, ValueError):
        return None
    return Crypto(
        name,
        exchange="HYPERLIQUID",
        quote_currency="USDC",
        tick_size=Decimal(1).scaleb(-(MAX_DECIMALS - sz)),
        lot_size=Decimal(1).scaleb(-sz),
        min_notional=MIN_ORDER_VALUE,
    )


def significant_figures(price: Decimal) -> int:
    digits = price.normalize().as_tuple().digits
    return len(digits)


def nearest_valid_price(tick_size: Decimal, price: Decimal) -> Decimal:
    """``price`` rounded to 5 significant figures and to the tick (the coin's decimals; a
    price of six or more integer digits is rounded to a whole number, always valid)."""
    exponent = max(price.adjusted() - (SIG_FIGS - 1), tick_size.as_tuple().exponent)
    exponent = min(exponent, 0)
    return price.quantize(Decimal(1).scaleb(exponent), ROUND_HALF_EVEN)


def check_price(asset: Asset, name: str, price: Decimal) -> None:
    if price == price.to_integral_value():
        return
    n = significant_figures(price)
    if n > SIG_FIGS:
        raise InvalidOrder(
            f"significant figures: {name}={price} for {asset.symbol} has {n} significant "
            f"figures; Hyperliquid allows at most {SIG_FIGS} (whole-number prices are always "
            f"allowed); the nearest valid price is {nearest_valid_price(asset.tick_size, price)}"
        )
