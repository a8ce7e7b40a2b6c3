"""Tradable instruments and how to find them.

An :class:`Asset` carries everything needed to size and price an order on its venue:
tick size, lot size, minimum notional and contract multiplier, all as ``Decimal``.
:class:`AssetFinder` resolves symbols to assets with a clear error for unknown ones.
Assets compare and hash by ``(symbol, exchange)`` so they work as dict keys in
ledgers, bars and checkpoints; the hash is computed once, at construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

from rustybt.exceptions import InvalidOrder, SymbolNotFound

_D = Decimal


def _dec(name: str, value: Any) -> Decimal:
    if isinstance(value, float):
        # A float is accepted only through its shortest repr, never its binary expansion.
        value = repr(value)
    try:
        out = Decimal(value)
    except Exception as exc:
        raise InvalidOrder(f"{name}={value!r} is not a number; pass a Decimal or a string") from exc
    if not out.is_finite():
        raise InvalidOrder(f"{name}={value!r} is not finite; pass a finite Decimal")
    return out


class Asset:
    """A tradable instrument. Only ``symbol`` is required; the rest default sensibly."""

    asset_class = "equity"
    _defaults: dict[str, Any] = {
        "exchange": "NYSE",
        "quote_currency": "USD",
        "tick_size": "0.01",
        "lot_size": "1",
        "min_notional": "0",
        "multiplier": "1",
        "calendar": "XNYS",
    }

    __slots__ = (
        "sid",
        "symbol",
        "exchange",
        "quote_currency",
        "tick_size",
        "lot_size",
        "min_notional",
        "multiplier",
        "calendar",
        "_hash",
    )

    def __init__(
        self,
        symbol: str,
        sid: int = -1,
        exchange: str | None = None,
        quote_currency: str | None = None,
        tick_size: Decimal | str | None = None,
        lot_size: Decimal | str | None = None,
        min_notional: Decimal | str | None = None,
        multiplier: Decimal | str | None = None,
        calendar: str | None = None,
    ) -> None:
        if not isinstance(symbol, str) or not symbol.strip():
            raise InvalidOrder(f"symbol={symbol!r} must be a non-empty string, e.g. 'AAPL'")
        d = self._defaults
        self.symbol = symbol.strip().upper()
        self.sid = int(sid)
        self.exchange = (exchange or d["exchange"]).upper()
        self.quote_currency = (quote_currency or d["quote_currency"]).upper()
        self.tick_size = _dec("tick_size", tick_size if tick_size is not None else d["tick_size"])
        self.lot_size = _dec("lot_size", lot_size if lot_size is not None else d["lot_size"])
        self.min_notional = _dec(
            "min_notional", min_notional if min_notional is not None else d["min_notional"]
        )
        self.multiplier = _dec(
            "multiplier", multiplier if multiplier is not None else d["multiplier"]
        )
        self.calendar = calendar or d["calendar"]
        for name in ("tick_size", "lot_size", "multiplier"):
            if getattr(self, name) <= 0:
                raise InvalidOrder(f"{name} must be > 0 for {self.symbol}")
        if self.min_notional < 0:
            raise InvalidOrder(f"min_notional must be >= 0 for {self.symbol}")
        self._hash = hash((self.symbol, self.exchange))

    # --- identity ----------------------------------------------------------------
    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Asset):
            return NotImplemented
        return self.symbol == other.symbol and self.exchange == other.exchange

    def __lt__(self, other: Asset) -> bool:
        return (self.symbol, self.exchange) < (other.symbol, other.exchange)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.symbol!r}, exchange={self.exchange!r})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (Decimals as strings) that :func:`asset_from_dict` reads."""
        return {
            "asset_class": self.asset_class,
            "symbol": self.symbol,
            "sid": self.sid,
            "exchange": self.exchange,
            "quote_currency": self.quote_currency,
            "tick_size": str(self.tick_size),
            "lot_size": str(self.lot_size),
            "min_notional": str(self.min_notional),
            "multiplier": str(self.multiplier),
            "calendar": self.calendar,
        }

    # --- venue rules ---------------------------------------------------------------
    def round_price(self, price: Decimal) -> Decimal:
        """Round ``price`` to the nearest tick (banker's rounding on a half tick)."""
        return (price / self.tick_size).to_integral_value(ROUND_HALF_EVEN) * self.tick_size

    def round_amount(self, amount: Decimal) -> Decimal:
        """Round ``amount`` toward zero to a whole number of lots (never buys more than asked)."""
        lots = (abs(amount) / self.lot_size).to_integral_value(ROUND_DOWN)
        out = lots * self.lot_size
        return -out if amount < 0 else out

    def is_on_tick(self, price: Decimal) -> bool:
        return price % self.tick_size == 0

    def validate_price(self, name: str, price: Decimal) -> None:
        """Raise :class:`InvalidOrder` unless ``price`` is finite, positive and on tick."""
        if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
            raise InvalidOrder(f"{name}={price!r} for {self.symbol} must be a finite Decimal > 0")
        if price % self.tick_size != 0:
            raise InvalidOrder(
                f"tick_size: {name}={price} for {self.symbol} is off tick (tick size "
                f"{self.tick_size}); the nearest valid price is {self.round_price(price)} "
                f"(asset.round_price(price))"
            )

    def min_amount_for_notional(self, price: Decimal) -> Decimal:
        """The smallest whole number of lots worth at least ``min_notional`` at ``price``."""
        lots = (self.min_notional / (price * self.multiplier * self.lot_size)).to_integral_value(
            ROUND_CEILING
        )
        return lots * self.lot_size

    def validate_min_notional(self, amount: Decimal, price: Decimal) -> None:
        """Raise :class:`InvalidOrder` when ``|amount| × price × multiplier`` is below the
        venue's minimum notional; the message names the rule and the smallest valid amount."""
        notional = abs(amount) * price * self.multiplier
        if notional < self.min_notional:
            smallest = self.min_amount_for_notional(price)
            raise InvalidOrder(
                f"min_notional: order notional {notional} {self.quote_currency} for "
                f"{self.symbol} ({abs(amount)} at {price}) is below the venue minimum "
                f"{self.min_notional} {self.quote_currency}; the smallest valid amount at "
                f"this price is {smallest}"
            )


