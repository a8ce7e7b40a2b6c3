"""The shadow engine: the same strategy, backtested bar by bar beside the live session.

:class:`ShadowEngine` holds a second instance of the user's strategy (a deep copy taken
before ``initialize``; a zipline-style script is loaded again so the two never share
module globals), a simulated account — the backtest's own
(:class:`rustybt.backtest.runner.BacktestBlotter`, a
:class:`~rustybt.finance.kernel.SimulatedAccount`) over its own
:class:`~rustybt.finance.ledger.Ledger`, filling by the venue's
:meth:`~rustybt.live.brokers.base.BrokerAdapter.execution_rules` — and a
:class:`~rustybt.live.strategy_executor.StrategyExecutor` over the live strategy's own
data view (read, never fed: bars are immutable input), so ``data.history`` and
``data.current`` answer exactly as they do live, without a second copy.

Per market event, in the backtest's order: the shared per-bar step
(:func:`rustybt.finance.kernel.step_bar`: match resting orders, mark positions), then
``before_trading_start`` on a new session, the due ``schedule_function`` jobs (its own
:class:`~rustybt.live.scheduler.TradingScheduler` on a simulated clock), then
``handle_data``; then the bar is compared with what the live strategy did
(:class:`~rustybt.live.shadow.alignment.AlignmentTracker`) and the alignment breaker is
fed.

A step runs after the live bar — strategy and order submission — is done
(:meth:`after_live_bar`), and before the shared data view takes the next bar or tick; a
checkpoint first runs any queued step (:meth:`drain`), so the saved shadow state describes
the same bar as the live state. After a crash, :meth:`catch_up` replays the bars between
the checkpoint and the live resume point. The shadow never journals, opens sockets,
writes files or calls the broker: its whole state is :meth:`to_dict`, stored inside the
live checkpoint.
"""

from __future__ import annotations

import asyncio
import copy
import runpy
import types
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from rustybt.algorithm import ScriptAlgorithm, TradingAlgorithm
from rustybt.backtest.runner import BacktestBlotter
from rustybt.data.bar_data import LiveBarData
from rustybt.exceptions import CheckpointCorrupted, ConfigError
from rustybt.finance.account_rules import AccountRules
from rustybt.finance.execution import ExecutionSimulator, Fill
from rustybt.finance.kernel import ExecutionRules, step_bar
from rustybt.finance.ledger import Ledger
from rustybt.finance.order import Order
from rustybt.finance.risk_gate import RiskGate
from rustybt.live.events import MarketDataEvent
from rustybt.live.scheduler import SimulatedClock, TradingScheduler
from rustybt.live.shadow.alignment import LIVE, SHADOW, AlignmentTracker, Signal
from rustybt.live.shadow.catchup import JournalSignal, journal_signals
from rustybt.live.shadow.config import ShadowTradingConfig
from rustybt.live.strategy_executor import StrategyExecutor

__all__ = ["ShadowEngine", "fresh_copy"]

log = structlog.get_logger("rustybt.live.shadow")
_ZERO = Decimal(0)


def fresh_copy(strategy: TradingAlgorithm) -> TradingAlgorithm:
    """A second instance of ``strategy`` sharing no state with it (call before
    ``initialize``). A script strategy gets its own module globals: the file is run again
    when it came from one (``_source_path``, set by the CLI's loader), else every function
    is rebound to a copy of its globals."""
    if isinstance(strategy, ScriptAlgorithm):
        path = getattr(strategy, "_source_path", None)
        if path is not None:
            ns: dict[str, Any] = runpy.run_path(str(path), run_name="__rustybt_shadow__")
        else:
            ns = _rebind(strategy._ns)
        twin = ScriptAlgorithm(ns, name=strategy.name)
        for key, value in vars(strategy).items():
            if key not in vars(twin):
                setattr(twin, key, copy.deepcopy(value))
        return twin
    try:
        return copy.deepcopy(strategy)
    except Exception as exc:
        raise ConfigError(
            f"shadow trading needs a second instance of {type(strategy).__name__}, but it "
            f"cannot be deep-copied ({type(exc).__name__}: {exc}); make its attributes "
            "copyable (create connections or files in initialize, not __init__)"
        ) from exc


