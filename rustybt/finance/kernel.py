"""The per-bar step: what one bar does to a simulated account, for every mode.

DESIGN.md invariant 1 asks for *one* function that matches resting orders against a bar,
applies the fills, marks positions and runs what is due. This is it. The backtest runner
(``rustybt/backtest/runner.py``), the paper broker's matching
(``rustybt/live/brokers/paper_broker.py``) and the shadow engine call :func:`step_bar`;
none of them has its own copy of these rules, so they cannot disagree.

``step_bar`` works on any :class:`SimulatedAccount` — an object with a ledger, a book of
resting orders and four small hooks that say how the account records an outcome (the
backtest settles straight into the strategy's blotter; the paper broker settles into its
own ledger and emits venue events). It needs no runner, engine or event loop: give it an
account, an :class:`~rustybt.finance.execution.ExecutionSimulator`, optional
:class:`~rustybt.finance.account_rules.AccountRules`, the bar time and two lookups.

Per call, in this order:

1. **Match.** For every asset with resting orders and a bar at ``dt`` (``bar_of(asset)``
   is not None), each resting order, oldest first:

   * a ``DAY`` order placed in an earlier session of its asset's calendar expires;
   * an order the account says is not yet eligible (``account.eligible``, e.g. the
     paper venue's simulated latency) waits;
   * the simulator decides the fill (:meth:`ExecutionSimulator.process`, which holds the
     fill-price rules); no fill → an ``IOC``/``FOK`` order is cancelled;
   * the account rules may cut the fill to what the cash pays for (a buy beyond cash:
     whole lots that fit, the remainder cancelled; none fits → rejected, or cancelled if
     the order already has fills);
   * otherwise the fill is settled; an ``IOC`` remainder is cancelled.

2. **Mark.** Every held position is marked at ``price_of(asset)`` (the last close at or
   before ``dt``), after matching, so a position opened on this bar is marked at the
   bar's close, not at its fill price.

3. **Due work.** ``due(dt)``, if given, runs last: the caller's breakers, session start
   and scheduled functions. The strategy itself is not called here (only the backtest
   calls it synchronously; live delivers it through the event queue).

An order placed after ``step_bar`` returned for bar *t* is matched first at bar *t+1*:
that is the no-look-ahead rule, and the reason callers run the strategy after the step.

**Circuit breakers** see the account's portfolio value at the same points in every mode:
after each settled fill (the backtest account's ``settle_fill``; live, the engine's
``_on_fill`` as each fill event is applied) and once per bar after the marks (the
backtest runner and the engine's ``_on_market_data``, after this step). A breaker that
trips during the step cancels the pending orders only once the whole bar is matched: a
live engine hears of a fill after the venue has matched the bar, so that is where its
cancel lands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from rustybt.assets import Asset
from rustybt.calendars import calendar_tz, session_day
from rustybt.data.bar import Bar
from rustybt.finance.account_rules import AccountRules
from rustybt.finance.execution import ExecutionSimulator, Fill
from rustybt.finance.ledger import Ledger
from rustybt.finance.order import Order, TimeInForce

__all__ = ["ExecutionRules", "SimulatedAccount", "step_bar"]

_DAY = TimeInForce.DAY
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK


@dataclass
class ExecutionRules:
    """How a simulated venue fills orders: the two things :func:`step_bar` takes besides
    the account. A venue hands out its own as independent copies
    (:meth:`~rustybt.live.brokers.base.BrokerAdapter.execution_rules`) so that a twin of
    it — the shadow engine's simulated account — fills exactly as it does.
    """

    simulator: ExecutionSimulator
    rules: AccountRules

    def set_cost_models(self, commission_model: Any = None, slippage_model: Any = None) -> None:
        """A strategy's ``set_commission``/``set_slippage``, as the venue applies them."""
        self.simulator.set_models(slippage_model=slippage_model, commission_model=commission_model)


class SimulatedAccount(Protocol):
    """What :func:`step_bar` needs of an account it advances.

    ``resting`` maps each asset to its open orders in arrival order (the step iterates a
    copy, so the settle hooks may remove orders from it).
    """

    ledger: Ledger

    @property
    def resting(self) -> dict[Asset, list[Order]]: ...

    #: ``eligible(order, bar) -> bool``: False while ``order`` may not fill yet (e.g.
    #: simulated latency); ``None`` when every resting order is always eligible.
    eligible: Callable[[Order, Bar], bool] | None

    def settle_fill(self, order: Order, fill: Fill, dt: datetime) -> None:
        """Apply ``fill`` to ``order`` and the ledger (and report it)."""
        ...

    def settle_cancel(self, order: Order, reason: str, dt: datetime) -> None:
        """Cancel what is left of ``order`` by venue rule (time in force)."""
        ...

    def settle_reject(self, order: Order, reason: str, dt: datetime) -> None:
        """Refuse ``order`` at fill time (account rules; it has no fills yet)."""
        ...


def step_bar(
    account: SimulatedAccount,
    simulator: ExecutionSimulator,
    rules: Any,
    dt: datetime,
    bar_of: Callable[[Asset], Bar | None],
    price_of: Callable[[Asset], Decimal | None],
    due: Callable[[datetime], None] | None = None,
) -> None:
    """Advance ``account`` by the bar(s) at ``dt``; see the module docstring for the rules.

    ``rules`` is an :class:`~rustybt.finance.account_rules.AccountRules` or ``None`` (no
    at-fill account check). ``bar_of(asset)`` is the asset's bar stamped exactly ``dt``
    (``None`` when it did not trade); ``price_of(asset)`` its last close at or before
    ``dt``.
    """
    resting = account.resting
    if resting:
        for asset in list(resting):
            book = resting.get(asset)
            if not book:
                continue
            bar = bar_of(asset)
            if bar is None:
                continue
            for order in list(book):
                _match(account, simulator, rules, account.ledger, order, bar)
    ledger = account.ledger
    if ledger.positions:
        ledger.mark_all(price_of)
    if due is not None:
        due(dt)


def _match(
    account: SimulatedAccount,
    simulator: ExecutionSimulator,
    rules: Any,
    ledger: Ledger,
    order: Order,
    bar: Bar,
) -> None:
    dt = bar.dt
    tif = order.tif
    if tif is _DAY and _past_session(order, dt):
        account.settle_cancel(order, "DAY order expired at session end", dt)
        return
    eligible = account.eligible
    if eligible is not None and not eligible(order, bar):
        return
    fill = simulator.process(order, bar)
    if fill is None:
        if tif is _IOC or tif is _FOK:
            account.settle_cancel(order, f"{tif.value.upper()}: nothing filled", dt)
        return
    short_of_cash = None
    if rules is not None and fill.amount > 0:  # only buys are limited by cash
        fill, short_of_cash = rules.fit_fill(ledger, order, fill, simulator.commission_model)
        if fill is None:
            # Fills already made stand: a partly filled order ends cancelled, not rejected.
            if order.filled:
                account.settle_cancel(order, short_of_cash, dt)
            else:
                account.settle_reject(order, short_of_cash, dt)
            return
    account.settle_fill(order, fill, dt)
    if order.is_open:
        if short_of_cash is not None:
            account.settle_cancel(order, f"{short_of_cash}; remainder cancelled", dt)
        elif tif is _IOC:
            account.settle_cancel(order, "IOC remainder cancelled", dt)


def _past_session(order: Order, dt: datetime) -> bool:
    created = order.created_dt
    if created is None:
        return False
    tz = calendar_tz(order.asset.calendar)
    return session_day(dt, tz) > session_day(created, tz)
