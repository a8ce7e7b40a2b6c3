"""Smoke tests of the live-engine benchmarks: each ``run(quick=True)`` on tiny sizes.

They keep ``benchmarks/bench_*.py`` from rotting as the engine changes. No timing
assertions: only that every benchmark runs the real engine end to end and returns the
shape ``benchmarks/run_all.py`` expects (rows/markdown, raw numbers, the target keys).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from benchmarks import (
    bench_checkpoint,
    bench_journal,
    bench_live,
    bench_reconcile,
    bench_restart,
    bench_risk_gate,
    bench_soak,
    run_all,
)


@pytest.fixture
def bench_dir(tmp_path: Path, _isolated_root: Path) -> Path:
    """A bench dir whose demo bundle is copied from the test session's template."""
    src = _isolated_root / "data" / "bundles" / "demo"
    shutil.copytree(src, tmp_path / "live-root" / "data" / "bundles" / "demo")
    return tmp_path


def test_live_section_runs_replay_and_push_and_reports_the_target_keys(bench_dir: Path) -> None:
    ctx = run_all.Context(quick=True, runs=1, bench_dir=bench_dir, log=lambda _msg: None)
    res = run_all.module_section("bench_live", "Live engine")(ctx)
    assert "error" not in res.raw, res.markdown
    modes = {(s["mode"], s["config"].rsplit(", ", 1)[0]) for s in res.raw["summaries"]}
    assert ("replay", "no breakers, audit off") in modes
    assert ("push batch=1", "default breakers, audit on") in modes
    assert ("push batch=100", "default breakers, audit on") in modes
    # Each configuration says which event loop it ran on; the stock loop is always shown.
    loops = {s["config"].rsplit(", ", 1)[1] for s in res.raw["summaries"]}
    assert "asyncio" in loops and loops <= {"asyncio", "uvloop"}
    for s in res.raw["summaries"]:
        assert s["events"] == 2_000  # bounded by the quick sizes
        assert s["orders"] == 2_000 // bench_live.ORDER_EVERY
        assert s["latency_samples"] == s["orders"]  # one tick-to-submit sample per order
        assert s["events_per_s"] > 0 and s["p99_us"] > 0
    assert res.raw["events_per_s"] > 0 and res.raw["tick_to_submit_p99_us"] > 0
    assert res.raw["profile_replay"] and res.raw["profile_push"]
    ctx.results["live"] = res
    assert "live engine throughput" in run_all.targets_markdown(ctx)
    assert "not measured" not in run_all.targets_markdown(ctx).split("live engine")[1]


def test_risk_gate_bench_checks_empty_and_full_gates_with_10_and_100_positions() -> None:
    out = bench_risk_gate.run(quick=True)
    gates = {(r["positions"], r["gate"]) for r in out["rows"]}
    assert gates >= {(10, "empty"), (10, "full"), (100, "empty"), (100, "full")}
    assert all(r["open orders"] == 50 for r in out["rows"])
    assert out["raw"]["risk_gate_added_us_max"] > 0


def test_reconcile_bench_gets_clean_reports_for_each_size() -> None:
    out = bench_reconcile.run(quick=True)
    assert [r["positions"] for r in out["rows"]] == list(bench_reconcile.QUICK_SIZES)
    assert all(r["reconcile_all ms (median)"] > 0 for r in out["rows"])


def test_restart_bench_restores_after_a_clean_stop_and_after_a_crash(bench_dir: Path) -> None:
    out = bench_restart.run(quick=True, bench_dir=bench_dir)
    by = {r["scenario"]: r for r in out["rows"]}
    assert set(by) == {"clean", "crash"}
    n = bench_restart.QUICK_SIZES[0]
    for row in by.values():
        assert row["orders placed before restart"] == n
        assert row["run → ready s (median)"] > 0
        assert row["reconciliation"] == "ok"
    # the crash restart rebuilt every journaled order (plus the one placed once trading)
    assert by["crash"]["orders known after restart"] >= n


def test_soak_bench_samples_rss_and_lists_what_grows() -> None:
    out = bench_soak.run(quick=True, events=20_000)
    raw = out["raw"]
    assert raw["events"] == 20_000
    assert len(out["rows"]) == 10
    assert all(not math.isnan(r["RSS MB"]) and r["RSS MB"] > 0 for r in out["rows"])
    assert raw["containers"]["order_manager.orders"] == raw["orders"] == 2


def test_checkpoint_and_journal_benches_return_rows() -> None:
    cp = bench_checkpoint.run(quick=True)
    assert [r["positions + orders"] for r in cp["rows"]] == ["10 + 10", "100 + 100"]
    jr = bench_journal.run(quick=True)
    assert [r["measure"] for r in jr["rows"]] == ["record intent", "record fill"]


def test_run_all_lists_the_live_sections() -> None:
    for name in ("live", "risk_gate", "reconcile", "restart", "soak", "checkpoint", "journal"):
        assert name in run_all.SECTION_NAMES


def test_streaming_section_parses_every_venue_and_reports_a_flat_soak() -> None:
    from benchmarks import bench_streaming

    out = bench_streaming.run(quick=True)
    assert {r["venue"] for r in out["raw"]["parse"]} == {"binance", "bybit", "hyperliquid"}
    assert all(r["frames/s"] > 0 for r in out["raw"]["parse"])
    assert out["raw"]["bars"]["bars"] >= 3
    assert out["raw"]["soak"]["bars_emitted"] == 12
    assert out["raw"]["ib_rate"] > 0 and out["raw"]["ib_bars"]["bars"] >= 2
    assert len(out["rows"]) == 8 and out["notes"]
