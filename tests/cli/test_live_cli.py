"""`rustybt live` from the command line: paper sessions, config files, bad input, graceful
SIGTERM, and the external halt/resume/status control channel — real subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rustybt.cli.main import app
from rustybt.live.control import send_command, socket_path

RUSTYBT = str(Path(sys.executable).parent / "rustybt")
QUICKSTART = str(Path("examples/quickstart.py").resolve())
ONE_DAY = ["--start", "2024-01-03", "--end", "2024-01-03"]
runner = CliRunner()

EVERY_BAR = """
from rustybt.algorithm import TradingAlgorithm


class EveryBar(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")

    def handle_data(self, context, data):
        self.order(self.asset, 1)
"""


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RUSTYBT, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
    )


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [RUSTYBT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def wait_for(predicate, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate(timeout=5)


def audit_lines(state_dir: Path) -> list[dict]:
    out = []
    for f in sorted((state_dir / "logs").glob("*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def test_paper_session_replays_at_max_speed_and_prints_a_summary(tmp_path):
    state = tmp_path / "state"
    res = cli(
        "live", "-f", QUICKSTART, "--broker", "paper", "--bundle", "demo", "--speed", "max",
        *ONE_DAY, "--state-dir", str(state),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    for label in ("Paper session", "PnL", "Orders", "Fills", "Fees", "Max drawdown"):
        assert label in res.stdout
    assert "Market events    │ 390" in res.stdout
    # The status line (on stderr) reports progress, value, orders and fills.
    assert "100.0%" in res.stderr and "orders 2 fills 2" in res.stderr
    # Without a terminal: no "value 0.00" start line, and the final line ends with its newline.
    status = [line for line in res.stderr.splitlines() if line.startswith("100.0%")]
    assert len(status) == 1 and status[0].endswith("errors 0")
    assert "value 0.00" not in res.stderr
    assert list((state / "MyStrategy").glob("*.ckpt"))  # final checkpoint
    kinds = [e["event"] for e in audit_lines(state)]
    assert kinds[0] == "engine_starting" and kinds[-1] == "engine_stopped"


def test_config_file_runs_a_session_and_command_line_flags_win(tmp_path):
    cfg = tmp_path / "live.toml"
    cfg.write_text(
        f"""
[live]
algofile = "{QUICKSTART}"
broker = "paper"
bundle = "demo"
speed = "max"
start = "2024-01-03"
end = "2024-01-05"
starting_cash = "50000"
state_dir = "{tmp_path / "state"}"
"""
    )
    res = runner.invoke(app, ["live", "--config", str(cfg), "--max-bars", "30", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "Market events    │ 30" in res.output
    assert "Starting value   │ 50,000.00" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--broker", "ibkr"], "unknown broker 'ibkr'; available: paper"),
        (["--speed", "warp"], "speed='warp' is not valid"),
        (["--start", "2024-01-10", "--end", "2024-01-05"], "is after end"),
        (["--bundle", "nope"], "rustybt ingest"),
        (["--reconciliation", "yolo"], "reconciliation 'yolo' is not one of"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(args, message):
    res = runner.invoke(app, ["live", "-f", QUICKSTART, "--no-progress", *args])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())


def test_strategy_files_that_do_not_load_exit_2_with_file_and_reason(tmp_path):
    def flat(res):
        return " ".join(res.output.split())

    missing = runner.invoke(app, ["live", "-f", str(tmp_path / "nope.py")])
    assert missing.exit_code == 2 and "does not exist" in flat(missing)
    broken = tmp_path / "broken.py"
    broken.write_text("def initialize(context:\n    pass\n")
    res = runner.invoke(app, ["live", "-f", str(broken)])
    assert res.exit_code == 2 and "syntax error" in flat(res) and "broken.py" in flat(res)
    raising = tmp_path / "raising.py"
    raising.write_text("import not_a_module_anywhere\n")
    res = runner.invoke(app, ["live", "-f", str(raising)])
    assert res.exit_code == 2 and "failed to load" in flat(res)
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    res = runner.invoke(app, ["live", "-f", str(empty)])
    assert res.exit_code == 2 and "has no strategy" in flat(res)
    no_file = runner.invoke(app, ["live", "--broker", "paper"])
    assert no_file.exit_code == 2 and "-f algo.py" in flat(no_file)


def test_unknown_symbol_in_the_strategy_fails_the_session_with_a_clear_error(tmp_path):
    algo = tmp_path / "typo.py"
    algo.write_text(EVERY_BAR.replace('"AAPL"', '"APPL"'))
    res = runner.invoke(app, ["live", "-f", str(algo), *ONE_DAY, "--no-progress"])
    assert res.exit_code == 2  # a user mistake, as under `rustybt run`
    assert "unknown symbol 'APPL'" in " ".join(res.output.split())
    assert "typo.py:7 in initialize" in res.output and "Traceback" not in res.output


def test_unknown_config_key_is_refused_with_the_known_keys(tmp_path):
    cfg = tmp_path / "live.toml"
    cfg.write_text('[live]\nalgofile = "x.py"\nspeeed = "max"\n')
    res = runner.invoke(app, ["live", "--config", str(cfg)])
    assert res.exit_code == 2
    assert "unknown keys ['speeed']" in " ".join(res.output.split())


def test_sigterm_stops_a_running_session_gracefully_with_summary_and_checkpoint(tmp_path):
    state = tmp_path / "state"
    proc = spawn(
        "live", "-f", QUICKSTART, "--broker", "paper", "--bundle", "demo", "--speed", "60x",
        *ONE_DAY, "--state-dir", str(state), "--no-progress",
    )  # fmt: skip
    try:
        wait_for(
            lambda: (
                any(e["event"] == "engine_started" for e in audit_lines(state))
                if (state / "logs").exists()
                else False
            ),
            "engine start",
        )
    finally:
        out, err = stop(proc)
    assert proc.returncode == 143, err  # 128 + SIGTERM: interrupted, not a finished session
    assert "interrupted (SIGTERM)" in err
    assert "Paper session" in out and "PnL" in out
    assert list((state / "MyStrategy").glob("*.ckpt"))
    events = [e["event"] for e in audit_lines(state)]
    assert "checkpoint_saved" in events and events[-1] == "engine_stopped"
    market_events = [e for e in audit_lines(state) if e["event"] == "engine_stopped"][0]
    assert market_events["status"]["market_events"] < 390  # it really stopped early


def test_external_halt_and_resume_of_a_running_session(tmp_path):
    state = tmp_path / "state"
    algo = tmp_path / "every_bar.py"
    algo.write_text(EVERY_BAR)
    sock = socket_path(state / "control", "EveryBar")

    def status() -> dict:
        return asyncio.run(send_command(sock, {"cmd": "status"}, timeout=5))["status"]

    proc = spawn(
        "live", "-f", str(algo), "--broker", "paper", "--bundle", "demo", "--speed", "60x",
        *ONE_DAY, "--state-dir", str(state), "--no-progress",
    )  # fmt: skip
    ctl = ["--strategy", "EveryBar", "--state-dir", str(state)]
    try:
        wait_for(sock.exists, "control socket")
        wait_for(lambda: status()["orders_submitted"] >= 1, "first order")

        halt = cli("live", "halt", "--reason", "fat finger", "--operator", "qa", *ctl)
        assert halt.returncode == 0, halt.stderr
        assert "halted" in halt.stdout
        table = " ".join(cli("live", "status", *ctl).stdout.split())
        assert "trading │ HALTED (manual: manual halt by qa: fat finger)" in table
        st = json.loads(cli("live", "status", "--json", *ctl).stdout)
        assert st["can_trade"] is False
        assert st["circuit_breakers"]["manual"]["state"] == "manually_halted"
        submitted = st["orders_submitted"]
        seen = st["market_events"]
        wait_for(lambda: status()["market_events"] >= seen + 2, "two bars while halted")
        halted = status()
        assert halted["orders_submitted"] == submitted  # nothing new reached the broker
        assert halted["strategy_calls_skipped"] >= 2  # a halted engine runs no strategy code

        resume = cli("live", "resume", "--operator", "qa", "--reason", "checked", *ctl)
        assert resume.returncode == 0, resume.stderr
        assert status()["can_trade"] is True
        wait_for(lambda: status()["orders_submitted"] > submitted, "trading again")
    finally:
        out, err = stop(proc)
    assert proc.returncode == 143, err
    kinds = [e["event"] for e in audit_lines(state)]
    assert "circuit_breakers_tripped" in kinds and "circuit_breaker_reset" in kinds
    reset = next(e for e in audit_lines(state) if e["event"] == "circuit_breaker_reset")
    assert reset["operator"] == "qa" and reset["reason"] == "checked"  # who and why


def test_control_commands_without_a_running_engine_exit_2_with_a_hint(tmp_path):
    res = runner.invoke(
        app, ["live", "status", "--strategy", "Nobody", "--state-dir", str(tmp_path)]
    )
    assert res.exit_code == 2
    assert "no running engine" in " ".join(res.output.split())


def test_credentials_in_the_config_are_accepted_and_never_printed_or_stored(tmp_path, monkeypatch):
    key, secret = "AKIAJSECRETKEY0123456789", "s3cr3t-value-never-shown-9876"
    state = tmp_path / "state"
    # A careless strategy that puts the key into an exception message on its first bar.
    algo = tmp_path / "leaky.py"
    algo.write_text(
        EVERY_BAR.replace("class EveryBar", "import os\n\n\nclass EveryBar").replace(
            "self.order(self.asset, 1)",
            'self.order(self.asset, 1)\n        if not hasattr(self, "x"):\n'
            '            self.x = 1\n            raise RuntimeError("key " + os.environ["LEAK"])',
        )
    )
    monkeypatch.setenv("LEAK", key)
    cfg = tmp_path / "live.toml"
    cfg.write_text(
        f"""
[live]
algofile = "{algo}"
start = "2024-01-03"
end = "2024-01-03"
state_dir = "{state}"
api_key = "{key}"
api_secret = "{secret}"
"""
    )
    res = cli("live", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "RuntimeError: key ***" in res.stdout  # the leak was masked in the console log
    assert key not in res.stdout + res.stderr and secret not in res.stdout + res.stderr
    files = [p for p in state.rglob("*") if p.is_file()]
    assert "key ***" in "".join(p.read_text() for p in files if p.suffix == ".jsonl")
    assert any(p.suffix == ".ckpt" for p in files) and any(p.suffix == ".jsonl" for p in files)
    for path in files:
        data = path.read_bytes()
        assert key.encode() not in data and secret.encode() not in data, path

    bad = tmp_path / "bad.toml"
    bad.write_text(f'[live]\nalgofile = "{QUICKSTART}"\nspeed = "warp"\napi_key = "{key}"\n')
    res = cli("live", "--config", str(bad))
    assert res.returncode == 2 and key not in res.stdout + res.stderr
