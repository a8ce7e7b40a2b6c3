"""Start-up recovery rules (``rustybt.live.recovery``) with the real engine, the real
persistent PaperBroker and the demo bundle: a journal that lost its tail, a restore that
fails, a fallback to an older checkpoint, secrets in strategy state."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from rustybt.exceptions import CheckpointError, JournalError
from rustybt.live.journal import OrderJournal, journal_path
from rustybt.live.models import StateCheckpoint
from rustybt.live.recovery import JournalCut, journal_cut
from rustybt.live.state_manager import StateManager
from tests.live.test_engine_recovery import (
    Flipper,
    assert_matches_venue,
    audit,
    make_engine,
    run,
    venue,
)

D = Decimal


def _cp(**extra) -> StateCheckpoint:
    from datetime import UTC, datetime

    return StateCheckpoint(datetime.now(UTC), D(0), D(0), [], [], extra=extra)


def test_journal_cut_tells_a_lost_tail_from_a_new_journal(tmp_path):
    path = tmp_path / "j.journal"
    j = OrderJournal(path)
    for i in range(3):
        j.record("cancel_requested", f"s-{i}")
    j.close_sync()
    state = OrderJournal.replay(path)
    same = j.journal_id
    assert journal_cut(_cp(journal_seq=2, journal_id=same), state) == JournalCut(2, "continues")
    assert journal_cut(_cp(journal_seq=9, journal_id=same), state) == JournalCut(9, "tail_lost")
    assert journal_cut(_cp(journal_seq=9, journal_id="other"), state) == JournalCut(
        0, "new_journal"
    )
    # A checkpoint from before epochs: never "apply everything" (that double-counts).
    assert journal_cut(_cp(journal_seq=9), state) == JournalCut(9, "unidentified")


# --- item 4: the journal lost its unsynced tail, the checkpoint had seen it ----------------
async def test_a_journal_shorter_than_the_checkpoint_is_not_applied_again(tmp_path):
    state = tmp_path / "state"
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), state)
    await run(first, events=130)
    cp = StateManager(state).load_checkpoint("Flipper")
    jpath = journal_path(state / "journal", "Flipper")
    lines = jpath.read_bytes().splitlines(keepends=True)
    # The machine crashed: the last 40 % of the journal never reached the disk, but the
    # checkpoint (fsynced at once) had seen it. Fills are among the lost lines.
    kept = lines[: len(lines) * 6 // 10]
    lost = [json.loads(x) for x in lines[len(kept) :]]
    assert any(r["kind"] == "fill" for r in lost)
    assert max(r["seq"] for r in lost) <= cp.extra["journal_seq"]
    jpath.write_bytes(b"".join(kept))

    broker = venue(tmp_path / "venue.json")
    second = make_engine(Flipper(), broker, state)
    await run(second, events=1)

    assert audit(second, "journal_tail_lost"), "the lost tail must be reported"
    (restored,) = audit(second, "checkpoint_restored")
    assert restored["journal_fills_applied"] == 0
    assert second.reconciliation_state == "ok" and second.alerts == []
    assert_matches_venue(second, broker)
    # New records are numbered above what the checkpoint saw.
    seqs = [r["seq"] for r in OrderJournal.replay(jpath, keep_records=True).records]
    assert seqs[-1] > cp.extra["journal_seq"]
    assert all(s > cp.extra["journal_seq"] for s in seqs[len(kept) - 1 :])


# --- item 5: a start that failed to restore writes nothing that claims state -----------
async def test_a_failed_restore_writes_no_checkpoint_and_a_repaired_journal_recovers(tmp_path):
    state = tmp_path / "state"
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), state)
    await run(first, events=130)
    sm = StateManager(state)
    # A crash long before the end: only the checkpoint taken at start-up survived.
    files = sm.list_checkpoints("Flipper")
    for f in files[:-1]:
        f.unlink()
    before = sm.list_checkpoints("Flipper")
    jpath = journal_path(state / "journal", "Flipper")
    good = jpath.read_bytes()
    lines = good.splitlines(keepends=True)
    middle = len(lines) // 2
    jpath.write_bytes(b"".join(lines[:middle] + [b"{damaged\n"] + lines[middle + 1 :]))

    failed = make_engine(Flipper(), venue(tmp_path / "venue.json"), state)
    with pytest.raises(JournalError, match=f"line {middle + 1}"):
        await run(failed)
    assert sm.list_checkpoints("Flipper") == before, "the failed start wrote a checkpoint"
    assert audit(failed, "final_checkpoint_skipped")

    jpath.write_bytes(good)  # the operator repairs the journal
    broker = venue(tmp_path / "venue.json")
    second = make_engine(Flipper(), broker, state)
    await run(second, events=1)
    (restored,) = audit(second, "checkpoint_restored")
    assert restored["journal_fills_applied"] > 0
    assert second.reconciliation_state == "ok" and second.alerts == []
    assert_matches_venue(second, broker)


# --- item 16: an older checkpoint must not rewind the replay ----------------------------
async def test_falling_back_to_an_older_checkpoint_resumes_after_the_last_bar_processed(
    tmp_path,
):
    state = tmp_path / "state"
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), state)
    await run(first, events=130)
    bars_seen, last_bar = first.strategy.bars, first._sim_now
    submitted = list(first.broker.submissions)
    files = StateManager(state).list_checkpoints("Flipper")
    files[0].write_bytes(b"garbage")  # the newest checkpoint is corrupt

    broker = venue(tmp_path / "venue.json")
    second = make_engine(Flipper(), broker, state)
    await run(second, events=10)
    assert second.strategy.bars == bars_seen + 10
    assert second._sim_now == last_bar + timedelta(minutes=10)
    assert second.reconciliation_state == "ok" and second.alerts == []
    assert_matches_venue(second, broker)
    # No bar before the crash was traded again.
    again = [c for c in broker.submissions[len(submitted) :]]
    assert all(second.session_id in c for c in again)
    assert len(again) <= 1


async def test_an_older_checkpoint_without_the_journal_behind_it_is_refused(tmp_path):
    state = tmp_path / "state"
    first = make_engine(Flipper(), venue(tmp_path / "venue.json"), state)
    await run(first, events=130)
    sm = StateManager(state)
    files = sm.list_checkpoints("Flipper")
    files[0].write_bytes(b"garbage")
    jpath = journal_path(state / "journal", "Flipper")
    jpath.rename(jpath.with_name("moved-aside.journal"))
    before = sm.list_checkpoints("Flipper")
    submitted = list(first.broker.submissions)

    broker = venue(tmp_path / "venue.json")
    second = make_engine(Flipper(), broker, state)
    with pytest.raises(CheckpointError, match="already seen bars up to"):
        await run(second)
    assert broker.submissions == submitted, "nothing may be traded"
    assert sm.list_checkpoints("Flipper") == before


# --- item 15: secrets nested in strategy state ------------------------------------------
class WithCredentials(Flipper):
    def initialize(self):
        super().initialize()
        self.venue = {
            "name": "demo",
            "api_secret": "s3cr3t-value-123",
            "accounts": [{"id": 1, "token": "t0k3n-value-456"}],
        }


async def test_secrets_nested_in_strategy_state_never_reach_checkpoints_or_logs(tmp_path):
    state = tmp_path / "state"
    first = make_engine(WithCredentials(), venue(tmp_path / "venue.json"), state)
    await run(first, events=30)
    written = b"".join(
        p.read_bytes() for p in state.rglob("*") if p.is_file() and not p.name.endswith(".sock")
    )
    assert b"s3cr3t-value-123" not in written and b"t0k3n-value-456" not in written
    cp = StateManager(state).load_checkpoint("WithCredentials")
    assert cp.strategy_state["venue"]["api_secret"] == "***"
    assert cp.strategy_state["venue"]["name"] == "demo"

    second = make_engine(WithCredentials(), venue(tmp_path / "venue.json"), state)
    await run(second, events=1)
    # Restored variables keep the live credentials that initialize() set.
    assert second.strategy.venue["api_secret"] == "s3cr3t-value-123"
    assert second.strategy.venue["accounts"][0]["token"] == "t0k3n-value-456"
    assert second.strategy.bars == 31


def test_audit_log_redacts_nested_secret_keys(tmp_path):
    from rustybt.live.audit import AuditLog

    log = AuditLog(tmp_path / "a.jsonl", "s1", "x")
    log.record("state_dump", state={"venue": {"api_secret": "zz-secret-zz", "n": 1}})
    log.close()
    text = (tmp_path / "a.jsonl").read_text()
    assert "zz-secret-zz" not in text and '"n": 1' in text


# --- item 6: an automatic breaker trip is on disk before it is reported -----------------
async def test_a_breaker_trip_is_durable_before_it_is_reported_and_a_restart_is_halted(
    tmp_path,
):
    from rustybt.live.brokers.paper_broker import PaperBroker
    from rustybt.live.circuit_breakers import CircuitBreakerManager, OrderRateCircuitBreaker
    from rustybt.live.recovery import HaltStore

    def breakers() -> CircuitBreakerManager:
        manager = CircuitBreakerManager()
        manager.add_breaker(OrderRateCircuitBreaker(1, window_seconds=3600))
        return manager

    state = tmp_path / "state"
    first = make_engine(
        Flipper(), PaperBroker(starting_cash=D("100000")), state, circuit_breakers=breakers()
    )
    await run(first, events=40)  # orders at bars 20 and 30: the second trips it
    (tripped,) = audit(first, "circuit_breakers_tripped")
    assert tripped["durable"] is True and tripped["breaker_types"] == ["order_rate"]
    saved = HaltStore(state, "Flipper").load()
    assert [b["name"] for b in saved["breakers"]] == ["order_rate"]

    # A fresh account (nothing restored from any checkpoint): still halted.
    second = make_engine(
        Flipper(), PaperBroker(starting_cash=D("100000")), state, circuit_breakers=breakers()
    )
    await run(second, events=25)
    assert second._restored_from is None
    assert not second.circuit_breakers.can_trade()
    assert audit(second, "halt_restored")
    assert second.broker.submissions == [], "a halted engine traded"
    await second.resume(operator="carol", reason="limits reviewed")
    assert second.circuit_breakers.can_trade()
    assert HaltStore(state, "Flipper").load()["breakers"] == []
