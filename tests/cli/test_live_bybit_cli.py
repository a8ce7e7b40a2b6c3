"""``rustybt live --broker bybit`` and ``rustybt venue serve bybit``."""

from __future__ import annotations

import os
import subprocess

from typer.testing import CliRunner

from rustybt.cli.main import _build_engine, app
from tests.cli.test_live_binance_cli import ALGO, RUSTYBT, flat, free_port
from tests.cli.test_live_binance_cli import start_fake as _start_binance_like

runner = CliRunner()
CREDS = {"BYBIT_API_KEY": "fake-bybit-key", "BYBIT_API_SECRET": "fake-bybit-secret"}


def test_bybit_mainnet_is_refused_in_one_line_without_live_money(monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    res = runner.invoke(app, ["live", "-f", ALGO, "--broker", "bybit", "--no-progress"])
    assert res.exit_code == 2
    assert "refusing to trade real money on Bybit mainnet" in flat(res)


def test_bybit_missing_credentials_name_the_variables(monkeypatch):
    for k in CREDS:
        monkeypatch.delenv(k, raising=False)
    res = runner.invoke(app, ["live", "-f", ALGO, "--broker", "bybit", "--testnet"])
    assert res.exit_code == 2
    assert "BYBIT_API_KEY and BYBIT_API_SECRET" in flat(res)


def test_bybit_market_type_maps_to_the_category(monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    opts = {"algofile": ALGO, "broker": "bybit", "venue_url": "http://127.0.0.1:9"}
    assert _build_engine(opts).broker.category == "linear"
    opts["market_type"] = "spot"
    assert _build_engine(opts).broker.category == "spot"


def start_fake(port: int, *extra: str) -> subprocess.Popen:
    return _start_binance_like(port, *extra, venue="bybit")


def test_two_commands_trade_bybit_linear_against_the_local_fake(tmp_path):
    port = free_port()
    fake = start_fake(port, "--interval", "0.1", "--market-type", "linear")
    try:
        res = subprocess.run(
            [
                RUSTYBT,
                "live",
                "-f",
                ALGO,
                "--broker",
                "bybit",
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
    assert "fake-bybit-secret" not in out


def test_data_stream_with_broker_bybit_streams_the_traded_category(monkeypatch):
    """``--broker bybit --data stream`` streams the market it trades: USDT perpetuals
    (``/v5/public/linear``) by default, spot with ``--market-type spot``."""
    from rustybt.cli.main import _build_engine

    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    opts = {
        "algofile": ALGO,
        "broker": "bybit",
        "venue_url": "http://127.0.0.1:9",
        "data": "stream",
    }
    [(stream, _)] = _build_engine(opts)._pending_streams  # subscribed at start
    assert (stream.category, stream.url) == ("linear", "ws://127.0.0.1:9/v5/public/linear")
    [(spot, _)] = _build_engine({**opts, "market_type": "spot"})._pending_streams
    assert (spot.category, spot.url) == ("spot", "ws://127.0.0.1:9/v5/public/spot")
