"""The risk gate: the one check every order intent passes before any broker call.

Order: fail-closed state (reconciliation must have confirmed positions), then position
limits, then circuit breakers. It returns a reject reason instead of raising, because a
refused order is a normal outcome the strategy must survive; the caller records the
reject. Cancels never pass through here: a halted engine can always cancel.
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

    __slots__ = ("limits", "breakers", "_blocked_reason", "_exposure")

    def __init__(self, limits: Any = None, breakers: Any = None) -> None:
        self.limits = limits
        self.breakers = breakers
        self._blocked_reason: str | None = None
        self._exposure: Any = None

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
        return self._blocked_reason

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