class Equity(Asset):
    asset_class = "equity"
    __slots__ = ()


class Crypto(Asset):
    asset_class = "crypto"
    __slots__ = ()
    _defaults = {
        "exchange": "BINANCE",
        "quote_currency": "USDT",
        "tick_size": "0.01",
        "lot_size": "0.00001",
        "min_notional": "5",
        "multiplier": "1",
        "calendar": "24/7",
    }


class Future(Asset):
    asset_class = "future"
    __slots__ = ()
    _defaults = {
        "exchange": "CME",
        "quote_currency": "USD",
        "tick_size": "0.25",
        "lot_size": "1",
        "min_notional": "0",
        "multiplier": "50",
        "calendar": "CMES",
    }


class Forex(Asset):
    """A currency pair, ``symbol`` as ``BASE.QUOTE`` (e.g. ``EUR.USD``), traded in units of BASE."""

    asset_class = "forex"
    __slots__ = ()
    _defaults = {
        "exchange": "IDEALPRO",
        "quote_currency": "USD",
        "tick_size": "0.00005",
        "lot_size": "1",
        "min_notional": "0",
        "multiplier": "1",
        "calendar": "24/7",
    }


_CLASSES: dict[str, type[Asset]] = {
    "equity": Equity,
    "crypto": Crypto,
    "future": Future,
    "forex": Forex,
}


def asset_from_dict(data: dict[str, Any]) -> Asset:
    """Rebuild an asset written by :meth:`Asset.to_dict`."""
    data = dict(data)
    cls = _CLASSES.get(str(data.pop("asset_class", "equity")).lower())
    if cls is None:
        raise InvalidOrder(f"unknown asset_class in {data!r}; expected one of {sorted(_CLASSES)}")
    return cls(**data)


class AssetFinder:
    """Looks assets up by symbol (case-insensitive) or sid."""

    def __init__(self, assets: Iterable[Asset] = ()) -> None:
        self._by_symbol: dict[str, Asset] = {}
        self._by_sid: dict[int, Asset] = {}
        for asset in assets:
            self.add(asset)

    def add(self, asset: Asset) -> None:
        self._by_symbol[asset.symbol] = asset
        if asset.sid >= 0:
            self._by_sid[asset.sid] = asset

    def lookup_symbol(self, symbol: str) -> Asset:
        key = str(symbol).strip().upper()
        try:
            return self._by_symbol[key]
        except KeyError:
            known = ", ".join(sorted(self._by_symbol)[:20]) or "none"
            raise SymbolNotFound(
                f"unknown symbol {symbol!r}; known symbols: {known}. "
                "Ingest data for it first (rustybt ingest) or fix the spelling."
            ) from None

    def retrieve_asset(self, sid: int) -> Asset:
        try:
            return self._by_sid[sid]
        except KeyError:
            raise SymbolNotFound(f"no asset with sid {sid}") from None

    @property
    def symbols(self) -> list[str]:
        return sorted(self._by_symbol)

    @property
    def assets(self) -> list[Asset]:
        return [self._by_symbol[s] for s in sorted(self._by_symbol)]

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and symbol.strip().upper() in self._by_symbol

    def __len__(self) -> int:
        return len(self._by_symbol)
