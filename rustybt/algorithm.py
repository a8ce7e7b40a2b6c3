"""The strategy API: :class:`TradingAlgorithm`, identical in backtest, paper, shadow and live.

A strategy subclasses :class:`TradingAlgorithm` (``initialize(self)``,
``handle_data(self, context, data)``, optionally ``before_trading_start``), or is a
zipline-style script of module functions run through :class:`ScriptAlgorithm`. The
algorithm never talks to a broker: it is attached to a *runtime* (the backtest runner
or the live engine) that provides the blotter (the one order path, with the risk gate),
the ledger, the clock and the data view. That is the whole difference between modes.

Order functions validate and return at once: an order id, or ``None`` when no order was
placed (zero amount after lot rounding, or a refusal — by the risk gate, the simulated
account's buying power/short rules, or because the asset has no price yet; the refusal
is logged, the order is kept as REJECTED with its reason (the run's orders, the audit
log live), and the strategy keeps running). One no-price rule for
every order function: the value-based ones (``order_value``, ``order_percent``,
``order_target_value``, ``order_target_percent``) cannot size an order before the
asset's first bar without a ``limit_price``, so the order is kept as REJECTED with
amount 0 and the reason — identically in backtest and live. Bad parameters raise
:class:`~rustybt.exceptions.InvalidOrder`; an unknown symbol raises
:class:`~rustybt.exceptions.SymbolNotFound`.

Numbers at the API: a class-based strategy sees ``Decimal`` (``numbers = "decimal"``); a
zipline-style script sees floats (``numbers = "float"``, see :mod:`rustybt.boundary`).
Either can switch: a class sets ``numbers``, a script sets a module-level
``RUSTYBT_NUMBERS = "decimal"``. Money inside stays ``Decimal`` in both.
"""

from __future__ import annotations

import contextvars
import inspect
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.boundary import FloatAccount, FloatBarData, FloatPortfolio, check_numbers
from rustybt.data.bar_data import BarData
from rustybt.exceptions import ConfigError, InvalidOrder, RustyBTError
from rustybt.finance.order import (
    LimitOrder,
    MarketOrder,
    Order,
    OrderType,
    StopLimitOrder,
    StopOrder,
    TimeInForce,
    to_decimal,
    validate_order,
)

_ZERO = Decimal(0)
_SECRET_NAME = re.compile(r"(api_?key|secret|token|password|passphrase|private_?key)", re.I)
_current_algo: contextvars.ContextVar[TradingAlgorithm | None] = contextvars.ContextVar(
    "rustybt_current_algo", default=None
)


def get_current_algorithm() -> TradingAlgorithm:
    algo = _current_algo.get()
    if algo is None:
        raise RustyBTError(
            "no algorithm is running: rustybt.api functions work only inside initialize, "
            "handle_data, before_trading_start or a scheduled function"
        )
    return algo


