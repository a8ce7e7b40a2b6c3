"""What a simulated account allows: buying power and short selling, one rule for all modes.

The backtest's simulated account and the paper venue apply the *same*
:class:`AccountRules` — at submit (:meth:`AccountRules.check_submit`) and at fill
(:meth:`AccountRules.check_fill`, called by :func:`rustybt.finance.kernel.step_bar`) — so a
strategy that is refused in paper trading is refused in its backtest too. The defaults are
a cash account: no short selling, and a buy needs the cash for it. ``rustybt run`` and
``rustybt live`` use the same defaults (``--allow-short`` switches shorting on in both).

Rules:

* **Short selling** (``allow_short=False``): a sell is refused when position + open sell
  orders + this sell would go below zero.
* **Buying power** (``check_buying_power=True``): a buy is refused when its worst-case cost
  (amount × :func:`~rustybt.finance.risk_gate.worst_case_price` × multiplier) exceeds cash
  minus what open buy orders already reserve (each valued the same way). At fill time a
  buy whose cost plus commission exceeds cash fills the whole lots the cash pays for and
  the rest is cancelled (rejected when not even one lot fits; prices may have moved since
  submit).
* An order that cannot be valued (a market buy on an asset with no price yet) is refused
  with a reason saying so.

A real venue has its own rules; these apply only where RustyBT *is* the venue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.finance.ledger import Ledger
from rustybt.finance.order import Order, OrderType
from rustybt.finance.risk_gate import worst_case_price

__all__ = ["AccountRules"]

_ZERO = Decimal(0)
_MARKET = OrderType.MARKET


@dataclass(frozen=True, slots=True)
class AccountRules:
    """Buying power and short-selling rules of a simulated account (see module docstring)."""

    allow_short: bool = False
    check_buying_power: bool = True

    def check_submit(
        self,
        ledger: Ledger,
        open_orders: Iterable[Order],
        asset: Asset,
        amount: Decimal,
        order_type: OrderType,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        price_of: Callable[[Asset], Decimal | None],
        exclude: Order | None = None,
    ) -> str | None:
        """``None`` when the account allows this new order, else the reason it does not.

        ``open_orders`` are the account's resting orders (``exclude`` is skipped: the
        order being checked, when the caller already booked it).
        """
        if amount < 0:
            if self.allow_short:
                return None
            pos = ledger.positions.get(asset)
            held = pos.amount if pos is not None else _ZERO
            pending = _ZERO
            for o in open_orders:
                if o is not exclude and o.asset == asset:
                    q = o.open_amount
                    if q < 0:
                        pending += q
            if held + pending + amount < 0:
                return (
                    f"short selling is disabled: selling {-amount} {asset.symbol} with {held} "
                    f"held and {-pending} already being sold would go short; "
                    "allow it with allow_short=True (CLI: --allow-short)"
                )
            return None
        if not self.check_buying_power:
            return None
        last = price_of(asset)
        price = (
            last
            if order_type is _MARKET
            else worst_case_price(amount, order_type, limit_price, stop_price, last)
        )
        if price is None:
            return (
                f"no price for {asset.symbol} yet, so a {order_type.value} buy cannot be "
                "costed; wait for its first bar (data.can_trade(asset)) or use a limit price"
            )
        need = amount * price * asset.multiplier
        cash = ledger.cash
        if need > cash:
            reserved = _ZERO  # refused whatever is reserved; no need to add it up
        else:
            reserved = _ZERO
            for o in open_orders:
                if o is exclude:
                    continue
                q = o.open_amount
                if q > 0:
                    p = worst_case_price(
                        q, o.order_type, o.limit_price, o.stop_price, price_of(o.asset)
                    )
                    if p is not None:
                        reserved += q * p * o.asset.multiplier
        available = cash - reserved
        if need > available:
            return (
                f"insufficient buying power: buying {amount} {asset.symbol} at up to {price} "
                f"needs {need} {asset.quote_currency}; available cash is {available} (cash "
                f"{ledger.cash} minus {reserved} reserved by open buy orders). Reduce the amount."
            )
        return None

    def fit_fill(
        self, ledger: Ledger, order: Order, fill: Any, commission_model: Any
    ) -> tuple[Any, str | None]:
        """``(fill, None)`` when the account can settle ``fill``; else the part it can pay
        for and why the rest cannot fill: ``(smaller fill, reason)``, or ``(None, reason)``
        when not even one lot fits. Only buys are limited (by cash, commission included).
        """
        if fill.amount <= 0 or not self.check_buying_power:
            return fill, None
        asset = order.asset
        unit = fill.price * asset.multiplier
        cash = ledger.cash
        cost = fill.amount * unit + fill.commission
        if cost <= cash:
            return fill, None
        reason = f"insufficient funds at fill: need {cost}, cash {cash}"
        lot = asset.lot_size
        amount = (cash / unit // lot) * lot
        for _ in range(64):  # commission needs a few lots' room at most
            if amount <= 0:
                return None, reason
            commission = commission_model.calculate(order, fill.price, amount)
            if amount * unit + commission <= cash:
                return type(fill)(amount, fill.price, commission), reason
            over = amount * unit + commission - cash
            amount -= max(lot, ((over / unit) // lot + 1) * lot)
        return None, reason
