"""A live or paper session's results in the backtest's schema (``rustybt live -o DIR``).

:class:`SessionRecorder` watches a :class:`~rustybt.live.engine.LiveTradingEngine`: one
daily row per session (the backtest's :func:`~rustybt.backtest.runner.daily_row`, taken at
the same moment — when the next session's first bar arrives, and at the end), every fill
the engine applies as a transaction row, and the engine's orders. :meth:`result` returns a
:class:`~rustybt.backtest.runner.BacktestResult`, so ``save(DIR)`` writes
``daily.parquet``, ``orders.parquet`` and ``transactions.parquet`` with exactly the
columns ``rustybt run -o DIR`` writes, and a paper session can be diffed against its
backtest.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from rustybt.backtest.runner import BacktestResult, daily_row
from rustybt.calendars import SessionDays
from rustybt.live.events import OrderFillEvent
from rustybt.metrics.performance import summarize


class SessionRecorder:
    """Collects daily rows and transactions while an engine runs (see module docstring)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.daily: list[dict[str, Any]] = []
        self.transactions: list[dict[str, Any]] = []
        self.day_ends: list[dict[str, Any]] = []
        self.recorded: list[dict[str, Any]] = []
        self._day: date | None = None
        self._day_start_fills = 0
        self._starting_value: Decimal | None = None
        self._first: datetime | None = None
        self._last: datetime | None = None
        self._bars = 0
        self._finished = False
        self._days: SessionDays | None = None

    # --- hooks the engine calls ----------------------------------------------------------
    def on_market_data(self, dt: datetime) -> None:
        """Before the engine handles the event at ``dt``: close the day if a new one starts."""
        engine = self.engine
        if self._starting_value is None:
            self._starting_value = engine.ledger.portfolio_value
            self._first = dt
        tz = engine.executor._tz or UTC
        days = self._days
        if days is None or days.tz is not tz:
            days = self._days = SessionDays(tz)
        day = days(dt)
        if day != self._day:
            if self._day is not None:
                self._close_day()
            self._day = day
        self._last = dt
        self._bars += 1

    def on_fill(self, event: OrderFillEvent) -> None:
        self.transactions.append(
            {
                "dt": event.dt,
                "order_id": event.client_order_id,
                "symbol": event.asset.symbol,
                "amount": event.amount,
                "price": event.price,
                "commission": event.commission,
            }
        )

    # --- results -------------------------------------------------------------------------
    def _close_day(self) -> None:
        engine = self.engine
        ledger, om = engine.ledger, engine.order_manager
        prev = self.daily[-1]["portfolio_value"] if self.daily else self._starting_value
        assert self._day is not None
        self.daily.append(daily_row(ledger, self._day, prev, om.fill_count - self._day_start_fills))
        self._day_start_fills = om.fill_count
        # What zipline's perf frame needs (BacktestResult.zipline_frame), as the backtest
        # records it at its end of day: the day's last bar, open positions, record() values.
        self.day_ends.append(
            {
                "close": self._last,
                "positions": [
                    (p.asset, p.amount, p.cost_basis, p.last_price)
                    for p in ledger.positions.values()
                    if p.amount != 0
                ],
            }
        )
        rec = getattr(engine.strategy, "_recorded", None)
        if rec:
            self.recorded.append({"date": self._day, **rec})

    def result(self) -> BacktestResult:
        """The session so far (the last, possibly unfinished, day included)."""
        if not self._finished and self._day is not None:
            self._close_day()
            self._finished = True
        engine = self.engine
        om, ledger = engine.order_manager, engine.ledger
        starting = self._starting_value if self._starting_value is not None else ledger.cash
        calendar = engine.executor.primary_calendar
        summary = summarize(
            [row["portfolio_value"] for row in self.daily],
            starting,
            orders=om.submitted_count,
            fills=om.fill_count,
            fees=ledger.fees_paid,
            rejects=om.rejected_count,
            periods_per_year=365 if calendar == "24/7" else 252,
        )
        return BacktestResult(
            strategy=engine.strategy_name,
            daily=self.daily,
            orders=list(om.orders.values()),
            transactions=self.transactions,
            summary=summary,
            start=self._first,
            end=self._last,
            bars=self._bars,
            wall_seconds=0.0,
            recorded=self.recorded,
            day_ends=self.day_ends,
        )