class TradingAlgorithm:
    """Subclass and override :meth:`initialize` and :meth:`handle_data`."""

    #: Name used for checkpoints, journals and client order ids; defaults to the class name.
    name: str | None = None
    #: What ``data``, ``portfolio``, ``account`` and results show: "decimal" or "float".
    numbers: str = "decimal"

    def __init__(self, **params: Any) -> None:
        for key, value in params.items():
            setattr(self, key, value)
        self._rt: Any = None
        self._recorded: dict[str, Any] = {}
        self._initialized = False

    # --- user hooks -------------------------------------------------------------------
    def initialize(self, *args: Any) -> None:
        """Set up the strategy: look assets up, set parameters, schedule functions."""

    def handle_data(self, context: Any, data: Any) -> None:
        """Called once per timestamp with a view over all assets."""

    def before_trading_start(self, context: Any, data: Any) -> None:
        """Called once per session before its first bar."""

    def analyze(self, context: Any, results: Any) -> None:
        """Called once after a backtest with its results."""

    # --- runtime plumbing (not for strategies) ------------------------------------------
    @property
    def strategy_name(self) -> str:
        return self.name or type(self).__name__

    def _attach(self, runtime: Any) -> None:
        if not hasattr(self, "_recorded"):
            # A subclass __init__ that forgot super().__init__() still works.
            TradingAlgorithm.__init__(self)
        self._rt = runtime

    @property
    def _floats(self) -> bool:
        numbers = self.numbers
        if numbers == "decimal":  # checked on every order: skip the validation
            return False
        return check_numbers(numbers) == "float"

    def _view(self, data: Any) -> Any:
        """``data`` as this strategy sees it (a float view in float mode)."""
        if self._floats and isinstance(data, BarData):
            cached = getattr(self, "_float_data", None)
            if cached is None or cached.decimal is not data:
                cached = self._float_data = FloatBarData(data)
            return cached
        return data

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        token = _current_algo.set(self)
        try:
            if self._floats:
                args = tuple(self._view(a) for a in args)
            return fn(*args)
        finally:
            _current_algo.reset(token)

    def _run_initialize(self) -> None:
        n = _arity(self.initialize)
        self._call(self.initialize, *([self] if n >= 1 else []))
        self._initialized = True

    def _run_handle_data(self, data: Any) -> None:
        token = _current_algo.set(self)
        try:
            self.handle_data(self, self._view(data) if self.numbers == "float" else data)
        finally:
            _current_algo.reset(token)

    def _run_before_trading_start(self, data: Any) -> None:
        pipes = getattr(self, "_pipelines", None)
        if pipes:
            self._pipeline_outputs = pipes.run_all(self._rt, data)
        self._call(self.before_trading_start, self, data)

    # --- state capture for checkpoints -------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Strategy variables to checkpoint: public attributes of simple types.

        Captured: attributes not starting with ``_`` whose values are None, bool, int,
        str, Decimal, Asset, or lists/tuples/dicts of those. Attributes named like
        credentials (api_key, secret, token, password, private_key) are never captured.
        Override this and :meth:`set_state` to capture anything else.
        """
        out: dict[str, Any] = {}
        for key, value in vars(self).items():
            if key.startswith("_") or _SECRET_NAME.search(key) or not _is_simple(value):
                continue  # credentials never reach a checkpoint
            out[key] = value
        return out

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore variables captured by :meth:`get_state` (called after ``initialize``)."""
        for key, value in state.items():
            setattr(self, key, value)

    # --- lookups ------------------------------------------------------------------------
    def symbol(self, symbol_str: str) -> Asset:
        """The asset named ``symbol_str`` in the data (e.g. ``self.symbol("AAPL")``).

        Raises :class:`~rustybt.exceptions.SymbolNotFound` listing the known symbols.
        """
        return self._rt.lookup_symbol(symbol_str)

    def symbols(self, *symbols: str) -> list[Asset]:
        """Several assets at once: ``self.symbols("AAPL", "MSFT")``."""
        return [self.symbol(s) for s in symbols]

    def sid(self, sid: int) -> Asset:
        """The asset with bundle id ``sid``."""
        return self._rt.asset_finder.retrieve_asset(sid)

    def get_datetime(self, tz: Any = None) -> datetime:
        """The current simulation (or live) time, tz-aware UTC; in ``tz`` if given."""
        dt = self._rt.current_dt()
        return dt.astimezone(tz) if (tz is not None and dt is not None) else dt

    @property
    def portfolio(self) -> Any:
        """The portfolio: ``portfolio_value``, ``cash``, ``positions`` (``Decimal``; floats
        for a float-mode strategy, see :mod:`rustybt.boundary`)."""
        view = self._rt.ledger.portfolio
        return FloatPortfolio(view) if self._floats else view

    @property
    def account(self) -> Any:
        """Account figures (cash, buying power, leverage): ``Decimal``, or floats in float
        mode."""
        view = self._rt.ledger.account
        return FloatAccount(view) if self._floats else view

    @property
    def recorded_vars(self) -> dict[str, Any]:
        """The values passed to :meth:`record` on the current bar."""
        return dict(self._recorded)

    def record(self, *args: Any, **kwargs: Any) -> None:
        """Record named values for this bar (``record(price=p)`` or ``record('price', p)``)."""
        if args:
            if len(args) % 2:
                raise InvalidOrder("record() takes name/value pairs, e.g. record('x', 1)")
            kwargs.update(zip(args[::2], args[1::2], strict=True))
        self._recorded.update(kwargs)

    # --- cost models (zipline's set_commission / set_slippage) ----------------------------
    def set_commission(self, us_equities: Any = None, us_futures: Any = None) -> None:
        """Use this commission model for the run's simulated fills (call in ``initialize``).

        Applies to the backtest and the paper broker alike; a real venue charges what it
        charges, so there it is ignored with a warning. One model serves every asset
        class: pass it as ``us_equities`` (zipline's first parameter) or ``us_futures``.
        """
        from rustybt.finance.decimal.commission import CommissionModel

        model = self._one_model("set_commission", us_equities, us_futures)
        if not isinstance(model, CommissionModel):
            raise ConfigError(
                f"set_commission({model!r}): pass a commission model, e.g. "
                "commission.PerShare(cost=0.005) from rustybt.finance"
            )
        self._rt.set_cost_models(commission_model=model)

    def set_slippage(self, us_equities: Any = None, us_futures: Any = None) -> None:
        """Use this slippage model (and its volume limit) for simulated fills.

        Call in ``initialize``. Like :meth:`set_commission`: backtest and paper alike,
        ignored with a warning on a real venue.
        """
        from rustybt.finance.decimal.slippage import SlippageModel

        model = self._one_model("set_slippage", us_equities, us_futures)
        if not isinstance(model, SlippageModel):
            raise ConfigError(
                f"set_slippage({model!r}): pass a slippage model, e.g. "
                "slippage.VolumeShareSlippage() from rustybt.finance"
            )
        self._rt.set_cost_models(slippage_model=model)

    def _one_model(self, fn: str, us_equities: Any, us_futures: Any) -> Any:
        if self._initialized:
            raise ConfigError(
                f"{fn}() works only inside initialize(): the models of a run are fixed "
                "before its first bar; move the call into initialize"
            )
        if us_equities is not None and us_futures is not None and us_equities != us_futures:
            raise ConfigError(
                f"{fn}(us_equities=..., us_futures=...) with two different models is not "
                "supported: one model serves every asset class; pass one of them"
            )
        model = us_equities if us_equities is not None else us_futures
        if model is None:
            raise ConfigError(f"{fn}() needs a model, e.g. {fn}(commission.PerShare())")
        return model

    # --- pipelines ----------------------------------------------------------------------
    def attach_pipeline(
        self, pipeline: Any, name: str, chunks: Any = None, eager: bool = True
    ) -> Any:
        """Compute ``pipeline`` once per session, before ``before_trading_start``.

        Call in ``initialize``; read the result with :meth:`pipeline_output`. ``chunks``
        and ``eager`` are accepted for zipline's signature (the engine computes one
        session at a time).
        """
        from rustybt.pipeline.attached import AttachedPipelines

        if self._initialized:
            raise ConfigError(
                "attach_pipeline() works only inside initialize(); move the call there"
            )
        if getattr(self, "_pipelines", None) is None:
            self._pipelines = AttachedPipelines()
        self._pipelines.attach(pipeline, name)
        return pipeline

    def pipeline_output(self, name: str) -> Any:
        """This session's output of the pipeline attached as ``name`` (a DataFrame)."""
        from rustybt.pipeline.attached import output_of

        return output_of(self, name)

    # --- scheduling ---------------------------------------------------------------------
    def schedule_function(
        self,
        func: Callable[[Any, Any], Any],
        date_rule: Any = None,
        time_rule: Any = None,
        calendar: str | None = None,
        half_days: bool = True,
    ) -> None:
        """Run ``func(context, data)`` on the dates/times given by the rules, in any mode.

        ``half_days=False`` (skip early-close sessions) is not supported yet and is refused
        rather than silently ignored.
        """
        from rustybt import scheduling

        if not half_days:
            raise ConfigError(
                "schedule_function(half_days=False) is not supported: rules fire on early-close "
                "sessions too; check the date in your function to skip them"
            )

        date_rule = date_rule or scheduling.date_rules.every_day()
        time_rule = time_rule or scheduling.time_rules.market_open(minutes=1)
        self._rt.schedule_function(func, date_rule, time_rule, calendar)

    # --- orders ---------------------------------------------------------------------------
    def order(
        self,
        asset: Asset,
        amount: Decimal | int | str,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        style: Any = None,
        tif: TimeInForce | str = TimeInForce.GTC,
    ) -> str | None:
        """Order ``amount`` units of ``asset`` (negative sells); returns the order id.

        ``amount`` is rounded down to the asset's lot size; an amount that rounds to zero is
        a no-op returning ``None``. ``limit_price``/``stop_price`` (or ``style``, e.g.
        ``LimitOrder(p)``; not both) make a limit, stop or stop-limit order. ``tif`` is the
        time in force (``"gtc"`` or ``"day"``). The order passes the risk gate; a refused
        order returns ``None`` and is counted as a reject; so does an order before the
        asset's first bar (no price to value it: rejected with the reason logged).
        """
        if not isinstance(asset, Asset):
            raise InvalidOrder(
                f"order() needs an Asset, got {asset!r}; use self.symbol('AAPL') to get one"
            )
        amount = to_decimal("amount", amount)
        order_type, limit_price, stop_price = _resolve_style(limit_price, stop_price, style)
        if self._floats:
            # A float price from numpy arithmetic lands between ticks: round it to the
            # nearest tick (exactly, from its repr) rather than refusing it.
            limit_price = _to_tick(asset, limit_price)
            stop_price = _to_tick(asset, stop_price)
        rounded = asset.round_amount(amount)
        if rounded == 0:
            return None  # zero, or less than one lot: a documented no-op
        # No price yet (before the asset's first bar) is not an error here: the blotter
        # rejects the order with a logged reason and the strategy carries on.
        reference = self._rt.last_price(asset)
        order = self._rt.blotter.place(
            asset,
            rounded,
            order_type,
            limit_price,
            stop_price,
            TimeInForce(tif) if isinstance(tif, str) else tif,
            reference,
        )
        return order.id if order.is_open or order.filled else None

    def order_value(
        self,
        asset: Asset,
        value: Decimal | int | str,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        style: Any = None,
        tif: TimeInForce | str = TimeInForce.GTC,
    ) -> str | None:
        """Order ``value`` worth of ``asset`` (negative sells); returns the order id.

        The amount is ``value / (price * multiplier)``, priced at ``limit_price`` if given,
        else the last price, then rounded down to the lot size. Other parameters as
        :meth:`order`.
        """
        value = to_decimal("value", value)
        return self._order_value(
            asset, value, limit_price, stop_price, style, tif, f"order_value({value})"
        )

    def _order_value(
        self,
        asset: Asset,
        value: Decimal,
        limit_price: Any,
        stop_price: Any,
        style: Any,
        tif: TimeInForce | str,
        what: str,
    ) -> str | None:
        if value == 0:
            # Nothing to order needs no price: the documented zero-amount no-op.
            return self.order(asset, _ZERO, limit_price, stop_price, style, tif)
        price = _limit_or_last(self, asset, limit_price)
        if price is None:
            return self._reject_unsized(asset, limit_price, stop_price, style, tif, what)
        return self.order(
            asset, value / (price * asset.multiplier), limit_price, stop_price, style, tif
        )

    def _reject_unsized(
        self,
        asset: Asset,
        limit_price: Any,
        stop_price: Any,
        style: Any,
        tif: TimeInForce | str,
        what: str,
    ) -> str | None:
        """A value-based order on an asset with no price yet: the one no-price rule of the
        order path (rejected, reason logged, kept as REJECTED; the strategy carries on)."""
        if not isinstance(asset, Asset):
            raise InvalidOrder(
                f"{what.split('(')[0]}() needs an Asset, got {asset!r}; use "
                "self.symbol('AAPL') to get one"
            )
        order_type, limit, stop = _resolve_style(limit_price, stop_price, style)
        if self._floats:
            limit, stop = _to_tick(asset, limit), _to_tick(asset, stop)
        # Bad prices are bad parameters (InvalidOrder) whether or not there is a price.
        validate_order(asset, asset.lot_size, order_type, limit, stop)
        self._rt.blotter.reject_unsized(
            asset,
            order_type,
            limit,
            stop,
            TimeInForce(tif) if isinstance(tif, str) else tif,
            f"no market data for {asset.symbol} yet: {what} cannot be sized before the "
            "asset's first bar; check data.can_trade(asset) first, or pass a limit_price",
        )
        return None

    def order_percent(
        self,
        asset: Asset,
        percent: Decimal | int | str,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        style: Any = None,
        tif: TimeInForce | str = TimeInForce.GTC,
    ) -> str | None:
        """Order ``percent`` (a fraction: ``0.1`` = 10 %) of the portfolio value in ``asset``.

        Other parameters as :meth:`order`.
        """
        percent = to_decimal("percent", percent)
        return self._order_value(
            asset,
            self._rt.ledger.portfolio_value * percent,
            limit_price,
            stop_price,
            style,
            tif,
            f"order_percent({percent})",
        )

    def _held_and_pending(self, asset: Asset) -> Decimal:
        pos = self._rt.ledger.positions.get(asset)
        held = pos.amount if pos is not None else _ZERO
        return held + self._rt.blotter.open_amount(asset)

    def order_target(
        self,
        asset: Asset,
        target: Decimal | int | str,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        style: Any = None,
        tif: TimeInForce | str = TimeInForce.GTC,
    ) -> str | None:
        """Order so the position in ``asset`` becomes ``target`` units; returns the order id.

        Orders the difference between ``target`` and the position **plus open orders**, so
        calling it every bar does not pile up orders. Other parameters as :meth:`order`.
        """
        target = to_decimal("target", target)
        return self.order(
            asset, target - self._held_and_pending(asset), limit_price, stop_price, style, tif
        )

    def order_target_value(
        self,
        asset: Asset,
        target: Decimal | int | str,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        style: Any = None,
        tif: TimeInForce | str = TimeInForce.GTC,
    ) -> str | None:
        """Order so the position in ``asset`` is worth ``target``; returns the order id.

        Priced at ``limit_price`` if given, else the last price; position plus open orders
        count, as in :meth:`order_target`. Other parameters as :meth:`order`.
        """
        target = to_decimal("target", target)
        return self._order_target_value(
            asset, target, limit_price, stop_price, style, tif, f"order_target_value({target})"
        )

    def _order_target_value(
        self,
        asset: Asset,
        target: Decimal,
        limit_price: Any,
        stop_price: Any,
        style: Any,
        tif: TimeInForce | str,
        what: str,
    ) -> str | None:
        if target == 0:
            # Flat needs no price to size: it is order_target(asset, 0).
            return self.order_target(asset, _ZERO, limit_price, stop_price, style, tif)
        price = _limit_or_last(self, asset, limit_price)
        if price is None:
            return self._reject_unsized(asset, limit_price, stop_price, style, tif, what)
        return self.order_target(
            asset, target / (price * asset.multiplier), limit_price, stop_price, style, tif
        )

    def order_target_percent(
        self,
        asset: Asset,
        target: Decimal | int | str,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        style: Any = None,
        tif: TimeInForce | str = TimeInForce.GTC,
    ) -> str | None:
        """Order so ``asset`` is ``target`` (a fraction: ``0.95`` = 95 %) of the portfolio.

        E.g. ``self.order_target_percent(self.asset, Decimal("0.5"))``. Position plus open
        orders count, as in :meth:`order_target`. Other parameters as :meth:`order`.
        """
        target = to_decimal("target", target)
        return self._order_target_value(
            asset,
            self._rt.ledger.portfolio_value * target,
            limit_price,
            stop_price,
            style,
            tif,
            f"order_target_percent({target})",
        )

    def cancel_order(self, order_or_id: str | Order) -> None:
        """Request a cancel of an order (or its id). Never blocked by breakers or halts;
        a no-op for an order that is already closed."""
        oid = order_or_id.id if isinstance(order_or_id, Order) else order_or_id
        self._rt.blotter.cancel(oid)

    def get_open_orders(self, asset: Asset | None = None) -> Any:
        """Open orders of ``asset``, or a dict asset → open orders (zipline semantics)."""
        blotter = self._rt.blotter
        if asset is not None:
            return blotter.open_orders(asset)
        out: dict[Asset, list[Order]] = {}
        for order in blotter.iter_open_orders():
            out.setdefault(order.asset, []).append(order)
        return out

    def get_order(self, order_id: str) -> Order:
        """The :class:`~rustybt.finance.order.Order` with this id (``OrderNotFound`` if none)."""
        return self._rt.blotter.get_order(order_id)


