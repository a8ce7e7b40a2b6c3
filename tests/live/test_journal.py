"""Order journal: write-ahead records, group commit, replay and crash damage."""

from __future__ import annotations

import asyncio
import errno
import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rustybt.assets import Crypto, Equity
from rustybt.exceptions import JournalError
from rustybt.live.journal import OrderJournal, journal_path

AAPL = Equity("AAPL", sid=1)
BTC = Crypto("BTCUSDT")
DT = datetime(2024, 1, 2, 15, 30, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return journal_path(tmp_path, "my_strategy")


def _intent(j: OrderJournal, coid: str, amount: str = "10", asset=AAPL) -> None:
    j.record(
        "intent",
        coid,
        asset=asset,
        amount=Decimal(amount),
        order_type="limit",
        limit_price=Decimal("50.10"),
        stop_price=None,
        tif="day",
        dt=DT,
        strategy="my_strategy",
    )


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_journal_path_is_one_file_per_strategy(tmp_path: Path):
    assert journal_path(tmp_path, "alpha") == tmp_path / "alpha.journal"


def test_record_reaches_the_file_before_any_fsync(path: Path):
    j = OrderJournal(path)
    _intent(j, "s1-1")
    # Another reader sees the line at once: it is in the OS, so a killed process keeps it.
    header, rec = _lines(path)
    assert header["kind"] == "header" and header["journal_id"] == j.journal_id
    assert rec["kind"] == "intent" and rec["client_order_id"] == "s1-1"
    assert rec["amount"] == "10" and rec["limit_price"] == "50.10"  # Decimals as strings
    assert rec["asset"] == AAPL.to_dict()
    assert rec["seq"] == 1 and isinstance(rec["ts"], float)
    assert j.synced_seq == 0 and j.last_seq == 1
    j.close_sync()


def test_seq_increases_and_continues_after_reopening(path: Path):
    j = OrderJournal(path)
    _intent(j, "s1-1")
    j.record("submitted", "s1-1", broker_order_id="B1")
    j.close_sync()
    j2 = OrderJournal(path)
    j2.record("ack", "s1-1", broker_order_id="B1")
    j2.close_sync()
    assert [r["seq"] for r in _lines(path)] == [0, 1, 2, 3]


def test_a_journal_keeps_its_epoch_across_reopening_and_a_new_file_gets_a_new_one(path: Path):
    j = OrderJournal(path)
    _intent(j, "s1-1")
    j.close_sync()
    again = OrderJournal(path)
    assert again.journal_id == j.journal_id
    again.close_sync()
    assert OrderJournal.replay(path).journal_id == j.journal_id
    other = OrderJournal(path.with_name("other.journal"))
    _intent(other, "s1-1")
    other.close_sync()
    assert other.journal_id != j.journal_id
    assert OrderJournal.replay(path.with_name("other.journal")).journal_id == other.journal_id


def test_advance_seq_numbers_new_records_above_a_checkpoint_that_saw_a_lost_tail(path: Path):
    j = OrderJournal(path)
    _intent(j, "s1-1")
    j.advance_seq(40)  # the checkpoint saw seq 40; the file lost 2..40
    _intent(j, "s1-2")
    j.close_sync()
    assert [r["seq"] for r in _lines(path)] == [0, 1, 41]
    assert OrderJournal.replay(path).last_seq == 41


def test_a_header_anywhere_but_the_first_line_is_refused(path: Path):
    j = OrderJournal(path)
    _intent(j, "s1-1")
    j.close_sync()
    first = path.read_bytes().split(b"\n")[0]
    path.write_bytes(path.read_bytes() + first + b"\n")
    with pytest.raises(JournalError, match="line 3"):
        OrderJournal.replay(path)
    with pytest.raises(JournalError, match="unknown journal kind"):
        OrderJournal(path.with_name("x.journal")).record("header", "journal")


def test_replay_follows_an_order_through_its_life(path: Path):
    j = OrderJournal(path)
    _intent(j, "s1-1")
    j.record("submitted", "s1-1", broker_order_id="B1")
    j.record("ack", "s1-1", broker_order_id="B1")
    j.record(
        "fill",
        "s1-1",
        fill_id="f1",
        amount=Decimal("4"),
        price=Decimal("50"),
        commission=Decimal("0.1"),
        dt=DT,
    )
    state = OrderJournal.replay(path)
    order = state.get("s1-1")
    assert order.status == "partially_filled" and order.filled == Decimal("4")
    assert order.remaining == Decimal("6")
    j.record(
        "fill",
        "s1-1",
        fill_id="f2",
        amount=Decimal("6"),
        price=Decimal("51"),
        commission=Decimal("0.1"),
    )
    j.close_sync()
    state = OrderJournal.replay(path)
    order = state.get("s1-1")
    assert order.status == "filled" and order.is_terminal
    assert order.broker_order_id == "B1"
    assert order.asset == AAPL and order.amount == Decimal("10")
    assert order.limit_price == Decimal("50.10") and order.tif == "day"
    assert order.average_fill_price == Decimal("50.6")
    assert set(order.fills) == {"f1", "f2"}
    assert state.in_flight() == [] and state.last_seq == 5 and state.record_count == 5


def test_a_replayed_fill_id_is_counted_once(path: Path):
    j = OrderJournal(path)
    _intent(j, "s1-1")
    for _ in range(3):
        j.record(
            "fill",
            "s1-1",
            fill_id="f1",
            amount=Decimal("4"),
            price=Decimal("50"),
            commission=Decimal("0"),
        )
    j.close_sync()
    state = OrderJournal.replay(path)
    assert state.get("s1-1").filled == Decimal("4")
    assert state.duplicate_fills == 2
    assert state.has_fill("f1") and not state.has_fill("f2")


def test_sell_fill_given_unsigned_takes_the_order_sign(path: Path):
    j = OrderJournal(path)
    _intent(j, "s1-1", amount="-5")
    j.record("fill", "s1-1", fill_id="f1", amount=Decimal("5"), price=Decimal("50"))
    j.close_sync()
    order = OrderJournal.replay(path).get("s1-1")
    assert order.filled == Decimal("-5") and order.status == "filled"


def test_in_flight_lists_every_non_terminal_order(path: Path):
    j = OrderJournal(path)
    for coid in ("a-1", "a-2", "a-3", "a-4", "a-5"):
        _intent(j, coid)
    j.record("submitted", "a-2", broker_order_id="B2")
    j.record("cancel", "a-3")
    j.record("reject", "a-4", reason="insufficient funds")
    j.record("fill", "a-5", fill_id="x", amount=Decimal("10"), price=Decimal("1"))
    j.close_sync()
    state = OrderJournal.replay(path)
    assert [o.client_order_id for o in state.in_flight()] == ["a-1", "a-2"]
    assert state.get("a-1").status == "intent_only"
    assert state.get("a-2").status == "submitted"
    assert state.get("a-3").status == "cancelled"
    assert state.get("a-4").status == "rejected"
    assert state.get("a-4").reject_reason == "insufficient funds"


def test_cancel_after_a_complete_fill_keeps_it_filled(path: Path):
    j = OrderJournal(path)
    _intent(j, "a-1")
    j.record("fill", "a-1", fill_id="x", amount=Decimal("10"), price=Decimal("1"))
    j.record("cancel", "a-1")
    j.close_sync()
    assert OrderJournal.replay(path).get("a-1").status == "filled"


def test_resolved_records_the_crash_outcome_and_may_set_status(path: Path):
    j = OrderJournal(path)
    _intent(j, "a-1")
    j.record("resolved", "a-1", outcome="not_at_broker", status="rejected")
    j.close_sync()
    order = OrderJournal.replay(path).get("a-1")
    assert order.status == "rejected"
    assert order.resolution["outcome"] == "not_at_broker"


def test_adjust_records_are_collected_for_the_engine(path: Path):
    j = OrderJournal(path)
    j.record("adjust", "reconcile", asset=BTC, old_amount=Decimal("1"), new_amount=Decimal("0.9"))
    j.close_sync()
    state = OrderJournal.replay(path)
    assert state.orders == {}
    assert state.adjustments[0]["new_amount"] == "0.9"


def test_events_without_intent_are_kept_and_flagged(path: Path):
    j = OrderJournal(path)
    j.record("ack", "ghost", broker_order_id="B9")
    _intent(j, "dup")
    _intent(j, "dup", amount="99")
    j.close_sync()
    state = OrderJournal.replay(path)
    assert state.get("ghost").broker_order_id == "B9"
    assert state.get("dup").amount == Decimal("10")  # the second intent is ignored
    assert len(state.anomalies) == 2
    assert "without a prior intent" in state.anomalies[0]


def test_max_sequence_for_continues_a_session_numbering(path: Path):
    j = OrderJournal(path)
    for coid in ("s1-1", "s1-41", "s1-7", "s12-99", "s1-x", "other-500", "s1_3"):
        _intent(j, coid)
    j.close_sync()
    state = OrderJournal.replay(path)
    assert state.max_sequence_for("s1") == 41
    assert state.max_sequence_for("s1-") == 41
    assert state.max_sequence_for("s12") == 99
    assert state.max_sequence_for("none") == 0


def test_replay_of_a_missing_file_is_empty(tmp_path: Path):
    state = OrderJournal.replay(tmp_path / "absent.journal")
    assert state.orders == {} and state.last_seq == 0


def test_torn_final_line_is_reported_and_ignored(path: Path):
    j = OrderJournal(path)
    _intent(j, "a-1")
    j.close_sync()
    with open(path, "ab") as fh:
        fh.write(b'{"seq":2,"ts":1.0,"kind":"sub')
    state = OrderJournal.replay(path)
    assert state.torn_tail == b'{"seq":2,"ts":1.0,"kind":"sub'
    assert state.get("a-1").status == "intent_only" and state.last_seq == 1


def test_reopening_cuts_a_torn_tail_so_new_lines_start_clean(path: Path):
    j = OrderJournal(path)
    _intent(j, "a-1")
    j.close_sync()
    with open(path, "ab") as fh:
        fh.write(b'{"seq":2,"ki')
    j2 = OrderJournal(path)
    j2.record("submitted", "a-1", broker_order_id="B1")
    j2.close_sync()
    state = OrderJournal.replay(path)
    assert state.torn_tail is None
    assert state.get("a-1").status == "submitted" and state.last_seq == 2
    saved = [p for p in path.parent.iterdir() if ".torn-" in p.name]
    assert len(saved) == 1 and saved[0].read_bytes() == b'{"seq":2,"ki'


def test_a_complete_last_record_missing_only_its_newline_is_kept(path: Path):
    j = OrderJournal(path)
    _intent(j, "a-1")
    j.close_sync()
    with open(path, "ab") as fh:
        fh.write(b'{"seq":2,"ts":1.0,"kind":"cancel","client_order_id":"a-1"}')
    assert OrderJournal.replay(path).get("a-1").status == "cancelled"
    j2 = OrderJournal(path)
    assert j2.last_seq == 2
    j2.record("ack", "a-1")
    j2.close_sync()
    assert OrderJournal.replay(path).last_seq == 3


def test_corruption_in_the_middle_raises_with_the_line_number(path: Path):
    j = OrderJournal(path)
    _intent(j, "a-1")
    _intent(j, "a-2")
    j.close_sync()
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"{garbage\n" + lines[1])
    with pytest.raises(JournalError, match="line 2"):
        OrderJournal.replay(path)


