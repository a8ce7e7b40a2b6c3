"""`rustybt live` ends like `rustybt run`: a strategy's ``analyze`` (a method, or a
zipline script's ``analyze(context, perf)``) runs once with the session's results."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rustybt.cli.main import app

runner = CliRunner()

CLASS_STRATEGY = """
import json
from rustybt.algorithm import TradingAlgorithm


class WithAnalyze(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.n = 0

    def handle_data(self, context, data):
        self.n += 1
        if self.n == 5:
            self.order(self.asset, 3)

    def analyze(self, context, results):
        out = {{
            "rows": len(results.daily),
            "transactions": len(results.transactions),
            "final": str(results.daily[-1]["portfolio_value"]),
        }}
        open({path!r}, "w").write(json.dumps(out))
"""

ZIPLINE_SCRIPT = """
import json
from rustybt.api import order, symbol


def initialize(context):
    context.asset = symbol("AAPL")
    context.n = 0


def handle_data(context, data):
    context.n += 1
    if context.n == 5:
        order(context.asset, 3)


def analyze(context, perf):
    json.dump(
        {{"columns": sorted(perf.columns), "last": float(perf.portfolio_value.iloc[-1])}},
        open({path!r}, "w"),
    )
"""

ONE_DAY = ["--start", "2024-01-03", "--end", "2024-01-03", "--no-progress", "--speed", "max"]


def _live(tmp_path: Path, source: str, name: str) -> tuple[object, dict]:
    seen = tmp_path / "analyze.json"
    algo = tmp_path / name
    algo.write_text(source.format(path=str(seen)))
    res = runner.invoke(
        app, ["live", "-f", str(algo), *ONE_DAY, "--state-dir", str(tmp_path / "state")]
    )
    assert res.exit_code == 0, res.output
    assert seen.exists(), "analyze was not called"
    return res, json.loads(seen.read_text())


def test_a_class_strategys_analyze_gets_the_session_results(tmp_path):
    _, seen = _live(tmp_path, CLASS_STRATEGY, "with_analyze.py")
    assert seen["rows"] == 1 and seen["transactions"] == 1
    assert seen["final"] != "100000"  # the bought shares moved the value


def test_a_zipline_scripts_analyze_gets_the_zipline_shaped_frame(tmp_path):
    _, seen = _live(tmp_path, ZIPLINE_SCRIPT, "zipline_analyze.py")
    assert {"portfolio_value", "orders", "transactions"} <= set(seen["columns"])
    assert seen["last"] > 0
