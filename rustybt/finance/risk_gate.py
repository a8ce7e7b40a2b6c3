"""The risk gate: the one check every order intent passes before any broker call.

Order: fail-closed state (reconciliation must have confirmed positions), then the venue's
minimum notional (tick and lot size are checked with the order's parameters, by
``validate_order``), then position limits, then circuit breakers. Besides the one
fail-closed switch (reconciliation owns it), other watchdogs put named *holds*: on all
trading (a stalled data feed, a dead background task) or on one asset (an order whose
submit outcome is still unknown); each is lifted by its owner only, so one subsystem never
clears another's block. It returns a reject reason instead of raising, because a refused
order is a normal outcome the strategy must
survive; the caller records the reject. Cancels never pass through here: a halted engine
can always cancel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.exceptions import InvalidOrder, RiskLimitExceeded
from rustybt.finance.order import OrderType

_MARKET = OrderType.MARKET
_STOP = OrderType.STOP


def order_reference_price(order: Any) -> Decimal | None:
    """The price an open order values its asset at when nothing else does: the larger of
    its limit and stop prices (None for a market order). An asset with only open orders is
    valued at the largest of these over its orders, its worst case; the blotter's
    ``open_book`` and a scan of open orders agree on it."""
    limit, stop = order.limit_price, getattr(order, "stop_price", None)
    if limit is None:
        return stop
    if stop is None or limit >= stop:
        return limit
    return stop


def worst_case_price(
    amount: Decimal,
    order_type: OrderType,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    last_price: Decimal | None,
) -> Decimal | None:
    """The highest price per unit ``amount`` of this order can fill at, as far as known.

    Value limits and buying power are checked at this price, so no order slips past them
    by naming a harmless-looking price:

    * market: the last price;
    * buy limit / buy stop-limit: the limit (it never fills above it);
    * sell limit / sell stop-limit: the larger of the limit and the last price (a
      marketable sell limit fills at the market, or better);
    * stop (either side): the larger of the stop and the last price (a buy stop below
      the market triggers at once and fills at the market).

    ``None`` when the order needs a last price and there is none yet.
    """
    if order_type is _MARKET:
        return last_price
    if order_type is _STOP:
        ref = stop_price
    else:  # limit or stop-limit
        ref = limit_price
        if amount > 0:
            return ref
    if last_price is None or (ref is not None and ref >= last_price):
        return ref
    return last_price


class RiskGate:
    """Position limits + circuit breakers + the fail-closed switch, checked in that order."""

    __slots__ = ("limits", "breakers", "_blocked_reason", "_exposure", "_holds", "_asset_holds")

    def __init__(self, limits: Any = None, breakers: Any = None) -> None:
        self.limits = limits
        self.breakers = breakers
        self._blocked_reason: str | None = None
        self._exposure: Any = None
        self._holds: dict[str, str] = {}
        self._asset_holds: dict[Asset, dict[str, str]] = {}

    def attach(self, ledger: Any) -> None:
        """Track exposure incrementally for ``ledger`` when exposure limits are set."""
        if self.limits is not None and getattr(self.limits, "_exposure", False):
            from rustybt.live.risk_limits import ExposureCache

            self._exposure = ExposureCache()
            ledger.touched = self._exposure.dirty
            ledger.mark_listener = self._exposure.on_mark

    # --- fail closed ----------------------------------------------------------------
    def block(self, reason: str) -> None:
        """Refuse all new risk until :meth:`unblock` (e.g. positions are unconfirmed)."""
        self._blocked_reason = reason

    def unblock(self) -> None:
        self._blocked_reason = None

    @property
    def blocked_reason(self) -> str | None:
        """Why all new risk is refused (the switch, else the first hold), or None."""
        if self._blocked_reason is not None:
            return self._blocked_reason
        for reason in self._holds.values():
            return reason
        return None

    def hold(self, key: str, reason: str) -> None:
        """Refuse all new risk until :meth:`release` of ``key`` (its owner's name)."""
        self._holds[key] = reason

    def release(self, key: str) -> None:
        self._holds.pop(key, None)

    def hold_asset(self, asset: Asset, key: str, reason: str) -> None:
        """Refuse new orders on ``asset`` until :meth:`release_asset` of ``key``."""
        self._asset_holds.setdefault(asset, {})[key] = reason

    def release_asset(self, asset: Asset, key: str) -> None:
        held = self._asset_holds.get(asset)
        if held is not None:
            held.pop(key, None)
            if not held:
                del self._asset_holds[asset]

    @property
    def holds(self) -> dict[str, str]:
        """Every hold in force: ``{key: reason}``, asset holds keyed ``SYMBOL:key``."""
        out = dict(self._holds)
        for asset, held in self._asset_holds.items():
            for key, reason in held.items():
                out[f"{asset.symbol}:{key}"] = reason
        return out

    # --- the check ------------------------------------------------------------------
    def check(
        self,
        asset: Asset,
        amount: Decimal,
        price: Decimal,
        positions: Mapping[Asset, Any],
        open_orders: Iterable[Any],
        portfolio_value: Decimal,
        dt: datetime | None = None,
        open_book: Mapping[Asset, Any] | None = None,
        open_count: int | None = None,
        *,
        venue_price: Decimal | None = None,
    ) -> str | None:
        """``None`` when the order may go out, else the reason it may not.

        ``price`` is the order's worst-case price (:func:`worst_case_price`), used for
        every value limit. ``venue_price`` is the price a venue values the order at for
        its minimum-notional rule (the limit/stop price, else the last price).
        """
        if self._blocked_reason is not None:
            return f"trading blocked: {self._blocked_reason}"
        if self._holds:
            return f"trading blocked: {next(iter(self._holds.values()))}"
        if self._asset_holds:
            held = self._asset_holds.get(asset)
            if held:
                return f"trading blocked on {asset.symbol}: {next(iter(held.values()))}"
        if asset.min_notional:
            try:
                asset.validate_min_notional(amount, venue_price or price)
            except InvalidOrder as exc:
                return str(exc)
        limits = self.limits
        if limits is not None:
            try:
                limits.check_order(
                    asset,
                    amount,
                    price,
                    positions,
                    open_orders,
                    portfolio_value,
                    open_book=open_book,
                    open_count=open_count,
                    exposure=self._exposure if open_book is not None else None,
                )
            except RiskLimitExceeded as exc:
                return str(exc)
        breakers = self.breakers
        if breakers is not None:
            if not breakers.can_trade():
                return self._tripped_reason()
            # The order-rate breaker counts intents that reached it; the one that trips
            # it is refused too, so the limit is never exceeded at the broker.
            if dt is not None and breakers.on_order_submitted(dt):
                return self._tripped_reason()
        return None

    def _tripped_reason(self) -> str:
        reasons = "; ".join(r for r in self.breakers.get_trip_reasons() if r) or "breaker tripped"
        return f"circuit breakers tripped: {reasons}"
