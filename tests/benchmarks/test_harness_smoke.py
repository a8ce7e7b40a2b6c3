"""Smoke test of the benchmark harness: tiny data, the bare loop, markdown generation.

CI never runs the benchmarks themselves; this keeps ``benchmarks/`` from rotting. No peers,
no timing assertions: only that the pieces fit together and count bars correctly.
"""

from __future__ import annotations

import csv
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from benchmarks import run_all
from benchmarks.data import MINUTES_PER_SESSION, full_sessions, generate

sys.path.insert(0, str(Path(run_all.ROOT / "benchmarks" / "peers")))
from _common import Cross  # noqa: E402


def test_generator_writes_one_csv_per_symbol_with_390_bars_per_session(tmp_path: Path) -> None:
    ds = generate(tmp_path, n_symbols=3, n_sessions=2)
    assert ds.bars == 3 * 2 * MINUTES_PER_SESSION
    assert [p.name for p in ds.paths] == ["SYM00.csv", "SYM01.csv", "SYM02.csv"]
    for path in ds.paths:
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 2 * MINUTES_PER_SESSION
        assert rows[0]["dt"] == "2024-01-02T14:31:00Z"  # bar labelled by the end of its minute
        for row in rows:
            o, h, lo, c = (Decimal(row[k]) for k in ("open", "high", "low", "close"))
            assert lo <= min(o, c) <= max(o, c) <= h
            assert lo > 0
            assert row["close"] == f"{Decimal(row['close']):.2f}"  # exact two-decimal strings


def test_generator_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", n_symbols=2, n_sessions=1, seed=7)
    b = generate(tmp_path / "b", n_symbols=2, n_sessions=1, seed=7)
    c = generate(tmp_path / "c", n_symbols=2, n_sessions=1, seed=8)
    assert a.paths[1].read_text() == b.paths[1].read_text()
    assert a.paths[1].read_text() != c.paths[1].read_text()


def test_full_sessions_skip_early_closes() -> None:
    # 2024-11-29 (day after Thanksgiving) closes at 13:00 and must be skipped.
    sessions = full_sessions(3, start="2024-11-27")
    assert [s.strftime("%Y-%m-%d") for s in sessions] == ["2024-11-27", "2024-12-02", "2024-12-03"]


def test_generator_rejects_empty_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_symbols"):
        generate(tmp_path, n_symbols=0, n_sessions=1)
    with pytest.raises(ValueError, match="n_sessions"):
        generate(tmp_path, n_symbols=1, n_sessions=0)


def test_cross_matches_a_naive_decimal_sma_comparison() -> None:
    closes = [Decimal(100) + Decimal((i * 37) % 23 - 11) / 100 for i in range(200)]
    cross = Cross(Decimal(0))
    for i, close in enumerate(closes):
        got = cross.update(close)
        if i < 29:
            assert got == 0
            continue
        fast = sum(closes[i - 9 : i + 1]) / 10
        slow = sum(closes[i - 29 : i + 1]) / 30
        assert got == (1 if fast > slow else -1 if fast < slow else 0)


def test_quick_run_of_the_bare_loop_writes_the_expected_markdown(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    code = run_all.main(
        [
            "--quick",
            "--runs",
            "1",
            "--only",
            "backtest",
            "--jobs",
            "bare-decimal,pandas-ceiling",
            "--no-install",
            "--bench-dir",
            str(tmp_path / "bench"),
            "--output",
            str(out),
        ]
    )
    assert code == 0
    text = out.read_text()
    for heading in (
        "# Performance",
        "## Machine",
        "## How to reproduce",
        "## Targets",
        "## Backtest: SMA(10)/SMA(30) cross, 2 symbols × 1 NYSE sessions × 390 minute bars",
        "### Orders and fills, order by order",
        "### Commands of this section",
    ):
        assert heading in text
    assert "(780 bars)" in text
    row = next(line for line in text.splitlines() if line.startswith("| bare-decimal (ceiling)"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[7] == "780"  # bars column
    assert int(cells[8]) > 0  # the random walk crosses at least once in 390 minutes
    assert "reference" in text
    # fills are compared order by order and classified against the data
    rows = [line for line in text.splitlines() if line.startswith("| pandas-ceiling |")]
    fills_row = rows[-1]  # the order-by-order table comes after the timing table
    cells = [c.strip() for c in fills_row.strip("|").split("|")]
    assert cells[3] == "same orders"  # exact Decimal means decide like the running sums
    assert "bar t+1 open" in cells[4]
    assert cells[1] == cells[2]  # one fill event per order (no order on the last bar here)
    assert text.index("## Backtest ratios") < text.index("## Machine")  # ratios first
    assert "Load average at start:" in text
    assert (tmp_path / "bench" / "data" / "2x1-s20240102" / "SYM01.csv").exists()
    assert list((tmp_path / "bench" / "results").glob("*.json"))


def test_measure_reports_a_failing_job_instead_of_raising(tmp_path: Path) -> None:
    m = run_all.measure([sys.executable, "-c", "import sys; sys.exit('boom')"], timeout=60)
    assert m.report is None
    assert m.error is not None and "boom" in m.error


def test_cli_rejects_unknown_job_and_zero_runs(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run_all.main(["--jobs", "nosuchjob", "--output", str(tmp_path / "x.md")])
    with pytest.raises(SystemExit):
        run_all.main(["--runs", "0", "--output", str(tmp_path / "x.md")])
    assert not (tmp_path / "x.md").exists()


def test_module_section_rows_become_a_table() -> None:
    res = run_all._coerce("t", [{"n": 10, "ms": 0.5}, {"n": 1000, "ms": 12.25}])
    assert "| n | ms |" in res.markdown
    assert "| 1,000 | 12.25 |" in res.markdown
    assert res.raw["rows"][1]["n"] == 1000


def test_sections_not_rerun_keep_the_previous_figures_marked_as_kept(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    out.write_text(
        "# Performance\n\nDate: 2026-11-01 10:00 UTC (run took 5 s).\n\n"
        "## RSS soak\n\n| rss | MiB |\n|---|---|\n| end | 123 |\n\n"
        "## Some section that no longer exists\n\nold\n"
    )
    args = ["--quick", "--runs", "1", "--only", "backtest", "--jobs", "bare-decimal"]
    args += ["--no-install", "--bench-dir", str(tmp_path / "bench"), "--output", str(out)]
    assert run_all.main(args) == 0
    text = out.read_text()
    soak = text.split("## RSS soak", 1)[1].split("\n## ", 1)[0]
    assert "Not rerun by this run; kept from the previous version of this file" in soak
    assert "| end | 123 |" in soak
    assert "no longer exists" not in text  # only known sections are carried
    # Carried again by a later run: one note, the figures unchanged.
    assert run_all.main(args) == 0
    again = out.read_text().split("## RSS soak", 1)[1].split("\n## ", 1)[0]
    assert again.count("Not rerun") == 1 and "| end | 123 |" in again
