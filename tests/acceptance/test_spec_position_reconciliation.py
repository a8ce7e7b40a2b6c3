"""The spec's "Example - Position Reconciliation", run as written.

What the user supplies around it: ``broker`` (a connected PaperBroker), ``asset1`` and
``asset2`` (demo-bundle equities), ``logger`` (structlog), ``engine`` (a LiveTradingEngine
on that broker), and the snapshot classes the spec imports in its Import block.
"""

from __future__ import annotations

import textwrap
from decimal import Decimal

import structlog
from structlog.testing import capture_logs

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.models import DiscrepancySeverity, OrderSnapshot, PositionSnapshot

SPEC = """
from decimal import Decimal
from rustybt.live.reconciler import PositionReconciler
from rustybt.live.models import ReconciliationStrategy

# Initialize reconciler
reconciler = PositionReconciler(
    broker_adapter=broker,
    reconciliation_strategy=ReconciliationStrategy.WARN_ONLY,  # or TRUST_BROKER, HALT_AND_ALERT
    cash_tolerance_pct=0.01  # 1% tolerance for cash differences
)

# Perform reconciliation (automatic in engine, shown for reference)
local_positions = [
    PositionSnapshot(asset=asset1, amount=Decimal("100"), cost_basis=Decimal("5000")),
    PositionSnapshot(asset=asset2, amount=Decimal("-50"), cost_basis=Decimal("-2500"))
]
local_cash = Decimal("10000")
local_orders = [
    OrderSnapshot(order_id="order1", asset=asset1, amount=Decimal("50"), status="pending")
]

report = await reconciler.reconcile_all(
    local_positions=local_positions,
    local_cash=local_cash,
    local_orders=local_orders
)

# Check for discrepancies
if report.has_discrepancies:
    logger.warning("position_discrepancies_found",
                   position_count=len(report.position_discrepancies),
                   cash_discrepancy=report.cash_discrepancy,
                   severity=report.max_severity.value)

    # Handle based on strategy
    if report.max_severity == DiscrepancySeverity.CRITICAL:
        # HALT_AND_ALERT: Stop trading
        await engine.pause()
        # Send alerts
        ...
    elif report.max_severity == DiscrepancySeverity.WARNING:
        # WARN_ONLY: Log but continue
        pass
"""


async def _run_spec(ns: dict) -> dict:
    body = "async def __spec():\n" + textwrap.indent(SPEC, "    ") + "\n    return locals()\n"
    exec(body, ns)
    return await ns["__spec"]()


async def _setup(broker: PaperBroker) -> dict:
    portal = PolarsDataPortal(bundle_name="demo", data_frequency="minute")
    asset1 = portal.asset_finder.lookup_symbol("AAPL")
    asset2 = portal.asset_finder.lookup_symbol("MSFT")
    await broker.connect()

    class Idle(TradingAlgorithm):
        pass

    engine = LiveTradingEngine(
        strategy=Idle(),
        broker_adapter=broker,
        data_portal=portal,
        circuit_breakers=CircuitBreakerManager(),
        control_socket=False,
    )
    return {
        "broker": broker,
        "asset1": asset1,
        "asset2": asset2,
        "engine": engine,
        "logger": structlog.get_logger(),
        "PositionSnapshot": PositionSnapshot,
        "OrderSnapshot": OrderSnapshot,
        "DiscrepancySeverity": DiscrepancySeverity,
    }


async def test_spec_reconciliation_against_an_empty_account_finds_critical_and_pauses():
    ns = await _setup(PaperBroker(starting_cash=Decimal("100000")))
    with capture_logs() as logs:
        out = await _run_spec(ns)
    report = out["report"]
    assert report.max_severity is DiscrepancySeverity.CRITICAL
    kinds = {(d.asset.symbol, d.kind) for d in report.position_discrepancies}
    assert kinds == {("AAPL", "missing_at_broker"), ("MSFT", "missing_at_broker")}
    assert report.cash_discrepancy.broker_cash == Decimal("100000")
    (orphan,) = report.order_discrepancies
    assert orphan.order_id == "order1" and orphan.kind == "orphaned_local"
    (warned,) = [e for e in logs if e["event"] == "position_discrepancies_found"]
    assert warned["position_count"] == 2 and warned["severity"] == "critical"
    assert ns["engine"].get_status()["paused"] is True


async def test_spec_reconciliation_with_matching_positions_warns_and_keeps_trading():
    broker = PaperBroker(starting_cash=Decimal("10000"), allow_short=True)
    ns = await _setup(broker)
    # The account already holds the example's positions and cash; order1 is not open there.
    broker.ledger.apply_fill(ns["asset1"], Decimal("100"), Decimal("50"))
    broker.ledger.apply_fill(ns["asset2"], Decimal("-50"), Decimal("50"))
    broker.ledger.cash = Decimal("10000")

    with capture_logs() as logs:
        out = await _run_spec(ns)
    report = out["report"]
    assert report.position_discrepancies == [] and report.cash_discrepancy is None
    (orphan,) = report.order_discrepancies
    assert orphan.kind == "orphaned_local"
    assert report.max_severity is DiscrepancySeverity.WARNING  # the example's "pass" branch
    assert any(e["event"] == "position_discrepancies_found" for e in logs)
    assert ns["engine"].get_status()["paused"] is False
