"""A paper replay's ``bar`` progress records: one after every bar (a restart resumes after
the last bar processed, and no fill is shown to bars before it), carrying only the
strategy variables that changed (full state after start and after each checkpoint); a
restart folds them back to exactly the variables of the last bar."""

from __future__ import annotations

from decimal import Decimal

from rustybt.algorithm import TradingAlgorithm
from rustybt.live.journal import OrderJournal, journal_path
from rustybt.live.state_delta import StateDeltaEncoder, fold_bar_record
from rustybt.live.state_manager import StateManager
from tests.live.test_engine_recovery import assert_matches_venue, make_engine, run, venue


class EveryFifty(TradingAlgorithm):
    """Counts bars; keeps a list it changes in place; trades 1 JPM every 50th bar."""

    def initialize(self):
        self.a = self.symbol("JPM")
        self.bars = 0
        self.seen: list[int] = []
        self.note = "start"

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars % 7 == 0:
            self.seen.append(self.bars)
        if self.bars == 60:
            del self.note
        if self.bars % 50 == 0:
            self.order(self.a, 1 if (self.bars // 50) % 2 else -1)


def _bar_records(state_dir):
    path = journal_path(state_dir / "journal", "EveryFifty")
    return [r for r in OrderJournal.replay(path, keep_records=True).records if r["kind"] == "bar"]


async def test_every_bar_is_recorded_with_only_the_variables_that_changed(tmp_path):
    state = tmp_path / "state"
    eng = make_engine(EveryFifty(), venue(tmp_path / "venue.json"), state)
    await run(eng, events=70)
    bars = _bar_records(state)
    assert len(bars) >= 70  # one per bar (a checkpoint makes the next one full again)
    assert "state" in bars[0] and bars[0]["state"]["note"] == "start"
    deltas = [b for b in bars if "state" not in b]
    assert deltas and all(set(b.get("delta", {})) <= {"bars", "seen"} for b in deltas)
    assert any(b.get("removed") == ["note"] for b in deltas)  # bar 60 deleted it
    assert all("a" not in b.get("delta", {}) for b in deltas)  # the asset never changed
    folded = OrderJournal.replay(journal_path(state / "journal", "EveryFifty")).bar_state
    assert folded["bars"] == 70 and "note" not in folded
    assert folded["seen"] == list(range(7, 71, 7))


def test_decimals_keep_their_text_and_lists_changed_in_place_are_seen():
    enc = StateDeltaEncoder()
    items: list[int] = []
    assert "state" in enc.fields({"x": Decimal("1.0"), "items": items})
    assert enc.fields({"x": Decimal("1.0"), "items": items}) == {}
    out = enc.fields({"x": Decimal("1.00"), "items": items})
    assert out == {"delta": {"x": {"$decimal": "1.00"}}}
    items.append(3)
    assert enc.fields({"x": Decimal("1.00"), "items": items}) == {"delta": {"items": [3]}}
    # A chain folds back; a delta without a full record before it is unknown.
    acc = fold_bar_record(None, {"state": {"x": 1, "y": 2}})
    acc = fold_bar_record(acc, {"delta": {"x": 5}, "removed": ["y"]})
    assert acc == {"x": 5}
    assert fold_bar_record(None, {"delta": {"x": 5}}) is None


async def test_a_restart_from_an_old_checkpoint_resumes_with_the_last_bars_variables(tmp_path):
    ref = make_engine(EveryFifty(), venue(tmp_path / "ref.json"), tmp_path / "ref")
    await run(ref, events=150)

    state = tmp_path / "state"
    first = make_engine(EveryFifty(), venue(tmp_path / "venue.json"), state)
    await run(first, events=130)
    submitted = list(first.broker.submissions)
    # A crash long before the end: only the start-up checkpoint survives, so the
    # variables come from the journal's chain of full and delta records.
    files = StateManager(state).list_checkpoints("EveryFifty")
    for f in files[:-1]:
        f.unlink()

    broker = venue(tmp_path / "venue.json")
    second = make_engine(EveryFifty(), broker, state)
    await run(second, events=20)
    assert second.strategy.bars == ref.strategy.bars == 150
    assert second.strategy.seen == ref.strategy.seen
    assert_matches_venue(second, broker)
    again = broker.submissions[len(submitted) :]
    assert len(again) == 1 and second.session_id in again[0]  # only bar 150's order
