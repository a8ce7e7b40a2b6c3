"""Positions, cash and PnL: the one ledger every mode settles fills into.

Accounting rules (users see these numbers, so they are fixed here):

* Money is ``Decimal`` throughout; nothing is rounded. A fill of ``amount`` at ``price``
  moves ``amount × price × asset.multiplier + commission`` out of cash (a sell,
  ``amount < 0``, brings money in).
* Cost basis uses the **average-cost** method. Adding to a position re-averages; reducing
  it realizes ``(price − cost_basis) × closed × multiplier``; a fill that crosses through
  zero realizes on the closed part and opens the remainder at the fill price.
* Internally a position keeps its *total* cost (Σ amount × price) rather than the
  per-unit average, so a position opened and closed in any number of pieces realizes
  exactly Σ sell proceeds − Σ buy costs, with no rounding residue. A partial close
  takes its share of the total cost rounded to 12 decimal places (the only rounding in
  the ledger; it stays inside the position's remaining cost). ``cost_basis`` (per unit)
  is derived from the total cost when read.
* ``realized_pnl`` is **price PnL only**; commissions are tracked in ``fees_paid``. The
  all-in figure is ``pnl = portfolio_value − starting_cash``, which includes fees:
  ``pnl == realized_pnl + unrealized_pnl − fees_paid`` (as long as state was not
  replaced with :meth:`Ledger.set_state`).
* A fill is atomic: everything is computed first and assigned last, so bad input raises
  :class:`~rustybt.exceptions.InvalidOrder` with the ledger unchanged.
* Arithmetic uses the active ``decimal`` context (28 significant digits by default),
  exact for any realistic amount × price.

``ledger.portfolio`` and ``ledger.account`` are zipline-compatible live views: cheap to
build, every attribute read goes to the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from rustybt.assets import Asset, asset_from_dict
from rustybt.exceptions import CheckpointCorrupted, InvalidOrder
from rustybt.finance.order import to_decimal

_ZERO = Decimal(0)
_SHARE_QUANTUM = Decimal("1e-12")


class Position:
    """A signed holding in one asset. Shorts have ``amount < 0``.

    ``cost_basis`` is the average price per unit; ``last_price`` the latest mark.
    """

    __slots__ = ("asset", "amount", "_cost", "last_price", "realized_pnl")

    def __init__(
        self,
        asset: Asset,
        amount: Decimal = _ZERO,
        cost_basis: Decimal = _ZERO,
        last_price: Decimal | None = None,
        realized_pnl: Decimal = _ZERO,
    ) -> None:
        self.asset = asset
        self.amount = amount
        self._cost = amount * cost_basis
        self.last_price = cost_basis if last_price is None else last_price
        self.realized_pnl = realized_pnl

    @classmethod
    def _from_cost(
        cls,
        asset: Asset,
        amount: Decimal,
        total_cost: Decimal,
        last_price: Decimal,
        realized_pnl: Decimal,
    ) -> Position:
        pos = cls.__new__(cls)
        pos.asset = asset
        pos.amount = amount
        pos._cost = total_cost
        pos.last_price = last_price
        pos.realized_pnl = realized_pnl
        return pos

    @property
    def cost_basis(self) -> Decimal:
        """Average price paid per unit (0 when flat)."""
        if self.amount == 0:
            return _ZERO
        return self._cost / self.amount

    @cost_basis.setter
    def cost_basis(self, value: Decimal) -> None:
        self._cost = self.amount * value

    @property
    def total_cost(self) -> Decimal:
        """Signed cost of the open amount, ``amount × cost_basis`` (exact)."""
        return self._cost

    @property
    def last_sale_price(self) -> Decimal:
        """zipline's name for :attr:`last_price`."""
        return self.last_price

    @property
    def market_value(self) -> Decimal:
        return self.amount * self.last_price * self.asset.multiplier

    @property
    def unrealized_pnl(self) -> Decimal:
        # (last − cost_basis) × amount × multiplier, written so that it needs no division.
        return (self.amount * self.last_price - self._cost) * self.asset.multiplier

    def __repr__(self) -> str:
        return (
            f"Position({self.asset.symbol}, amount={self.amount}, "
            f"cost_basis={self.cost_basis}, last_price={self.last_price})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Position):
            return NotImplemented
        return (
            self.asset == other.asset
            and self.amount == other.amount
            and self._cost == other._cost
            and self.last_price == other.last_price
            and self.realized_pnl == other.realized_pnl
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset.to_dict(),
            "amount": str(self.amount),
            "cost_basis": str(self.cost_basis),
            "total_cost": str(self._cost),
            "last_price": str(self.last_price),
            "realized_pnl": str(self.realized_pnl),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Position:
        """Rebuild a position from :meth:`to_dict`; :class:`CheckpointCorrupted` if malformed."""
        try:
            asset = data["asset"]
            if not isinstance(asset, Asset):
                asset = asset_from_dict(asset)
            amount = to_decimal("amount", data["amount"])
            if "total_cost" in data:
                cost = to_decimal("total_cost", data["total_cost"])
            else:
                cost = amount * to_decimal("cost_basis", data["cost_basis"])
            last = data.get("last_price")
            last_price = (
                to_decimal("last_price", last)
                if last is not None
                else (cost / amount if amount else _ZERO)
            )
            realized = to_decimal("realized_pnl", data.get("realized_pnl", "0"))
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise CheckpointCorrupted(
                f"malformed position record ({type(exc).__name__}: {exc}); expected the "
                "output of Position.to_dict()"
            ) from exc
        return cls._from_cost(asset, amount, cost, last_price, realized)


class Positions(dict):
    """``dict[Asset, Position]`` that answers a zero position for an asset not held.

    Like zipline's ``context.portfolio.positions[asset]``; the lookup does not insert,
    so ``asset in positions`` stays truthful and flat positions never accumulate.
    """

    def __missing__(self, asset: Asset) -> Position:
        return Position(asset, _ZERO, _ZERO, _ZERO)


def _share_of_cost(cost: Decimal, closed: Decimal, amount: Decimal) -> Decimal:
    """The part of ``cost`` that ``closed`` of ``amount`` units carries, on a fixed scale.

    ``cost × closed / amount`` is usually not exact. Rounding it to a fixed number of
    places (at least 12, more if the cost already has more) keeps every later addition
    exact, and because the remaining cost is ``cost − share`` the rounding stays in the
    position: a full close always realizes exactly Σ proceeds − Σ costs.
    """
    share = cost * closed / amount
    exponent = int(cost.as_tuple().exponent)  # cost is finite, so this is an int
    quantum = _SHARE_QUANTUM if exponent >= -12 else Decimal(1).scaleb(exponent)
    try:
        return share.quantize(quantum, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        # Too many digits for the context at this scale (absurd sizes): keep it unrounded.
        return share


def _check_price(name: str, price: Any, asset: Asset) -> Decimal:
    price = to_decimal(name, price)
    if price <= 0:
        raise InvalidOrder(f"{name}={price} for {asset.symbol} must be > 0")
    return price


class Ledger:
    """Cash, positions, fees and PnL of one strategy account."""

    __slots__ = (
        "cash",
        "starting_cash",
        "positions",
        "fees_paid",
        "realized_pnl",
        "touched",
        "mark_listener",
    )

    def __init__(self, starting_cash: Decimal) -> None:
        starting_cash = to_decimal("starting_cash", starting_cash)
        if starting_cash < 0:
            raise InvalidOrder(f"starting_cash={starting_cash} must be >= 0")
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self.positions: Positions = Positions()
        self.fees_paid = _ZERO
        self.realized_pnl = _ZERO
        # Assets whose position or mark changed, for an incremental exposure check (the
        # risk gate installs its set here when exposure limits are configured).
        self.touched: set[Asset] | None = None
        self.mark_listener: Callable[[Asset, Decimal, Decimal], None] | None = None

    # --- fills -------------------------------------------------------------------
    def apply_fill(
        self,
        asset: Asset,
        amount: Decimal,
        price: Decimal,
        commission: Decimal = _ZERO,
    ) -> None:
        """Settle a fill of signed ``amount`` at ``price`` (see the module docstring)."""
        if not isinstance(asset, Asset):
            raise InvalidOrder(f"asset={asset!r} is not an Asset")
        amount = to_decimal("fill amount", amount)
        if amount == 0:
            raise InvalidOrder(f"fill amount for {asset.symbol} is zero")
        price = _check_price("fill price", price, asset)
        commission = to_decimal("commission", commission)
        if commission < 0:
            raise InvalidOrder(
                f"commission={commission} for {asset.symbol} must be >= 0 (a rebate is "
                "not supported)"
            )

        mult = asset.multiplier
        pos = self.positions.get(asset)
        if pos is None:
            old_amount = old_cost = pos_realized = _ZERO
        else:
            old_amount, old_cost, pos_realized = pos.amount, pos._cost, pos.realized_pnl
        new_amount = old_amount + amount
        realized = _ZERO
        if old_amount == 0 or (old_amount > 0) == (amount > 0):
            new_cost = old_cost + amount * price
        elif new_amount == 0 or (new_amount > 0) != (old_amount > 0):
            # Closes the whole position (and maybe opens the other side at `price`).
            realized = (old_amount * price - old_cost) * mult
            new_cost = new_amount * price
        else:
            closed = -amount  # signed like old_amount
            removed_cost = _share_of_cost(old_cost, closed, old_amount)
            realized = (closed * price - removed_cost) * mult
            new_cost = old_cost - removed_cost
        new_cash = self.cash - amount * price * mult - commission

        # Everything computed; assign.
        self.cash = new_cash
        self.fees_paid += commission
        self.realized_pnl += realized
        if new_amount == 0:
            if pos is not None:
                del self.positions[asset]
        elif pos is None:
            self.positions[asset] = Position._from_cost(
                asset, new_amount, new_cost, price, realized
            )
        else:
            pos.amount = new_amount
            pos._cost = new_cost
            pos.last_price = price
            pos.realized_pnl = pos_realized + realized
        if self.touched is not None:
            self.touched.add(asset)

    def update_price(self, asset: Asset, price: Decimal) -> None:
        """Mark ``asset`` at ``price``; a no-op when there is no position in it."""
        pos = self.positions.get(asset)
        if pos is not None:
            if type(price) is not Decimal or not price.is_finite() or price <= 0:
                price = _check_price("mark price", price, asset)
            old = pos.last_price
            pos.last_price = price
            listener = self.mark_listener
            if listener is not None:
                listener(asset, old, price)

    def mark_all(self, price_of: Callable[[Asset], Decimal | None]) -> None:
        """Mark every position at ``price_of(asset)`` (kept when it is ``None``): what
        :meth:`update_price` does for each, in one pass (the per-bar step calls this)."""
        listener = self.mark_listener
        for asset, pos in self.positions.items():
            price = price_of(asset)
            old = pos.last_price
            if price is None or price is old:
                continue  # no price, or the same close as before: nothing moves
            if type(price) is not Decimal or not price.is_finite() or price <= 0:
                price = _check_price("mark price", price, asset)
            pos.last_price = price
            if listener is not None:
                listener(asset, old, price)

    # --- state replacement ---------------------------------------------------------
    def set_state(
        self,
        cash: Decimal,
        positions: Iterable[Position],
        *,
        fees_paid: Decimal | None = None,
        realized_pnl: Decimal | None = None,
    ) -> None:
        """Replace cash and positions wholesale (reconciliation, checkpoint restore).

        Flat positions are dropped. Raises :class:`InvalidOrder` (ledger unchanged) for a
        non-finite number, a non-Asset, a non-positive mark, or two positions in one asset.
        """
        new_cash = to_decimal("cash", cash)
        new_fees = self.fees_paid if fees_paid is None else to_decimal("fees_paid", fees_paid)
        new_realized = (
            self.realized_pnl if realized_pnl is None else to_decimal("realized_pnl", realized_pnl)
        )
        new_positions: dict[Asset, Position] = {}
        for pos in positions:
            if not isinstance(pos, Position):
                raise InvalidOrder(f"{pos!r} is not a Position")
            if not isinstance(pos.asset, Asset):
                raise InvalidOrder(f"position asset {pos.asset!r} is not an Asset")
            amount = to_decimal(f"amount of {pos.asset.symbol}", pos.amount)
            cost = to_decimal(f"cost of {pos.asset.symbol}", pos._cost)
            realized = to_decimal(f"realized_pnl of {pos.asset.symbol}", pos.realized_pnl)
            if pos.asset in new_positions:
                raise InvalidOrder(
                    f"two positions for {pos.asset.symbol}; merge them into one before "
                    "calling set_state"
                )
            if amount == 0:
                continue
            last = _check_price(f"last_price of {pos.asset.symbol}", pos.last_price, pos.asset)
            # Copies, so the caller's objects never alias ledger state.
            new_positions[pos.asset] = Position._from_cost(pos.asset, amount, cost, last, realized)
        self.cash = new_cash
        self.fees_paid = new_fees
        self.realized_pnl = new_realized
        if self.touched is not None:
            self.touched.update(self.positions)
            self.touched.update(new_positions)
        # Same dict object, so a held `portfolio.positions` reference stays live.
        self.positions.clear()
        self.positions.update(new_positions)

    # --- valuation (computed when asked) ---------------------------------------------
    @property
    def positions_value(self) -> Decimal:
        total = _ZERO
        for pos in self.positions.values():
            total += pos.amount * pos.last_price * pos.asset.multiplier
        return total

    @property
    def portfolio_value(self) -> Decimal:
        return self.cash + self.positions_value

    @property
    def gross_exposure(self) -> Decimal:
        total = _ZERO
        for pos in self.positions.values():
            total += abs(pos.amount * pos.last_price * pos.asset.multiplier)
        return total

    @property
    def net_exposure(self) -> Decimal:
        return self.positions_value

    @property
    def leverage(self) -> Decimal:
        """Gross exposure / portfolio value; 0 when the portfolio value is not positive."""
        pv = self.portfolio_value
        return self.gross_exposure / pv if pv > 0 else _ZERO

    @property
    def net_leverage(self) -> Decimal:
        pv = self.portfolio_value
        return self.net_exposure / pv if pv > 0 else _ZERO

    @property
    def unrealized_pnl(self) -> Decimal:
        total = _ZERO
        for pos in self.positions.values():
            total += pos.unrealized_pnl
        return total

    @property
    def pnl(self) -> Decimal:
        """All-in PnL, fees included: ``portfolio_value − starting_cash``."""
        return self.portfolio_value - self.starting_cash

    @property
    def returns(self) -> Decimal:
        """``pnl / starting_cash`` (0 when starting with no cash)."""
        if self.starting_cash == 0:
            return _ZERO
        return self.pnl / self.starting_cash

    @property
    def capital_used(self) -> Decimal:
        """Net cash spent since the start (zipline's name; negative after net buying)."""
        return self.cash - self.starting_cash

    def current_portfolio_weights(self) -> dict[Asset, Decimal]:
        pv = self.portfolio_value
        if pv <= 0:
            return {asset: _ZERO for asset in self.positions}
        return {asset: pos.market_value / pv for asset, pos in self.positions.items()}

    # --- zipline views -----------------------------------------------------------------
    @property
    def portfolio(self) -> PortfolioView:
        return PortfolioView(self)

    @property
    def account(self) -> AccountView:
        return AccountView(self)

    # --- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A lossless JSON-friendly snapshot (Decimals as strings)."""
        return {
            "starting_cash": str(self.starting_cash),
            "cash": str(self.cash),
            "fees_paid": str(self.fees_paid),
            "realized_pnl": str(self.realized_pnl),
            "positions": [pos.to_dict() for pos in self.positions.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ledger:
        """Rebuild a ledger from :meth:`to_dict`; :class:`CheckpointCorrupted` if malformed."""
        try:
            ledger = cls(to_decimal("starting_cash", data["starting_cash"]))
            positions = [Position.from_dict(p) for p in data.get("positions", [])]
            ledger.set_state(
                to_decimal("cash", data["cash"]),
                positions,
                fees_paid=to_decimal("fees_paid", data.get("fees_paid", "0")),
                realized_pnl=to_decimal("realized_pnl", data.get("realized_pnl", "0")),
            )
        except CheckpointCorrupted:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise CheckpointCorrupted(
                f"malformed ledger record ({type(exc).__name__}: {exc}); expected the "
                "output of Ledger.to_dict()"
            ) from exc
        return ledger

    def __repr__(self) -> str:
        return (
            f"Ledger(cash={self.cash}, positions={len(self.positions)}, "
            f"fees_paid={self.fees_paid}, realized_pnl={self.realized_pnl})"
        )


class PortfolioView:
    """zipline's ``context.portfolio``: a live read-only view of a :class:`Ledger`."""

    __slots__ = ("_ledger",)

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    @property
    def cash(self) -> Decimal:
        return self._ledger.cash

    @property
    def starting_cash(self) -> Decimal:
        return self._ledger.starting_cash

    @property
    def portfolio_value(self) -> Decimal:
        return self._ledger.portfolio_value

    @property
    def positions(self) -> Positions:
        return self._ledger.positions

    @property
    def positions_value(self) -> Decimal:
        return self._ledger.positions_value

    @property
    def positions_exposure(self) -> Decimal:
        return self._ledger.net_exposure

    @property
    def pnl(self) -> Decimal:
        return self._ledger.pnl

    @property
    def returns(self) -> Decimal:
        return self._ledger.returns

    @property
    def capital_used(self) -> Decimal:
        return self._ledger.capital_used

    @property
    def current_portfolio_weights(self) -> dict[Asset, Decimal]:
        return self._ledger.current_portfolio_weights()

    def __iter__(self) -> Iterator[Asset]:
        return iter(self._ledger.positions)

    def __repr__(self) -> str:
        return f"Portfolio(cash={self.cash}, portfolio_value={self.portfolio_value})"


class AccountView:
    """zipline's ``context.account``: a live read-only view of a :class:`Ledger`.

    Margin is not modelled: ``buying_power``, ``settled_cash`` and ``available_funds``
    are all the cash balance.
    """

    __slots__ = ("_ledger",)

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    @property
    def settled_cash(self) -> Decimal:
        return self._ledger.cash

    @property
    def buying_power(self) -> Decimal:
        return self._ledger.cash

    @property
    def available_funds(self) -> Decimal:
        return self._ledger.cash

    @property
    def leverage(self) -> Decimal:
        return self._ledger.leverage

    @property
    def net_leverage(self) -> Decimal:
        return self._ledger.net_leverage

    @property
    def total_positions_value(self) -> Decimal:
        return self._ledger.positions_value

    @property
    def total_positions_exposure(self) -> Decimal:
        return self._ledger.net_exposure

    @property
    def net_liquidation(self) -> Decimal:
        return self._ledger.portfolio_value

    @property
    def equity_with_loan(self) -> Decimal:
        return self._ledger.portfolio_value

    @property
    def gross_exposure(self) -> Decimal:
        return self._ledger.gross_exposure

    @property
    def net_exposure(self) -> Decimal:
        return self._ledger.net_exposure

    def __repr__(self) -> str:
        return f"Account(settled_cash={self.settled_cash}, leverage={self.leverage})"


# zipline's class names for the two views.
Portfolio = PortfolioView
Account = AccountView