def test_non_increasing_seq_raises(path: Path):
    path.write_bytes(
        b'{"seq":2,"ts":1,"kind":"ack","client_order_id":"a"}\n'
        b'{"seq":2,"ts":1,"kind":"ack","client_order_id":"a"}\n'
    )
    with pytest.raises(JournalError, match="line 2 has seq 2"):
        OrderJournal.replay(path)


def test_a_line_that_is_json_but_not_a_record_raises(path: Path):
    path.write_bytes(b'{"seq":1,"kind":"teleport","client_order_id":"a"}\n{"seq":2}\n')
    with pytest.raises(JournalError, match="line 1"):
        OrderJournal.replay(path)


@pytest.mark.parametrize(
    "kind,coid,fields,fragment",
    [
        ("teleport", "a", {}, "unknown journal kind"),
        ("intent", "", {}, "client_order_id"),
        ("intent", "a", {"seq": 5}, "reserved"),
        ("intent", "a", {"blob": object()}, "cannot journal"),
        ("fill", "a", {"amount": Decimal("NaN")}, "not finite"),
    ],
)
def test_bad_records_are_refused_and_nothing_is_written(path, kind, coid, fields, fragment):
    j = OrderJournal(path)
    with pytest.raises(JournalError, match=fragment):
        j.record(kind, coid, **fields)
    assert path.read_bytes() == b"" and j.last_seq == 0
    j.close_sync()


