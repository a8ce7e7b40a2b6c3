"""Runs the user's strategy inside the live engine: the algorithm's live runtime.

It builds the ``data`` view from received bars (joined with bundle history), calls
``before_trading_start`` once per exchange session and ``handle_data`` once per market
data event, and maps ``schedule_function`` onto the trading scheduler. A strategy
exception is logged with its traceback and counted; it never kills the engine.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import structlog

from rustybt.algorithm import TradingAlgorithm
from rustybt.assets import Asset, AssetFinder
from rustybt.calendars import SessionDays, calendar_tz
from rustybt.data.bar_data import LiveBarData
from rustybt.finance.blotter import Blotter
from rustybt.finance.ledger import Ledger
from rustybt.live.events import MarketDataEvent

log = structlog.get_logger("rustybt.live")


class StrategyExecutor:
    """The runtime a :class:`TradingAlgorithm` sees when it runs live."""

    def __init__(
        self,
        algo: TradingAlgorithm,
        ledger: Ledger,
        blotter: Blotter,
        asset_finder: AssetFinder,
        portal: Any,
        clock: Callable[[], datetime],
        on_error: Callable[[str, BaseException], None],
        broker: Any = None,
        data: LiveBarData | None = None,
    ) -> None:
        self.algo = algo
        self.broker = broker
        self.ledger = ledger
        self.blotter = blotter
        self.asset_finder = asset_finder
        self.portal = portal
        # ``data``: a view fed by someone else (the shadow reads the live engine's, which
        # only the live executor updates); None builds this executor's own.
        self.data = LiveBarData(portal) if data is None else data
        self.clock = clock
        self.on_error = on_error
        self.used_assets: dict[Asset, None] = {}
        self.schedules: list[tuple[Callable[..., Any], Any, Any, str | None]] = []
        self.scheduler: Any = None
        #: The replay clock's calendar once the engine chose it (rustybt.data.clock).
        self.clock_calendar: str | None = None
        self._session: date | None = None
        self._tz = None
        self._days: SessionDays | None = None
        self.errors = 0
        #: Called after a strategy call returned without raising (consecutive-error rule).
        self.on_success: Callable[[], None] | None = None

    # --- runtime protocol used by TradingAlgorithm -------------------------------------
    def lookup_symbol(self, symbol: str) -> Asset:
        asset = self.asset_finder.lookup_symbol(symbol)
        self.used_assets[asset] = None
        return asset

    def current_dt(self) -> datetime:
        return self.data.current_dt or self.clock()

    def last_price(self, asset: Asset) -> Decimal | None:
        return self.data.last_price(asset)

    def set_cost_models(self, **models: Any) -> None:
        """``set_commission``/``set_slippage``: the simulated venue applies them, the same
        way the backtest does; a real venue charges what it charges, so they are ignored
        there with a warning."""
        apply = getattr(self.broker, "set_cost_models", None)
        if apply is None:
            log.warning(
                "cost_models_ignored",
                broker=type(self.broker).__name__,
                models=", ".join(repr(m) for m in models.values()),
                reason="a real venue charges its own fees and fills at its own prices",
            )
            return
        apply(**models)

    def schedule_function(self, func: Any, date_rule: Any, time_rule: Any, calendar: Any) -> None:
        self.schedules.append((func, date_rule, time_rule, calendar))
        if self.scheduler is not None:
            self._register(func, date_rule, time_rule, calendar, len(self.schedules))

    def attach_scheduler(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        for n, (func, date_rule, time_rule, calendar) in enumerate(self.schedules, 1):
            self._register(func, date_rule, time_rule, calendar, n)

    def _register(self, func: Any, date_rule: Any, time_rule: Any, calendar: Any, n: int) -> None:
        algo, data = self.algo, self.data
        name = getattr(func, "__name__", "function")
        self.scheduler.schedule_rule(
            callback=lambda: self._guard(f"scheduled:{name}", algo._call, func, algo, data),
            date_rule=date_rule,
            time_rule=time_rule,
            calendar=calendar or self.primary_calendar,
            job_id=f"schedule_function:{n}:{name}",
        )

    @property
    def primary_calendar(self) -> str:
        if self.clock_calendar is not None:
            return self.clock_calendar
        assets = list(self.used_assets) or self.asset_finder.assets
        return assets[0].calendar if assets else "XNYS"

    def set_clock_calendar(self, calendar: str) -> None:
        """The calendar the engine's replay clock follows: sessions and schedules use it."""
        self.clock_calendar = calendar
        self._tz = calendar_tz(calendar)

    # --- driving the strategy --------------------------------------------------------------
    def initialize(self) -> None:
        self.algo._attach(self)
        self.algo._run_initialize()
        self._tz = calendar_tz(self.primary_calendar)

    def _guard(self, where: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            out = fn(*args)
        except Exception as exc:
            self.errors += 1
            log.error(
                "strategy_error",
                where=where,
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
            self.on_error(where, exc)
            return None
        if self.on_success is not None:
            self.on_success()
        return out

    def update_data(self, event: MarketDataEvent) -> None:
        data = self.data
        data.current_dt = event.dt
        update = data.update
        for bar in event.bars:
            update(bar)

    def roll_session(self, event: MarketDataEvent) -> None:
        """At a session's first event: ``before_trading_start`` (pipelines first).

        The engine calls this before the session's due scheduled functions, as the
        backtest does, so a function scheduled at the open sees what
        ``before_trading_start`` prepared (e.g. zipline's ``pipeline_output``).
        """
        tz = self._tz
        if tz is not None:
            days = self._days
            if days is None or days.tz is not tz:
                days = self._days = SessionDays(tz)
            day = days(event.dt)
            if day != self._session:
                self._session = day
                self._guard("before_trading_start", self.algo._run_before_trading_start, self.data)

    def on_market_data(self, event: MarketDataEvent) -> None:
        """Session roll-over hook (if not already done), then ``handle_data``."""
        self.roll_session(event)
        self._guard("handle_data", self.algo._run_handle_data, self.data)

    def handle_data(self) -> None:
        """``handle_data`` alone (the caller has already rolled the session)."""
        self._guard("handle_data", self.algo._run_handle_data, self.data)
