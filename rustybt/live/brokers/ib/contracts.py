"""Assets as IB contracts, and IB's floats as exact Decimals.

* :class:`~rustybt.assets.Equity` → a stock routed ``SMART`` with the asset's exchange as
  primary exchange (IB needs it to tell e.g. NASDAQ's from a foreign listing).
* :class:`~rustybt.assets.Future` → a future by its local symbol (``ESZ6``) on the asset's
  exchange; the symbol must name one contract month, since IB does not trade a
  continuous future.
* :class:`~rustybt.assets.Forex` → a cash pair ``EUR.USD`` on IDEALPRO.

Tick size and size increment come from the contract details TWS returns, not from the
bundle's defaults. ``ib_async`` hands numbers over as floats; they are converted through
their shortest ``repr`` (the decimal string TWS sent), never through their binary
expansion, so ``190.1`` stays ``Decimal("190.1")``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ib_async import Contract, Forex, Future, Stock

from rustybt.assets import Asset, Equity
from rustybt.assets import Forex as ForexAsset
from rustybt.assets import Future as FutureAsset
from rustybt.exceptions import InvalidOrder, MalformedVenueMessage

_UNSET_DOUBLE = 1.7976931348623157e308


def ib_decimal(value: Any, *, what: str = "number") -> Decimal:
    """An ``ib_async`` number (float, int or str) as the exact Decimal TWS sent."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or value == _UNSET_DOUBLE:
            raise MalformedVenueMessage(f"TWS sent no usable {what} ({value!r})")
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except Exception as exc:
        raise MalformedVenueMessage(f"TWS sent {what}={value!r}, not a number") from exc


def wire_decimal(value: Decimal) -> Decimal:
    """A Decimal that ``ib_async`` writes to the wire in plain notation (``str`` of it)."""
    return Decimal(format(value, "f"))


def contract_for(asset: Asset) -> Contract:
    """The (unqualified) IB contract that names ``asset``."""
    if isinstance(asset, ForexAsset):
        pair = asset.symbol.replace(".", "").replace("/", "")
        if len(pair) != 6:
            raise InvalidOrder(
                f"forex symbol {asset.symbol!r} is not a pair; write it as BASE.QUOTE, e.g. EUR.USD"
            )
        return Forex(pair, exchange=asset.exchange or "IDEALPRO")
    if isinstance(asset, FutureAsset):
        return Future(
            localSymbol=asset.symbol, exchange=asset.exchange, currency=asset.quote_currency
        )
    if isinstance(asset, Equity) or type(asset) is Asset:
        return Stock(
            asset.symbol,
            "SMART",
            asset.quote_currency,
            primaryExchange=asset.exchange,
        )
    raise InvalidOrder(
        f"{type(asset).__name__} {asset.symbol} cannot be traded at Interactive Brokers through "
        "RustyBT; use an Equity, a Future or a Forex asset"
    )


def asset_for(contract: Contract, details: Any | None = None) -> Asset:
    """An asset for a contract TWS reported (a position or execution we did not place)."""
    tick = ib_decimal(details.minTick, what="minTick") if details is not None else None
    lot = None
    if details is not None and getattr(details, "sizeIncrement", 0):
        lot = ib_decimal(details.sizeIncrement, what="sizeIncrement")
    if contract.secType == "CASH":
        return ForexAsset(f"{contract.symbol}.{contract.currency}", tick_size=tick, lot_size=lot)
    if contract.secType == "FUT":
        return FutureAsset(
            contract.localSymbol or contract.symbol,
            exchange=contract.exchange or None,
            quote_currency=contract.currency or None,
            tick_size=tick,
            lot_size=lot,
            multiplier=contract.multiplier or None,
        )
    return Equity(
        contract.symbol,
        exchange=contract.primaryExchange or contract.exchange or None,
        quote_currency=contract.currency or None,
        tick_size=tick,
        lot_size=lot,
    )