def test_failed_write_refuses_the_order_and_leaves_no_partial_line(path, monkeypatch):
    j = OrderJournal(path)
    _intent(j, "a-1")
    real_write = os.write

    def half_then_fail(fd, data):
        real_write(fd, bytes(data[:10]))
        return 10

    monkeypatch.setattr(os, "write", half_then_fail)
    with pytest.raises(JournalError, match="must not be sent"):
        _intent(j, "a-2")

    def no_space(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", no_space)
    with pytest.raises(JournalError):
        _intent(j, "a-3")
    monkeypatch.undo()
    _intent(j, "a-4")
    j.close_sync()
    state = OrderJournal.replay(path)
    assert list(state.orders) == ["a-1", "a-4"]
    assert state.last_seq == 2


@pytest.mark.parametrize("interval", [0, -1, 61, "fast", True])
def test_bad_fsync_interval_is_refused(path, interval):
    with pytest.raises(JournalError):
        OrderJournal(path, fsync_interval_seconds=interval)


def test_unopenable_path_raises_journal_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError, match="cannot open"):
        OrderJournal(blocker / "s.journal")


async def test_group_commit_fsyncs_in_the_background(path: Path, monkeypatch):
    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    j = OrderJournal(path, fsync_interval_seconds=0.01)
    await j.start()
    for i in range(5):
        _intent(j, f"a-{i}")
    assert calls == []  # record() itself never fsyncs
    for _ in range(200):  # bounded wait for the background task
        if j.synced_seq == 5:
            break
        await asyncio.sleep(0.01)
    assert j.synced_seq == 5
    batched = len(calls)
    assert 1 <= batched < 5  # five records, fewer fsyncs
    for _ in range(5):
        await asyncio.sleep(0.02)
    assert len(calls) == batched  # nothing new written: no more fsyncs
    await j.close()
    await j.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        _intent(j, "late")


async def test_close_fsyncs_what_is_left(path: Path):
    j = OrderJournal(path, fsync_interval_seconds=60)
    await j.start()
    _intent(j, "a-1")
    await j.close()
    assert j.synced_seq == 1


async def test_failed_fsync_blocks_further_orders(path: Path, monkeypatch):
    j = OrderJournal(path)
    _intent(j, "a-1")

    def eio(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", eio)
    with pytest.raises(JournalError, match="fsync"):
        await j.sync()
    monkeypatch.undo()
    with pytest.raises(JournalError, match="durability is unknown"):
        _intent(j, "a-2")
    j.close_sync()


def test_flush_sync_marks_everything_synced(path: Path):
    j = OrderJournal(path)
    _intent(j, "a-1")
    j.flush_sync()
    assert j.synced_seq == 1
    j.close_sync()


async def test_replay_async_matches_replay(path: Path):
    j = OrderJournal(path)
    _intent(j, "a-1", asset=BTC, amount="0.015")
    j.close_sync()
    state = await OrderJournal.replay_async(path)
    assert state.get("a-1").asset == BTC and state.get("a-1").amount == Decimal("0.015")
