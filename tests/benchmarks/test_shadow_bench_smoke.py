"""Smoke test of ``benchmarks/bench_shadow.py`` on a tiny replay (no timing assertions)."""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks import bench_shadow


def test_shadow_bench_runs_off_on_and_noop_sessions_and_reports_the_ratio(
    tmp_path: Path, _isolated_root: Path
) -> None:
    src = _isolated_root / "data" / "bundles" / "demo"
    shutil.copytree(src, tmp_path / "live-root" / "data" / "bundles" / "demo")
    out = bench_shadow.run(quick=True, bench_dir=tmp_path, events=300)
    rows = {r["shadow"]: r for r in out["raw"]["rows"]}
    assert set(rows) == {"off", "on", "off, no-op strategy"}
    assert rows["off"]["events"] == rows["on"]["events"] == 300
    assert rows["off, no-op strategy"]["events"] == 300
    assert rows["off, no-op strategy"]["orders"] == 0
    assert rows["off"]["orders"] == rows["on"]["orders"] == 3  # same live orders either way
    assert out["raw"]["events_per_s_ratio"] > 0
    assert out["raw"]["alignment_rate"] == 1.0
    assert "beyond the strategy's own cost" in out["markdown"]
    assert "strategy_cost_pct" in out["raw"]
