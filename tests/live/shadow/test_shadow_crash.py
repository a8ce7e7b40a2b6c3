"""The shadow after a real crash: ``rustybt live --shadow`` SIGKILLed between checkpoints.

The shadow's state rides in the live checkpoint, the live replay resumes after the last
bar its journal recorded; the bars in between must be replayed through the shadow and
compared with the live orders the journal holds, so a crashed session reports exactly
what an uninterrupted one does.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.live.live_proc import Session, kill

# Fixed sizes on two assets (JPM every 15 bars, META every 15 bars offset by 7): nothing
# depends on fill timing, so the shadow must agree on every signal bar.
ALGO = """
from rustybt.algorithm import TradingAlgorithm


class CrashFlip(TradingAlgorithm):
    def initialize(self):
        self.a = self.symbol("JPM")
        self.b = self.symbol("META")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars % 15 == 0:
            self.order(self.a, 3 if (self.bars // 15) % 2 else -3)
        if self.bars % 15 == 7:
            self.order(self.b, 2 if (self.bars // 15) % 2 else -2)
"""


def _session(root: Path) -> Session:
    # No periodic checkpoint during the run: only the one written at startup, so a kill
    # leaves every bar traded so far between the checkpoint and the resume point.
    s = Session(root, speed="4000x", checkpoint_interval=600)
    s.algo.write_text(ALGO)
    return s


def _report(out: Path) -> dict:
    return json.loads((out / "shadow_report.json").read_text())


def test_bars_between_the_checkpoint_and_a_sigkill_are_replayed_and_compared(tmp_path):
    whole = _session(tmp_path / "whole")
    assert whole.run("--shadow", "-o", str(tmp_path / "whole_out"), timeout=120) == 0
    expected = _report(tmp_path / "whole_out")
    assert expected["signal_bars"] > 20 and expected["alignment_rate"] == "1"

    crashed = _session(tmp_path / "crashed")
    proc = crashed.start("--shadow")
    crashed.wait_for_records(proc, 150)  # ~100 bars traded, a dozen orders
    assert kill(proc), "the session ended before it could be killed"
    assert crashed.run("--shadow", "-o", str(tmp_path / "crashed_out"), timeout=120) == 0
    got = _report(tmp_path / "crashed_out")

    [gap] = got["restarts"]
    assert gap["after"] is None  # the startup checkpoint: before the first bar
    assert gap["bars_replayed"] == gap["bars_compared"] > 50
    assert gap["live_orders"] > 3 and gap["live_orders_not_compared"] == 0
    # Every bar compared once, every signal bar aligned: the same as without the crash.
    for key in ("bars_compared", "signal_bars", "aligned_bars", "alignment_rate", "misaligned"):
        assert got[key] == expected[key], key
    assert "Shadow after restart" in crashed.output()