def _rebind(ns: dict[str, Any]) -> dict[str, Any]:
    """``ns`` with fresh globals: data deep-copied, functions bound to the new dict."""
    globs: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {}
    for key, value in ns.items():
        if isinstance(value, types.FunctionType):
            g = globs.get(id(value.__globals__))
            if g is None:
                g = globs[id(value.__globals__)] = {}
                for gk, gv in value.__globals__.items():
                    if isinstance(gv, types.ModuleType | types.FunctionType | type):
                        g[gk] = gv
                    else:
                        try:
                            g[gk] = copy.deepcopy(gv)
                        except Exception:
                            g[gk] = gv
            fn = types.FunctionType(
                value.__code__, g, value.__name__, value.__defaults__, value.__closure__
            )
            fn.__kwdefaults__ = value.__kwdefaults__
            out[key] = fn
        else:
            out[key] = value
    for g in globs.values():
        for gk, gv in list(g.items()):
            if isinstance(gv, types.FunctionType) and gk in out:
                g[gk] = out[gk]
    return out


class _ShadowAccount(BacktestBlotter):
    """The backtest's simulated account, telling the shadow about each fill."""

    on_filled: Callable[[Order, datetime], None] | None = None

    def settle_fill(self, order: Order, fill: Fill, dt: datetime) -> None:
        super().settle_fill(order, fill, dt)
        self.transactions.clear()  # the shadow keeps orders, not a transaction list
        if self.on_filled is not None:
            self.on_filled(order, dt)


class _NoCostModels:
    """Beside a real venue the shadow fills without costs; the strategy's cost models
    are ignored there as live ignores them (one warning, from the live executor)."""

    def set_cost_models(self, **models: Any) -> None:
        pass


