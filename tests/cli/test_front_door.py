"""The front door's error path, as a matrix: each user mistake, failure and interruption of
`rustybt run`, `rustybt live` and `rustybt ingest` gives its exit code and one `error:` line
(never a traceback on screen). Signals are sent to real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rustybt import __version__
from rustybt.cli.main import app
from rustybt.data.bundles import list_bundles
from rustybt.data.ingest import ingest

RUSTYBT = str(Path(sys.executable).parent / "rustybt")
QUICKSTART = str(Path("examples/quickstart.py").resolve())
ONE_DAY = ["--start", "2024-01-03", "--end", "2024-01-03"]
runner = CliRunner()

BOOM = """
from rustybt.algorithm import TradingAlgorithm


class Boom(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")

    def handle_data(self, context, data):
        ratio = 1 / 0
        self.order(self.asset, ratio)
"""

# Writes a marker once running, then is slow per bar, so a signal lands mid-run.
SLOW = """
import time
from pathlib import Path

from rustybt.algorithm import TradingAlgorithm


class Slow(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")

    def handle_data(self, context, data):
        Path(MARKER).touch()
        time.sleep(0.02)
"""


def one_error(res, code: int, *fragments: str) -> str:
    """The run exited ``code`` with exactly one ``error:`` line holding every fragment."""
    assert res.exit_code == code, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, res.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in res.output
    return lines[0]


def live(*args: str):
    return runner.invoke(app, ["live", "-f", QUICKSTART, "--no-progress", *args])


def backtest(*args: str, algo: str = QUICKSTART):
    return runner.invoke(app, ["run", "-f", algo, "--no-progress", *args])


@pytest.fixture
def daily_bundle(tmp_path: Path) -> str:
    csv = tmp_path / "DLY.csv"
    rows = [f"DLY,2024-01-{d:02d},10,11,9,10,1000" for d in range(2, 12)]
    csv.write_text("symbol,dt,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    ingest("dailyonly", [csv], frequency="daily")
    return "dailyonly"


# --- version ------------------------------------------------------------------------------
def test_version_prints_the_package_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"rustybt {__version__}"


# --- live: options, config values, bundle and dates ------------------------------------
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--max-bars", "ten"], ["--max-bars 'ten' is not a whole number"]),
        (["--max-bars", "-1"], ["--max-bars -1 must be 1 or more"]),
        (["--max-bars", "0"], ["--max-bars 0 must be 1 or more"]),
        (["--seed", "x"], ["--seed 'x' is not a whole number"]),
        (["--checkpoint-interval", "0"], ["--checkpoint-interval '0' must be a positive"]),
        (["--starting-cash", "-5"], ["--starting-cash '-5' must be > 0"]),
        (["--speed", "warp"], ["speed='warp' is not valid"]),
        (["--start", "2024-13-45"], ["--start '2024-13-45' is not a date; use YYYY-MM-DD"]),
        (["--bundle", "nosuch"], ["no bundle named 'nosuch'", "ingest('nosuch', [paths])"]),
        (["--paper-state", "/"], ["--paper-state / is a folder"]),
        (["--reconciliation", "yolo"], ["reconciliation 'yolo' is not one of"]),
    ],
)
def test_live_bad_option_is_one_error_line_and_exit_2(args, fragments):
    one_error(live(*args), 2, *fragments)


def test_live_state_dir_that_cannot_be_written_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    line = one_error(live("--state-dir", str(blocker / "state")), 2, "--state-dir")
    assert "not writable" in line
    one_error(live("--state-dir", str(blocker)), 2, "is a file, not a folder")


def test_live_toml_values_are_checked_with_file_and_key(tmp_path):
    cfg = tmp_path / "live.toml"
    cfg.write_text(f'[live]\nalgofile = "{QUICKSTART}"\nmax_bars = "ten"\n')
    one_error(runner.invoke(app, ["live", "--config", str(cfg)]), 2, "live.toml: max_bars 'ten'")
    cfg.write_text(f'[live]\nalgofile = "{QUICKSTART}"\nvolume_limit_pct = "2"\n')
    one_error(runner.invoke(app, ["live", "--config", str(cfg)]), 2, "volume_limit_pct '2'")
    cfg.write_text(f'[live]\nalgofile = "{QUICKSTART}"\nallow_short = "maybe"\n')
    one_error(runner.invoke(app, ["live", "--config", str(cfg)]), 2, "is not true or false")
    cfg.write_text(
        f'[live]\nalgofile = "{QUICKSTART}"\n[live.risk_limits]\nmax_leverage = "lots"\n'
    )
    one_error(runner.invoke(app, ["live", "--config", str(cfg)]), 2, "risk_limits", "lots")
    cfg.write_text("[live\nalgofile = 1\n")
    one_error(runner.invoke(app, ["live", "--config", str(cfg)]), 2, "is not valid TOML")


def test_live_dates_outside_the_bundle_quote_each_asset_class_range():
    res = live("--start", "2019-01-01", "--end", "2019-01-02")
    one_error(res, 2, "--start 2019-01-01 is outside bundle 'demo'", "equity 2024-01-02 14:31")
    assert "engine_failed" not in res.output and "value 0.00" not in res.output


def test_backtest_window_without_bars_of_the_strategy_assets_quotes_their_range():
    # A weekend: inside the bundle's span, but no AAPL bar in it.
    res = backtest("--start", "2024-01-06", "--end", "2024-01-07")
    one_error(res, 2, "holds no bars of AAPL", "2024-01-02 14:31 → 2024-01-30 21:00 UTC")
    assert "2024-01-06 00:00 UTC" in res.output


def test_live_window_without_bars_of_the_strategy_assets_quotes_their_range():
    # 2024-01-31 holds crypto bars only: the equity strategy is told AAPL's own range.
    res = live("--start", "2024-01-31")
    one_error(res, 2, "holds no bars of AAPL", "2024-01-02 14:31 → 2024-01-30 21:00 UTC")
    assert "Paper session" not in res.output


def test_live_on_a_daily_only_bundle_suggests_what_live_can_do(daily_bundle):
    line = one_error(live("--bundle", daily_bundle), 2, "replays minute bars")
    assert "--frequency minute" in line and "rustybt run" in line
    assert "data_frequency=" not in line  # an option `live` does not have


def test_live_unknown_symbol_is_a_user_mistake_at_the_strategy_line(tmp_path):
    algo = tmp_path / "typo.py"
    algo.write_text(BOOM.replace('"AAPL"', '"APPL"'))
    res = runner.invoke(app, ["live", "-f", str(algo), *ONE_DAY, "--no-progress"])
    one_error(res, 2, "unknown symbol 'APPL'", "typo.py:7 in initialize")


# --- run ------------------------------------------------------------------------------------
def test_run_output_pointing_at_an_existing_file_is_refused_before_the_backtest(tmp_path):
    existing = tmp_path / "results.txt"
    existing.write_text("keep me")
    res = backtest("-o", str(existing), *ONE_DAY)
    one_error(res, 2, "is an existing file")
    assert "Backtest:" not in res.output and existing.read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--capital-base", "lots"], ["--capital-base 'lots' is not a number"]),
        (["--data-frequency", "hourly"], ["--data-frequency 'hourly' is not one of"]),
        (["--slippage-bps", "-1"], ["--slippage-bps '-1' must be >= 0"]),
        (["--start", "2024-01-10", "--end", "2024-01-05"], ["is after end"]),
        (["--end", "2030-01-01"], ["--end 2030-01-01 is outside bundle 'demo'", "crypto"]),
    ],
)
def test_run_bad_option_is_one_error_line_and_exit_2(args, fragments):
    one_error(backtest(*args), 2, *fragments)


def test_run_on_a_daily_only_bundle_names_the_option_that_works(daily_bundle):
    one_error(backtest("--bundle", daily_bundle), 2, "pass --data-frequency daily")


def test_strategy_raising_in_handle_data_is_one_line_at_its_file_and_line(tmp_path):
    algo = tmp_path / "boom.py"
    algo.write_text(BOOM)
    line = one_error(
        backtest(*ONE_DAY, algo=str(algo)),
        1,
        "the strategy raised ZeroDivisionError: division by zero at boom.py:10 in handle_data",
    )
    saved = Path(line.split("full traceback in ")[1].rstrip(")"))
    assert "ZeroDivisionError" in saved.read_text()


def test_internal_failure_is_one_line_naming_the_traceback_file(monkeypatch):
    import rustybt.backtest.runner as runner_module

    def broken(*_a, **_k):
        raise RuntimeError("simulated bug in the runner")

    monkeypatch.setattr(runner_module, "run_algorithm", broken)
    line = one_error(backtest(*ONE_DAY), 1, "internal error RuntimeError: simulated bug")
    saved = Path(line.split("full traceback in ")[1].rstrip(")"))
    assert saved.is_file() and "Traceback" in saved.read_text()


# --- ingest -----------------------------------------------------------------------------
def test_ingest_unknown_calendar_is_refused_and_nothing_is_written(tmp_path):
    csv = tmp_path / "X.csv"
    csv.write_text("symbol,dt,open,high,low,close,volume\nX,2024-01-02,1,1,1,1,1\n")
    res = runner.invoke(app, ["ingest", "--bundle", "mine", "--calendar", "NOPE", str(csv)])
    one_error(res, 2, "--calendar 'NOPE' is not a known trading calendar")
    assert "mine" not in list_bundles()
    res = runner.invoke(app, ["ingest", "--bundle", "mine", "--timezone", "Mars/Base", str(csv)])
    one_error(res, 2, "'Mars/Base' is not a time zone")


def test_ingest_refuses_an_exponent_price_as_docs_say(tmp_path):
    csv = tmp_path / "X.csv"
    csv.write_text("symbol,dt,open,high,low,close,volume\nX,2024-01-02,1e2,100,100,100,1\n")
    res = runner.invoke(app, ["ingest", "--bundle", "mine", str(csv)])
    one_error(res, 2, "line 2", "'open'", "exponent notation")


# --- interruptions (real processes, real signals) -----------------------------------------
def _spawn_slow(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    marker = tmp_path / "running"
    algo = tmp_path / "slow.py"
    algo.write_text(SLOW.replace("MARKER", repr(str(marker))))
    proc = subprocess.Popen(
        [RUSTYBT, *args[:1], "-f", str(algo), *args[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "strategy never ran"
        time.sleep(0.05)
    return proc, marker


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_backtest_says_so_and_exits_128_plus_signal(tmp_path, sig, code):
    proc, _ = _spawn_slow(tmp_path, "run", "--no-progress", *ONE_DAY)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert f"error: interrupted ({sig.name}): backtest" in err
    assert "Traceback" not in err + out


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_live_session_stops_cleanly_says_so_and_audits_it(tmp_path, sig, code):
    state = tmp_path / "state"
    proc, _ = _spawn_slow(tmp_path, "live", "--no-progress", *ONE_DAY, "--state-dir", str(state))
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert f"interrupted ({sig.name}): stopped cleanly" in err
    assert "Paper session" in out and "Traceback" not in err + out
    events = [
        json.loads(line)
        for f in sorted((state / "logs").glob("*.jsonl"))
        for line in f.read_text().splitlines()
        if line.strip()
    ]
    interrupted = [e for e in events if e["event"] == "interrupted"]
    assert interrupted and interrupted[0]["signal"] == sig.name
    assert events[-1]["event"] == "engine_stopped"


# --- retention ----------------------------------------------------------------------------
def test_live_toml_retention_keeps_only_the_newest_audit_logs(tmp_path):
    state = tmp_path / "state"
    cfg = tmp_path / "live.toml"
    cfg.write_text(
        f'[live]\nalgofile = "{QUICKSTART}"\nstate_dir = "{state}"\nmax_bars = 5\n'
        'start = "2024-01-03"\nend = "2024-01-03"\nkeep_audit_logs = 1\nkeep_old_journals = 1\n'
    )
    for _ in range(3):
        res = runner.invoke(app, ["live", "--config", str(cfg), "--no-progress"])
        assert res.exit_code == 0, res.output
    assert len(list((state / "logs").glob("MyStrategy-*.jsonl"))) == 1
    assert len(list((state / "journal").glob("MyStrategy.journal.*.old"))) <= 1
    cfg.write_text(f'[live]\nalgofile = "{QUICKSTART}"\nkeep_audit_logs = 0\n')
    one_error(runner.invoke(app, ["live", "--config", str(cfg)]), 2, "keep_audit_logs 0 must be")


def test_crash_reports_are_pruned_to_the_newest(tmp_path, monkeypatch):
    from rustybt.cli import errors

    monkeypatch.setattr(errors, "KEEP_CRASH_REPORTS", 3)
    for i in range(5):
        try:
            raise RuntimeError(f"bug {i}")
        except RuntimeError as exc:
            path = errors.write_traceback(exc)
            os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))
    reports = sorted(path.parent.glob("crash-*.txt"))
    assert len(reports) <= 3


def test_version_and_refused_options_do_not_load_the_data_stack():
    # `rustybt --version` and a refused option answer without importing polars/pandas or
    # the engine: checked by module, not by the clock.
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from rustybt.cli.main import app\n"
        "r = CliRunner().invoke(app, ['live', '-f', sys.argv[1], '--max-bars', '0'])\n"
        "assert r.exit_code == 2, r.output\n"
        "heavy = [m for m in ('polars', 'pandas', 'rustybt.live.engine') if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, QUICKSTART], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
