"""``rustybt live --shadow``: the shadow runs beside a paper session, its report is in the
summary and saved with the results; a zipline-style script gets its own globals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RUSTYBT = str(Path(sys.executable).parent / "rustybt")
ONE_DAY = ["--start", "2024-01-03", "--end", "2024-01-03"]

# A module-level counter: if the shadow shared the live script's globals, each instance
# would see the other's increments and order on different bars.
SCRIPT = """
n = 0

def initialize(context):
    context.asset = context.symbol("AAPL")

def handle_data(context, data):
    global n
    n += 1
    if n % 30 == 0:
        context.order_target(context.asset, 10 if (n // 30) % 2 else 0)
"""


def test_live_shadow_reports_full_alignment_and_saves_the_report(tmp_path):
    algo = tmp_path / "script.py"
    algo.write_text(SCRIPT)
    out = tmp_path / "out"
    res = subprocess.run(
        [
            RUSTYBT, "live", "-f", str(algo), "--broker", "paper", "-b", "demo", *ONE_DAY,
            "--shadow", "-o", str(out), "--state-dir", str(tmp_path / "state"),
            "--no-progress",
        ],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "Shadow alignment" in res.stdout and "100.00% of 13 signal bars" in res.stdout
    report = json.loads((out / "shadow_report.json").read_text())
    assert report["alignment_rate"] == "1"
    assert report["signal_bars"] == 13 and report["misaligned"] == []
