"""A paper replay's ``bar`` progress records: written after bars that changed something
outside the strategy (not after every bar, which cost most of a replay's time), and a
restart that runs the unrecorded bars again reaches the same state and sends nothing twice."""

from __future__ import annotations

import json

from rustybt.algorithm import TradingAlgorithm
from rustybt.live import engine as engine_mod
from rustybt.live.journal import OrderJournal, journal_path
from rustybt.live.state_manager import StateManager
from tests.live.test_engine_recovery import assert_matches_venue, make_engine, run, venue


class EveryFifty(TradingAlgorithm):
    """Counts bars; on every 50th buys or sells 1 JPM (quiet bars in between)."""

    def initialize(self):
        self.a = self.symbol("JPM")
        self.bars = 0
        self.seen: list[int] = []

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars % 7 == 0:
            self.seen.append(self.bars)
        if self.bars % 50 == 0:
            self.order(self.a, 1 if (self.bars // 50) % 2 else -1)


def _records(state_dir, kind):
    path = journal_path(state_dir / "journal", "EveryFifty")
    return [r for r in OrderJournal.replay(path, keep_records=True).records if r["kind"] == kind]


async def test_a_replay_records_progress_after_bars_that_journalled_something_not_every_bar(
    tmp_path,
):
    state = tmp_path / "state"
    eng = make_engine(EveryFifty(), venue(tmp_path / "venue.json"), state)
    await run(eng, events=260)
    bars = _records(state, "bar")
    others = [r for r in _records(state, "intent")]
    assert len(others) == 5  # bars 50, 100, ..., 250
    # Each order journals on its bar and fills on later ones: a handful of records per
    # order, far fewer than one per bar (it was 260 before).
    assert 5 <= len(bars) <= 5 * 6
    # Every intent is followed by a progress record for the bar that sent it.
    for intent in others:
        assert any(b["seq"] > intent["seq"] for b in bars)


async def test_progress_is_still_recorded_periodically_over_quiet_bars(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_mod, "_BAR_RECORD_EVERY", 20)
    state = tmp_path / "state"
    eng = make_engine(EveryFifty(), venue(tmp_path / "venue.json"), state)
    await run(eng, events=45)  # no order yet: the first bar, every 20th, the clean stop
    assert [b["state"]["bars"] for b in _records(state, "bar")] == [1, 21, 41, 45]


async def test_a_restart_runs_unrecorded_quiet_bars_again_to_the_same_state(tmp_path):
    # Reference: an uninterrupted run of 150 bars.
    ref = make_engine(EveryFifty(), venue(tmp_path / "ref.json"), tmp_path / "ref")
    await run(ref, events=150)

    state = tmp_path / "state"
    first = make_engine(EveryFifty(), venue(tmp_path / "venue.json"), state)
    await run(first, events=130)
    submitted = list(first.broker.submissions)
    # A crash long before the end: only the start-up checkpoint survives, so the restart
    # resumes from the last progress record (bar 100-something) and replays quiet bars.
    files = StateManager(state).list_checkpoints("EveryFifty")
    for f in files[:-1]:
        f.unlink()
    # ...and killed before its clean stop: the stop's own progress record never written.
    jpath = journal_path(state / "journal", "EveryFifty")
    lines = jpath.read_bytes().splitlines(keepends=True)
    stop = json.loads(lines[-1])
    assert stop["kind"] == "bar" and stop["state"]["bars"] == 130
    jpath.write_bytes(b"".join(lines[:-1]))
    last_recorded = _records(state, "bar")[-1]["state"]["bars"]
    assert 100 <= last_recorded < 130

    broker = venue(tmp_path / "venue.json")
    second = make_engine(EveryFifty(), broker, state)
    await run(second, events=150 - last_recorded)
    assert second.strategy.bars == ref.strategy.bars == 150
    assert second.strategy.seen == ref.strategy.seen
    assert_matches_venue(second, broker)
    # Nothing sent before the crash was sent again: the restart sent only bar 150's order.
    again = broker.submissions[len(submitted) :]
    assert len(again) == 1 and second.session_id in again[0]
