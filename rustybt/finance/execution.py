"""The one fill simulator: what an open order gets from one bar.

Backtest, the paper broker and shadow trading all call
:meth:`ExecutionSimulator.process`, so the three can never disagree about fills
(DESIGN.md invariant 1). ``process`` only *answers*; the caller applies the returned
:class:`Fill` with ``order.apply_fill`` and ``ledger.apply_fill``. The only change it
makes to the order is ``order.stop_reached = True`` when a stop triggers, which persists
across bars.

Rules, for an order processed against a bar of its asset:

* **No look-ahead is the caller's job**: pass an order only bars that arrived after it
  was placed (in a backtest, an order placed while handling bar *t* first sees *t+1*).
* **Market**: fills at the bar's close (zipline's convention).
* **Stop**: a buy stop triggers when ``bar.high >= stop``, a sell stop when
  ``bar.low <= stop``. On the bar that triggers it, it fills at the stop price — or at the
  bar's open when the bar gapped through the stop (a buy stop at 105 on a bar opening at
  108 fills at 108; one opening at 100 and trading up to 106 fills at 105). If it is not
  filled completely on that bar (volume cap), the rest is a market order from the next
  bar on (the close). zipline instead fills a triggered stop at the bar's close.
* **Limit**: a buy fills only if ``bar.low <= limit``, at ``min(close, limit)``; a sell only
  if ``bar.high >= limit``, at ``max(close, limit)`` — at the limit or better. Slippage
  never pushes a limit fill past its limit.
* **Stop-limit**: a stop that becomes a limit once triggered. On the trigger bar it fills
  at the trigger price (stop, or the open on a gap) when that is within the limit,
  otherwise by the limit rule above if the bar reaches the limit.
* **Slippage** is applied to that price by the slippage model, rounded to tick against the
  trader.
* **Volume cap**: with a cap (the smaller of ``volume_limit_pct`` and the slippage model's
  ``volume_limit``), all orders on one asset share ``cap × bar.volume`` per bar; a fill is
  rounded down to the asset's lot size. No room (or a zero-volume bar) means no fill this
  bar; the remainder stays open for later bars. Without a cap an order fills in full,
  whatever the bar's volume.
* **Time in force**: FOK gets a complete fill or nothing. IOC and DAY expiry are the
  caller's job (cancel/expire the remainder after the first bar / at session end).
* **Commission** comes from the commission model, computed on the fill.

The execution styles (``MarketOrder``, ``LimitOrder``, ``StopOrder``, ``StopLimitOrder``)
are re-exported here because zipline users import them from ``zipline.finance.execution``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from rustybt.assets import Asset
from rustybt.data.bar import Bar
from rustybt.exceptions import ConfigError, InvalidOrder
from rustybt.finance.decimal.commission import CommissionModel, NoCommission
from rustybt.finance.decimal.slippage import NoSlippage, SlippageModel
from rustybt.finance.order import (
    ExecutionStyle,
    LimitOrder,
    MarketOrder,
    Order,
    OrderStatus,
    OrderType,
    StopLimitOrder,
    StopOrder,
    TimeInForce,
)

__all__ = [
    "ExecutionSimulator",
    "ExecutionStyle",
    "Fill",
    "LimitOrder",
    "MarketOrder",
    "StopLimitOrder",
    "StopOrder",
]

_ZERO = Decimal(0)
_OPEN = frozenset({OrderStatus.NEW, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED})
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_STOP = OrderType.STOP
_STOP_LIMIT = OrderType.STOP_LIMIT


@dataclass(slots=True)
class Fill:
    """A simulated fill: signed ``amount``, ``price`` per unit and ``commission``."""

    amount: Decimal
    price: Decimal
    commission: Decimal


class ExecutionSimulator:
    """Decides fills for orders against bars; see the module docstring for the rules."""

    __slots__ = ("slippage_model", "commission_model", "volume_limit_pct", "_cap", "_used")

    def __init__(
        self,
        slippage_model: SlippageModel | None = None,
        commission_model: CommissionModel | None = None,
        volume_limit_pct: Decimal | None = None,
    ) -> None:
        if slippage_model is not None and not isinstance(slippage_model, SlippageModel):
            raise ConfigError(
                f"slippage_model={slippage_model!r} is not a SlippageModel; use e.g. "
                "FixedBasisPointsSlippage(Decimal('5'))"
            )
        if commission_model is not None and not isinstance(commission_model, CommissionModel):
            raise ConfigError(
                f"commission_model={commission_model!r} is not a CommissionModel; use e.g. "
                "PerShareCommission(Decimal('0.005'))"
            )
        if volume_limit_pct is not None:
            if isinstance(volume_limit_pct, float):
                volume_limit_pct = Decimal(repr(volume_limit_pct))
            try:
                volume_limit_pct = Decimal(volume_limit_pct)
            except Exception:
                raise ConfigError(
                    f"volume_limit_pct={volume_limit_pct!r} is not a number; pass e.g. "
                    "Decimal('0.025') for 2.5% of bar volume"
                ) from None
            if not volume_limit_pct.is_finite() or not 0 < volume_limit_pct <= 1:
                raise ConfigError(
                    f"volume_limit_pct={volume_limit_pct} must be a fraction in (0, 1], "
                    "e.g. Decimal('0.025') for 2.5% of bar volume"
                )
        self.slippage_model = slippage_model if slippage_model is not None else NoSlippage()
        self.commission_model = commission_model if commission_model is not None else NoCommission()
        self.volume_limit_pct = volume_limit_pct
        caps = [c for c in (volume_limit_pct, self.slippage_model.volume_limit) if c is not None]
        self._cap: Decimal | None = min(caps) if caps else None
        # asset -> (bar dt, volume already filled in that bar); one entry per asset.
        self._used: dict[Asset, tuple[datetime, Decimal]] = {}

    def set_models(
        self,
        slippage_model: SlippageModel | None = None,
        commission_model: CommissionModel | None = None,
    ) -> None:
        """Replace the slippage and/or commission model (``None`` keeps the current one).

        What ``set_slippage``/``set_commission`` in a strategy's ``initialize`` call, so the
        backtest and the paper broker apply the strategy's own cost models alike.
        The strategy's slippage model also replaces the run's volume cap: its own
        ``volume_limit`` is the cap (zipline's semantics; ``FixedSlippage`` has none).
        """
        checked = ExecutionSimulator(slippage_model, commission_model)  # same validation
        if slippage_model is not None:
            self.slippage_model = checked.slippage_model
            self.volume_limit_pct = None
            self._cap = slippage_model.volume_limit
        if commission_model is not None:
            self.commission_model = checked.commission_model

    @property
    def volume_cap(self) -> Decimal | None:
        """The effective fraction of bar volume all orders on one asset may take."""
        return self._cap

    def reset(self) -> None:
        """Forget the volume used in the current bars."""
        self._used.clear()

    def process(self, order: Order, bar: Bar) -> Fill | None:
        """What ``order`` gets from ``bar``: a :class:`Fill`, or ``None`` for nothing."""
        if order.status not in _OPEN:
            return None
        asset = order.asset
        if bar.asset is not asset and bar.asset != asset:
            raise InvalidOrder(
                f"order {order.id!r} is for {asset.symbol} but the bar is for "
                f"{bar.asset.symbol}; pass the bar of the order's asset"
            )
        open_amount = order.amount - order.filled
        if open_amount == 0:
            return None
        buy = open_amount > 0
        otype = order.order_type
        if type(otype) is not OrderType:
            otype = OrderType.parse(otype)
        limit = None
        # The price at which a stop triggered on *this* bar: the stop, or the open when
        # the bar gapped through it. None when no stop triggered here.
        trigger = None

        if otype is not _MARKET:
            if otype is _STOP or otype is _STOP_LIMIT:
                if not order.stop_reached:
                    stop = order.stop_price
                    if stop is None:
                        raise InvalidOrder(f"{otype.value} order {order.id!r} has no stop_price")
                    if (bar.high < stop) if buy else (bar.low > stop):
                        return None
                    order.stop_reached = True
                    opened = bar.open
                    if buy:
                        trigger = opened if opened > stop else stop
                    else:
                        trigger = opened if opened < stop else stop
            if otype is _LIMIT or otype is _STOP_LIMIT:
                limit = order.limit_price
                if limit is None:
                    raise InvalidOrder(f"{otype.value} order {order.id!r} has no limit_price")
                if buy:
                    if bar.low > limit:
                        return None
                elif bar.high < limit:
                    return None

        close = bar.close
        if limit is None:
            reference = close if trigger is None else trigger
        elif trigger is not None and ((trigger <= limit) if buy else (trigger >= limit)):
            reference = trigger  # a stop-limit whose trigger price is within its limit
        elif buy:
            reference = close if close < limit else limit
        else:
            reference = close if close > limit else limit

        wanted = open_amount if buy else -open_amount
        size = wanted
        cap = self._cap
        dt = bar.dt
        used = _ZERO
        if cap is not None:
            entry = self._used.get(asset)
            if entry is not None and entry[0] == dt:
                used = entry[1]
            room = asset.round_amount(cap * bar.volume - used)
            if room <= 0:
                return None
            if room < size:
                size = room
        if size < wanted and order.tif == TimeInForce.FOK:
            return None

        amount = size if buy else -size
        price = self.slippage_model.fill_price(reference, amount, bar.volume, asset)
        if limit is not None:
            if buy:
                if price > limit:
                    price = limit
            elif price < limit:
                price = limit
        commission = self.commission_model.calculate(order, price, amount)
        if cap is not None:
            self._used[asset] = (dt, used + size)
        return Fill(amount, price, commission)
