"""Engine restore: checkpoint + journal replay + in-flight resolution, with the real
PaperBroker (persistent through ``state_path``, standing in for a venue that outlives the
trading process) and the real demo bundle."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.bar import Bar
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.exceptions import CheckpointMismatch, ConfigError
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.journal import OrderJournal, journal_path
from rustybt.live.models import ReconciliationStrategy, StateCheckpoint
from rustybt.live.state_manager import StateManager

D = Decimal
SESSION = {"start": "2024-01-03", "end": "2024-01-03 23:59:59"}


class Flipper(TradingAlgorithm):
    """Flips JPM and META between 45% and 0%, staggered, every 20 bars."""

    def __init__(self, on_bar=None) -> None:
        super().__init__()
        self._on_bar = on_bar

    def initialize(self):
        self.a = self.symbol("JPM")
        self.b = self.symbol("META")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars % 20 == 0:
            self.order_target_percent(self.a, 0.45 if (self.bars // 20) % 2 else 0)
        if self.bars % 20 == 10:
            self.order_target_percent(self.b, 0.45 if (self.bars // 20) % 2 else 0)
        if self._on_bar is not None:
            self._on_bar(self)


def venue(path: Path, **kw) -> PaperBroker:
    kw.setdefault("volume_limit_pct", D("0.002"))  # orders fill over several bars
    return PaperBroker(starting_cash=D("100000"), state_path=path, **kw)


def make_engine(strategy, broker, state_dir: Path, **kw) -> LiveTradingEngine:
    kw.setdefault("circuit_breakers", CircuitBreakerManager())
    kw.setdefault("control_socket", False)
    kw.setdefault("reconciliation_strategy", ReconciliationStrategy.HALT_AND_ALERT)
    for k, v in SESSION.items():
        kw.setdefault(k, v)
    return LiveTradingEngine(
        strategy=strategy,
        broker_adapter=broker,
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        state_dir=state_dir,
        **kw,
    )


async def run(engine: LiveTradingEngine, events: int | None = None) -> None:
    engine.stop_after_market_events = events
    await asyncio.wait_for(engine.run(), 30)


def ledger_view(ledger) -> tuple[Decimal, dict[str, Decimal]]:
    return ledger.cash, {a.symbol: p.amount for a, p in ledger.positions.items()}


def audit(engine: LiveTradingEngine, event: str) -> list[dict]:
    out = []
    for line in engine.audit.path.read_text().splitlines():
        rec = json.loads(line)
        if rec["event"] == event:
            out.append(rec)
    return out


def assert_matches_venue(engine: LiveTradingEngine, broker: PaperBroker) -> None:
    assert ledger_view(engine.ledger) == ledger_view(broker.ledger)
    ours = {o.id for o in engine.order_manager.iter_open_orders()}
    theirs = {broker._client_ids[o.id] for book in broker._open.values() for o in book}
    assert ours == theirs
    assert len(broker.submissions) == len(set(broker.submissions))


# --- automatic restore ------------------------------------------------------------------
async def test_run_restores_the_newest_checkpoint_when_the_broker_account_is_persistent(tmp_path):
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), tmp_path / "state")
    await run(first, events=130)
    assert first.order_manager.fill_count > 0
    bars_seen = first.strategy.bars
    last_bar = first._sim_now

    broker = venue(tmp_path / "venue.json")
    second = make_engine(Flipper(), broker, tmp_path / "state")
    await run(second, events=60)

    assert second._restored_from is not None
    assert second.session_id != first.session_id
    # Strategy variables came back, and the replay resumed after the last bar seen.
    assert second.strategy.bars == bars_seen + 60
    assert second._sim_now == last_bar + timedelta(minutes=60)
    assert second.reconciliation_state == "ok" and second.alerts == []
    assert not set(first.order_manager.orders) & {
        o for o in second.order_manager.orders if o not in first.order_manager.orders
    }
    new_ids = [c for c in broker.submissions if second.session_id in c]
    assert new_ids, "the restored strategy kept trading"
    assert_matches_venue(second, broker)


async def test_in_memory_paper_broker_starts_fresh_even_when_a_checkpoint_exists(tmp_path):
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), tmp_path / "state")
    await run(first, events=75)
    assert first.ledger.positions

    fresh = PaperBroker(starting_cash=D("100000"))  # no state_path: nothing survives
    second = make_engine(Flipper(), fresh, tmp_path / "state")
    await run(second, events=5)

    assert second._restored_from is None
    assert second.strategy.bars == 5  # started from the first bar, not resumed
    assert second.ledger.cash == D("100000") and not second.ledger.positions
    old = list((tmp_path / "state" / "journal").glob("Flipper.journal.*.old"))
    assert len(old) == 1, "the previous journal is kept for the record, a new one begun"


async def test_restore_checkpoint_before_run_uses_that_checkpoint(tmp_path):
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), tmp_path / "state")
    await run(first, events=50)
    cp = StateManager(tmp_path / "state").load_checkpoint("Flipper")

    broker = venue(tmp_path / "venue.json")
    other_dir = tmp_path / "elsewhere"  # no checkpoint of its own there
    second = make_engine(Flipper(), broker, other_dir)
    second.restore_checkpoint(cp)
    await run(second, events=1)
    assert second._restored_from is cp
    assert second.strategy.bars == 51


# --- crash recovery ------------------------------------------------------------------------
async def test_restart_reapplies_journal_fills_written_after_the_checkpoint(tmp_path):
    """A crash after bar 70: the newest checkpoint is older; the journal has the rest."""
    early: list[StateCheckpoint] = []
    holder: dict[str, LiveTradingEngine] = {}

    def snapshot_at_bar_35(strategy):
        if strategy.bars == 35:
            early.append(holder["engine"].build_checkpoint())

    state = tmp_path / "state"
    first = make_engine(Flipper(snapshot_at_bar_35), venue(tmp_path / "venue.json"), state)
    holder["engine"] = first
    await run(first, events=70)
    # Simulate the crash: only the early checkpoint made it to disk.
    sm = StateManager(state)
    sm.delete_checkpoints("Flipper")
    sm.save_checkpoint("Flipper", early[0])
    fills_after = [
        f
        for jo in OrderJournal.replay(journal_path(state / "journal", "Flipper")).orders.values()
        for f in jo.fills.values()
        if f.seq > early[0].extra["journal_seq"]
    ]
    assert fills_after, "the scenario needs fills after the checkpoint"

    broker = venue(tmp_path / "venue.json")
    second = make_engine(Flipper(), broker, state)
    await run(second, events=1)

    (restored,) = audit(second, "checkpoint_restored")
    assert restored["journal_fills_applied"] == len(fills_after)
    assert second.reconciliation_state == "ok" and second.alerts == []
    assert_matches_venue(second, broker)


async def test_an_intent_that_never_reached_the_broker_is_resolved_never_resubmitted(tmp_path):
    state = tmp_path / "state"
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), state)
    await run(first, events=30)
    # The crash hit between journal and send: the intent is on disk, the venue never saw it.
    jpath = journal_path(state / "journal", "Flipper")
    ghost = f"Flipper-{first.session_id}-99"
    journal = OrderJournal(jpath)
    journal.record(
        "intent",
        ghost,
        asset=first.strategy.a,
        amount=D("10"),
        order_type="market",
        tif="gtc",
        strategy="Flipper",
    )
    journal.close_sync()

    broker = venue(tmp_path / "venue.json")
    second = make_engine(Flipper(), broker, state)
    await run(second, events=1)

    assert ghost not in broker.submissions
    order = second.order_manager.get_order(ghost)
    assert order.status.value == "rejected" and "never reached the broker" in order.reason
    replayed = OrderJournal.replay(jpath).get(ghost)
    assert replayed.status == "rejected"
    assert replayed.resolution["outcome"] == "not_at_broker"
    # Numbering continues above every id ever journalled: 99 is never issued again.
    assert second.order_manager.sequence >= 99


async def test_fills_the_venue_made_while_we_were_down_are_recovered_by_client_order_id(
    tmp_path,
):
    state = tmp_path / "state"
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), state)
    await run(first, events=20)  # bar 20 orders JPM; the replay stops before it fills
    (pending,) = first.order_manager.open_orders()
    last = first._sim_now

    # While the engine is down the venue keeps matching: two bars fill the order.
    down = venue(tmp_path / "venue.json")
    await down.connect()
    asset = pending.asset
    price = down._last_price[asset]
    for minute in (1, 2):
        down.on_market_data(
            [Bar(asset, last + timedelta(minutes=minute), price, price, price, price, D(10**6))]
        )
    info = await down.get_order_by_client_id(pending.id)
    assert info["status"] == "filled" and info["fills"]

    broker = venue(tmp_path / "venue.json")
    second = make_engine(Flipper(), broker, state)
    await run(second, events=1)

    order = second.order_manager.get_order(pending.id)
    assert order.status.value == "filled" and order.filled == pending.amount
    assert pending.id in broker.submissions and broker.submissions.count(pending.id) == 1
    assert second.reconciliation_state == "ok" and second.alerts == []
    assert_matches_venue(second, broker)
    # The recovered fills are journalled under the venue's fill ids.
    jo = OrderJournal.replay(journal_path(state / "journal", "Flipper")).get(pending.id)
    assert {f["fill_id"] for f in info["fills"]} <= set(jo.fills)


async def test_client_order_ids_continue_numbering_after_a_restart(tmp_path):
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), tmp_path / "state")
    await run(first, events=60)
    highest = max(int(c.rsplit("-", 1)[1]) for c in first.order_manager.orders)

    broker = venue(tmp_path / "venue.json")
    second = make_engine(Flipper(), broker, tmp_path / "state")
    await run(second, events=60)
    new = [c for c in second.order_manager.orders if second.session_id in c]
    assert new and min(int(c.rsplit("-", 1)[1]) for c in new) > highest
    assert len(broker.submissions) == len(set(broker.submissions))


# --- bad input ---------------------------------------------------------------------------
async def test_a_checkpoint_of_another_strategy_is_refused_and_nothing_changes(tmp_path):
    engine = make_engine(Flipper(), PaperBroker(), tmp_path / "state")
    other = StateCheckpoint(
        timestamp="2024-01-03T15:00:00+00:00",
        portfolio_value=D("5"),
        cash=D("5"),
        positions=[],
        pending_orders=[],
        strategy_name="SomeoneElse",
    )
    with pytest.raises(CheckpointMismatch, match="SomeoneElse"):
        engine.restore_checkpoint(other)
    with pytest.raises(ConfigError, match="StateCheckpoint"):
        engine.restore_checkpoint({"cash": "5"})
    assert engine._pending_checkpoint is None and engine.ledger.cash == 0


async def test_a_checkpoint_file_of_another_strategy_in_the_folder_stops_startup(tmp_path):
    state = tmp_path / "state"
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), state)
    await run(first, events=5)
    # Someone copied a checkpoint of another strategy into Flipper's folder.
    alien = StateManager(tmp_path / "other")
    cp = first.build_checkpoint()
    cp.strategy_name = None
    path = alien.save_checkpoint("Alien", cp)
    newest = sorted((state / "Flipper").glob("*.ckpt"))[-1]
    path.rename(newest.with_name(newest.name.replace(".ckpt", "9.ckpt")))

    second = make_engine(Flipper(), venue(tmp_path / "venue.json"), state)
    with pytest.raises(CheckpointMismatch, match="Alien"):
        await run(second)
    assert second.order_manager.orders == {}


async def test_restore_checkpoint_while_running_is_refused(tmp_path):
    cp_holder: list = []
    holder: dict[str, LiveTradingEngine] = {}

    def try_restore(strategy):
        if strategy.bars == 2:
            try:
                holder["engine"].restore_checkpoint(holder["engine"].build_checkpoint())
            except ConfigError as exc:
                cp_holder.append(exc)

    engine = make_engine(Flipper(try_restore), PaperBroker(), tmp_path / "state")
    holder["engine"] = engine
    await run(engine, events=3)
    assert cp_holder and "before run()" in str(cp_holder[0])


async def test_corrupt_newest_checkpoint_falls_back_and_the_journal_fills_the_gap(tmp_path):
    state = tmp_path / "state"
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), state)
    await run(first, events=80)
    files = StateManager(state).list_checkpoints("Flipper")
    assert len(files) >= 2  # the one written at start-up, and the final one
    files[0].write_bytes(files[0].read_bytes()[:50])  # torn newest file

    broker = venue(tmp_path / "venue.json")
    second = make_engine(Flipper(), broker, state)
    await run(second, events=1)
    (restored,) = audit(second, "checkpoint_restored")
    assert restored["journal_fills_applied"] > 0  # the older checkpoint missed these
    assert second.reconciliation_state == "ok" and second.alerts == []
    assert_matches_venue(second, broker)


async def test_unwritable_checkpoint_folder_is_reported_and_trading_continues(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the checkpoint folder should be")
    engine = make_engine(
        Flipper(),
        PaperBroker(starting_cash=D("100000")),
        tmp_path / "state",
        state_manager=StateManager(blocker / "state"),
        checkpoint_interval_seconds=0.01,
    )
    await run(engine, events=60)
    status = engine.get_status()
    assert status["fills"] > 0 and engine.fatal_error is None  # it kept trading
    assert status["checkpoint_failures"] >= 1  # the final checkpoint, at least
    assert "not-a-folder" in engine.last_checkpoint_error
    (stopped,) = audit(engine, "engine_stopped")
    assert stopped["status"]["checkpoint_failures"] >= 1


async def test_cancel_requested_is_journalled_and_does_not_change_the_replayed_status(tmp_path):
    path = tmp_path / "j.journal"
    journal = OrderJournal(path)
    journal.record("intent", "s-1", amount=D("5"))
    journal.record("submitted", "s-1", broker_order_id="b-1")
    journal.record("cancel_requested", "s-1", reason="strategy")
    journal.close_sync()
    jo = OrderJournal.replay(path).get("s-1")
    assert jo.status == "submitted" and jo.cancel_requested
    journal = OrderJournal(path)
    journal.record("cancel", "s-1", reason="cancelled")
    journal.close_sync()
    jo = OrderJournal.replay(path).get("s-1")
    assert jo.status == "cancelled" and not jo.cancel_requested
