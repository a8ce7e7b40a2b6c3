"""The spec's Common Pattern "3. Crash Recovery", run as written.

What the user supplies around it: ``logger`` (structlog), ``reconciler`` (a
PositionReconciler on the broker) and ``engine``: a LiveTradingEngine running the
strategy "my_strategy" on a paper account that outlives the process
(``PaperBroker(state_path=...)``), over the demo bundle. A first engine trades and is
stopped mid-session (as a crash would, its last checkpoint is older than its journal);
the example then restores the checkpoint into a new engine and runs it.
"""

from __future__ import annotations

import asyncio
import textwrap
from decimal import Decimal

import structlog
from structlog.testing import capture_logs

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.models import ReconciliationStrategy
from rustybt.live.reconciler import PositionReconciler
from rustybt.live.state_manager import StateManager

SPEC = """
from rustybt.live.state_manager import StateManager

state_manager = StateManager()

# On restart after crash
checkpoint = state_manager.load_checkpoint("my_strategy")

if checkpoint:
    logger.info("restoring_from_checkpoint",
                timestamp=checkpoint.timestamp,
                portfolio_value=checkpoint.portfolio_value)

    # Check if checkpoint is stale
    if state_manager.is_stale(checkpoint):
        logger.warning("stale_checkpoint_detected",
                      age_seconds=state_manager.get_checkpoint_age(checkpoint))

        # CRITICAL: Perform immediate position reconciliation
        report = await reconciler.reconcile_all(
            local_positions=checkpoint.positions,
            local_cash=checkpoint.cash,
            local_orders=checkpoint.pending_orders
        )

        if report.has_critical_discrepancies:
            # Manual review required
            logger.critical("critical_discrepancies_after_crash",
                          report=report.to_dict())
            raise RuntimeError("Manual review required after crash recovery")

    # Restore strategy state
    engine.restore_checkpoint(checkpoint)
    await engine.run()
else:
    logger.info("no_checkpoint_found", strategy="my_strategy")
    await engine.run()
"""


class Flipper(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("JPM")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars % 15 == 0:
            self.order_target_percent(self.asset, 0.5 if (self.bars // 15) % 2 else 0)


def _engine(tmp_path, events: int) -> LiveTradingEngine:
    engine = LiveTradingEngine(
        strategy=Flipper(name="my_strategy"),
        broker_adapter=PaperBroker(
            starting_cash=Decimal("100000"),
            state_path=tmp_path / "paper-account.json",
            volume_limit_pct=Decimal("0.002"),
        ),
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        circuit_breakers=CircuitBreakerManager(),
        reconciliation_strategy=ReconciliationStrategy.HALT_AND_ALERT,
        control_socket=False,
        start="2024-01-03",
        end="2024-01-03 23:59:59",
    )
    engine.stop_after_market_events = events
    return engine


async def _run_spec(ns: dict) -> dict:
    body = "async def __spec():\n" + textwrap.indent(SPEC, "    ") + "\n    return locals()\n"
    exec(body, ns)
    return await asyncio.wait_for(ns["__spec"](), 30)


async def test_spec_crash_recovery_without_a_checkpoint_starts_the_engine_fresh(tmp_path):
    engine = _engine(tmp_path, events=20)
    ns = {"logger": structlog.get_logger(), "engine": engine, "reconciler": None}
    with capture_logs() as logs:
        await _run_spec(ns)
    assert any(e["event"] == "no_checkpoint_found" for e in logs)
    assert engine._restored_from is None and engine.strategy.bars == 20


async def test_spec_crash_recovery_restores_the_checkpoint_and_the_journal(tmp_path):
    # The session before the crash: its newest checkpoint predates its last fills.
    before = _engine(tmp_path, events=100)
    early = []

    def keep_checkpoint_at_bar_50(engine=before):
        if engine.strategy.bars == 50 and not early:
            early.append(engine.build_checkpoint())

    before.on_progress = lambda _e: keep_checkpoint_at_bar_50()
    await before.run()
    sm = StateManager()
    sm.delete_checkpoints("my_strategy")
    sm.save_checkpoint("my_strategy", early[0])

    engine = _engine(tmp_path, events=30)
    broker = engine.broker
    ns = {
        "logger": structlog.get_logger(),
        "engine": engine,
        "reconciler": PositionReconciler(broker, ReconciliationStrategy.HALT_AND_ALERT),
    }
    with capture_logs() as logs:
        await _run_spec(ns)

    restoring = [e for e in logs if e["event"] == "restoring_from_checkpoint"]
    assert restoring and restoring[0]["portfolio_value"] == early[0].portfolio_value
    assert engine._restored_from is not None
    # Resumed after the last bar the strategy processed (the journal's progress records
    # reach past the checkpoint's bar 50), with its variables as they were at bar 100.
    assert engine.strategy.bars == 100 + 30
    assert engine.reconciliation_state == "ok" and engine.alerts == []
    # After recovery and 30 more bars the engine agrees with the account, exactly.
    assert engine.ledger.cash == broker.ledger.cash
    assert {a: p.amount for a, p in engine.ledger.positions.items()} == {
        a: p.amount for a, p in broker.ledger.positions.items()
    }
    assert len(broker.submissions) == len(set(broker.submissions))
