"""``rustybt live --broker binance`` and ``rustybt venue serve binance``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rustybt.cli.main import _build_engine, app
from rustybt.live.models import ReconciliationStrategy

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
ALGO = str(ROOT / "examples" / "binance_fake.py")
RUSTYBT = str(Path(sys.executable).with_name("rustybt"))
CREDS = {"BINANCE_API_KEY": "fake-binance-key", "BINANCE_API_SECRET": "fake-binance-secret"}


def flat(res) -> str:
    return " ".join(res.output.split())


def test_mainnet_is_refused_in_one_line_without_live_money(monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    res = runner.invoke(app, ["live", "-f", ALGO, "--broker", "binance", "--no-progress"])
    assert res.exit_code == 2
    assert "refusing to trade real money on Binance mainnet" in flat(res)
    assert "--live-money" in flat(res)


def test_missing_credentials_name_the_variables(monkeypatch):
    for k in CREDS:
        monkeypatch.delenv(k, raising=False)
    res = runner.invoke(app, ["live", "-f", ALGO, "--broker", "binance", "--testnet"])
    assert res.exit_code == 2
    assert "BINANCE_API_KEY and BINANCE_API_SECRET" in flat(res)


def test_a_venue_url_must_be_http(monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    res = runner.invoke(
        app, ["live", "-f", ALGO, "--broker", "binance", "--venue-url", "127.0.0.1:8080"]
    )
    assert res.exit_code == 2 and "must be http://host:port" in flat(res)


def test_venue_brokers_default_to_halt_and_alert_and_venue_url_sets_both_urls(monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    opts = {"algofile": ALGO, "broker": "binance", "venue_url": "http://127.0.0.1:9"}
    engine = _build_engine(opts)
    assert engine.reconciliation_strategy is ReconciliationStrategy.HALT_AND_ALERT
    assert engine.broker.base_url == "http://127.0.0.1:9"
    assert engine.broker.ws_url == "ws://127.0.0.1:9"
    live_money = _build_engine({"algofile": ALGO, "broker": "binance", "live_money": True})
    assert live_money.broker.testnet is False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fake(port: int, *extra: str, venue: str = "binance") -> subprocess.Popen:
    proc = subprocess.Popen(
        [RUSTYBT, "venue", "serve", venue, "--port", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read()) from None
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("fake venue did not start")


@pytest.mark.parametrize("market_type", ["spot", "futures"])
def test_the_readme_two_commands_trade_against_the_local_fake(tmp_path, market_type):
    port = free_port()
    fake = start_fake(port, "--interval", "0.1", "--market-type", market_type)
    try:
        res = subprocess.run(
            [
                RUSTYBT,
                "live",
                "-f",
                ALGO,
                "--broker",
                "binance",
                "--market-type",
                market_type,
                "--venue-url",
                f"http://127.0.0.1:{port}",
                "--max-bars",
                "25",
                "--no-progress",
                "--state-dir",
                str(tmp_path),
            ],
            env={**os.environ, **CREDS},
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        fake.terminate()
        fake.wait(10)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Live session" in out and "Market events" in out
    assert "fake-binance-secret" not in out
