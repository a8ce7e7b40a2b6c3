"""`rustybt live --dashboard`, `rustybt live token`, `rustybt report`: real subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUSTYBT = str(Path(sys.executable).parent / "rustybt")
QUICKSTART = str(Path("examples/quickstart.py").resolve())
DAY = ["--start", "2024-01-03", "--end", "2024-01-03"]


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([RUSTYBT, *args], capture_output=True, text=True, timeout=timeout)


def test_dashboard_prints_its_url_and_token_file_but_never_the_token(tmp_path):
    out = _run(
        "live",
        "-f",
        QUICKSTART,
        "--broker",
        "paper",
        "--bundle",
        "demo",
        *DAY,
        "--dashboard",
        "--dashboard-port",
        "0",
        "--state-dir",
        str(tmp_path),
        "--no-progress",
    )
    assert out.returncode == 0, out.stderr
    token_file = tmp_path / "console.token"
    assert "console: http://127.0.0.1:" in out.stderr and str(token_file) in out.stderr
    token = token_file.read_text().strip()
    assert token not in out.stdout + out.stderr
    shown = _run("live", "token", "--state-dir", str(tmp_path))
    assert shown.returncode == 0 and shown.stdout.strip() == token


def test_binding_the_dashboard_beyond_loopback_needs_the_flag(tmp_path):
    out = _run(
        "live",
        "-f",
        QUICKSTART,
        "--broker",
        "paper",
        "--bundle",
        "demo",
        *DAY,
        "--dashboard",
        "--dashboard-host",
        "0.0.0.0",
        "--state-dir",
        str(tmp_path),
    )
    assert out.returncode == 2
    assert "--dashboard-allow-remote" in out.stderr and "Traceback" not in out.stderr


def test_bad_alerts_table_is_refused_before_any_work(tmp_path):
    config = tmp_path / "live.toml"
    config.write_text(
        f'[live]\nalgofile = "{QUICKSTART}"\nbroker = "paper"\n'
        '[live.alerts]\nwebhook_urls = ["ftp://nope"]\n'
    )
    out = _run("live", "--config", str(config), "--state-dir", str(tmp_path))
    assert out.returncode == 2 and "webhook_urls" in out.stderr


def test_run_writes_a_report_and_report_rebuilds_it(tmp_path):
    out_dir = tmp_path / "results"
    out = _run(
        "run", "-f", QUICKSTART, "--bundle", "demo", *DAY, "-o", str(out_dir), "--no-progress"
    )
    assert out.returncode == 0, out.stderr
    page = out_dir / "report.html"
    assert page.exists() and "Max drawdown" in page.read_text()
    page.unlink()
    again = _run("report", str(out_dir))
    assert again.returncode == 0 and page.exists()
    missing = _run("report", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "results folder" in missing.stderr


def test_live_results_get_a_report_with_the_breaker_trips(tmp_path):
    from rustybt.metrics.report import write_breaker_events

    out_dir = tmp_path / "session"
    out = _run(
        "live",
        "-f",
        QUICKSTART,
        "--broker",
        "paper",
        "--bundle",
        "demo",
        *DAY,
        "-o",
        str(out_dir),
        "--state-dir",
        str(tmp_path / "state"),
        "--no-progress",
    )
    assert out.returncode == 0, out.stderr
    page = out_dir / "report.html"
    assert page.exists() and "live session" in page.read_text()
    assert (out_dir / "breaker_events.json").read_text().strip() == "[]"
    audit = tmp_path / "audit.jsonl"
    audit.write_text(
        '{"event": "circuit_breakers_tripped", "timestamp": "2024-01-03T15:00:00Z", '
        '"breaker_types": ["drawdown"], "reasons": ["10% from peak"]}\n{"torn'
    )
    write_breaker_events(out_dir, audit)
    from rustybt.metrics.report import write_report

    text = write_report(out_dir).read_text()
    assert "drawdown" in text and "10% from peak" in text