class ScriptAlgorithm(TradingAlgorithm):
    """Runs a zipline-style script: module-level ``initialize(context)`` and friends."""

    numbers = "float"

    def __init__(self, namespace: dict[str, Any], name: str = "script") -> None:
        super().__init__()
        self._ns = namespace
        self.name = name
        self.numbers = check_numbers(namespace.get("RUSTYBT_NUMBERS", "float"))

    def initialize(self, *args: Any) -> None:
        fn = self._ns.get("initialize")
        if fn is not None:
            fn(self)

    def handle_data(self, context: Any, data: Any) -> None:
        fn = self._ns.get("handle_data")
        if fn is not None:
            fn(self, data)

    def before_trading_start(self, context: Any, data: Any) -> None:
        fn = self._ns.get("before_trading_start")
        if fn is not None:
            fn(self, data)

    def analyze(self, context: Any, results: Any) -> None:
        """zipline's ``analyze(context, perf)``: ``perf`` is the zipline-shaped frame."""
        fn = self._ns.get("analyze")
        if fn is not None:
            frame = getattr(results, "zipline_frame", None)
            if frame is not None:
                results = frame(floats=self._floats)
            headless_matplotlib()
            fn(self, results)

    def get_state(self) -> dict[str, Any]:
        return {k: v for k, v in super().get_state().items() if k not in ("name", "numbers")}


