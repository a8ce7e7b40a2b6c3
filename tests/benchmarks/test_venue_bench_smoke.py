"""Smoke tests of the venue benchmarks (tiny sizes, no timing assertions)."""

from __future__ import annotations

from benchmarks import bench_venue, run_all


def test_venue_bench_reports_ack_fill_and_stream_rows() -> None:
    out = bench_venue.run(quick=True)
    measures = [r["measure"] for r in out["rows"]]
    assert measures[0].startswith("submit → ack") and measures[1] == "fill on stream → ledger"
    assert out["rows"][0]["n"] == 50 and out["rows"][1]["n"] == 20
    assert out["raw"]["msgs_per_s"] > 0
    assert "binance" in run_all.SECTION_NAMES


def test_bybit_venue_bench_reports_ack_fill_and_stream_rows() -> None:
    from benchmarks import bench_venue_bybit

    out = bench_venue_bybit.run(quick=True)
    assert out["rows"][0]["n"] == 50 and out["rows"][1]["n"] == 20
    assert out["rows"][2]["n"] == 500 and out["raw"]["msgs_per_s"] > 0
    assert "bybit" in run_all.SECTION_NAMES


def test_ccxt_venue_bench_reports_ack_and_streamed_and_polled_fill_rows() -> None:
    from benchmarks import bench_venue_ccxt

    out = bench_venue_ccxt.run(quick=True)
    assert [r["n"] for r in out["rows"]] == [20, 3, 3]
    assert "polled every 1 s" in out["rows"][2]["measure"]
    assert "ccxt" in run_all.SECTION_NAMES


def test_hyperliquid_venue_bench_reports_ack_fill_and_stream_rows() -> None:
    from benchmarks import bench_venue_hyperliquid

    out = bench_venue_hyperliquid.run(quick=True)
    assert out["rows"][0]["n"] == 30 and out["rows"][1]["n"] == 15
    assert out["rows"][2]["n"] == 300 and out["raw"]["msgs_per_s"] > 0
    assert "hyperliquid" in run_all.SECTION_NAMES
