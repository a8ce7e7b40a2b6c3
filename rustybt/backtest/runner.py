"""The backtest: the shared kernel driven by a simulated clock over a bundle.

Per timestamp, in this order (the live engine keeps the same order, which is what makes
backtest and paper agree): the shared per-bar step
(:func:`rustybt.finance.kernel.step_bar`) matches resting orders against this bar and
marks positions; breakers observe the portfolio value; on the first bar of a session
``before_trading_start`` runs; scheduled functions that are due run; then ``handle_data``
runs once for all assets. An order placed at bar t — from any of the three — therefore
fills no earlier than bar t+1. Breakers also observe the value after every fill (the
kernel's rule); a breaker trip cancels every pending order (after the bar is matched when
it trips on a fill) and no strategy code runs while it is tripped.

The clock is the union of the bar timestamps of the assets the strategy looked up in
``initialize``, or of the bundle's equities when it looked up none, or what
``calendar=`` asks for (:mod:`rustybt.data.clock`), so an equity strategy on a bundle
that also holds 24/7 crypto is not woken on weekends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import structlog

from rustybt.algorithm import TradingAlgorithm
from rustybt.assets import Asset
from rustybt.calendars import calendar_tz, session_day
from rustybt.data.bar_data import BacktestBarData
from rustybt.data.clock import clock_assets
from rustybt.exceptions import ConfigError
from rustybt.finance.account_rules import AccountRules
from rustybt.finance.blotter import Blotter
from rustybt.finance.execution import ExecutionSimulator, Fill
from rustybt.finance.kernel import step_bar
from rustybt.finance.ledger import Ledger
from rustybt.finance.order import Order, OrderStatus, TimeInForce
from rustybt.finance.risk_gate import RiskGate
from rustybt.metrics.performance import summarize

log = structlog.get_logger("rustybt.backtest")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_utc(value: Any, name: str) -> datetime | None:
    """Parse a user date (str/date/datetime/Timestamp) into tz-aware UTC, or None."""
    if value is None:
        return None
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except Exception as exc:
        raise ConfigError(f"{name}={value!r} is not a date; use YYYY-MM-DD") from exc
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").to_pydatetime()


@dataclass
class BacktestResult:
    """What a backtest produced; ``save`` writes it to Parquet."""

    strategy: str
    daily: list[dict[str, Any]]
    orders: list[Order]
    transactions: list[dict[str, Any]]
    summary: dict[str, Any]
    start: datetime | None
    end: datetime | None
    bars: int
    wall_seconds: float
    recorded: list[dict[str, Any]] = field(default_factory=list)
    #: Per session: its last bar ("close") and the positions then (asset, amount,
    #: cost basis, last price); what :meth:`zipline_frame` needs beyond ``daily``.
    day_ends: list[dict[str, Any]] = field(default_factory=list)

    def zipline_frame(self, floats: bool = True) -> Any:
        """zipline's ``perf`` DataFrame (pandas), float columns unless ``floats=False``."""
        from rustybt.backtest.results_frame import zipline_frame

        return zipline_frame(self, floats)

    def daily_frame(self) -> pl.DataFrame:
        return pl.DataFrame(_stringify_rows(self.daily))

    def orders_frame(self) -> pl.DataFrame:
        rows = [
            {
                "id": o.id,
                "symbol": o.asset.symbol,
                "amount": o.amount,
                "filled": o.filled,
                "order_type": o.order_type.value,
                "limit_price": o.limit_price,
                "stop_price": o.stop_price,
                "status": o.status.value,
                "created": o.created_dt,
                "avg_fill_price": o.avg_fill_price,
                "commission": o.commission,
                "reason": o.reason,
            }
            for o in self.orders
        ]
        return pl.DataFrame(_stringify_rows(rows)) if rows else pl.DataFrame()

    def transactions_frame(self) -> pl.DataFrame:
        return (
            pl.DataFrame(_stringify_rows(self.transactions))
            if self.transactions
            else pl.DataFrame()
        )

    def save(self, directory: str | Path) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.daily_frame().write_parquet(out / "daily.parquet")
        self.orders_frame().write_parquet(out / "orders.parquet")
        self.transactions_frame().write_parquet(out / "transactions.parquet")
        return out


