"""``rustybt live --broker hyperliquid`` and ``rustybt venue serve hyperliquid``."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

from rustybt.cli.main import _build_engine, app
from rustybt.testing.venues.hyperliquid import DEFAULT_PRIVATE_KEY
from tests.cli.test_live_binance_cli import RUSTYBT, flat, free_port
from tests.cli.test_live_binance_cli import start_fake as _start_fake

runner = CliRunner()
ALGO = str(Path(__file__).resolve().parents[2] / "examples" / "hyperliquid_fake.py")
CREDS = {"HYPERLIQUID_PRIVATE_KEY": DEFAULT_PRIVATE_KEY}


def test_hyperliquid_mainnet_is_refused_in_one_line_without_live_money(monkeypatch):
    monkeypatch.setenv("HYPERLIQUID_PRIVATE_KEY", DEFAULT_PRIVATE_KEY)
    res = runner.invoke(app, ["live", "-f", ALGO, "--broker", "hyperliquid", "--no-progress"])
    assert res.exit_code == 2
    assert "refusing to trade real money on Hyperliquid mainnet" in flat(res)
    assert DEFAULT_PRIVATE_KEY[2:] not in res.output


def test_hyperliquid_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("HYPERLIQUID_PRIVATE_KEY", raising=False)
    res = runner.invoke(app, ["live", "-f", ALGO, "--broker", "hyperliquid", "--testnet"])
    assert res.exit_code == 2
    assert "HYPERLIQUID_PRIVATE_KEY" in flat(res)


def test_a_malformed_key_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("HYPERLIQUID_PRIVATE_KEY", "0xdeadbeefcafe")
    res = runner.invoke(app, ["live", "-f", ALGO, "--broker", "hyperliquid", "--testnet"])
    assert res.exit_code == 2
    assert "64 hex digits" in flat(res) and "deadbeefcafe" not in res.output


def test_hyperliquid_options_build_the_adapter_with_its_id_map_in_the_state_dir(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("HYPERLIQUID_PRIVATE_KEY", DEFAULT_PRIVATE_KEY)
    opts = {
        "algofile": ALGO,
        "broker": "hyperliquid",
        "venue_url": "http://127.0.0.1:9",
        "state_dir": str(tmp_path),
    }
    broker = _build_engine(opts).broker
    assert broker.name == "hyperliquid" and broker.base_url == "http://127.0.0.1:9"
    assert broker.codec.path == tmp_path / "hyperliquid-client-ids.jsonl"
    opts = {"algofile": ALGO, "broker": "hyperliquid", "testnet": True}
    assert _build_engine(opts).broker.testnet is True


def test_two_commands_trade_hyperliquid_against_the_local_fake(tmp_path):
    port = free_port()
    fake = _start_fake(port, "--interval", "0.1", venue="hyperliquid")
    try:
        res = subprocess.run(
            [
                RUSTYBT,
                "live",
                "-f",
                ALGO,
                "--broker",
                "hyperliquid",
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
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/state", timeout=5) as r:
            state = json.loads(r.read())
    finally:
        fake.terminate()
        fake.wait(10)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Live session" in out and "Market events" in out
    assert DEFAULT_PRIVATE_KEY[2:] not in out
    assert set(state["actions"]) <= {"order", "cancel", "cancelByCloid"}
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert DEFAULT_PRIVATE_KEY[2:] not in f.read_text(errors="replace"), f
