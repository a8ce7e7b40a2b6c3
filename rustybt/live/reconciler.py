"""Compare our positions, cash and open orders with the broker's (the spec's
``PositionReconciler``).

The broker is the truth about what happened; our ledger and journal are the truth about
what we intended. This module only compares and reports: it returns a
:class:`~rustybt.live.models.ReconciliationReport` listing every difference with a
severity, plus ``report.broker_state`` (the broker's positions, cash and open orders
as snapshots) so the engine can apply TRUST_BROKER. What to do about a report is the
engine's job (WARN_ONLY logs, TRUST_BROKER adopts ``broker_state`` and journals an
"adjust", HALT_AND_ALERT pauses and raises an alert).

If the broker cannot be asked (connection error, timeout, malformed answer) this raises
:class:`~rustybt.exceptions.ReconciliationError`: positions are then UNKNOWN, never
"flat", and the engine must take no new risk until a reconciliation succeeds.

Severity rules (all arithmetic in Decimal):

* position quantity differs by at most ``position_tolerance`` units -> INFO;
  otherwise WARNING if ``|broker - local| / max(|local|, |broker|) <= 1%``, else CRITICAL;
* position held on one side only (missing locally / missing at broker), or long on
  one side and short on the other -> CRITICAL;
* cash: difference as a fraction of the larger balance; ``<= cash_tolerance_pct`` -> INFO,
  ``<= 10 x cash_tolerance_pct`` -> WARNING, beyond -> CRITICAL; equal -> no record;
* orphaned order (open on one side only) -> WARNING; status or filled-amount mismatch
  -> WARNING; amount mismatch -> WARNING, CRITICAL if buy/sell sides differ.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog

from rustybt.assets import Asset
from rustybt.exceptions import ConfigError, ReconciliationError
from rustybt.live.models import (
    BrokerState,
    CashDiscrepancy,
    DiscrepancySeverity,
    OrderDiscrepancy,
    OrderSnapshot,
    PositionDiscrepancy,
    PositionSnapshot,
    ReconciliationReport,
    ReconciliationStrategy,
)

__all__ = ["PositionReconciler", "QUANTITY_WARNING_FRACTION", "CRITICAL_CASH_MULTIPLE"]

log = structlog.get_logger(__name__)

QUANTITY_WARNING_FRACTION = Decimal("0.01")
CRITICAL_CASH_MULTIPLE = Decimal(10)
_ZERO = Decimal(0)

_SEV = DiscrepancySeverity

# Venue spellings folded to one vocabulary so "new" at the broker matches our "pending".
_STATUS_GROUPS = {
    "pending": "open",
    "open": "open",
    "new": "open",
    "submitted": "open",
    "acked": "open",
    "accepted": "open",
    "working": "open",
    "active": "open",
    "intent_only": "open",
    "pending_new": "open",
    "presubmitted": "open",
    "partially_filled": "partially_filled",
    "partiallyfilled": "partially_filled",
    "partial": "partially_filled",
    "partially-filled": "partially_filled",
    "filled": "filled",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "rejected": "rejected",
    "expired": "cancelled",
}
_TERMINAL_GROUPS = frozenset({"filled", "cancelled", "rejected"})


def _status_group(status: str) -> str:
    s = status.lower()
    return _STATUS_GROUPS.get(s, s)


def _to_decimal(value: Any, what: str) -> Decimal:
    # A float from an adapter breaks invariant 2 ("floats never touch money"); refuse it
    # rather than guess, so the adapter gets fixed.
    if isinstance(value, Decimal):
        out = value
    elif isinstance(value, int | str) and not isinstance(value, bool):
        try:
            out = Decimal(value)
        except ArithmeticError:
            raise ReconciliationError(f"{what}={value!r} is not a number") from None
    else:
        raise ReconciliationError(
            f"{what}={value!r} ({type(value).__name__}) must be a Decimal (the broker adapter "
            "contract: every number is a Decimal, converted from the venue's string)"
        )
    if not out.is_finite():
        raise ReconciliationError(f"{what}={value!r} is not finite")
    return out


def _opt_decimal(value: Any, what: str) -> Decimal | None:
    return None if value is None else _to_decimal(value, what)


def _fmt(d: Decimal) -> str:
    return f"{d:f}"


class PositionReconciler:
    """Compares local state with the broker's and reports every difference.

    Args:
        broker_adapter: anything with async ``get_positions()``, ``get_account_info()``
            and ``get_open_orders()`` returning the DESIGN.md contract shapes.
        reconciliation_strategy: recorded in the report; the engine applies it.
        cash_tolerance_pct: a FRACTION (0.01 = 1%) of the larger cash balance.
        position_tolerance: absolute units of a position treated as noise (INFO).
        timeout_seconds: how long to wait for the broker before giving up.
    """

    def __init__(
        self,
        broker_adapter: Any,
        reconciliation_strategy: ReconciliationStrategy | str = ReconciliationStrategy.WARN_ONLY,
        cash_tolerance_pct: Decimal | float | str = Decimal("0.01"),
        position_tolerance: Decimal | float | str = Decimal("0"),
        timeout_seconds: float = 30.0,
    ) -> None:
        for method in ("get_positions", "get_account_info", "get_open_orders"):
            if not callable(getattr(broker_adapter, method, None)):
                raise ConfigError(
                    f"broker_adapter {type(broker_adapter).__name__} has no {method}(); pass "
                    "a BrokerAdapter"
                )
        try:
            strategy = ReconciliationStrategy(reconciliation_strategy)
        except ValueError:
            raise ConfigError(
                f"reconciliation_strategy={reconciliation_strategy!r} is not one of "
                f"{[s.value for s in ReconciliationStrategy]}"
            ) from None
        self.broker_adapter = broker_adapter
        self.reconciliation_strategy = strategy
        self.cash_tolerance_pct = self._tolerance("cash_tolerance_pct", cash_tolerance_pct)
        if self.cash_tolerance_pct >= 1:
            raise ConfigError(
                f"cash_tolerance_pct={cash_tolerance_pct!r} is a fraction: 0.01 means 1%; "
                "pass a value below 1"
            )
        self.position_tolerance = self._tolerance("position_tolerance", position_tolerance)
        if (
            isinstance(timeout_seconds, bool)
            or not isinstance(timeout_seconds, int | float)
            or not timeout_seconds > 0
        ):
            raise ConfigError(f"timeout_seconds={timeout_seconds!r} must be a number > 0")
        self.timeout_seconds = float(timeout_seconds)
        self.last_report: ReconciliationReport | None = None
        if strategy is ReconciliationStrategy.WARN_ONLY:
            log.warning(
                "reconciliation_warn_only",
                hint="discrepancies will be logged but trading continues; use "
                "HALT_AND_ALERT or TRUST_BROKER for real money",
            )

    @staticmethod
    def _tolerance(name: str, value: Any) -> Decimal:
        if isinstance(value, float):
            value = repr(value)  # the spec passes 0.01: read its shortest repr, exactly
        try:
            out = Decimal(value)
        except (ArithmeticError, TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} is not a number; e.g. Decimal('0.01')") from None
        if not out.is_finite() or out < 0:
            raise ConfigError(f"{name}={value!r} must be a finite number >= 0")
        return out

    # --- broker ---------------------------------------------------------------------
    async def _fetch(self) -> tuple[Any, Any, Any]:
        broker = self.broker_adapter
        try:
            async with asyncio.timeout(self.timeout_seconds):
                results = await asyncio.gather(
                    broker.get_positions(),
                    broker.get_account_info(),
                    broker.get_open_orders(),
                    return_exceptions=True,
                )
        except TimeoutError:
            raise ReconciliationError(
                f"broker did not answer within {self.timeout_seconds:g}s; positions are "
                "UNKNOWN (not flat): take no new risk until reconciliation succeeds"
            ) from None
        for name, res in zip(
            ("get_positions", "get_account_info", "get_open_orders"), results, strict=True
        ):
            if isinstance(res, BaseException):
                if not isinstance(res, Exception):
                    raise res  # cancellation and friends propagate unchanged
                raise ReconciliationError(
                    f"broker {name}() failed ({type(res).__name__}: {res}); positions are "
                    "UNKNOWN (not flat): take no new risk until reconciliation succeeds"
                ) from res
        return results[0], results[1], results[2]

    def _broker_state(self, positions: Any, account: Any, orders: Any) -> BrokerState:
        if not isinstance(positions, list):
            raise ReconciliationError(
                f"broker get_positions() returned {type(positions).__name__}, expected a list"
            )
        if not isinstance(account, dict) or "cash" not in account:
            raise ReconciliationError(
                "broker get_account_info() must return a dict with 'cash'; got "
                f"{type(account).__name__}"
            )
        if not isinstance(orders, list):
            raise ReconciliationError(
                f"broker get_open_orders() returned {type(orders).__name__}, expected a list"
            )
        snaps: list[PositionSnapshot] = []
        for i, raw in enumerate(positions):
            if not isinstance(raw, dict):
                raise ReconciliationError(f"broker position #{i} is not a dict: {raw!r}")
            asset = raw.get("asset")
            if not isinstance(asset, Asset):
                raise ReconciliationError(
                    f"broker position #{i} has asset={asset!r}; the adapter must resolve it "
                    "to an rustybt.assets.Asset"
                )
            amount = _to_decimal(raw.get("amount"), f"broker position {asset.symbol} amount")
            last = _opt_decimal(raw.get("last_price"), f"{asset.symbol} last_price")
            avg = _opt_decimal(raw.get("average_price"), f"{asset.symbol} average_price")
            # No average price (spot balances): value at the last price so TRUST_BROKER
            # still gets a usable, if PnL-resetting, cost basis.
            unit = avg if avg is not None else (last if last is not None else _ZERO)
            try:
                snaps.append(
                    PositionSnapshot(
                        asset, amount, unit * amount, last if last and last > 0 else None
                    )
                )
            except Exception as exc:
                raise ReconciliationError(f"broker position {asset.symbol}: {exc}") from exc
        open_orders: list[OrderSnapshot] = []
        for i, raw in enumerate(orders):
            if not isinstance(raw, dict) or not isinstance(raw.get("asset"), Asset):
                raise ReconciliationError(
                    f"broker open order #{i} must be a dict with an Asset 'asset': {raw!r}"
                )
            oid = raw.get("order_id")
            what = f"broker order {oid}"
            try:
                open_orders.append(
                    OrderSnapshot(
                        order_id=str(oid) if oid is not None else "",
                        asset=raw["asset"],
                        amount=_to_decimal(raw.get("amount"), f"{what} amount"),
                        status=str(raw.get("status") or "open"),
                        client_order_id=raw.get("client_order_id") or None,
                        filled=_to_decimal(raw.get("filled") or _ZERO, f"{what} filled"),
                        order_type=str(raw.get("order_type") or "market"),
                        limit_price=_opt_decimal(raw.get("limit_price"), f"{what} limit_price"),
                        stop_price=_opt_decimal(raw.get("stop_price"), f"{what} stop_price"),
                    )
                )
            except ReconciliationError:
                raise
            except Exception as exc:
                raise ReconciliationError(f"{what}: {exc}") from exc
        return BrokerState(
            positions=snaps,
            cash=_to_decimal(account.get("cash"), "broker cash"),
            open_orders=open_orders,
            portfolio_value=_opt_decimal(account.get("portfolio_value"), "portfolio_value"),
            buying_power=_opt_decimal(account.get("buying_power"), "buying_power"),
        )

    # --- comparison -----------------------------------------------------------------
    async def reconcile_all(
        self,
        local_positions: list[PositionSnapshot],
        local_cash: Decimal,
        local_orders: list[OrderSnapshot],
    ) -> ReconciliationReport:
        """Ask the broker and compare; raises ``ReconciliationError`` if it cannot."""
        _check_local(local_positions, local_orders)
        cash = _to_decimal(local_cash, "local_cash")
        broker = await self.fetch_broker_state()
        return self.build_report(local_positions, cash, local_orders, broker)

    async def fetch_broker_state(self) -> BrokerState:
        """The broker's positions, cash and open orders, validated; ``ReconciliationError``
        if it cannot be asked or answers in the wrong shape."""
        positions, account, orders = await self._fetch()
        return self._broker_state(positions, account, orders)

    def build_report(
        self,
        local_positions: list[PositionSnapshot],
        local_cash: Decimal,
        local_orders: list[OrderSnapshot],
        broker: BrokerState,
    ) -> ReconciliationReport:
        report = ReconciliationReport(
            position_discrepancies=self.compare_positions(local_positions, broker.positions),
            cash_discrepancy=self.compare_cash(local_cash, broker.cash),
            order_discrepancies=self.compare_orders(local_orders, broker.open_orders),
            timestamp=datetime.now(UTC),
            strategy=self.reconciliation_strategy,
            broker_state=broker,
        )
        self.last_report = report
        return report

    def build_window_report(
        self,
        before: LocalView,
        after: LocalView,
        seen_amounts: dict[Asset, set[Decimal]],
        seen_cash: set[Decimal],
        broker: BrokerState,
        moved_orders: set[str] | frozenset[str] = frozenset(),
    ) -> ReconciliationReport:
        """Compare a broker snapshot taken while local state moved from ``before`` to
        ``after`` (fills applied during the round trip).

        The broker answered at some instant of that window, each request possibly at a
        different one, so a broker position or cash balance equal to *any* local value
        seen during the window (``seen_amounts`` per asset, ``seen_cash``, plus
        ``before``) is not a discrepancy. An order difference counts only when both the
        ``before`` and the ``after`` comparison show it and the order was not placed or
        changed during the window (``moved_orders``, client order ids). What remains is
        real; it is reported against ``after``, the current local state.
        """
        b_pos, b_cash, b_orders = before
        a_pos, a_cash, a_orders = after
        was = _net(b_pos)
        positions = [
            d
            for d in self.compare_positions(a_pos, broker.positions)
            if d.broker_amount != was.get(d.asset, _ZERO)
            and d.broker_amount not in seen_amounts.get(d.asset, ())
        ]
        cash = self.compare_cash(a_cash, broker.cash)
        if cash is not None and (broker.cash == b_cash or broker.cash in seen_cash):
            cash = None
        earlier = {_order_key(d) for d in self.compare_orders(b_orders, broker.open_orders)}
        orders = [
            d
            for d in self.compare_orders(a_orders, broker.open_orders)
            if _order_key(d) in earlier
            and (d.client_order_id or d.order_id) not in moved_orders
            and d.order_id not in moved_orders
        ]
        report = ReconciliationReport(
            position_discrepancies=positions,
            cash_discrepancy=cash,
            order_discrepancies=orders,
            timestamp=datetime.now(UTC),
            strategy=self.reconciliation_strategy,
            broker_state=broker,
        )
        self.last_report = report
        return report

    def compare_positions(
        self, local: list[PositionSnapshot], broker: list[PositionSnapshot]
    ) -> list[PositionDiscrepancy]:
        """Position differences; duplicate entries for one asset are netted."""
        ours = _net(local)
        theirs = _net(broker)
        out: list[PositionDiscrepancy] = []
        for asset in sorted(set(ours) | set(theirs)):
            mine = ours.get(asset, _ZERO)
            real = theirs.get(asset, _ZERO)
            if mine == real:
                continue
            sym = asset.symbol
            if mine == 0:
                kind, sev = "missing_locally", _SEV.CRITICAL
                msg = f"{sym}: broker holds {_fmt(real)}, we hold nothing"
            elif real == 0:
                kind, sev = "missing_at_broker", _SEV.CRITICAL
                msg = f"{sym}: we hold {_fmt(mine)}, the broker holds nothing"
            elif (mine > 0) != (real > 0):
                kind, sev = "opposite_side", _SEV.CRITICAL
                msg = f"{sym}: we are {_fmt(mine)}, the broker is {_fmt(real)} (other side)"
            else:
                kind = "quantity_mismatch"
                diff = abs(real - mine)
                frac = diff / max(abs(mine), abs(real))
                if diff <= self.position_tolerance:
                    sev = _SEV.INFO
                elif frac <= QUANTITY_WARNING_FRACTION:
                    sev = _SEV.WARNING
                else:
                    sev = _SEV.CRITICAL
                msg = (
                    f"{sym}: we hold {_fmt(mine)}, the broker {_fmt(real)} "
                    f"(difference {_fmt(real - mine)}, {_fmt((frac * 100).normalize())}%)"
                )
            out.append(PositionDiscrepancy(asset, kind, mine, real, sev, msg))
        return out

    def compare_cash(self, local: Decimal, broker: Decimal) -> CashDiscrepancy | None:
        """Cash difference, or None when the balances are equal."""
        if local == broker:
            return None
        diff = broker - local
        frac = abs(diff) / max(abs(local), abs(broker))
        tol = self.cash_tolerance_pct
        if frac <= tol:
            sev = _SEV.INFO
        elif frac <= tol * CRITICAL_CASH_MULTIPLE:
            sev = _SEV.WARNING
        else:
            sev = _SEV.CRITICAL
        return CashDiscrepancy(local, broker, diff, frac, sev)

    def compare_orders(
        self, local: list[OrderSnapshot], broker: list[OrderSnapshot]
    ) -> list[OrderDiscrepancy]:
        """Open-order differences. Matched by client order id when both sides have one,
        else by broker order id. Local orders in a terminal status are not expected at
        the broker and are ignored."""
        by_coid = {o.client_order_id: o for o in broker if o.client_order_id}
        by_oid = {o.order_id: o for o in broker if o.order_id}
        matched: set[int] = set()
        out: list[OrderDiscrepancy] = []
        for mine in local:
            if _status_group(mine.status) in _TERMINAL_GROUPS:
                continue
            real = None
            if mine.client_order_id and mine.client_order_id in by_coid:
                real = by_coid[mine.client_order_id]
            elif mine.order_id in by_oid:
                real = by_oid[mine.order_id]
            if real is None or id(real) in matched:
                out.append(
                    OrderDiscrepancy(
                        mine.order_id,
                        mine.client_order_id,
                        "orphaned_local",
                        mine.status,
                        None,
                        _SEV.WARNING,
                        f"order {mine.client_order_id or mine.order_id} ({mine.asset.symbol} "
                        f"{_fmt(mine.amount)}) is open locally but not at the broker; it was "
                        "probably filled, cancelled or never arrived",
                    )
                )
                continue
            matched.add(id(real))
            out.extend(self._compare_pair(mine, real))
        for real in broker:
            if id(real) in matched:
                continue
            out.append(
                OrderDiscrepancy(
                    real.order_id,
                    real.client_order_id,
                    "orphaned_broker",
                    None,
                    real.status,
                    _SEV.WARNING,
                    f"broker has open order {real.order_id} ({real.asset.symbol} "
                    f"{_fmt(real.amount)}, client id {real.client_order_id}) that we do not "
                    "know; placed outside this engine, or its journal line was lost",
                )
            )
        return out

    @staticmethod
    def _compare_pair(mine: OrderSnapshot, real: OrderSnapshot) -> list[OrderDiscrepancy]:
        out: list[OrderDiscrepancy] = []
        name = mine.client_order_id or mine.order_id
        if mine.amount != real.amount:
            sides_differ = (mine.amount > 0) != (real.amount > 0)
            out.append(
                OrderDiscrepancy(
                    real.order_id,
                    mine.client_order_id or real.client_order_id,
                    "amount_mismatch",
                    mine.status,
                    real.status,
                    _SEV.CRITICAL if sides_differ else _SEV.WARNING,
                    f"order {name}: we asked for {_fmt(mine.amount)}, the broker has "
                    f"{_fmt(real.amount)}" + (" (opposite side)" if sides_differ else ""),
                )
            )
        group_mine, group_real = _status_group(mine.status), _status_group(real.status)
        if group_mine != group_real or mine.filled != real.filled:
            out.append(
                OrderDiscrepancy(
                    real.order_id,
                    mine.client_order_id or real.client_order_id,
                    "status_mismatch",
                    mine.status,
                    real.status,
                    _SEV.WARNING,
                    f"order {name}: local status {mine.status} (filled {_fmt(mine.filled)}), "
                    f"broker {real.status} (filled {_fmt(real.filled)})",
                )
            )
        return out


#: A local view for reconciliation: (positions, cash, open orders).
LocalView = tuple[list[PositionSnapshot], Decimal, list[OrderSnapshot]]


def _order_key(d: OrderDiscrepancy) -> tuple[str, str]:
    return (d.client_order_id or d.order_id, d.kind)


def _check_local(local_positions: list[Any], local_orders: list[Any]) -> None:
    for p in local_positions:
        if not isinstance(p, PositionSnapshot):
            raise ReconciliationError(
                f"local_positions holds a {type(p).__name__}; pass PositionSnapshot(asset, "
                "amount, cost_basis) items"
            )
    for o in local_orders:
        if not isinstance(o, OrderSnapshot):
            raise ReconciliationError(
                f"local_orders holds a {type(o).__name__}; pass OrderSnapshot items"
            )


def _net(positions: list[PositionSnapshot]) -> dict[Asset, Decimal]:
    out: dict[Asset, Decimal] = {}
    for p in positions:
        out[p.asset] = out.get(p.asset, _ZERO) + p.amount
    return out
