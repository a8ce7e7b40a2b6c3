"""The live trading engine: one asyncio loop driving the shared trading kernel.

Data flow (DESIGN.md): market data → priority queue → strategy ``handle_data`` →
``order()`` → risk gate (fail-closed switch, position limits, circuit breakers) →
order manager (client order id, journal) → ``BrokerAdapter.submit_order``; broker
events (ack, fill, cancel, reject) → queue → ledger → breakers. Periodically:
checkpoints, reconciliation, scheduled triggers.

Order of work per market data event, identical to the backtest so both produce the same
orders: the (simulated) venue matches resting orders against the new bars, the fills it
reports are applied, positions are marked, scheduled triggers that are due run, then
``handle_data`` runs once for all assets.

Startup is fail-closed: the strategy trades only after reconciliation has confirmed the
broker's positions (``ReconciliationStrategy.WARN_ONLY`` opts out of halting on
discrepancies, loudly; an unreachable broker always blocks new risk).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from rustybt.algorithm import TradingAlgorithm
from rustybt.assets import AssetFinder
from rustybt.data.clock import clock_assets
from rustybt.exceptions import (
    CheckpointError,
    CheckpointMismatch,
    ConfigError,
    ReconciliationError,
)
from rustybt.finance.ledger import Ledger, Position
from rustybt.finance.order import Order, OrderStatus, OrderType, TimeInForce
from rustybt.finance.risk_gate import RiskGate
from rustybt.live import crashpoints
from rustybt.live.audit import AuditLog, merge_redacted, new_session_id
from rustybt.live.brokers.base import BrokerAdapter
from rustybt.live.circuit_breakers import CircuitBreakerManager, default_breakers
from rustybt.live.data_feed import DataFeed
from rustybt.live.event_dispatcher import EventDispatcher
from rustybt.live.events import (
    AlertEvent,
    BrokerConnectionEvent,
    CircuitBreakerTripEvent,
    EventPriority,
    EventQueue,
    MarketDataEvent,
    OrderAckEvent,
    OrderCancelEvent,
    OrderFillEvent,
    OrderRejectEvent,
    ScheduledTriggerEvent,
    SystemErrorEvent,
)
from rustybt.live.journal import OrderJournal, journal_path
from rustybt.live.models import (
    DiscrepancySeverity,
    OrderSnapshot,
    PositionSnapshot,
    ReconciliationReport,
    ReconciliationStrategy,
    StateCheckpoint,
    decode_state_value,
)
from rustybt.live.order_manager import LiveOrderManager, journal_status
from rustybt.live.reconciler import PositionReconciler
from rustybt.live.recovery import HaltStore, journal_cut, resume_point
from rustybt.live.state_delta import StateDeltaEncoder
from rustybt.live.state_lock import StateDirLock
from rustybt.live.state_manager import StateManager
from rustybt.live.strategy_executor import StrategyExecutor
from rustybt.live.supervision import DataWatchdog, TaskSupervisor, bar_interval

log = structlog.get_logger("rustybt.live")
_TickData: Any = None  # rustybt.live.streaming.models.TickData, once imported
_MD = EventPriority.MARKET_DATA
_TRIGGER = EventPriority.SCHEDULED_TRIGGER


def _state_root() -> Path:
    root = os.environ.get("RUSTYBT_ROOT")
    return (Path(root) if root else Path.home() / ".rustybt").expanduser()


class LiveTradingEngine:
    """Runs a :class:`TradingAlgorithm` against a broker, unchanged from its backtest."""

    def __init__(
        self,
        strategy: TradingAlgorithm,
        broker_adapter: BrokerAdapter,
        data_portal: Any = None,
        portfolio: Ledger | None = None,
        account: Any = None,
        scheduler: Any = None,
        state_manager: StateManager | None = None,
        checkpoint_interval_seconds: float = 60,
        reconciliation_strategy: ReconciliationStrategy = ReconciliationStrategy.WARN_ONLY,
        reconciliation_interval_seconds: float = 300,
        shadow_mode: bool = False,
        shadow_config: Any = None,
        circuit_breakers: CircuitBreakerManager | None = None,
        risk_limits: Any = None,
        *,
        speed: str | float | None = "max",
        start: Any = None,
        end: Any = None,
        state_dir: str | Path | None = None,
        session_id: str | None = None,
        stop_when_data_ends: bool = True,
        replay: bool | None = None,
        control_socket: bool = True,
        audit_log: bool = True,
        cash_tolerance_pct: Decimal = Decimal("0.01"),
        unknown_order_deadline_seconds: float = 30,
        stale_data_bars: float = 5,
        calendar: str | None = None,
    ) -> None:
        if not isinstance(strategy, TradingAlgorithm):
            raise ConfigError(
                f"strategy must be a TradingAlgorithm instance, got {type(strategy).__name__}; "
                "pass MyStrategy(), not MyStrategy"
            )
        if not isinstance(broker_adapter, BrokerAdapter):
            raise ConfigError(
                f"broker_adapter must be a BrokerAdapter, got {type(broker_adapter).__name__}"
            )
        if not isinstance(shadow_mode, bool):
            raise ConfigError(f"shadow_mode={shadow_mode!r} must be True or False")
        if shadow_config is not None:
            from rustybt.live.shadow.config import ShadowTradingConfig

            if not isinstance(shadow_config, ShadowTradingConfig):
                raise ConfigError(
                    f"shadow_config must be a ShadowTradingConfig, got "
                    f"{type(shadow_config).__name__}; build it with "
                    "rustybt.live.shadow.config.ShadowTradingConfig(...)"
                )
        if checkpoint_interval_seconds <= 0 or reconciliation_interval_seconds <= 0:
            raise ConfigError("checkpoint and reconciliation intervals must be > 0 seconds")
        if not stale_data_bars > 0:
            raise ConfigError(
                f"stale_data_bars={stale_data_bars!r} must be > 0 (bar intervals without "
                "market data, while the market is open, before new risk is blocked), e.g. 5"
            )
        if not unknown_order_deadline_seconds > 0:
            raise ConfigError(
                f"unknown_order_deadline_seconds={unknown_order_deadline_seconds!r} must be > 0 "
                "(seconds an order may stay in the unknown-outcome state before new risk on "
                "its asset is blocked), e.g. 30"
            )
        if not isinstance(reconciliation_strategy, ReconciliationStrategy):
            raise ConfigError(
                f"reconciliation_strategy must be a ReconciliationStrategy, "
                f"got {reconciliation_strategy!r}"
            )
        from rustybt.backtest.runner import to_utc

        self.strategy = strategy
        self.broker = broker_adapter
        self.data_portal = data_portal
        self.account = account
        self.shadow_config = shadow_config
        self.checkpoint_interval_seconds = checkpoint_interval_seconds
        self.reconciliation_strategy = reconciliation_strategy
        self.reconciliation_interval_seconds = reconciliation_interval_seconds
        self.stop_when_data_ends = stop_when_data_ends
        # None: replay the portal's bundle when the broker is simulated (paper); False:
        # take pushed/streamed data and use the portal only for history.
        self._replay = replay
        # The replay clock's calendar (rustybt.data.clock); None: from the strategy's assets.
        self._calendar = calendar
        self.state_dir = Path(state_dir) if state_dir is not None else _state_root() / "state"
        self.state_manager = state_manager or StateManager(self.state_dir)
        self.session_id = session_id or new_session_id()
        self.strategy_name = strategy.strategy_name
        self.event_queue = EventQueue()
        start_dt, end_dt = to_utc(start, "start"), to_utc(end, "end")
        if start_dt is not None and end_dt is not None and start_dt > end_dt:
            raise ConfigError(
                f"start {start_dt:%Y-%m-%d %H:%M} is after end {end_dt:%Y-%m-%d %H:%M}; swap them"
            )
        self.feed = DataFeed(data_portal, speed, start_dt, end_dt)

        if circuit_breakers is None:
            circuit_breakers = default_breakers()
            log.warning(
                "default_circuit_breakers_installed",
                breakers=[b.name for b in circuit_breakers.breakers],
                hint="pass circuit_breakers= to LiveTradingEngine to choose your own",
            )
            self.using_default_breakers = True
        else:
            self.using_default_breakers = False
        self.circuit_breakers = circuit_breakers
        self.risk_gate = RiskGate(risk_limits, circuit_breakers)
        self.ledger = portfolio if isinstance(portfolio, Ledger) else Ledger(Decimal(0))
        self._ledger_given = isinstance(portfolio, Ledger)

        self._sim_now: datetime | None = None
        self.audit = AuditLog(
            self.state_dir / "logs" / f"{self.strategy_name}-{self.session_id}.jsonl"
            if audit_log
            else None,
            self.session_id,
            self.strategy_name,
        )
        self.journal: OrderJournal | None = None
        self.order_manager = LiveOrderManager(
            self.ledger,
            self.risk_gate,
            broker_adapter,
            self.strategy_name,
            self.session_id,
            self.clock,
            None,
            self.audit,
        )
        self.order_manager.on_error = self._on_broker_error
        self.order_manager.on_success = self._on_success
        self.order_manager.unknown_deadline_seconds = float(unknown_order_deadline_seconds)
        self.order_manager.on_unknown_overdue = self._on_unknown_overdue
        self.order_manager.on_unknown_resolved = self._on_unknown_resolved
        finder = getattr(data_portal, "asset_finder", None)
        if finder is None:  # a venue adapter resolves symbols to its own instruments
            finder = getattr(broker_adapter, "asset_finder", None)
        if finder is None:
            finder = AssetFinder()
        self.executor = StrategyExecutor(
            strategy,
            self.ledger,
            self.order_manager,
            finder,
            data_portal,
            self.clock,
            self._on_strategy_error,
            broker=broker_adapter,
        )
        self.executor.on_success = self._on_success
        self.scheduler = scheduler
        #: The shadow backtest (``shadow_mode=True``), see rustybt.live.shadow.
        self.shadow: Any = None
        if shadow_mode and (shadow_config is None or shadow_config.enabled):
            self._setup_shadow(strategy, shadow_config, finder, risk_limits)
        self.reconciler = PositionReconciler(
            broker_adapter, reconciliation_strategy, cash_tolerance_pct
        )
        self._dispatcher = EventDispatcher()
        d = self._dispatcher
        d.register(MarketDataEvent, self._on_market_data)
        d.register(OrderFillEvent, self._on_fill)
        d.register(OrderAckEvent, self.order_manager.on_ack)
        d.register(OrderCancelEvent, self.order_manager.on_cancel)
        d.register(OrderRejectEvent, self.order_manager.on_broker_reject)
        d.register(ScheduledTriggerEvent, self._on_scheduled)
        d.register(SystemErrorEvent, self._on_system_error)
        d.register(CircuitBreakerTripEvent, self._on_breaker_trip, is_async=True)
        d.register(AlertEvent, self._on_alert)
        d.register(BrokerConnectionEvent, self._on_broker_connection)
        circuit_breakers.add_listener(self._on_breaker_change)

        self.recorder: Any = None  # record_results()
        self._pending_checkpoint: StateCheckpoint | None = None
        self._restored_from: StateCheckpoint | None = None
        self._running = False
        self._paused = False
        self._stop = False
        self._started_at: datetime | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0  # the thread running _loop (push_market_data from others)
        self._shutdown_done = False
        self.reconciliation_state = "unknown"
        self.last_reconciliation: ReconciliationReport | None = None
        self.alerts: list[AlertEvent] = []
        #: Called with every alert (AlertEvent), breaker trip and engine failure, e.g. by
        #: the console's AlertRouter; a listener must return at once and never raise.
        self.alert_listeners: list[Callable[[AlertEvent], None]] = []
        self.broker_connected = True
        self.fatal_error: str | None = None
        self.stats = {
            "events_processed": 0,
            "market_events": 0,
            "strategy_errors": 0,
            "broker_errors": 0,
            "broker_disconnects": 0,
            "system_errors": 0,
            "scheduled_triggers": 0,
            "checkpoints": 0,
            "reconciliations": 0,
            "checkpoint_failures": 0,
            "strategy_calls_skipped": 0,
            "reconciliation_errors": 0,
            "data_errors": 0,
            "task_failures": 0,
        }
        self.last_checkpoint_error: str | None = None
        self.stop_after_market_events: int | None = None
        self.max_drawdown = Decimal(0)
        self.value_history: list[Decimal] = []
        self._peak_value = Decimal(0)
        self._value_day: Any = None
        self.on_progress: Callable[[LiveTradingEngine], None] | None = None
        self._bar_seconds = bar_interval(data_portal).total_seconds()
        self.stale_data_seconds = self._bar_seconds * float(stale_data_bars)
        self.supervisor = TaskSupervisor(self._on_task_failure, lambda: self._stop)
        self.watchdog: DataWatchdog | None = None
        self._breaker_bucket: int | None = None
        self._value_dt: datetime | None = None
        self._recon_fills: list[tuple[Any, Decimal, Decimal]] | None = None
        self._control: Any = None
        self._control_enabled = control_socket
        # Engine-owned market-data streams (rustybt.live.streaming), made on first use.
        self.streams: Any = None
        self.data_gaps: list[Any] = []
        # Durability (docs/durability.md): one engine per (state dir, strategy); halts on
        # disk before they are acknowledged; nothing that claims state is written unless
        # the state was restored (or seeded) successfully.
        self._state_lock = StateDirLock(self.state_dir, self.strategy_name)
        self._halt_store = HaltStore(self.state_dir, self.strategy_name)
        self._halt_version = 0
        self._halt_saved = 0
        self._state_trusted = False
        self._resume_after: datetime | None = None
        self._bar_journal_failed = False
        self._bar_state_delta = StateDeltaEncoder()
        self._pending_streams: list[tuple[Any, Any]] = []

    # --- clock ---------------------------------------------------------------------------
    def clock(self) -> datetime:
        """Simulated time during a replay (the current bar), wall time otherwise."""
        return self._sim_now or datetime.now(UTC)

    # --- public API ------------------------------------------------------------------------
    def restore_checkpoint(self, checkpoint: StateCheckpoint) -> None:
        """Restore ``checkpoint`` when :meth:`run` starts.

        Without this call, :meth:`run` restores the newest checkpoint of the strategy by
        itself when the broker account outlives the process (``broker.is_persistent``).
        Either way the journal written after the checkpoint is replayed and in-flight
        orders are resolved with the broker before anything trades.
        """
        if self._running:
            raise ConfigError(
                "restore_checkpoint() must be called before run(); the engine is running "
                "(stop it, then restore and run again)"
            )
        if not isinstance(checkpoint, StateCheckpoint):
            raise ConfigError(f"restore_checkpoint needs a StateCheckpoint, got {checkpoint!r}")
        name = checkpoint.strategy_name
        if name is not None and name != self.strategy_name:
            raise CheckpointMismatch(
                f"checkpoint belongs to strategy {name!r}, not {self.strategy_name!r}; "
                "load the checkpoint saved for this strategy"
            )
        self._pending_checkpoint = checkpoint

    # --- streams --------------------------------------------------------------------------
    def add_stream(
        self,
        stream: Any,
        assets: Any = None,
        channels: Any = ("trade", "kline_1m"),
        *,
        bar_interval: Any = None,
        grace: Any = None,
    ) -> None:
        """Trade on bars built from ``stream`` (a ``rustybt.live.streaming`` adapter).

        The engine connects it at start, subscribes ``assets`` (Assets or symbols) to
        ``channels`` (``assets=None``: the assets the strategy looks up in ``initialize``),
        closes one bar event per ``bar_interval`` (default one minute) for
        all streamed assets, backfills bars missed while a stream was down, blocks new
        risk while a stream is down or stale, and disconnects it at shutdown. See
        docs/streaming.md.
        """
        if self._running:
            raise ConfigError("add_stream() must be called before run()")
        sup = self._stream_supervisor()
        if bar_interval is not None or grace is not None:
            self.configure_bars(bar_interval=bar_interval, grace=grace)
        if assets is None:
            # The assets the strategy looks up in initialize(): resolved at start.
            sup.check(stream, channels)
            self._pending_streams.append((stream, channels))
            return
        lookup = self.executor.asset_finder.lookup_symbol
        resolved = [lookup(a) if isinstance(a, str) else a for a in assets]
        sup.add(stream, resolved, channels)

    def configure_bars(self, *, bar_interval: Any = None, grace: Any = None) -> None:
        """Bar length (default one minute) and grace for late trades (default 2 s) of the
        bars the engine builds from streamed or pushed ticks; call before :meth:`run`."""
        from datetime import timedelta

        def _td(name: str, v: Any) -> Any:
            if v is None or isinstance(v, timedelta):
                return v
            if isinstance(v, int | float | Decimal) and not isinstance(v, bool):
                return timedelta(seconds=float(v))
            raise ConfigError(f"{name} must be seconds or a timedelta, got {v!r}")

        self._stream_supervisor().configure(
            interval=_td("bar_interval", bar_interval), grace=_td("grace", grace)
        )

    def _stream_supervisor(self) -> Any:
        if self.streams is None:
            from rustybt.live.streaming.supervisor import HOLD_KEY, StreamSupervisor

            gate = self.risk_gate

            def hold(reason: str) -> None:
                gate.hold(HOLD_KEY, reason)

            def release() -> None:
                gate.release(HOLD_KEY)

            self.streams = StreamSupervisor(
                self.event_queue.put_nowait,
                self._tick_sink(),
                lambda kind, msg, details: self.event_queue.put_nowait(
                    AlertEvent(kind, msg, details)
                ),
                hold,
                release,
                self._on_data_gap,
            )
        return self.streams

    def _tick_sink(self) -> Any:
        """Where streamed ticks go: the strategy's data view (after a queued shadow step,
        which reads that view as of its own bar)."""
        update = self.executor.data.update_price
        return update if self.shadow is None else self.shadow.before_tick(update)

    def _on_data_gap(self, gap: Any) -> None:
        self.data_gaps.append(gap)
        del self.data_gaps[:-1000]
        self.audit.warning(
            "market_data_gap",
            asset=gap.symbol,
            start=gap.start,
            end=gap.end,
            reason=gap.reason,
        )
        hook = getattr(self.strategy, "on_data_gap", None)
        if callable(hook):
            self.executor._guard("on_data_gap", hook, gap)

    def _push_tick(self, tick: Any) -> None:
        if tick.asset is None:
            tick.asset = self.executor.asset_finder.lookup_symbol(tick.symbol)
        sup = self._stream_supervisor()
        if self._running and not sup.started and self._loop is not None:
            sup.started = True  # pushed ticks alone: close their bars on the timer
            self._tasks.append(self._loop.create_task(sup.start()))
        sup.on_tick(tick)

    def push_market_data(self, item: Any) -> None:
        """Feed a tick/bar from an external stream (thread-safe).

        A ``rustybt.live.streaming.models.TickData`` is a trade: it moves the last price
        and goes into the bar being built (the strategy sees bars, one per interval). A
        ``Bar``, dict or other tick-like object is delivered as a bar of its own. Prices
        must be ``Decimal`` or strings: a float is refused (``MalformedVenueMessage``).
        """
        global _TickData
        if _TickData is None:
            # Imported on first use: the streaming package pulls in websockets.
            from rustybt.live.streaming.models import TickData

            _TickData = TickData
        if isinstance(item, _TickData):
            from rustybt.live.streaming.models import parse_decimal

            for name in ("price", "volume"):
                v = getattr(item, name)
                if not isinstance(v, Decimal):
                    setattr(item, name, parse_decimal(v, f"tick {name}"))
            self._call_on_loop(self._push_tick, item)
            return
        event = DataFeed.make_event(item, self.executor.asset_finder.lookup_symbol, self.clock)
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread and loop.is_running():
            loop.call_soon_threadsafe(self.event_queue.put_nowait, event)
            return
        self.event_queue.put_nowait(event)

    def _call_on_loop(self, fn: Callable[[Any], None], arg: Any) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(fn, arg)
                return
        fn(arg)

    async def pause(self) -> None:
        """Stop calling the strategy; fills and market data are still processed."""
        self._paused = True
        self.audit.record("engine_paused")

    async def resume(self, operator: str | None = None, reason: str | None = None) -> None:
        """Call the strategy again. After a HALT_AND_ALERT halt, only once positions agree.

        ``operator`` and ``reason`` (who resumes, and why it is safe) go to the audit log.
        With ``operator``, every tripped circuit breaker and manual halt is released too
        (also one restored from the halt file after a restart), and the release is made
        durable.
        """
        if self.reconciliation_state == "halted" and self._running:
            report = await self._reconcile()
            if report is None or self.reconciliation_state == "halted":
                self.audit.warning(
                    "engine_resume_refused",
                    reason="reconciliation still fails",
                    operator=operator,
                    requested_because=reason,
                )
                return
        released: list[str] = []
        if operator is not None:
            if not isinstance(operator, str) or not operator.strip():
                raise ConfigError("resume needs the operator's name (who resumes trading)")
            released = self.circuit_breakers.reset(operator=operator, reason=reason or "")
        self._paused = False
        self.audit.record("engine_resumed", operator=operator, reason=reason, released=released)
        if released:
            await self._persist_halts()
            if self._state_trusted and self.journal is not None:
                # The checkpoint's breaker state must not bring the halt back either.
                with contextlib.suppress(Exception):
                    await self.checkpoint()

    async def halt(self, reason: str, operator: str) -> None:
        """Halt trading now (the manual circuit breaker): pending orders are cancelled,
        new ones refused. Returns once the halt is on disk, so a killed engine comes
        back halted until :meth:`resume` with an operator. Raises ``CheckpointError``
        if it cannot be made durable (the halt is in effect in this process anyway)."""
        from rustybt.live.control import manual_breaker

        manual_breaker(self).trigger_halt(reason=reason, operator=operator)
        await self._persist_halts()

    def get_status(self) -> dict[str, Any]:
        om = self.order_manager
        led = self.ledger
        cb = self.circuit_breakers
        return {
            "running": self._running,
            "paused": self._paused,
            "strategy": self.strategy_name,
            "session_id": self.session_id,
            "mode": "replay" if self.feed.replaying else "live",
            "orders_submitted": om.submitted_count,
            "fills": om.fill_count,
            "rejects": om.rejected_count,
            "open_orders": len(om.open_orders()),
            "errors": self.stats["strategy_errors"] + self.stats["broker_errors"],
            **self.stats,
            "portfolio_value": led.portfolio_value,
            "cash": led.cash,
            "positions": len(led.positions),
            "fees": led.fees_paid,
            "can_trade": self.risk_gate.blocked_reason is None and cb.can_trade(),
            "trading_blocked": self.risk_gate.blocked_reason,
            "holds": self.risk_gate.holds,
            "unknown_orders": om.unknown_orders(),
            "task_failures": dict(self.supervisor.failures),
            "data_stale": self.watchdog is not None and self.watchdog.stale,
            "circuit_breakers": cb.get_status(),
            "reconciliation": self.reconciliation_state,
            "broker_connected": self.broker_connected,
            "replay_progress": (self.feed.replay_position, self.feed.replay_total),
            "current_time": self._sim_now.isoformat() if self._sim_now else None,
            "fatal_error": self.fatal_error,
            "streams": self.streams.status() if self.streams is not None else None,
            "data_gaps": len(self.data_gaps),
        }

    def _setup_shadow(self, strategy: Any, config: Any, finder: Any, risk_limits: Any) -> None:
        """Build the shadow engine from a copy of ``strategy`` taken before ``initialize``,
        add the alignment breaker and listen to the live order path."""
        from rustybt.live.circuit_breakers import AlignmentCircuitBreaker
        from rustybt.live.shadow.config import ShadowTradingConfig
        from rustybt.live.shadow.kernel import ShadowEngine

        config = config or ShadowTradingConfig()
        self.shadow_config = config
        cb = self.circuit_breakers
        if not cb.alignment_breakers():
            cb.add_breaker(
                AlignmentCircuitBreaker(
                    config.max_misalignment_count, config.execution_quality_threshold
                )
            )
        # A simulated venue's own execution rules (slippage, commission, volume cap,
        # account rules) are the shadow's; for a real venue the shadow fills at the bar
        # without costs, so the comparison shows the venue's real costs as slippage.
        rules_of = getattr(self.broker, "execution_rules", None)
        self.shadow = ShadowEngine(
            strategy,
            config,
            asset_finder=finder,
            portal=self.data_portal,
            execution=rules_of() if rules_of is not None else None,
            risk_limits=risk_limits,
            breakers=cb,
            live_ledger=self.ledger,
            live_blotter=self.order_manager,
            data=self.executor.data,
            live_scheduler=self.scheduler,
        )
        om = self.order_manager
        audit_decision = om.on_risk_decision
        shadow = self.shadow

        def on_risk_decision(order: Order, reason: str | None) -> None:
            if audit_decision is not None:
                audit_decision(order, reason)
            shadow.on_live_decision(order, reason, self._value_dt)

        om.on_risk_decision = on_risk_decision

    def save_shadow_report(self, directory: str | Path) -> Path:
        """Write :meth:`get_shadow_report` as ``shadow_report.json`` in ``directory``
        (``rustybt live --shadow -o DIR`` saves it beside the session's results)."""
        import json

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "shadow_report.json"
        path.write_text(json.dumps(self.get_shadow_report().to_dict(), indent=2, default=str))
        return path

    def get_shadow_report(self) -> Any:
        """The live-vs-shadow comparison so far
        (:class:`~rustybt.live.shadow.alignment.ShadowReport`); see
        ``docs/shadow-trading.md``. Raises :class:`ConfigError` without ``shadow_mode``."""
        if self.shadow is None:
            raise ConfigError(
                "no shadow report: this engine runs without shadow trading; create it with "
                "LiveTradingEngine(..., shadow_mode=True, shadow_config=ShadowTradingConfig())"
            )
        self.shadow.drain()
        return self.shadow.report()

    async def run(self) -> None:
        """Start, trade until the data ends or :meth:`shutdown`, then shut down cleanly."""
        if self._running:
            raise ConfigError("engine is already running")
        if self._shutdown_done:
            # shutdown() came first (e.g. a signal during setup): never start trading.
            raise ConfigError(
                "engine was shut down before run(); create a new LiveTradingEngine to trade"
            )
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.event_queue.bind_loop(self._loop)
        self._running = True
        self._stop = False
        try:
            await self._startup()
            await self._main_loop()
        except Exception as exc:
            self.stats["system_errors"] += 1
            self.fatal_error = f"{type(exc).__name__}: {exc}"
            log.error("engine_failed", error=self.fatal_error, traceback=traceback.format_exc())
            self._notify_listeners(
                AlertEvent("engine_failed", self.fatal_error, {"severity": "critical"})
            )
            self.audit.warning("engine_failed", error=self.fatal_error)
            raise
        finally:
            await self._shutdown_internal()

    async def shutdown(self) -> None:
        """Stop the loop, wait for in-flight orders, write a final checkpoint."""
        self._stop = True
        self.event_queue.wake()  # the loop may be waiting on an empty queue
        if not self._running:
            await self._shutdown_internal()

    # --- startup ---------------------------------------------------------------------------
    async def _startup(self) -> None:
        # Before anything is read or written: a second engine on this state dir stops here.
        self._state_lock.acquire()
        self._started_at = datetime.now(UTC)
        broker = self.broker
        broker.set_order_event_handler(self.event_queue.put_nowait)
        broker.set_clock(self.clock)
        self.audit.record("engine_starting", broker=type(broker).__name__)
        await broker.connect()

        # Fail closed until reconciliation confirms the broker's positions.
        self.risk_gate.block("startup reconciliation has not completed")
        self.executor.initialize()
        if self.shadow is not None:
            self.shadow.initialize()

        checkpoint = self._pending_checkpoint
        if checkpoint is None and getattr(broker, "is_persistent", True):
            checkpoint = await self.state_manager.load_checkpoint_async(self.strategy_name)
        jpath = journal_path(self.state_dir / "journal", self.strategy_name)
        if checkpoint is None and jpath.exists():
            # A fresh start: keep the old journal for the record, begin a new one.
            jpath.rename(jpath.with_name(f"{jpath.name}.{int(time.time())}.old"))
        self.journal = OrderJournal(jpath)
        self.order_manager.journal = self.journal
        await self.journal.start()

        if checkpoint is not None:
            await self._restore(checkpoint, jpath)
        elif not self._ledger_given:
            await self._seed_ledger_from_broker()
        else:
            self._state_trusted = True
        self._load_halts()

        streaming = self.streams is not None
        replay = self._replay
        if replay is None:
            replay = getattr(broker, "simulated", False) and not streaming
        if self.feed.portal is not None and replay:
            clock_calendar, clock_set = clock_assets(
                self.feed.portal.asset_finder, self.executor.used_assets, self._calendar
            )
            self.executor.set_clock_calendar(clock_calendar)
            if self.shadow is not None:
                self.shadow.executor.set_clock_calendar(clock_calendar)
            n = self.feed.configure_replay(clock_set, self._resume_after)
            self._check_replay_not_behind_venue()
            self.audit.record(
                "replay_configured",
                bars=n,
                speed=self.feed.speed or "max",
                resume_after=self._resume_after,
            )
            self._seed_replay_prices()
        elif streaming:
            # Engine-owned streams replace the broker polling pump.
            for stream, channels in self._pending_streams:
                used = list(self.executor.used_assets)
                if not used:
                    raise ConfigError(
                        "the strategy looked up no symbols in initialize(); name the assets "
                        "to stream (add_stream(stream, ['BTCUSDT']) or --symbols BTCUSDT)"
                    )
                self.streams.add(stream, used, channels)
            self._pending_streams.clear()
            await self.streams.start()
        else:
            assets = list(self.executor.used_assets)
            if assets:
                await broker.subscribe_market_data(assets)
            self.supervisor.spawn(
                "feed",
                self.feed.pump_broker(
                    broker, self.push_market_data, lambda: self._stop, on_error=self._on_feed_error
                ),
                critical=True,
            )

        if self._restored_from is not None:
            if self.shadow is not None:
                await self._shadow_catch_up()
            # Start from here next time, so a second crash does not redo this work.
            await self._checkpoint_quietly()
        self._setup_scheduler()
        await self._reconcile(startup=True)
        sup = self.supervisor
        sup.spawn("checkpoint", self._checkpoint_loop())
        sup.spawn("reconcile", self._reconcile_loop(), critical=True)
        self.watchdog = DataWatchdog(
            self.stale_data_seconds,
            self.executor.primary_calendar,
            self._on_data_stale,
            self._on_data_fresh,
        )
        sup.spawn(
            "watchdog",
            self.watchdog.run(lambda: self._stop, lambda: self.feed.replaying, self.scheduler),
            critical=True,
        )
        if self._control_enabled:
            from rustybt.live.control import ControlServer

            self._control = ControlServer(self, self.state_dir / "control")
            try:
                await self._control.start()
            except OSError as exc:
                log.warning("control_socket_unavailable", error=str(exc))
                self._control = None
        self.audit.record(
            "engine_started",
            restored=self._restored_from is not None,
            default_breakers=self.using_default_breakers,
        )

    def _seed_replay_prices(self) -> None:
        """A replay prices like the backtest: an asset's last close before the first
        replayed bar counts as its price (for the strategy's ``data`` and, through
        ``reset_price``, for a simulated venue's account checks) until its first bar."""
        self.executor.data.portal_prices = True
        seed = getattr(self.broker, "reset_price", None)
        start = self._replay_start()
        if seed is None or start is None:
            return
        portal = self.feed.portal
        assets = list(self.executor.used_assets) or list(portal.asset_finder.assets)
        before = start - timedelta(microseconds=1)
        for asset in assets:
            try:
                price = portal.get_spot_value(asset, "price", before)
            except Exception:  # an asset without bars in the bundle: no price to seed
                continue
            if price is not None and price > 0:
                seed(asset, price)

    async def _seed_ledger_from_broker(self) -> None:
        """A fresh start (no checkpoint): take cash, positions and this strategy's open
        orders from the broker, then write a first checkpoint so that a crash from here
        on is recovered through the journal."""
        broker = self.broker
        try:
            account = await broker.get_account_info()
            positions = await broker.get_positions()
        except Exception as exc:
            # Positions are UNKNOWN, not flat: stay blocked (the start-up block) and seed
            # from the first reconciliation that reaches the broker.
            self._seed_pending = True
            log.error("broker_unreachable_at_startup", error=f"{type(exc).__name__}: {exc}")
            self.audit.warning("broker_unreachable_at_startup", error=str(exc))
            return
        self._seed_pending = False
        self._state_trusted = True
        cash = account["cash"]
        self.ledger.starting_cash = account.get("portfolio_value", cash)
        self.ledger.set_state(cash, [self._position_from_broker(p) for p in positions])
        # Orders this strategy left open at the broker (e.g. a crash before the first
        # checkpoint): adopt them so their fills are applied, not dropped as unknown.
        prefix = f"{self.strategy_name[:12]}-"
        om = self.order_manager
        adopted = []
        for d in await broker.get_open_orders():
            cid = d.get("client_order_id")
            if not cid or not str(cid).startswith(prefix) or cid in om.orders:
                continue
            snap = OrderSnapshot(
                str(d.get("order_id") or cid),
                d["asset"],
                d["amount"],
                str(d.get("status") or "submitted"),
                client_order_id=str(cid),
                filled=d.get("filled") or Decimal(0),
                order_type=str(d.get("order_type") or "market"),
                limit_price=d.get("limit_price"),
                stop_price=d.get("stop_price"),
            )
            om.adopt(self._order_from_snapshot(snap))
            adopted.append(str(cid))
        om.sequence = max(om.sequence, _highest_sequence(adopted))
        if adopted:
            self.audit.warning("adopted_open_orders_from_broker", client_order_ids=adopted)
        if getattr(broker, "is_persistent", True):
            try:
                await self.checkpoint()
            except Exception as exc:
                log.error("checkpoint_failed", error=f"{type(exc).__name__}: {exc}")
                self.audit.warning("checkpoint_failed", error=str(exc))

    @staticmethod
    def _position_from_broker(p: dict[str, Any]) -> Position:
        return Position(
            p["asset"],
            p["amount"],
            p["average_price"],
            p.get("last_price") or p["average_price"],
            Decimal(0),
        )

    def _load_halts(self) -> None:
        """Trip again every breaker the halt file says was tripped (a halt outlives the
        process until an operator resumes)."""
        saved = self._halt_store.load()
        if not saved or not saved["breakers"]:
            return
        self.circuit_breakers.load_state(saved)
        self._halt_saved = self._halt_version  # what is tripped now is what the file says
        reasons = self.circuit_breakers.get_trip_reasons()
        log.warning("halt_restored", reasons=reasons, hint="`rustybt live resume` to trade")
        self.audit.warning("halt_restored", reasons=reasons, path=str(self._halt_store.path))

    async def _persist_halts(self) -> None:
        """Write the tripped breakers to the halt file (worker thread, fsynced)."""
        version = self._halt_version
        if version <= self._halt_saved:
            return
        state = self.circuit_breakers.to_dict()
        try:
            await asyncio.to_thread(self._halt_store.save, state)
        except OSError as exc:
            log.critical("halt_not_durable", error=str(exc), path=str(self._halt_store.path))
            self.audit.warning("halt_not_durable", error=str(exc))
            raise CheckpointError(
                f"the halt is in effect but could not be written to {self._halt_store.path} "
                f"({exc.strerror or exc}); a restart would not be halted. Fix the disk."
            ) from exc
        self._halt_saved = max(self._halt_saved, version)

    def _check_replay_not_behind_venue(self) -> None:
        """Refuse to replay bars the paper venue has already moved past (it would trade
        them a second time against a ledger that already holds their fills)."""
        horizon = getattr(self.broker, "market_now", None)
        if not isinstance(horizon, datetime) or self._restored_from is None:
            return
        nxt = self._replay_start()
        # The venue may have seen the next bar already (killed before the strategy ran on
        # it): it ignores bars it has seen. Anything beyond that would be traded twice.
        if nxt is None or horizon <= nxt:
            return
        self._state_trusted = False  # refused: write nothing that claims this state
        resumed = self._resume_after.isoformat() if self._resume_after else "the start"
        raise CheckpointError(
            f"cannot resume the replay of {self.strategy_name!r} after {resumed}: the paper "
            f"account has already seen bars up to {horizon.isoformat()}, and the checkpoint "
            "and journal do not say what the strategy did in between (a newer checkpoint "
            "is damaged and the journal does not reach back, or was replaced). Restore the "
            "newer checkpoint or journal, or move the paper account file aside to start "
            "over; nothing was traded."
        )

    def _setup_scheduler(self) -> None:
        from rustybt.live.scheduler import SimulatedClock, TradingScheduler

        if self.scheduler is None:
            replay = self.feed.replaying
            start = self._sim_now or self._replay_start() or datetime.now(UTC)
            self.scheduler = TradingScheduler(
                event_queue=self.event_queue,
                clock=SimulatedClock(start) if replay else None,
            )
            self._simulated_scheduler = replay
        else:
            self._simulated_scheduler = getattr(self.scheduler, "clock", None) is not None
        self.executor.attach_scheduler(self.scheduler)
        if not getattr(self.scheduler, "running", False):
            self.scheduler.start()

    async def _shadow_catch_up(self) -> None:
        """After a restart the shadow resumes from the checkpoint's bar, the live replay
        after the last bar its journal recorded: the shadow replays the bars in between
        (read again from the bundle) and compares them with the live orders the journal
        holds. Live data has no store of past bars: those orders are reported as not
        compared."""
        upto = self._resume_after
        feed = self.feed
        events = None
        if feed.replaying and upto is not None:
            events = feed.replay_events(self.shadow.last_dt, upto)
        await self.shadow.catch_up(events, upto, compare=self._strategy_may_run())

    def _replay_start(self) -> datetime | None:
        dts = self.feed._dts
        i = self.feed.replay_position
        return dts[i] if i < len(dts) else None

    # --- restore ------------------------------------------------------------------------
    async def _restore(self, cp: StateCheckpoint, jpath: Path) -> None:
        """Checkpoint, then the journal written after it, then ask the broker.

        1. Ledger, open orders, breakers and strategy variables from the checkpoint.
        2. Every journal record written after the checkpoint (``journal_seq``) is
           re-applied in order: new intents, broker ids, fills (each fill id once),
           cancels, rejects and earlier resolutions.
        3. Each order still open is resolved by asking the broker about its client order
           id (:meth:`_resolve_in_flight`); nothing is ever resubmitted.
        """
        if cp.strategy_name is not None and cp.strategy_name != self.strategy_name:
            raise CheckpointMismatch(
                f"checkpoint belongs to {cp.strategy_name!r}, not {self.strategy_name!r}; "
                "load the checkpoint saved for this strategy"
            )
        led = self.ledger
        if cp.ledger_state:
            restored = Ledger.from_dict(cp.ledger_state)
            led.starting_cash = restored.starting_cash
            led.set_state(
                restored.cash,
                list(restored.positions.values()),
                fees_paid=restored.fees_paid,
                realized_pnl=restored.realized_pnl,
            )
        else:
            led.starting_cash = cp.portfolio_value
            led.set_state(
                cp.cash,
                [
                    Position(
                        s.asset,
                        s.amount,
                        s.cost_basis / s.amount,
                        s.last_price or s.cost_basis / s.amount,
                        Decimal(0),
                    )
                    for s in cp.positions
                    if s.amount
                ],
            )
        om = self.order_manager
        saved_orders = cp.extra.get("orders") or []
        for d in saved_orders:
            om.adopt(Order.from_dict(d))
        if not saved_orders:
            for snap in cp.pending_orders:
                if snap.is_open:
                    om.adopt(self._order_from_snapshot(snap))
        if cp.breaker_state:
            self.circuit_breakers.load_state(cp.breaker_state)
        if cp.strategy_state:
            self._set_strategy_state(cp.strategy_state)
        om.sequence = max(om.sequence, cp.order_sequence)
        saved_shadow = cp.extra.get("shadow")
        if self.shadow is not None and saved_shadow:
            self.shadow.load(saved_shadow)

        state = await OrderJournal.replay_async(jpath, keep_records=True)
        cut = journal_cut(cp, state)
        after = cut.after
        if cut.how != "continues":
            log.warning(
                "journal_" + cut.how,
                journal=str(jpath),
                journal_seq=state.last_seq,
                checkpoint_journal_seq=int(cp.extra.get("journal_seq", 0) or 0),
                applied_after=after,
            )
            self.audit.warning(
                "journal_" + cut.how,
                journal_seq=state.last_seq,
                checkpoint_seq=cp.extra.get("journal_seq"),
                applied_after=after,
            )
        if self.journal is not None and cut.how != "new_journal":
            # New records must sort after everything the checkpoint saw.
            self.journal.advance_seq(after)
        self._resume_after, bar_state = resume_point(cp, state, cut)
        if bar_state is not None:
            self._set_strategy_state(decode_state_value(bar_state))
        applied = 0
        for rec in state.records or ():
            if rec["seq"] > after and self._apply_journal_record(rec, state):
                applied += 1
        # Every journalled fill is now in the ledger (before the checkpoint, or just
        # re-applied): a venue that sends one again must not count it twice.
        for jo in state.orders.values():
            om._applied_fills.update(jo.fills)
        if self.shadow is not None:
            # The live side of the bars after the checkpoint (see _shadow_catch_up).
            self.shadow.recover_live_signals(state.orders.values(), after)
        # Client order ids are never reused: continue above every id ever journalled
        # (the session id differs anyway).
        om.sequence = max(om.sequence, _highest_sequence(state.orders))
        if crashpoints.ARMED:
            crashpoints.reached("restore")
        self._restored_from = cp
        resolved = await self._resolve_in_flight(state)
        self.audit.record(
            "checkpoint_restored",
            checkpoint_time=cp.timestamp,
            checkpoint_session=cp.session_id,
            journal_records_after_checkpoint=sum(
                1 for r in state.records or () if r["seq"] > after
            ),
            journal_fills_applied=applied,
            in_flight_resolved=resolved,
        )
        log.info(
            "state_restored",
            checkpoint_time=cp.timestamp.isoformat(),
            fills=applied,
            in_flight_resolved=resolved,
        )
        # Restored: from here on a checkpoint may claim this state (never before). The
        # first one is written by _startup once the replay's resume point is accepted.
        self._state_trusted = True

    def _set_strategy_state(self, saved: dict[str, Any]) -> None:
        """Strategy variables from a checkpoint or ``bar`` record; credentials that were
        redacted on the way to disk keep the values ``initialize`` gave them."""
        self.strategy.set_state(merge_redacted(saved, vars(self.strategy)))

    def _journal_bar(self, dt: datetime) -> None:
        """Progress of a replay: the bar the strategy just processed and its variables
        (those that changed since the previous record: :mod:`rustybt.live.state_delta`),
        so a restart resumes after it instead of trading it again."""
        try:
            fields = self._bar_state_delta.fields(self.strategy.get_state())
            self.journal.record("bar", "engine", dt=dt, **fields)  # type: ignore[union-attr]
        except Exception as exc:  # progress is an optimisation of restarts, never fatal
            self._bar_state_delta.reset()
            if not self._bar_journal_failed:
                self._bar_journal_failed = True
                log.error("replay_progress_not_journalled", error=f"{type(exc).__name__}: {exc}")
                self.audit.warning("replay_progress_not_journalled", error=str(exc))

    def _apply_journal_record(self, rec: dict[str, Any], state: Any) -> bool:
        """Re-apply one journal record written after the checkpoint; True for a new fill."""
        kind = rec["kind"]
        coid = rec["client_order_id"]
        jo = state.orders.get(coid)
        om = self.order_manager
        order = om.orders.get(coid)
        if kind == "intent":
            if order is None and jo is not None and jo.asset is not None and jo.amount:
                order = Order(
                    coid,
                    jo.asset,
                    jo.amount,
                    OrderType.parse(jo.order_type or "market"),
                    jo.limit_price,
                    jo.stop_price,
                    TimeInForce.parse(jo.tif) if jo.tif else TimeInForce.GTC,
                    datetime.fromisoformat(jo.dt) if jo.dt else None,
                )
                om.adopt(order)
            return False
        if kind == "fill":
            fill = jo.fills.get(str(rec.get("fill_id"))) if jo is not None else None
            if fill is None or fill.fill_id in om._applied_fills or fill.seq != rec["seq"]:
                return False  # unknown, or a duplicate line of a fill already counted
            asset = order.asset if order is not None else (jo.asset if jo else None)
            if asset is None:
                return False
            om._applied_fills.add(fill.fill_id)
            if order is not None and order.is_open:
                try:
                    om.apply_fill(order, fill.amount, fill.price, fill.commission)
                    return True
                except Exception:
                    pass  # does not fit the order: still the venue's truth, settle below
            # A fill for an order already closed (it raced a cancel): the broker is the
            # truth about what happened, so it is settled like on_fill does.
            self.ledger.apply_fill(asset, fill.amount, fill.price, fill.commission)
            om.fill_count += 1
            return True
        if order is None:
            return False
        if kind in ("submitted", "ack"):
            bid = rec.get("broker_order_id")
            if bid is not None and order.broker_order_id is None:
                order.broker_order_id = str(bid)
                om._by_broker_id[str(bid)] = order
            if order.status is OrderStatus.NEW:
                order.transition(OrderStatus.SUBMITTED)
        elif kind == "cancel":
            om.mark_cancelled(order, str(rec.get("reason") or "cancelled"))
        elif kind == "reject":
            om.mark_rejected(order, str(rec.get("reason") or "rejected"))
        elif kind == "resolved":
            status = rec.get("status")
            if status == "cancelled":
                om.mark_cancelled(order, f"resolved after restart: {rec.get('outcome')}")
            elif status == "rejected":
                om.mark_rejected(order, f"resolved after restart: {rec.get('outcome')}")
        return False

    @staticmethod
    def _order_from_snapshot(snap: OrderSnapshot) -> Order:
        """An open order from an :class:`OrderSnapshot` (a checkpoint without full orders,
        or a broker's open order adopted on a fresh start)."""
        coid = snap.client_order_id or snap.order_id
        order = Order(
            coid,
            snap.asset,
            snap.amount,
            OrderType.parse(snap.order_type or "market"),
            snap.limit_price,
            snap.stop_price,
        )
        order.transition(OrderStatus.SUBMITTED)
        # build_checkpoint writes the client id as order_id while no broker id is known.
        order.broker_order_id = snap.order_id if snap.order_id != coid else None
        if snap.filled:
            # Fills before the snapshot are already in the ledger: bookkeeping only.
            order.filled = snap.filled
            order.status = (
                OrderStatus.FILLED if snap.filled == snap.amount else OrderStatus.PARTIALLY_FILLED
            )
        return order

    async def _resolve_in_flight(self, journal_state: Any = None) -> int:
        """Ask the broker about each open order by client id; settle what it reports.

        * unknown to the broker and never acknowledged: it never left (the crash hit
          between journal and send) -> rejected, journalled ``resolved``/not_at_broker;
        * unknown to the broker but acknowledged before (a venue that only lists open
          orders): closed locally as "outcome unknown"; reconciliation then compares
          positions;
        * known: fills we missed are applied (each venue fill id once, or one aggregate
          fill when the venue gives only totals) and a terminal status is adopted.
        Nothing is resubmitted. Raises ``ReconciliationError`` if the broker cannot be
        asked (the engine must not trade on unresolved orders).
        """
        om = self.order_manager
        journal = self.journal
        resolved = 0
        for order in list(om.iter_open_orders()):
            try:
                info = await self.broker.get_order_by_client_id(order.id)
            except Exception as exc:
                raise ReconciliationError(
                    f"cannot resolve in-flight order {order.id!r} after restart: the broker "
                    f"did not answer ({type(exc).__name__}: {exc}). Nothing was resubmitted; "
                    "start again when the broker is reachable."
                ) from exc
            resolved += 1
            if info is None:
                if order.status is OrderStatus.UNKNOWN:
                    # Its submit's outcome was already unknown: keep it open and keep
                    # asking (never assume it did not arrive).
                    om.track_unknown(order)
                    om.start_resolvers()
                    continue
                if order.broker_order_id is None:
                    om.mark_rejected(order, "never reached the broker (resolved after restart)")
                    outcome = "not_at_broker"
                else:
                    om.mark_cancelled(
                        order, "not known to the broker after restart; outcome unknown"
                    )
                    outcome = "closed_unknown"
                if journal is not None:
                    journal.record(
                        "resolved", order.id, outcome=outcome, status=journal_status(order)
                    )
                self.audit.warning("order_resolved", client_order_id=order.id, outcome=outcome)
                continue
            om.apply_broker_report(order, info)
            status = str(info.get("status") or "").lower()
            if journal is not None:
                journal.record(
                    "resolved",
                    order.id,
                    outcome=status or "unknown",
                    status=journal_status(order),
                    broker_order_id=order.broker_order_id,
                )
            self.audit.record(
                "order_resolved",
                client_order_id=order.id,
                outcome=status,
                local_status=order.status.value,
            )
            jo = journal_state.orders.get(order.id) if journal_state is not None else None
            if order.is_open and jo is not None and jo.cancel_requested:
                # The cancel asked for before the crash may never have been sent.
                om._request_cancel(order, "cancel requested before the restart")
        return resolved

    # --- main loop -------------------------------------------------------------------------
    async def _main_loop(self) -> None:
        q = self.event_queue
        feed = self.feed
        dispatch = self._dispatch
        om = self.order_manager
        yield_every = 256
        n = 0
        while not self._stop:
            ev = q.get_nowait()
            if ev is None:
                if feed.replaying:
                    ev = feed.next_replay_event()
                    if ev is None:
                        self.audit.record("replay_finished")
                        if self.stop_when_data_ends:
                            break
                        # Live from here on: the clock is the wall clock again.
                        self._sim_now = None
                        continue
                    delay = feed.delay_for(ev)
                    if delay > 0:
                        other = await q.get(timeout=delay)
                        if other is not None:
                            feed.unread()
                            ev = other
                else:
                    # No timeout: shutdown() wakes this wait, so an idle engine costs
                    # nothing and a tick is not slowed by a timer per wake-up.
                    ev = await q.get()
                    if ev is None:
                        continue
            await dispatch(ev)
            n += 1
            if om._tasks:
                if feed.replaying:
                    # Deterministic replay: orders reach the venue before the next bar.
                    await om.drain()
                else:
                    await asyncio.sleep(0)
            elif n % yield_every == 0:
                await asyncio.sleep(0)  # let timers (checkpoints, fsync, control) run
        await self.order_manager.drain()

    async def _settle_queued_order_events(self) -> None:
        """At shutdown, apply the order events already received (a network venue's fills
        arrive with or just after its submit answers), so the final checkpoint holds them."""
        kinds = (OrderFillEvent, OrderAckEvent, OrderCancelEvent, OrderRejectEvent)
        for _ in range(100_000):  # bounded: the queue holds what arrived before the stop
            ev = self.event_queue.get_nowait()
            if ev is None:
                return
            if isinstance(ev, kinds):
                await self._dispatch(ev)

    async def _settle_open_orders_at_venue(self, timeout: float = 5.0) -> None:
        """At shutdown, ask a real venue about every order still open locally and apply
        what it reports (fills, terminal status), so the final checkpoint matches the
        venue.

        A venue whose submit answer carries ids only (Bybit, Hyperliquid, a polled ccxt
        venue) reports the fill later, on its stream or the next poll: a session stopping
        between the two would otherwise checkpoint the order as open and the position
        without its fill until the next start resolved it. Bounded by ``timeout``; what
        is not settled here is resolved at the next start, as after a crash. An order
        the venue does not know is left as it is (never assumed cancelled)."""
        broker = self.broker
        if getattr(broker, "simulated", False) or not getattr(broker, "is_persistent", True):
            return
        if not self._state_trusted or not broker.is_connected:
            return
        om = self.order_manager
        orders = [o for o in om.iter_open_orders() if o.broker_order_id is not None]
        if not orders:
            return

        async def settle() -> None:
            for order in orders:
                info = await broker.get_order_by_client_id(order.id)
                if info is not None and order.is_open:
                    om.apply_broker_report(order, info)

        try:
            await asyncio.wait_for(settle(), timeout)
        except Exception as exc:  # the next start resolves them from the journal
            log.warning(
                "shutdown_order_settle_incomplete", error=f"{type(exc).__name__}: {exc}"[:200]
            )
            self.audit.warning("shutdown_order_settle_incomplete", error=type(exc).__name__)

    async def _dispatch(self, ev: Any) -> None:
        self.stats["events_processed"] += 1
        try:
            if not self._dispatcher.dispatch_sync(ev):
                await self._dispatcher.dispatch(ev)
        except Exception as exc:
            self.stats["system_errors"] += 1
            log.error(
                "engine_internal_error",
                event_type=type(ev).__name__,
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
            self.event_queue.put_nowait(
                SystemErrorEvent(f"{type(ev).__name__} handler failed: {exc}", exc, True)
            )

    def record_results(self) -> Any:
        """Record the session's results in the backtest's schema
        (:class:`~rustybt.live.results.SessionRecorder`; ``rustybt live -o DIR``)."""
        from rustybt.live.results import SessionRecorder

        recorder = self.recorder = SessionRecorder(self)
        on_fill = self._on_fill

        def record_fill(ev: OrderFillEvent) -> None:
            if on_fill(ev):
                recorder.on_fill(ev)

        self._dispatcher.register(OrderFillEvent, record_fill)
        return recorder

    def _on_market_data(self, ev: MarketDataEvent) -> None:
        if self.recorder is not None:
            self.recorder.on_market_data(ev.dt)
        if self.feed.replaying:
            self._sim_now = ev.dt
        self.stats["market_events"] += 1
        self.order_manager.last_event_enqueued_ns = ev.enqueued_ns
        if self.watchdog is not None:
            self.watchdog.on_data()
        shadow = self.shadow
        if shadow is not None and shadow.pending:
            shadow.drain()  # it reads the live state as of its bar: before this one moves it
        bars = ev.bars
        self.broker.on_market_data(bars)
        ex = self.executor
        ex.update_data(ev)
        if self._simulated_scheduler and ev.dt >= self.scheduler.clock.now():
            # Simulated time only moves forward: a late (out-of-order) tick from a
            # stream must not stop the engine.
            self.scheduler.advance_to(ev.dt)
        # Fills, acks, rejects and cancels outrank this bar: apply them before the
        # strategy, then mark positions (after the fills, as step_bar does, so a position
        # filled on this bar is marked at its close). Then, in the backtest's order
        # (rustybt/backtest/runner.py): breakers observe the value, the session starts
        # (before_trading_start), due scheduled functions run, and handle_data.
        self._apply_urgent(_TRIGGER)
        led = self.ledger
        positions = led.positions
        if positions:
            for bar in bars:
                if bar.asset in positions:
                    led.update_price(bar.asset, bar.close)
        pv = led.portfolio_value if positions else led.cash
        # The breakers see the value once per bar, flat or not (a loss realised into
        # cash must count), and after every fill (_on_fill); not on every tick.
        bucket = int(ev.dt.timestamp() // self._bar_seconds)
        if bucket != self._breaker_bucket:
            self._breaker_bucket = bucket
            self.circuit_breakers.on_portfolio_value(pv, ev.dt)
        self._value_dt = ev.dt
        self._track_value(pv, ev.dt)
        if self._strategy_may_run():
            ex.roll_session(ev)  # before_trading_start precedes the session's triggers
        self._apply_urgent(_MD)  # due scheduled functions (skipped while halted)
        ran = self._strategy_may_run()
        if ran:
            ex.on_market_data(ev)
        else:
            self.stats["strategy_calls_skipped"] += 1
        if shadow is not None and self._loop is not None:
            # After the live bar (its orders are submitted). A replay reads its next bar
            # only after this one, so nothing waits: run it now; else when the loop idles.
            shadow.after_live_bar(ev, ran, None if self.feed.replaying else self._loop.call_soon)
        if self.feed.replaying and self.journal is not None:
            self._journal_bar(ev.dt)
        limit = self.stop_after_market_events
        if limit is not None and self.stats["market_events"] >= limit:
            self._stop = True
        if self.on_progress is not None:
            self.on_progress(self)

    def _on_fill(self, ev: OrderFillEvent) -> bool:
        applied = self.order_manager.on_fill(ev)
        if applied:
            if self.shadow is not None:
                self.shadow.on_live_fill(ev.client_order_id, ev.dt or self.clock())
            self._feed_breakers(ev.dt)
            window = self._recon_fills
            if window is not None:
                # A reconciliation is asking the broker: remember each local state.
                pos = self.ledger.positions.get(ev.asset)
                window.append(
                    (ev.asset, pos.amount if pos is not None else Decimal(0), self.ledger.cash)
                )
        return applied

    def _feed_breakers(self, dt: datetime | None = None) -> None:
        """Show the breakers the portfolio value now (after a fill or a cash change), on
        the market-data clock the per-bar values use."""
        dt = dt or self._value_dt or self.clock()
        self.circuit_breakers.on_portfolio_value(self.ledger.portfolio_value, dt)

    def _apply_urgent(self, below: int) -> None:
        """Handle queued events that outrank priority ``below``, most urgent first.

        An event only an async handler takes (a breaker trip, queued by a fill of this
        bar) waits for the main loop; the bar's other fills are applied first, so the
        ledger holds the whole bar before it is marked, as the backtest's does.
        """
        q = self.event_queue
        later = None
        while True:
            urgent = q.pop_before(below)
            if urgent is None:
                break
            self.stats["events_processed"] += 1
            if not self._dispatcher.dispatch_sync(urgent):
                if later is None:
                    later = [urgent]
                else:
                    later.append(urgent)
        if later is not None:
            for ev in later:
                q.put_nowait(ev)

    def _track_value(self, pv: Decimal, dt: datetime) -> None:
        if pv > self._peak_value:
            self._peak_value = pv
        elif self._peak_value > 0:
            dd = (self._peak_value - pv) / self._peak_value
            if dd > self.max_drawdown:
                self.max_drawdown = dd
        day = dt.date()
        if day != self._value_day:
            self._value_day = day
            self.value_history.append(pv)
        else:
            self.value_history[-1] = pv

    def _strategy_may_run(self) -> bool:
        """Strategy code (handle_data, scheduled functions and jobs) runs only while the
        engine is neither paused nor halted by a circuit breaker."""
        return not self._paused and self.circuit_breakers.can_trade()

    def _on_scheduled(self, ev: ScheduledTriggerEvent) -> None:
        self.stats["scheduled_triggers"] += 1
        if not self._strategy_may_run():
            self.stats["strategy_calls_skipped"] += 1
            log.info("scheduled_trigger_skipped", job_id=ev.job_id, reason="paused or halted")
            return
        execute = getattr(self.scheduler, "execute", None)
        if execute is not None:
            execute(ev)
        else:
            ev.callback()

    def _on_system_error(self, ev: SystemErrorEvent) -> None:
        self.fatal_error = ev.error
        self.audit.warning("system_error", error=ev.error, fatal=ev.fatal)
        log.error("system_error", error=ev.error, fatal=ev.fatal)
        if ev.fatal:
            self._stop = True

    def _notify_listeners(self, ev: AlertEvent) -> None:
        for listener in self.alert_listeners:
            try:
                listener(ev)
            except Exception as exc:  # noqa: BLE001 - an alert channel never stops trading
                log.error("alert_listener_failed", error=f"{type(exc).__name__}: {exc}")

    def _on_alert(self, ev: AlertEvent) -> None:
        self._notify_listeners(ev)
        self.alerts.append(ev)
        self.audit.warning("alert", kind=ev.kind, message=ev.message)
        log.critical("alert", kind=ev.kind, message=ev.message)

    def _on_broker_connection(self, ev: BrokerConnectionEvent) -> None:
        self.broker_connected = ev.connected
        if not ev.connected:
            self.stats["broker_disconnects"] += 1
            self.risk_gate.block(f"broker connection down: {ev.reason}")
            self._on_alert(
                AlertEvent("broker_disconnected", f"broker connection down: {ev.reason}")
            )
            return
        self.audit.record("broker_reconnected", reason=ev.reason)
        log.warning("broker_reconnected", reason=ev.reason)
        if self._running and not self._stop:
            # Positions may have moved while we were away: trade again only once the
            # broker's view is confirmed (reconciliation lifts the block).
            self.risk_gate.block("broker reconnected; reconciling before new risk")
            self._tasks.append(asyncio.create_task(self._reconcile()))

    # --- errors and breakers ------------------------------------------------------------------
    def _on_strategy_error(self, where: str, exc: BaseException) -> None:
        self.stats["strategy_errors"] += 1
        self.audit.warning("strategy_error", where=where, error=f"{type(exc).__name__}: {exc}")
        self.circuit_breakers.on_error(self.clock())

    # --- supervision -----------------------------------------------------------------------
    def _on_task_failure(self, name: str, what: str, critical: bool) -> None:
        self.stats["task_failures"] += 1
        message = f"background task {name!r} died: {what}"
        if critical:
            self.risk_gate.hold(f"task:{name}", f"{message}; new risk blocked until restart")
        self.audit.warning("background_task_failed", task=name, error=what, critical=critical)
        self.event_queue.put_nowait(AlertEvent("task_failed", message, {"task": name}))

    def _on_feed_error(self, kind: str, exc: BaseException) -> None:
        """A malformed market-data message or a market-data adapter error: skipped,
        counted, and fed to the error-rate breaker."""
        self.stats["data_errors"] += 1
        error = f"{type(exc).__name__}: {exc}"
        log.warning("market_data_error", kind=kind, error=error, count=self.stats["data_errors"])
        self.audit.warning("market_data_error", kind=kind, error=error)
        self.circuit_breakers.on_error(self._value_dt or self.clock())

    def _on_data_stale(self, quiet_seconds: float) -> None:
        reason = (
            f"no market data for {quiet_seconds:.0f}s (limit {self.stale_data_seconds:g}s) "
            "while the market is open"
        )
        self.risk_gate.hold("data_stale", reason)
        self.audit.warning("market_data_stale", seconds=round(quiet_seconds, 3))
        self.event_queue.put_nowait(AlertEvent("market_data_stale", reason))

    def _on_data_fresh(self) -> None:
        self.risk_gate.release("data_stale")
        self.audit.record("market_data_resumed")
        log.info("market_data_resumed")

    def _on_unknown_overdue(self, order: Order) -> None:
        secs = self.order_manager.unknown_deadline_seconds
        reason = (
            f"order {order.id} ({order.side} {abs(order.amount)} {order.asset.symbol}) has had "
            f"an unknown submit outcome for over {secs:g}s; new orders on {order.asset.symbol} "
            "are refused until the broker reports it"
        )
        self.risk_gate.hold_asset(order.asset, f"unknown:{order.id}", reason)
        self.event_queue.put_nowait(
            AlertEvent("order_outcome_unknown", reason, {"client_order_id": order.id})
        )

    def _on_unknown_resolved(self, order: Order) -> None:
        self.risk_gate.release_asset(order.asset, f"unknown:{order.id}")

    def _on_success(self) -> None:
        self.circuit_breakers.on_success(self._value_dt or self.clock())

    def _on_broker_error(self, reason: str) -> None:
        self.stats["broker_errors"] += 1
        self.circuit_breakers.on_error(self.clock())

    def _on_breaker_change(self, breaker: Any, event: str) -> None:
        self._halt_version += 1
        if event == "tripped":
            self.event_queue.put_nowait(
                CircuitBreakerTripEvent(
                    str(breaker.breaker_type.value), breaker.get_trip_reason() or "tripped"
                )
            )
        else:
            # Who released it and why: the breaker's last history entry (the reset itself).
            last = (breaker.history or [{}])[-1]
            self.audit.record(
                "circuit_breaker_reset",
                breaker=breaker.name,
                breaker_type=breaker.breaker_type,
                operator=last.get("operator"),
                reason=last.get("reason"),
            )

    async def _on_breaker_trip(self, ev: CircuitBreakerTripEvent) -> None:
        # The spec's emergency halt: cancel everything pending, leave positions as they are.
        cancelled = self.order_manager.cancel_all("circuit breaker tripped: " + ev.reason)
        # On disk before it is reported: a restart after kill -9 comes back halted.
        durable = True
        try:
            await self._persist_halts()
        except CheckpointError:
            durable = False
        tripped = self.circuit_breakers.get_tripped()
        fields = {
            "breaker_types": [b.breaker_type.value for b in tripped] or [ev.breaker_type],
            "reasons": [b.get_trip_reason() for b in tripped] or [ev.reason],
            "durable": durable,
        }
        log.error("circuit_breakers_tripped", **fields)
        self.audit.warning("circuit_breakers_tripped", **fields)
        self._notify_listeners(
            AlertEvent(
                "breaker_tripped",
                "; ".join(
                    f"{t}: {r}"
                    for t, r in zip(fields["breaker_types"], fields["reasons"], strict=False)
                ),
                {"severity": "critical"},
            )
        )
        self.audit.record("halt_cancel_all", orders=[o.id for o in cancelled])

    # --- periodic work ---------------------------------------------------------------------
    def build_checkpoint(self) -> StateCheckpoint:
        """A consistent snapshot of the engine, taken synchronously on the event loop
        (ledger, open orders and ``journal_seq`` all describe the same instant)."""
        shadow = self.shadow
        if shadow is not None:
            shadow.drain()  # the saved shadow describes the same bar as the live state
        led = self.ledger
        om = self.order_manager
        open_orders = om.open_orders()
        strategy_state = self.strategy.get_state()
        # The next bar record is a full one: a chain never reaches back past a checkpoint.
        self._bar_state_delta.reset()
        try:
            # Encoded later in a worker thread: copy, so the loop cannot change it meanwhile.
            strategy_state = copy.deepcopy(strategy_state)
        except Exception:
            strategy_state = dict(strategy_state)
        last_bar = self._sim_now.isoformat() if self._sim_now else None
        if last_bar is None and self._resume_after is not None:
            last_bar = self._resume_after.isoformat()
        positions, cash, pending = self._local_snapshots()
        cp = StateCheckpoint(
            timestamp=datetime.now(UTC),
            portfolio_value=led.portfolio_value,
            cash=cash,
            positions=positions,
            pending_orders=pending,
            strategy_name=self.strategy_name,
            strategy_state=strategy_state,
            breaker_state=self.circuit_breakers.to_dict(),
            session_id=self.session_id,
            order_sequence=om.sequence,
            ledger_state=led.to_dict(),
            extra={
                "journal_seq": self.journal.last_seq if self.journal else 0,
                "journal_id": self.journal.journal_id if self.journal else None,
                "orders": [o.to_dict() for o in open_orders],
                "last_bar_dt": last_bar,
                "broker": type(self.broker).__name__,
            },
        )
        if shadow is not None:
            cp.extra["shadow"] = shadow.to_dict()
        return cp

    async def checkpoint(self) -> Path:
        """Write a checkpoint now (in a worker thread).

        A failure (disk full, folder not writable) raises and is counted in
        ``stats["checkpoint_failures"]`` / ``last_checkpoint_error``; trading goes on,
        protected by the order journal, and the engine's status reports it.
        """
        cp = self.build_checkpoint()
        try:
            path = await self.state_manager.save_checkpoint_async(self.strategy_name, cp)
        except Exception as exc:
            self.stats["checkpoint_failures"] += 1
            self.last_checkpoint_error = f"{type(exc).__name__}: {exc}"
            raise
        self.stats["checkpoints"] += 1
        self.audit.record("checkpoint_saved", path=str(path), portfolio_value=cp.portfolio_value)
        return path

    async def _checkpoint_loop(self) -> None:
        while not self._stop:
            await asyncio.sleep(self.checkpoint_interval_seconds)
            try:
                await self.checkpoint()
            except Exception as exc:
                log.error("checkpoint_failed", error=f"{type(exc).__name__}: {exc}")
                self.audit.warning("checkpoint_failed", error=str(exc))

    async def _reconcile_loop(self) -> None:
        while not self._stop:
            await asyncio.sleep(self.reconciliation_interval_seconds)
            try:
                await self._reconcile()
            except Exception as exc:
                # Never let one bad round end reconciliation for the session.
                self.stats["reconciliation_errors"] += 1
                reason = f"reconciliation failed: {type(exc).__name__}: {exc}"
                self.risk_gate.block(reason)
                log.error("reconciliation_error", error=reason, traceback=traceback.format_exc())
                self.audit.warning("reconciliation_error", error=reason)
                self.event_queue.put_nowait(AlertEvent("reconciliation", reason))

    def _local_snapshots(self) -> tuple[list[PositionSnapshot], Decimal, list[OrderSnapshot]]:
        led = self.ledger
        positions = [
            PositionSnapshot(p.asset, p.amount, p.total_cost, p.last_price)
            for p in led.positions.values()
        ]
        orders = [
            OrderSnapshot(
                o.broker_order_id or o.id,
                o.asset,
                o.amount,
                o.status.value,
                client_order_id=o.id,
                filled=o.filled,
                order_type=o.order_type.value,
                limit_price=o.limit_price,
                stop_price=o.stop_price,
            )
            for o in self.order_manager.iter_open_orders()
        ]
        return positions, led.cash, orders

    async def reconcile(self) -> ReconciliationReport | None:
        """Reconcile with the broker now and apply the configured strategy."""
        return await self._reconcile()

    def _settle_order_events(self) -> None:
        """Apply queued broker order events (fills, acks, cancels, rejects) now: they
        outrank market data anyway, and the broker's answers already include them."""
        q = self.event_queue
        while True:
            ev = q.pop_before(EventPriority.SCHEDULED_TRIGGER)
            if ev is None:
                break
            self.stats["events_processed"] += 1
            if not self._dispatcher.dispatch_sync(ev):
                q.put_nowait(ev)
                break

    def _reconcile_view(self) -> tuple[list[PositionSnapshot], Decimal, list[OrderSnapshot]]:
        return self._local_snapshots()

    @staticmethod
    def _in_flight(orders: list[OrderSnapshot]) -> set[str]:
        """Orders in flight (NEW: the submit has not returned) or of unknown outcome
        (resolved by client id): the venue may or may not list them yet, so a difference
        about them is not a discrepancy; they still match the broker's copy."""
        skip = (OrderStatus.NEW.value, OrderStatus.UNKNOWN.value)
        return {o.client_order_id or o.order_id for o in orders if o.status in skip}

    async def _reconcile(self, startup: bool = False) -> ReconciliationReport | None:
        """Compare with the broker now, however busy the loop is.

        Local state is read at once before the broker is asked; fills applied during the
        round trip are recorded, so the broker's answer is compared with every local
        state it could describe (:meth:`PositionReconciler.build_window_report`). It is
        never deferred: a tick every few ms cannot starve it.
        """
        om = self.order_manager
        try:
            if getattr(self, "_seed_pending", False):
                # Start-up could not read the account: take it now, before comparing.
                await self._seed_ledger_from_broker()
                if self._seed_pending:
                    raise ReconciliationError("the broker account could not be read")
            if om._tasks:
                # Let submissions in flight now finish (not ones started meanwhile).
                await asyncio.gather(*list(om._tasks), return_exceptions=True)
            self._settle_order_events()
            before = self._reconcile_view()
            seq_before = om.sequence
            self._recon_fills = fills = []
            try:
                broker_state = await self.reconciler.fetch_broker_state()
                self._settle_order_events()
            finally:
                self._recon_fills = None
            after = self._reconcile_view()
            seen_amounts: dict[Any, set[Decimal]] = {}
            for asset, amount, _cash in fills:
                seen_amounts.setdefault(asset, set()).add(amount)
            # Orders placed or changed during the round trip: the broker saw them at
            # some instant of it, so a difference about them is not evidence.
            marks_b = {o.client_order_id: (o.status, o.filled) for o in before[2]}
            marks_a = {o.client_order_id: (o.status, o.filled) for o in after[2]}
            moved = {k for k in marks_b.keys() | marks_a.keys() if marks_b.get(k) != marks_a.get(k)}
            moved.update(f"{om.id_prefix}-{n}" for n in range(seq_before + 1, om.sequence + 1))
            moved |= self._in_flight(before[2]) | self._in_flight(after[2])
            report = self.reconciler.build_window_report(
                before,
                after,
                seen_amounts,
                {c for _a, _m, c in fills},
                broker_state,
                moved_orders=moved,
            )
        except Exception as exc:
            self.reconciliation_state = "unknown"
            reason = f"positions unconfirmed: broker unreachable ({type(exc).__name__}: {exc})"
            self.risk_gate.block(reason)
            log.error("reconciliation_failed", error=reason)
            self.audit.warning("reconciliation_failed", error=reason)
            return None
        self.stats["reconciliations"] += 1
        self.last_reconciliation = report
        strategy = self.reconciliation_strategy
        self.audit.record(
            "reconciliation",
            startup=startup,
            reconciliation_strategy=strategy.value,
            has_discrepancies=report.has_discrepancies,
            max_severity=report.max_severity.value,
            report=report.to_dict(),
        )
        if report.max_severity < DiscrepancySeverity.WARNING:
            # Nothing, or only differences within tolerance (INFO).
            self.reconciliation_state = "ok"
            self.risk_gate.unblock()
            return report
        if strategy is ReconciliationStrategy.TRUST_BROKER:
            try:
                self._trust_broker(report)
            except Exception as exc:
                # The broker's state could not be adopted (e.g. a balance with no price):
                # local state is known wrong, so no new risk; report it and go on.
                reason = (
                    f"TRUST_BROKER could not adopt the broker's state ({type(exc).__name__}: {exc})"
                )
                self.reconciliation_state = "adjust_failed"
                self.risk_gate.block(reason)
                log.error("reconciliation_adjust_failed", error=reason)
                self.audit.warning("reconciliation_adjust_failed", error=reason)
                self.event_queue.put_nowait(AlertEvent("reconciliation", reason))
                return report
            self.reconciliation_state = "adjusted"
            self.risk_gate.unblock()
        elif strategy is ReconciliationStrategy.HALT_AND_ALERT:
            self.reconciliation_state = "halted"
            self._paused = True
            self.risk_gate.block("reconciliation found discrepancies (HALT_AND_ALERT)")
            self.event_queue.put_nowait(
                AlertEvent(
                    "reconciliation",
                    f"discrepancies with the broker ({report.max_severity.value}); trading "
                    "paused until an operator resolves them",
                    report.to_dict(),
                )
            )
        else:
            self.reconciliation_state = "discrepancies_ignored"
            log.warning(
                "reconciliation_discrepancies_ignored",
                severity=report.max_severity.value,
                hint="WARN_ONLY keeps trading despite discrepancies; use TRUST_BROKER or "
                "HALT_AND_ALERT to act on them",
                report=report.to_dict(),
            )
            self.risk_gate.unblock()
        return report

    def _trust_broker(self, report: ReconciliationReport) -> None:
        """Make the local ledger and open orders the broker's, journal it ("adjust"),
        and checkpoint the result."""
        # Order events the broker already emitted describe fills that are in its state:
        # settle them first, so none is counted again after the ledger is replaced.
        q = self.event_queue
        while True:
            ev = q.pop_before(_MD)
            if ev is None:
                break
            self.stats["events_processed"] += 1
            if not self._dispatcher.dispatch_sync(ev):
                q.put_nowait(ev)
                break
        bs = report.broker_state
        led = self.ledger
        before = {
            "cash": led.cash,
            "positions": {a.symbol: p.amount for a, p in led.positions.items()},
            "open_orders": sorted(o.id for o in self.order_manager.iter_open_orders()),
        }
        positions = []
        for snap in bs.positions:
            if not snap.amount:
                continue
            avg = snap.cost_basis / snap.amount
            old = led.positions.get(snap.asset)
            positions.append(
                Position(
                    snap.asset,
                    snap.amount,
                    avg,
                    snap.last_price or avg,
                    old.realized_pnl if old is not None else Decimal(0),
                )
            )
        led.set_state(bs.cash, positions)
        om = self.order_manager
        broker_ids = {o.client_order_id or o.order_id for o in bs.open_orders}
        broker_ids |= {o.order_id for o in bs.open_orders}
        cancelled = []
        for order in list(om.iter_open_orders()):
            if order.status is OrderStatus.UNKNOWN or order.status is OrderStatus.NEW:
                # In flight, or resolved by client order id: not by absence from a list.
                continue
            if order.id not in broker_ids and (order.broker_order_id or order.id) not in broker_ids:
                om.mark_cancelled(order, "not open at the broker (TRUST_BROKER)")
                cancelled.append(order.id)
        adopted = []
        for snap in bs.open_orders:
            cid = snap.client_order_id or snap.order_id
            if cid not in om.orders and snap.order_id not in om._by_broker_id:
                om.adopt(self._order_from_snapshot(snap))
                adopted.append(cid)
        after = {
            "cash": led.cash,
            "positions": {a.symbol: p.amount for a, p in led.positions.items()},
            "open_orders": sorted(o.id for o in om.iter_open_orders()),
        }
        if self.journal is not None:
            self.journal.record(
                "adjust",
                "reconciliation",
                reason="TRUST_BROKER",
                before=before,
                after=after,
                orders_closed=cancelled,
                orders_adopted=adopted,
            )
        self.audit.warning(
            "reconciliation_trust_broker",
            before=before,
            after=after,
            orders_closed=cancelled,
            orders_adopted=adopted,
        )
        log.warning("reconciliation_trust_broker", before=before, after=after)
        self._feed_breakers()
        if self._loop is not None and self._loop.is_running():
            # The adjusted state is not in the journal's fills: checkpoint it at once.
            self._tasks.append(self._loop.create_task(self._checkpoint_quietly()))

    async def _checkpoint_quietly(self) -> None:
        try:
            await self.checkpoint()
        except Exception as exc:
            log.error("checkpoint_failed", error=f"{type(exc).__name__}: {exc}")
            self.audit.warning("checkpoint_failed", error=str(exc))

    # --- shutdown ----------------------------------------------------------------------------
    async def _shutdown_internal(self) -> None:
        if self._shutdown_done:
            return
        self._shutdown_done = True
        self._stop = True
        await self.supervisor.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.streams is not None:
            with contextlib.suppress(Exception):
                await self.streams.stop()
        with contextlib.suppress(Exception):
            await self.order_manager.drain()
        await self._settle_queued_order_events()
        await self._settle_open_orders_at_venue()
        await self.order_manager.stop_resolvers()
        if self._control is not None:
            with contextlib.suppress(Exception):
                await self._control.stop()
        if self.scheduler is not None:
            with contextlib.suppress(Exception):
                self.scheduler.shutdown()
        if self._halt_version > self._halt_saved and self._state_lock.held:
            with contextlib.suppress(Exception):
                await self._persist_halts()
        if self.journal is not None and self._started_at is not None:
            if self._state_trusted:
                try:
                    await self.checkpoint()
                except Exception as exc:
                    log.error("final_checkpoint_failed", error=f"{type(exc).__name__}: {exc}")
            else:
                # A failed restore: a checkpoint now would claim the journal was applied.
                log.warning("final_checkpoint_skipped", reason="state was not restored")
                self.audit.warning("final_checkpoint_skipped", reason="state was not restored")
            with contextlib.suppress(Exception):
                await self.journal.close()
        with contextlib.suppress(Exception):
            await self.broker.disconnect()
        self._running = False
        self.audit.record("engine_stopped", status=_jsonable_status(self.get_status()))
        self.audit.close()
        self._state_lock.release()


def _jsonable_status(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k != "circuit_breakers"}


def _highest_sequence(client_order_ids: Any) -> int:
    """Highest trailing number N among client order ids ``<prefix>-N``."""
    best = 0
    for coid in client_order_ids:
        tail = str(coid).rsplit("-", 1)[-1]
        if tail.isdigit():
            best = max(best, int(tail))
    return best
