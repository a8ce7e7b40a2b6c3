"""``rustybt live -o DIR`` writes the session's results with ``rustybt run -o DIR``'s schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl

RUSTYBT = str(Path(sys.executable).parent / "rustybt")
ONE_DAY = ["--start", "2024-01-03", "--end", "2024-01-03"]

STRATEGY = """
from decimal import Decimal
from rustybt.algorithm import TradingAlgorithm


class Rebalance(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.n = 0

    def handle_data(self, context, data):
        self.n += 1
        if self.n % 30 == 0:
            self.order_target_percent(self.asset, Decimal("0.3") if self.n % 60 else 0)
"""


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RUSTYBT, *args], capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )


def test_live_output_has_the_backtest_schema_and_the_same_rows(tmp_path):
    algo = tmp_path / "rebalance.py"
    algo.write_text(STRATEGY)
    bt, live = tmp_path / "bt", tmp_path / "live"
    res = cli("run", "-f", str(algo), "-b", "demo", *ONE_DAY, "-o", str(bt), "--no-progress")
    assert res.returncode == 0, res.stderr
    res = cli(
        "live", "-f", str(algo), "--broker", "paper", "-b", "demo", *ONE_DAY,
        "-o", str(live), "--state-dir", str(tmp_path / "state"), "--no-progress",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    for name in ("daily", "orders", "transactions"):
        a = pl.read_parquet(bt / f"{name}.parquet")
        b = pl.read_parquet(live / f"{name}.parquet")
        assert a.schema == b.schema, name
        assert a.height == b.height > 0, name
    # Same defaults in `run` and `live`: the same session, row for row (ids aside).
    assert pl.read_parquet(bt / "daily.parquet").equals(pl.read_parquet(live / "daily.parquet"))
    for name in ("orders", "transactions"):
        key = "id" if name == "orders" else "order_id"
        a = pl.read_parquet(bt / f"{name}.parquet").drop(key)
        b = pl.read_parquet(live / f"{name}.parquet").drop(key)
        assert a.equals(b), name