class ShadowEngine:
    """The shadow side of one live session (see the module docstring)."""

    def __init__(
        self,
        strategy: TradingAlgorithm,
        config: ShadowTradingConfig,
        *,
        asset_finder: Any,
        portal: Any,
        execution: ExecutionRules | None = None,
        risk_limits: Any = None,
        breakers: Any = None,
        live_ledger: Ledger,
        live_blotter: Any,
        data: LiveBarData | None = None,
        live_scheduler: Any = None,
    ) -> None:
        self.config = config
        self.algo = fresh_copy(strategy)
        # A simulated venue's own fill rules (its public copies); a real venue's fills
        # follow no model: the shadow fills at the bar without costs, so the comparison
        # shows the venue's real costs as slippage.
        self.execution = execution or ExecutionRules(ExecutionSimulator(), AccountRules())
        self.sim = self.execution.simulator
        self.rules = self.execution.rules
        self.breakers = breakers
        self.live_ledger = live_ledger
        self.live_blotter = live_blotter
        self.ledger = Ledger(Decimal(0))
        self.now: datetime | None = None
        self.blotter = _ShadowAccount(
            self.ledger,
            RiskGate(copy.deepcopy(risk_limits), None),
            id_prefix="shadow",
            clock=lambda: self.now,
            rules=self.rules,
        )
        self.blotter.on_filled = None
        self.blotter.on_risk_decision = self._on_shadow_decision
        #: The live engine's data view, read (never fed) by the shadow: bars are immutable
        #: input, so one copy serves both strategies. None: the shadow keeps its own view.
        self.shared_data = data
        self.executor = StrategyExecutor(
            self.algo,
            self.ledger,
            self.blotter,
            asset_finder,
            portal,
            lambda: self.now,  # type: ignore[arg-type,return-value]
            self._on_strategy_error,
            # set_commission/set_slippage reach the shadow's simulator as they reach a
            # simulated venue's; a real venue ignores them (the live executor says so).
            broker=self.execution if execution is not None else _NoCostModels(),
            data=data,
        )
        self.blotter.price_of = self.executor.data.last_price
        # schedule_function jobs run as live runs them: a TradingScheduler on a simulated
        # clock moved to each bar's time (due jobs fire after before_trading_start, before
        # handle_data), with the live scheduler's misfire policy. Built at the first bar.
        self._grace: float | None = getattr(live_scheduler, "misfire_grace_seconds", 60)
        self._coalesce: bool = getattr(live_scheduler, "coalesce", True)
        self.scheduler: TradingScheduler | None = None
        self.tracker = AlignmentTracker(config.signal_tolerance_pct)
        self.errors: list[str] = []
        self.steps = 0
        self.last_dt: datetime | None = None
        self._pending: deque[tuple[MarketDataEvent, bool]] = deque()
        self._seeded = False
        self._fills_seen = 0
        self._catching_up = False
        self._live_new: list[tuple[Order, datetime, Decimal]] = []
        self._backlog: list[JournalSignal] = []
        #: Restarts the shadow caught up on (see :meth:`catch_up`), newest last.
        self.restarts: list[dict[str, Any]] = []

    # --- setup ---------------------------------------------------------------------------
    def initialize(self) -> None:
        """Run the shadow strategy's ``initialize`` (the live one runs its own)."""
        self.executor.initialize()

    def seed_from(self, ledger: Ledger) -> None:
        """Start the simulated account where the live account is (cash and positions)."""
        self.ledger.starting_cash = ledger.portfolio_value
        self.ledger.set_state(ledger.cash, [copy.copy(p) for p in ledger.positions.values()])
        self._seeded = True

    # --- live side -------------------------------------------------------------------
    def on_live_decision(self, order: Order, reason: str | None, dt: datetime | None) -> None:
        """The live blotter's risk decision on ``order`` (placed while running bar ``dt``)."""
        if reason is not None or dt is None:
            return  # refused before it reached the venue: not a signal
        # This runs between the risk decision and the send: only what must be read now
        # (held + open before the order joins the book); the signal is built later.
        pos = self.live_ledger.positions.get(order.asset)
        before = self.live_blotter.open_amount(order.asset)
        if pos is not None:
            before += pos.amount
        self._live_new.append((order, dt, before))

    def _record_live(self) -> None:
        """Turn the live decisions taken since the last call into signals."""
        record = self.tracker.record
        for order, dt, before in self._live_new:
            record(LIVE, dt, _signal(order, before))
        self._live_new.clear()

    def on_live_fill(self, order_id: str, dt: datetime) -> None:
        self.tracker.on_live_fill(order_id, dt)

    # --- stepping ----------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """True while a deferred bar waits to be run."""
        return bool(self._pending)

    def after_live_bar(
        self, ev: MarketDataEvent, compare: bool, call_soon: Callable[..., Any] | None
    ) -> None:
        """The live engine has run bar ``ev`` (its orders are submitted): run the shadow's.

        ``call_soon`` None (a replay: the next bar is read only after this one, so nothing
        waits) runs the step now; else it is queued and the loop runs it when idle. A
        queued step reads the live data view, so the engine drains it (:meth:`drain`)
        before that view takes the next bar or tick."""
        if call_soon is None:
            if self._pending:
                self.drain()
            self.step(ev, compare)
            return
        if self._pending:
            self.drain()
        self._pending.append((ev, compare))
        call_soon(self.drain)

    def before_tick(self, update: Callable[..., Any]) -> Callable[..., Any]:
        """``update`` (a tick into the shared data view), running queued bars first."""

        def update_after_shadow(*args: Any) -> Any:
            if self._pending:
                self.drain()
            return update(*args)

        return update_after_shadow

    def drain(self) -> None:
        """Run every queued bar now (the loop callback, and before a checkpoint)."""
        pending = self._pending
        while pending:
            ev, compare = pending.popleft()
            self.step(ev, compare)

    def step(self, ev: MarketDataEvent, compare: bool = True) -> None:
        """Advance the shadow by one market event and compare it with the live bar.

        With a shared data view the live engine has already put ``ev`` into it."""
        if self._live_new:
            self._record_live()
        dt = ev.dt
        last = self.last_dt
        if last is not None and dt <= last:
            return  # already simulated (a restart replays from the live resume point)
        if not self._seeded:
            self.seed_from(self.live_ledger)
        self.now = dt
        blotter = self.blotter
        if blotter.cancelling:
            blotter.confirm_cancels()
        ex = self.executor
        data = ex.data
        if data is not self.shared_data:
            ex.update_data(ev)  # the shadow's own view (no shared one, or catching up)
        step_bar(blotter, self.sim, self.rules, dt, data.bar, data.last_price)
        ex.roll_session(ev)  # before_trading_start on a new session
        sched = self.scheduler
        if sched is None and ex.schedules:
            sched = self._start_scheduler(dt)
        if sched is not None and dt >= sched.now():
            sched.advance_to(dt)  # due scheduled functions run now
        ex.handle_data()
        self.steps += 1
        self.last_dt = dt
        tracker = self.tracker
        signalled = tracker.has_pending()
        if not compare:
            if signalled:
                tracker.drop_bar(dt)
        elif not signalled:
            tracker.bars_compared += 1  # nothing on either side: aligned, no signal bar
        else:
            result = tracker.compare_bar(dt, self._live_exposure, self._shadow_exposure)
            if not result.aligned and self.breakers is not None:
                self.breakers.on_misalignment(dt, "; ".join(result.reasons))
        fills = blotter.fill_count
        if tracker.pairs:
            live_orders, shadow_orders = self.live_blotter.orders, blotter.orders
            if tracker.settle_pairs(live_orders.get, shadow_orders.get):
                quality = tracker.execution_quality
                if (
                    quality is not None
                    and self.breakers is not None
                    and tracker.pairs_compared >= self.config.min_fills_for_quality
                ):
                    self.breakers.on_execution_quality(quality, dt)
        if (signalled or fills != self._fills_seen) and not self._catching_up:
            # (catching up, the live account is already past the bar: not comparable)
            # Returns move with prices every bar; they are sampled where orders or fills
            # happen (and for every report), which is where live and shadow can part.
            self._fills_seen = fills
            self.sample_returns()

    def _start_scheduler(self, dt: datetime) -> TradingScheduler:
        """The shadow's scheduler, started at its first bar as the live replay's starts at
        the first bar it replays (a job due at that very time fires on it)."""
        sched = TradingScheduler(
            misfire_grace_seconds=self._grace,
            coalesce=self._coalesce,
            clock=SimulatedClock(dt),
        )
        self.executor.attach_scheduler(sched)
        sched.start()
        self.scheduler = sched
        return sched

    # --- after a restart -------------------------------------------------------------------
    def recover_live_signals(self, journal_orders: Any, after_seq: int) -> None:
        """Take the live orders the journal wrote after the checkpoint (``after_seq``):
        the live side of the bars :meth:`catch_up` replays. Call after the journal's
        records were applied to the live account."""
        self._backlog = journal_signals(journal_orders, after_seq, self.live_exposure)

    async def catch_up(
        self,
        events: Iterable[MarketDataEvent] | None,
        upto: datetime | None,
        compare: bool = True,
    ) -> dict[str, Any] | None:
        """After a restart: bring the shadow to ``upto``, the bar the live engine resumes
        after, and compare the bars in between with the live orders
        :meth:`recover_live_signals` found.

        ``events`` are those bars (a replay reads them again from its bundle). ``None``
        (live data: no store of past bars) compares nothing: the live orders of the gap
        are counted as not compared. ``compare`` False (the live strategy is halted now,
        so when it stopped is unknown) replays the bars without comparing them. Returns
        what was done (also kept in the report's ``restarts``), or None when there was no
        gap. Uses a data view of its own: the live one has not seen those bars again.
        """
        backlog, self._backlog = self._backlog, []
        after = self.last_dt
        if upto is not None and after is not None and upto <= after:
            upto = None  # the checkpoint is as new as the resume point: no gap
        signals = [
            j for j in backlog if (after is None or j.dt > after) and (upto is None or j.dt <= upto)
        ]
        if upto is None and not signals:
            return None
        gap: dict[str, Any] = {
            "after": after.isoformat() if after else None,
            "upto": upto.isoformat() if upto else None,
            "bars_replayed": 0,
            "bars_compared": 0,
            "live_orders": len(signals),
            "live_orders_not_compared": 0,
        }
        if events is None or not compare:
            gap["live_orders_not_compared"] = len(signals)
            gap["reason"] = (
                "no stored bars to replay (live data)" if events is None else "live is halted"
            )
        tracker = self.tracker
        if events is not None:
            if compare:
                for j in signals:
                    tracker.record(LIVE, j.dt, j.signal)
                    if j.first_fill is not None:
                        tracker.on_live_fill_pending(j.signal.order_id, j.first_fill)
            await self._catch_up_steps(events, compare, signals, gap)
            tracker.forget_unpaired_fills()
        self.restarts.append(gap)
        del self.restarts[:-100]
        log.info("shadow_caught_up", **gap)
        return gap

    async def _catch_up_steps(
        self,
        events: Iterable[MarketDataEvent],
        compare: bool,
        signals: list[JournalSignal],
        gap: dict[str, Any],
    ) -> None:
        ex = self.executor
        shared, own = ex.data, LiveBarData(ex.portal)
        own.portal_prices = getattr(shared, "portal_prices", False)
        # Held + open on an asset the live side did not order on a bar of the gap: today's
        # minus the gap's later orders (a cancel in the gap is not dated; see the docs).
        later = [(j.dt, j.signal.symbol, j.signal.amount) for j in signals]
        live_exposure = self._live_exposure

        def exposure_then(symbol: str) -> Decimal:
            now = self.now
            return live_exposure(symbol) - sum(
                (a for dt, s, a in later if s == symbol and now is not None and dt > now),
                _ZERO,
            )

        self._use_data(own)
        self._live_exposure = exposure_then  # type: ignore[method-assign]
        self._catching_up = True
        compared = self.tracker.bars_compared
        try:
            for n, ev in enumerate(events, 1):
                self.step(ev, compare)
                gap["bars_replayed"] = n
                if n % 512 == 0:
                    await asyncio.sleep(0)  # a long gap must not hold the loop
        finally:
            self._catching_up = False
            del self._live_exposure
            self._use_data(shared)
            if self.scheduler is not None:
                # Its jobs read the catch-up view: the next bar starts a new scheduler on
                # the shared one (the clock only moves forward, so nothing fires twice).
                self.scheduler = None
        gap["bars_compared"] = self.tracker.bars_compared - compared

    def _use_data(self, data: Any) -> None:
        self.executor.data = data
        self.blotter.price_of = data.last_price

    def sample_returns(self) -> None:
        """Feed both accounts' values to the returns comparison."""
        self.tracker.on_values(self.live_ledger.portfolio_value, self.ledger.portfolio_value)

    # --- helpers -----------------------------------------------------------------------
    def _on_shadow_decision(self, order: Order, reason: str | None) -> None:
        if reason is not None or self.now is None:
            return
        pos = self.ledger.positions.get(order.asset)
        held = pos.amount if pos is not None else _ZERO
        before = held + self.blotter.open_amount(order.asset)
        self.tracker.record(SHADOW, self.now, _signal(order, before))

    def live_exposure(self, symbol: str) -> Decimal:
        """The live account's held + open amount on the asset called ``symbol``."""
        return _exposure(self.live_ledger, self.live_blotter, symbol)

    def _live_exposure(self, symbol: str) -> Decimal:
        return _exposure(self.live_ledger, self.live_blotter, symbol)

    def _shadow_exposure(self, symbol: str) -> Decimal:
        return _exposure(self.ledger, self.blotter, symbol)

    def _on_strategy_error(self, where: str, exc: BaseException) -> None:
        # The shadow strategy failing where the live one did not is itself a divergence;
        # the live engine counts its own errors, the shadow only reports its own.
        self.errors.append(f"{where}: {type(exc).__name__}: {exc}")
        del self.errors[:-100]

    # --- report and persistence ----------------------------------------------------------
    def report(self) -> Any:
        self._record_live()
        if self.last_dt is not None:
            self.sample_returns()
        rep = self.tracker.report(self.config.to_dict())
        if not self.config.track_slippage:
            rep.avg_slippage_bps = None
        if not self.config.track_latency:
            rep.avg_latency_ms = None
        rep.config["shadow_strategy_errors"] = list(self.errors)
        rep.restarts = [dict(g) for g in self.restarts]
        return rep

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to resume: strategy variables, account, orders, comparison."""
        self._record_live()
        blotter = self.blotter
        keep = {sid for sid, _ in self.tracker.pairs.values()}
        orders = [o for o in blotter.orders.values() if o.is_open or o.id in keep]
        return {
            "version": 1,
            "last_dt": self.last_dt.isoformat() if self.last_dt else None,
            "steps": self.steps,
            "strategy": copy.deepcopy(self.algo.get_state()),
            "ledger": self.ledger.to_dict(),
            "orders": [o.to_dict() for o in orders],
            "sequence": blotter.sequence,
            "tracker": self.tracker.to_dict(),
            "errors": list(self.errors),
            "restarts": [dict(g) for g in self.restarts],
        }

    def load(self, d: dict[str, Any]) -> None:
        """Resume from :meth:`to_dict` output (after :meth:`initialize`); all-or-nothing."""
        try:
            if d.get("version") != 1:
                raise ValueError(f"unknown shadow state version {d.get('version')!r}")
            last = d["last_dt"]
            last_dt = datetime.fromisoformat(last) if last else None
            ledger = Ledger.from_dict(d["ledger"])
            orders = [Order.from_dict(o) for o in d["orders"]]
            sequence = int(d["sequence"])
            tracker = AlignmentTracker(self.config.signal_tolerance_pct)
            tracker.load(d["tracker"])
            strategy = d["strategy"]
            steps = int(d["steps"])
            restarts = [dict(g) for g in d.get("restarts") or []]
        except (CheckpointCorrupted, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise CheckpointCorrupted(
                f"shadow state in the checkpoint is malformed ({exc!r}); delete the "
                "checkpoint's extra['shadow'] entry to start the shadow afresh"
            ) from exc
        led = self.ledger
        led.starting_cash = ledger.starting_cash
        led.set_state(
            ledger.cash,
            list(ledger.positions.values()),
            fees_paid=ledger.fees_paid,
            realized_pnl=ledger.realized_pnl,
        )
        blotter = self.blotter
        for o in orders:
            blotter.orders[o.id] = o
            if o.is_open:
                blotter._add_open(o)
        blotter.sequence = max(blotter.sequence, sequence)
        self.algo.set_state(strategy)
        self.tracker = tracker
        self.last_dt = last_dt
        self.steps = steps
        self.errors = list(d.get("errors") or [])
        self.restarts = restarts
        self._seeded = True


def _signal(order: Order, before: Decimal) -> Signal:
    return Signal(
        order.id,
        order.asset.symbol,
        order.amount,
        before,
        order.order_type.value,
        order.limit_price,
    )


def _exposure(ledger: Ledger, blotter: Any, symbol: str) -> Decimal:
    """Held + open amount on the asset called ``symbol`` (held or ordered)."""
    total = _ZERO
    for asset, pos in ledger.positions.items():
        if asset.symbol == symbol:
            total += pos.amount
    for o in blotter.iter_open_orders():
        if o.asset.symbol == symbol:
            total += o.amount - o.filled
    return total
