"""The risk gate: the one check every order intent passes before any broker call.

Order: fail-closed state (reconciliation must have confirmed positions), then position
limits, then circuit breakers. Besides the one fail-closed switch (reconciliation owns it),
other watchdogs put named *holds*: on all trading (a stalled data feed, a dead background
task) or on one asset (an order whose submit outcome is still unknown); each is lifted by
its owner only, so one subsystem never clears another's block. It returns a reject reason
instead of raising, because a refused order is a normal outcome the strategy must
survive; the caller records the reject. Cancels never pass through here: a halted engine
can always cancel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.exceptions import RiskLimitExceeded


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
    ) -> str | None:
        """``None`` when the order may go out, else the reason it may not."""
        if self._blocked_reason is not None:
            return f"trading blocked: {self._blocked_reason}"
        if self._holds:
            return f"trading blocked: {next(iter(self._holds.values()))}"
        if self._asset_holds:
            held = self._asset_holds.get(asset)
            if held:
                return f"trading blocked on {asset.symbol}: {next(iter(held.values()))}"
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