def _to_tick(asset: Asset, price: Decimal | None) -> Decimal | None:
    if price is None:
        return None
    out = asset.round_price(price)
    return out if out > 0 else asset.tick_size


def headless_matplotlib() -> None:
    """Without a display, make matplotlib draw to the non-interactive Agg backend.

    zipline's examples end ``analyze`` with ``plt.show()``; on a server that must not
    fail (Agg makes it a no-op). A backend the user chose (``MPLBACKEND``) is kept.
    """
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if sys.platform in ("darwin", "win32") or os.environ.get("MPLBACKEND"):
        return
    os.environ["MPLBACKEND"] = "Agg"
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        mpl.use("Agg")


def _limit_or_last(algo: TradingAlgorithm, asset: Asset, limit: Any) -> Decimal | None:
    """The price that sizes a value order: its limit price if it has one, else the last.

    ``None`` when there is neither: the asset has had no bar yet.
    """
    if limit is not None:
        limit = to_decimal("limit_price", limit)
        if limit <= 0:
            raise InvalidOrder(f"limit_price={limit} for {asset.symbol} must be > 0")
        return limit
    return algo._rt.last_price(asset)


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 0
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 0
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _resolve_style(
    limit_price: Any, stop_price: Any, style: Any
) -> tuple[OrderType, Decimal | None, Decimal | None]:
    if style is not None:
        if not isinstance(style, MarketOrder | LimitOrder | StopOrder | StopLimitOrder):
            raise InvalidOrder(
                f"style={style!r} is not an order style; use MarketOrder(), LimitOrder(p), "
                "StopOrder(p) or StopLimitOrder(limit, stop)"
            )
        if limit_price is not None or stop_price is not None:
            raise InvalidOrder("pass either style= or limit_price/stop_price, not both")
        return style.order_type, style.limit_price, style.stop_price
    lp = to_decimal("limit_price", limit_price) if limit_price is not None else None
    sp = to_decimal("stop_price", stop_price) if stop_price is not None else None
    if lp is not None and sp is not None:
        return OrderType.STOP_LIMIT, lp, sp
    if lp is not None:
        return OrderType.LIMIT, lp, None
    if sp is not None:
        return OrderType.STOP, None, sp
    return OrderType.MARKET, None, None


def _is_simple(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, bool | int | str | Decimal | Asset):
        return True
    if depth > 4:
        return False
    if isinstance(value, list | tuple):
        return all(_is_simple(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_simple(v, depth + 1) for k, v in value.items())
    return False
