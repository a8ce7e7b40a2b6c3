"""The spec's "Example - State Checkpointing" (State Management), run as written.

What the user supplies around it: ``pd`` (pandas), ``logger`` (structlog), and real lists
where the spec writes ``positions=[...]`` / ``pending_orders=[...]``. ``Path.home()`` is
pointed at a temporary folder so the test never writes to the real home.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import structlog
from structlog.testing import capture_logs

from rustybt.assets import Equity
from rustybt.live.models import OrderSnapshot, PositionSnapshot, StateCheckpoint

SPEC = """
from pathlib import Path
from rustybt.live.state_manager import StateManager

# Initialize state manager
state_manager = StateManager(
    checkpoint_dir=Path.home() / ".rustybt" / "state",
    staleness_threshold_seconds=3600  # Warn if checkpoint >1 hour old
)

# Save checkpoint (automatic in engine, shown for reference)
checkpoint = StateCheckpoint(
    timestamp=pd.Timestamp.now(),
    portfolio_value=Decimal("105000"),
    cash=Decimal("5000"),
    positions=POSITIONS,
    pending_orders=PENDING_ORDERS
)
state_manager.save_checkpoint(
    strategy_name="my_strategy",
    state=checkpoint
)

# Restore after crash
restored_checkpoint = state_manager.load_checkpoint("my_strategy")
if restored_checkpoint:
    logger.info("state_restored",
                checkpoint_time=restored_checkpoint.timestamp,
                portfolio_value=restored_checkpoint.portfolio_value)

    # Check staleness
    if state_manager.is_stale(restored_checkpoint):
        logger.warning("stale_checkpoint",
                      age_seconds=state_manager.get_checkpoint_age(restored_checkpoint))
        # Consider position reconciliation critical
"""


def test_spec_state_checkpointing_saves_restores_and_checks_staleness(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    aapl, msft = Equity("AAPL", sid=1), Equity("MSFT", sid=2)
    positions = [
        PositionSnapshot(asset=aapl, amount=Decimal("100"), cost_basis=Decimal("18500")),
        PositionSnapshot(asset=msft, amount=Decimal("-50"), cost_basis=Decimal("-18750")),
    ]
    pending = [OrderSnapshot(order_id="order1", asset=aapl, amount=Decimal("50"), status="pending")]
    ns = {
        "pd": pd,
        "Decimal": Decimal,
        "StateCheckpoint": StateCheckpoint,
        "logger": structlog.get_logger(),
        "POSITIONS": positions,
        "PENDING_ORDERS": pending,
    }
    with capture_logs() as logs:
        exec(SPEC, ns)

    restored = ns["restored_checkpoint"]
    assert restored.portfolio_value == Decimal("105000") and restored.cash == Decimal("5000")
    assert [(p.asset, p.amount, p.cost_basis) for p in restored.positions] == [
        (aapl, Decimal("100"), Decimal("18500")),
        (msft, Decimal("-50"), Decimal("-18750")),
    ]
    (order,) = restored.pending_orders
    assert (order.order_id, order.asset, order.amount, order.status) == (
        "order1",
        aapl,
        Decimal("50"),
        "pending",
    )
    # A naive pd.Timestamp.now() is local time, stored as UTC: the same instant.
    assert restored.timestamp == ns["checkpoint"].timestamp
    assert restored.timestamp.tzinfo is not None
    files = list((Path(tmp_path) / ".rustybt" / "state" / "my_strategy").glob("*.ckpt"))
    assert len(files) == 1
    events = [e["event"] for e in logs]
    assert "state_restored" in events and "stale_checkpoint" not in events


def test_spec_state_checkpointing_warns_about_a_stale_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    ns = {
        "pd": pd,
        "Decimal": Decimal,
        "StateCheckpoint": StateCheckpoint,
        "logger": structlog.get_logger(),
        "POSITIONS": [],
        "PENDING_ORDERS": [],
    }
    # The same example, with a checkpoint written two hours ago.
    spec = SPEC.replace("pd.Timestamp.now()", "pd.Timestamp.now() - pd.Timedelta(hours=2)")
    with capture_logs() as logs:
        exec(spec, ns)
    (stale,) = [e for e in logs if e["event"] == "stale_checkpoint"]
    assert 7100 < stale["age_seconds"] < 7300
