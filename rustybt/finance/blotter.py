"""The order book shared by backtest, paper, shadow and live: one order path for all.

:class:`Blotter` validates an order, issues its client order id, passes it through the
risk gate, keeps it in the book and applies fills to the ledger. What happens after an
order is accepted (simulate it on the next bar, or journal it and send it to a broker)
is the subclass's ``_send`` hook, so every mode shares the same checks and accounting
(DESIGN.md invariant 1 and 3).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from rustybt.assets import Asset
from rustybt.exceptions import OrderNotFound
from rustybt.finance.ledger import Ledger
from rustybt.finance.order import Order, OrderStatus, OrderType, TimeInForce, validate_order
from rustybt.finance.risk_gate import RiskGate, order_reference_price, worst_case_price

log = structlog.get_logger("rustybt.orders")

_ZERO = Decimal(0)
_MARKET = OrderType.MARKET


class Blotter:
    """Orders of one strategy run, with the ledger they settle into."""

    def __init__(
        self,
        ledger: Ledger,
        risk_gate: RiskGate | None = None,
        id_prefix: str = "bt",
        clock: Callable[[], datetime | None] = lambda: None,
    ) -> None:
        self.ledger = ledger
        self.risk_gate = risk_gate or RiskGate()
        self.risk_gate.attach(ledger)
        self.id_prefix = id_prefix
        self.clock = clock
        self.orders: dict[str, Order] = {}
        self._open: dict[Asset, list[Order]] = {}
        # Per asset: [open buy amount, open sell amount, the highest limit/stop price],
        # kept current on every place/fill/close so the risk gate never scans the book.
        self.open_book: dict[Asset, list[Any]] = {}
        self.open_count = 0
        self.sequence = 0
        self.rejected_count = 0
        #: Rejects by category (see :func:`reject_category`), for metrics.
        self.reject_reasons: Counter[str] = Counter()
        self.submitted_count = 0
        self.fill_count = 0
        self.on_reject: Callable[[Order, str], None] | None = None
        self.on_risk_decision: Callable[[Order, str | None], None] | None = None

    # --- ids ----------------------------------------------------------------------
    def next_id(self) -> str:
        self.sequence += 1
        return f"{self.id_prefix}-{self.sequence}"

    # --- placing ------------------------------------------------------------------
    def place(
        self,
        asset: Asset,
        amount: Decimal,
        order_type: OrderType = OrderType.MARKET,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        reference_price: Decimal | None = None,
    ) -> Order:
        """Validate, risk-check and accept an order. A refused order comes back REJECTED.

        ``reference_price`` is the asset's last price (``None`` before its first bar: a
        market or stop order is then rejected, with the reason logged, since nothing can
        price it). Risk limits see the order at its worst-case price
        (:func:`~rustybt.finance.risk_gate.worst_case_price`).

        Raises :class:`~rustybt.exceptions.InvalidOrder` for bad parameters (nothing is
        recorded then); a risk refusal is not an exception but a rejected order.
        """
        validate_order(asset, amount, order_type, limit_price, stop_price)
        order = Order(
            self.next_id(),
            asset,
            amount,
            order_type,
            limit_price,
            stop_price,
            tif,
            self.clock(),
        )
        # Limits and buying power are judged at the worst price the order can fill at.
        price = (
            reference_price
            if order_type is _MARKET
            else worst_case_price(amount, order_type, limit_price, stop_price, reference_price)
        )
        if price is None:
            reason: str | None = (
                f"no market data for {asset.symbol} yet: a {order_type.value} order cannot be "
                "priced before the asset's first bar; check data.can_trade(asset) first"
            )
        else:
            ledger = self.ledger
            gate = self.risk_gate
            reason = gate.check(
                asset,
                amount,
                price,
                ledger.positions,
                self.iter_open_orders(),
                # Only position limits read the portfolio value: not summed per order
                # without them (the backtest's common case).
                ledger.portfolio_value if gate.limits is not None else _ZERO,
                order.created_dt,
                self.open_book,
                self.open_count,
                venue_price=limit_price or stop_price or reference_price,
            )
        if reason is not None:
            return self._refuse(order, reason)
        if self.on_risk_decision is not None:
            self.on_risk_decision(order, None)
        self.orders[order.id] = order
        self._add_open(order)
        self.submitted_count += 1
        self._send(order)
        return order

    def reject_unsized(
        self,
        asset: Asset,
        order_type: OrderType,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        tif: TimeInForce,
        reason: str,
    ) -> Order:
        """Record a value-based order that could not be sized (no price yet) as REJECTED.

        Its amount is 0 — it never had one — and ``reason`` says why; it is kept, counted
        and logged like any refused order, so the strategy (``get_order``), the results
        and the audit log see it in every mode.
        """
        order = Order(
            self.next_id(), asset, _ZERO, order_type, limit_price, stop_price, tif, self.clock()
        )
        return self._refuse(order, reason)

    def _refuse(self, order: Order, reason: str) -> Order:
        """Keep ``order`` as REJECTED with ``reason``: counted, logged, never sent."""
        if self.on_risk_decision is not None:
            self.on_risk_decision(order, reason)
        self.orders[order.id] = order
        order.reject(reason)
        self.rejected_count += 1
        self.reject_reasons[reject_category(reason)] += 1
        log.warning("order_rejected", order_id=order.id, symbol=order.asset.symbol, reason=reason)
        if self.on_reject is not None:
            self.on_reject(order, reason)
        self._retired(order)
        return order

    def _add_open(self, order: Order) -> None:
        asset = order.asset
        book = self._open.get(asset)
        if book is None:
            self._open[asset] = [order]
        else:
            book.append(order)
        entry = self.open_book.get(asset)
        if entry is None:
            entry = self.open_book[asset] = [_ZERO, _ZERO, None]
        remaining = order.open_amount
        entry[0 if remaining > 0 else 1] += remaining
        if order.limit_price is not None or order.stop_price is not None:
            ref = order_reference_price(order)
            if entry[2] is None or ref > entry[2]:
                entry[2] = ref
        self.open_count += 1
        touched = self.ledger.touched
        if touched is not None:
            touched.add(asset)

    def _send(self, order: Order) -> None:
        """Hand an accepted order to the venue (subclasses)."""
        order.transition(OrderStatus.SUBMITTED)

    # --- cancelling ---------------------------------------------------------------
    def cancel(self, order_id: str, reason: str = "cancelled by strategy") -> None:
        order = self.get_order(order_id)
        if not order.is_open:
            return
        self._request_cancel(order, reason)

    def _request_cancel(self, order: Order, reason: str) -> None:
        order.cancel(reason)
        self._close(order)

    def cancel_all(self, reason: str) -> list[Order]:
        orders = list(self.iter_open_orders())
        for order in orders:
            self._request_cancel(order, reason)
        return orders

    # --- venue outcomes ---------------------------------------------------------------
    def apply_fill(
        self,
        order: Order,
        amount: Decimal,
        price: Decimal,
        commission: Decimal,
        dt: datetime | None = None,
    ) -> None:
        """Settle a (partial) fill into the order and the ledger, atomically for both."""
        was_open = order.is_open
        order.apply_fill(amount, price, commission, dt)
        self.ledger.apply_fill(order.asset, amount, price, commission)
        if was_open:
            entry = self.open_book.get(order.asset)
            if entry is not None:
                entry[0 if order.amount > 0 else 1] -= amount
        self.fill_count += 1
        if not order.is_open:
            self._close(order)

    def mark_cancelled(self, order: Order, reason: str = "") -> None:
        if order.is_open:
            order.cancel(reason)
        self._close(order)

    def mark_rejected(self, order: Order, reason: str) -> None:
        """The venue refused the order. Once part of it filled, those fills stand: it ends
        partly filled with the remainder cancelled (REJECTED would erase real fills)."""
        if order.is_open:
            if order.filled:
                order.cancel(f"rejected after a partial fill: {reason}")
            else:
                order.reject(reason)
            self.rejected_count += 1
            self.reject_reasons[reject_category(reason)] += 1
        self._close(order)

    def _close(self, order: Order) -> None:
        asset = order.asset
        book = self._open.get(asset)
        if book is None:
            return
        try:
            book.remove(order)
        except ValueError:
            return
        self._retired(order)
        if not book:
            del self._open[asset]
        self.open_count -= 1
        touched = self.ledger.touched
        if touched is not None:
            touched.add(asset)
        entry = self.open_book.get(asset)
        if entry is not None:
            if not book:
                del self.open_book[asset]
            else:
                entry[0 if order.amount > 0 else 1] -= order.open_amount
                if entry[2] is not None and order_reference_price(order) == entry[2]:
                    # The order that set the asset's worst-case price left: recompute it.
                    refs = [r for r in map(order_reference_price, book) if r is not None]
                    entry[2] = max(refs) if refs else None

    def _retired(self, order: Order) -> None:
        """An order left the book for good (hook: live trading archives old ones)."""

    # --- queries ------------------------------------------------------------------
    def get_order(self, order_id: str | Order) -> Order:
        if isinstance(order_id, Order):
            return order_id
        try:
            return self.orders[order_id]
        except KeyError:
            raise OrderNotFound(
                f"no order with id {order_id!r}; use get_open_orders() to list open orders"
            ) from None

    def open_orders(self, asset: Asset | None = None) -> list[Order]:
        if asset is None:
            return list(self.iter_open_orders())
        return list(self._open.get(asset, ()))

    def iter_open_orders(self):
        for book in self._open.values():
            yield from book

    def open_amount(self, asset: Asset) -> Decimal:
        """Signed amount still to fill across this asset's open orders."""
        book = self._open.get(asset)
        if not book:
            return _ZERO
        total = _ZERO
        for order in book:
            total += order.open_amount
        return total

    @property
    def assets_with_open_orders(self) -> list[Asset]:
        return list(self._open)


_REJECT_CATEGORIES = (
    ("halted", ("halted", "circuit breaker", "breaker")),
    ("blocked", ("trading blocked", "blocked")),
    ("risk_limit", ("limit", "exposure", "max order", "max position")),
    ("insufficient_funds", ("insufficient", "buying power", "cash")),
    ("no_market_data", ("no price", "no market data")),
    ("venue_rule", ("tick", "lot", "notional", "min ")),
    ("broker", ("broker", "venue", "never reached", "ib error", "rejected by")),
)


def reject_category(reason: str) -> str:
    """A short, bounded label for a reject reason (metrics must not label by free text)."""
    text = reason.lower()
    for label, needles in _REJECT_CATEGORIES:
        if any(n in text for n in needles):
            return label
    return "other"