def daily_row(ledger: Ledger, day: date, prev_value: Decimal, fills: int) -> dict[str, Any]:
    """One row of the daily results, from the ledger at the end of ``day``.

    The backtest and a live/paper session (``rustybt.live.results``) write the same rows,
    so their Parquet results have one schema and can be compared directly.
    """
    pv = ledger.portfolio_value
    return {
        "date": day,
        "portfolio_value": pv,
        "cash": ledger.cash,
        "positions_value": ledger.positions_value,
        "pnl": pv - prev_value,
        "returns": (pv - prev_value) / prev_value if prev_value else Decimal(0),
        "gross_exposure": ledger.gross_exposure,
        "leverage": ledger.leverage,
        "fills": fills,
        "fees_total": ledger.fees_paid,
    }


def _stringify_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Decimals are written as exact strings: Parquet readers everywhere read them back
    # without a float detour, and mixed scales in one column cannot lose digits.
    return [
        {k: (_dec_str(v) if isinstance(v, Decimal) else v) for k, v in row.items()} for row in rows
    ]


def _dec_str(value: Decimal) -> str:
    # A zero can carry an exponent (0E+2) from arithmetic; write it as a plain 0.
    return "0" if value == 0 else str(value)


class _BacktestBlotter(Blotter):
    """The backtest's simulated account: accepted orders wait in the book and the runner
    matches them on later bars through :func:`~rustybt.finance.kernel.step_bar` (this
    class is the :class:`~rustybt.finance.kernel.SimulatedAccount` it advances)."""

    def __init__(self, *args: Any, rules: AccountRules | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.rules = rules
        self.transactions: list[dict[str, Any]] = []
        self.price_of: Callable[[Asset], Decimal | None] = lambda asset: None
        self.breakers: Any = None
        # Cancels requested by the strategy: confirmed at the next bar, before matching,
        # as a venue confirms a cancel after the request (the paper venue's cancel event
        # reaches the strategy then too). Until then the order counts as open.
        self.cancelling: list[tuple[Order, str]] = []
        # True while step_bar matches a bar. A breaker that trips then (on a fill, or a
        # fill-time reject) cancels once the bar is matched: a venue has matched the whole
        # bar by the time a live engine hears of the first fill, so that is when its
        # cancels can land (the live engine's order, see tests/test_parity_cases.py).
        self.stepping = False
        self.trip_reason: str | None = None
        #: The book step_bar matches (SimulatedAccount.resting): the open orders, by asset.
        self.resting: dict[Asset, list[Order]] = self._open

    def _request_cancel(self, order: Order, reason: str) -> None:
        self.cancelling.append((order, reason))

    def confirm_cancels(self) -> None:
        pending, self.cancelling = self.cancelling, []
        for order, reason in pending:
            self.mark_cancelled(order, reason)

    def cancel_now(self, reason: str) -> None:
        """Cancel every open order at once (a breaker trip: no strategy code runs between)."""
        for order in list(self.iter_open_orders()):
            self.mark_cancelled(order, reason)

    def on_trip(self, reason: str) -> None:
        """A breaker tripped: cancel every pending order, after the bar being matched."""
        if self.stepping:
            if self.trip_reason is None:
                self.trip_reason = reason
        else:
            self.cancel_now(reason)

    def end_step(self) -> None:
        self.stepping = False
        reason = self.trip_reason
        if reason is not None:
            self.trip_reason = None
            self.cancel_now(reason)

    # --- the venue's submit-time account rules (the paper venue applies the same) -------
    def _send(self, order: Order) -> None:
        rules = self.rules
        if rules is not None:
            reason = rules.check_submit(
                self.ledger,
                # the order itself is already booked: others exist only if more are open
                chain.from_iterable(self._open.values()) if self.open_count > 1 else (),
                order.asset,
                order.amount,
                order.order_type,
                order.limit_price,
                order.stop_price,
                self.price_of,
                exclude=order,
            )
            if reason is not None:
                self._venue_reject(order, reason)
                return
        order.transition(OrderStatus.SUBMITTED)
        breakers = self.breakers
        if breakers is not None:
            # The venue took it: a success for the error-rate breaker, as live.
            breakers.on_success(self.clock())

    def _venue_reject(self, order: Order, reason: str) -> None:
        log.warning("order_rejected", order_id=order.id, symbol=order.asset.symbol, reason=reason)
        self.mark_rejected(order, reason)
        breakers = self.breakers
        if breakers is not None:
            # Live, a venue refusal counts towards the error-rate breaker; so here.
            breakers.on_error(self.clock())

    # --- SimulatedAccount ----------------------------------------------------------------
    # Always eligible: the runner matches an order only on bars after the one it was
    # placed on (step_bar skips the check when this is None).
    eligible = None

    def settle_fill(self, order: Order, fill: Fill, dt: datetime) -> None:
        self.apply_fill(order, fill.amount, fill.price, fill.commission, dt)
        breakers = self.breakers
        if breakers is not None:
            # Breakers observe the value after every fill (step_bar's rule; the live
            # engine's _on_fill does the same), not only once per bar.
            breakers.on_portfolio_value(self.ledger.portfolio_value, dt)
        self.transactions.append(
            {
                "dt": dt,
                "order_id": order.id,
                "symbol": order.asset.symbol,
                "amount": fill.amount,
                "price": fill.price,
                "commission": fill.commission,
            }
        )

    def settle_cancel(self, order: Order, reason: str, dt: datetime) -> None:
        self.mark_cancelled(order, reason)

    def settle_reject(self, order: Order, reason: str, dt: datetime) -> None:
        self._venue_reject(order, reason)


#: The backtest's simulated account under a public name: the shadow engine
#: (``rustybt.live.shadow``) keeps its account in one, so it fills by the backtest's rules.
BacktestBlotter = _BacktestBlotter


def _cancel_on_trip(blotter: _BacktestBlotter) -> Callable[[Any, str], None]:
    """A breaker trip cancels every pending order, as the live engine does."""

    def listener(breaker: Any, event: str) -> None:
        if event == "tripped":
            reason = breaker.get_trip_reason() or "tripped"
            blotter.on_trip("circuit breaker tripped: " + reason)

    return listener


class _BacktestRuntime:
    """What a :class:`TradingAlgorithm` sees of the backtest."""

    def __init__(self, portal: Any, ledger: Ledger, blotter: Blotter) -> None:
        self.portal = portal
        self.asset_finder = portal.asset_finder
        self.ledger = ledger
        self.blotter = blotter
        self.used_assets: dict[Asset, None] = {}
        self.data: BacktestBarData | None = None
        self.now: datetime | None = None
        self.schedules: list[tuple[Callable[..., Any], Any, Any, str | None]] = []
        self.cost_models: dict[str, Any] = {}

    def set_cost_models(self, **models: Any) -> None:
        """``set_commission``/``set_slippage`` from ``initialize``: applied before bar one."""
        self.cost_models.update(models)

    def lookup_symbol(self, symbol: str) -> Asset:
        asset = self.asset_finder.lookup_symbol(symbol)
        self.used_assets[asset] = None
        return asset

    def current_dt(self) -> datetime | None:
        return self.now

    def last_price(self, asset: Asset) -> Decimal | None:
        data = self.data
        return data.last_price(asset) if data is not None else None

    def schedule_function(self, func: Any, date_rule: Any, time_rule: Any, calendar: Any) -> None:
        self.schedules.append((func, date_rule, time_rule, calendar))


def _instantiate(strategy: Any, hooks: dict[str, Any]) -> TradingAlgorithm:
    if isinstance(strategy, TradingAlgorithm):
        return strategy
    if isinstance(strategy, type) and issubclass(strategy, TradingAlgorithm):
        return strategy()
    if strategy is None and hooks.get("initialize") is not None:
        from rustybt.algorithm import ScriptAlgorithm

        return ScriptAlgorithm({k: v for k, v in hooks.items() if v is not None})
    raise ConfigError(
        "run_algorithm needs strategy= (a TradingAlgorithm subclass or instance) or "
        "initialize=/handle_data= functions"
    )


def run_algorithm(
    strategy: Any = None,
    *,
    initialize: Callable[..., Any] | None = None,
    handle_data: Callable[..., Any] | None = None,
    before_trading_start: Callable[..., Any] | None = None,
    analyze: Callable[..., Any] | None = None,
    bundle: str = "demo",
    data_frequency: str = "minute",
    start: Any = None,
    end: Any = None,
    capital_base: Decimal | int | str = Decimal("100000"),
    commission_model: Any = None,
    slippage_model: Any = None,
    volume_limit_pct: Decimal | None = None,
    risk_limits: Any = None,
    circuit_breakers: Any = None,
    allow_short: bool = False,
    check_buying_power: bool = True,
    show_progress: bool = False,
    output_dir: str | Path | None = None,
    data_portal: Any = None,
    calendar: str | None = None,
    numbers: str | None = None,
) -> Any:
    """Backtest ``strategy`` over ``bundle`` and return (and optionally save) the results.

    Two call forms. ``run_algorithm(MyStrategy(), ...)`` (a :class:`TradingAlgorithm`
    subclass or instance) returns a :class:`BacktestResult`, whose
    ``zipline_frame()`` is zipline's results DataFrame. zipline's functional form
    ``run_algorithm(start=, end=, initialize=, handle_data=, before_trading_start=,
    analyze=, capital_base=, bundle=, data_frequency=)`` returns that DataFrame directly,
    as zipline does (float columns; ``numbers="decimal"`` keeps ``Decimal``).

    ``start``/``end`` default to the bundle's whole range; ``calendar`` overrides the
    clock's calendar (:mod:`rustybt.data.clock`); ``numbers`` ("float"/"decimal") sets
    what the strategy sees at the API. ``allow_short`` and ``check_buying_power`` are the
    simulated account's rules
    (:class:`~rustybt.finance.account_rules.AccountRules`), with the paper broker's
    defaults: a cash account, no short selling.
    """
    from rustybt.data.polars.data_portal import PolarsDataPortal

    algo = _instantiate(
        strategy,
        {
            "initialize": initialize,
            "handle_data": handle_data,
            "before_trading_start": before_trading_start,
            "analyze": analyze,
        },
    )
    functional = strategy is None
    if numbers is not None:
        from rustybt.boundary import check_numbers

        algo.numbers = check_numbers(numbers)
    try:
        capital = Decimal(str(capital_base))
    except Exception as exc:
        raise ConfigError(f"capital_base={capital_base!r} is not a number") from exc
    if not capital.is_finite() or capital <= 0:
        raise ConfigError(f"capital_base must be a positive amount, got {capital_base!r}")
    start_dt, end_dt = to_utc(start, "start"), to_utc(end, "end")
    if start_dt and end_dt and start_dt > end_dt:
        raise ConfigError(f"start {start_dt:%Y-%m-%d} is after end {end_dt:%Y-%m-%d}; swap them")
    portal = data_portal or PolarsDataPortal(bundle_name=bundle, data_frequency=data_frequency)

    ledger = Ledger(capital)
    runtime: _BacktestRuntime
    blotter = _BacktestBlotter(
        ledger,
        RiskGate(risk_limits, circuit_breakers),
        id_prefix=f"bt-{algo.strategy_name}",
        clock=lambda: runtime.now,
        rules=AccountRules(allow_short=bool(allow_short), check_buying_power=check_buying_power),
    )
    runtime = _BacktestRuntime(portal, ledger, blotter)
    blotter.price_of = runtime.last_price
    if circuit_breakers is not None:
        blotter.breakers = circuit_breakers
        add_listener = getattr(circuit_breakers, "add_listener", None)
        if add_listener is not None:
            add_listener(_cancel_on_trip(blotter))
    runtime.now = start_dt or portal.start
    algo._attach(runtime)
    algo._run_initialize()

    clock_calendar, clock_set = clock_assets(portal.asset_finder, runtime.used_assets, calendar)
    clock_ns = portal.timestamps(clock_set, start_dt, end_dt)
    if len(clock_ns) == 0:
        raise ConfigError(
            f"the selected range {_when(start_dt, 'start')} → {_when(end_dt, 'end')} holds "
            f"no bars of "
            f"{', '.join(sorted(a.symbol for a in clock_set))}, whose bars run "
            f"{portal.bars_span(list(clock_set))}; widen --start/--end"
        )
    simulator = ExecutionSimulator(slippage_model, commission_model, volume_limit_pct)
    simulator.set_models(**runtime.cost_models)
    runner = _Loop(algo, runtime, portal, clock_ns, simulator, circuit_breakers)
    runner.calendar = clock_calendar
    runner.tz = calendar_tz(clock_calendar)
    result = runner.run(show_progress, output_dir)
    return result.zipline_frame(floats=algo._floats) if functional else result


class _Loop:
    def __init__(
        self,
        algo: TradingAlgorithm,
        runtime: _BacktestRuntime,
        portal: Any,
        clock_ns: np.ndarray,
        simulator: ExecutionSimulator,
        breakers: Any,
    ) -> None:
        self.algo = algo
        self.rt = runtime
        self.portal = portal
        self.clock_ns = clock_ns
        self.sim = simulator
        self.breakers = breakers
        assets = list(runtime.used_assets) or portal.asset_finder.assets
        self.calendar = assets[0].calendar if assets else "XNYS"
        self.tz = calendar_tz(self.calendar)
        self.daily: list[dict[str, Any]] = []
        self.recorded: list[dict[str, Any]] = []
        self.day_ends: list[dict[str, Any]] = []

    def _fire_times(self, start: datetime, end: datetime) -> list[tuple[int, Callable[..., Any]]]:
        out: list[tuple[int, Callable[..., Any]]] = []
        if not self.rt.schedules:
            return out
        from rustybt.scheduling import fire_times

        for func, date_rule, time_rule, calendar in self.rt.schedules:
            for t in fire_times(date_rule, time_rule, calendar or self.calendar, start, end):
                out.append(((t - _EPOCH) // _ONE_US * 1000, func))
        out.sort(key=lambda x: x[0])
        return out

    def run(self, show_progress: bool, output_dir: str | Path | None) -> BacktestResult:
        algo, rt, sim = self.algo, self.rt, self.sim
        ledger = rt.ledger
        blotter: _BacktestBlotter = rt.blotter  # type: ignore[assignment]
        clock_ns = self.clock_ns
        n = len(clock_ns)
        data = BacktestBarData(self.portal, clock_ns)
        rt.data = data
        if n == 0:
            raise ConfigError("the selected range holds no bars; widen --start/--end")
        dts = [datetime.fromtimestamp(int(t) / 1e9, UTC) for t in clock_ns]
        schedule = self._fire_times(dts[0], dts[-1])
        sched_i, sched_n = 0, len(schedule)
        tz = self.tz
        minute_bars = getattr(self.portal, "data_frequency", "minute") == "minute"
        breakers = self.breakers
        progress = _Progress(n) if show_progress else None
        wall0 = time.perf_counter()

        current_day: date | None = None
        day_start_fills = 0
        bar_of, price_of = data.bar, data.last_price
        blotter.price_of = price_of  # the runtime's last_price, one call shorter
        rules = blotter.rules
        for i in range(n):
            dt = dts[i]
            data.index = i
            data.current_dt = dt
            rt.now = dt
            day = session_day(dt, tz, minute_bars)
            new_session = day != current_day
            if new_session:
                if current_day is not None:
                    self._end_of_day(current_day, dts[i - 1], day_start_fills)
                    day_start_fills = blotter.fill_count
                current_day = day
            # 1-2. the shared per-bar step: match resting orders, settle fills, mark
            if blotter.cancelling:
                blotter.confirm_cancels()
            if breakers is None:
                step_bar(blotter, sim, rules, dt, bar_of, price_of)
            else:
                blotter.stepping = True
                step_bar(blotter, sim, rules, dt, bar_of, price_of)
                blotter.end_step()
                # 3. breakers observe the portfolio value (flat or not: a loss realised
                # into cash must reach them too)
                breakers.on_portfolio_value(ledger.portfolio_value, dt)
            # 4. session start, then scheduled functions (orders they place rest until
            # the next bar, like handle_data's: no look-ahead)
            # While a breaker is tripped no strategy code runs, as live (the engine's
            # _strategy_may_run): orders it would place are not even attempted.
            # A strategy call that returns is a success for the error-rate breaker's
            # consecutive-failures rule, as live (the engine's executor); one that
            # raises ends the backtest.
            if new_session and (breakers is None or breakers.can_trade()):
                algo._run_before_trading_start(data)
                if breakers is not None:
                    breakers.on_success(dt)
            now_ns = clock_ns[i]
            while sched_i < sched_n and schedule[sched_i][0] <= now_ns:
                if breakers is None or breakers.can_trade():
                    algo._call(schedule[sched_i][1], algo, data)
                    if breakers is not None:
                        breakers.on_success(dt)
                sched_i += 1
            # 5. the strategy
            if breakers is None:
                algo._run_handle_data(data)
            elif breakers.can_trade():
                algo._run_handle_data(data)
                breakers.on_success(dt)
            if progress is not None and (i & 1023) == 0:
                progress.update(i)
        if blotter.cancelling:
            blotter.confirm_cancels()
        if current_day is not None:
            # The data ends, not necessarily the session: DAY orders stay open, as they
            # do in a paper session that stops at the same bar.
            self._end_of_day(current_day, dts[-1], day_start_fills, expire=False)
        wall = time.perf_counter() - wall0
        if progress is not None:
            progress.close(n)

        values = [row["portfolio_value"] for row in self.daily]
        summary = summarize(
            values,
            ledger.starting_cash,
            orders=blotter.submitted_count,
            fills=blotter.fill_count,
            fees=ledger.fees_paid,
            rejects=blotter.rejected_count,
            periods_per_year=365 if self.calendar == "24/7" else 252,
        )
        result = BacktestResult(
            strategy=algo.strategy_name,
            daily=self.daily,
            orders=list(blotter.orders.values()),
            transactions=blotter.transactions,
            summary=summary,
            start=dts[0],
            end=dts[-1],
            bars=n,
            wall_seconds=wall,
            recorded=self.recorded,
            day_ends=self.day_ends,
        )
        algo._call(algo.analyze, algo, result)
        if output_dir is not None:
            result.save(output_dir)
        return result

    def _end_of_day(
        self, day: date, last_dt: datetime, day_start_fills: int, expire: bool = True
    ) -> None:
        rt = self.rt
        ledger, blotter = rt.ledger, rt.blotter
        if expire:
            for order in list(blotter.iter_open_orders()):
                if order.tif is TimeInForce.DAY:
                    blotter.mark_cancelled(order, "DAY order expired at session end")
        prev = self.daily[-1]["portfolio_value"] if self.daily else ledger.starting_cash
        self.daily.append(daily_row(ledger, day, prev, blotter.fill_count - day_start_fills))
        self.day_ends.append(
            {
                "close": last_dt,
                "positions": [
                    (p.asset, p.amount, p.cost_basis, p.last_price)
                    for p in ledger.positions.values()
                    if p.amount != 0
                ],
            }
        )
        rec = self.algo._recorded
        if rec:
            self.recorded.append({"date": day, **rec})


class _Progress:
    """A rich progress bar over bars processed."""

    def __init__(self, total: int) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._p = Progress(
            TextColumn("backtest"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} bars"),
            TimeRemainingColumn(),
            transient=True,
        )
        self._p.start()
        self._task = self._p.add_task("bt", total=total)

    def update(self, i: int) -> None:
        self._p.update(self._task, completed=i)

    def close(self, n: int) -> None:
        self._p.update(self._task, completed=n)
        self._p.stop()


def _when(dt: datetime | None, default: str) -> str:
    return f"{dt:%Y-%m-%d %H:%M} UTC" if dt is not None else default
