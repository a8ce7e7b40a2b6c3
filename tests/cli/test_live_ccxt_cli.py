"""``rustybt live --broker ccxt:<id>``: the front door's refusals, and a session through
ccxt's unified API against ``rustybt venue serve binance``."""

from __future__ import annotations

import os
import subprocess

from typer.testing import CliRunner

from rustybt.cli.main import _build_engine, app
from tests.cli.test_live_binance_cli import ALGO, RUSTYBT, flat, free_port, start_fake

runner = CliRunner()
CREDS = {
    "CCXT_BINANCE_API_KEY": "fake-binance-key",
    "CCXT_BINANCE_API_SECRET": "fake-binance-secret",
}


def _live(*args: str):
    return runner.invoke(app, ["live", "-f", ALGO, "--no-progress", *args])


def test_an_unknown_ccxt_id_is_one_line_saying_how_to_list_the_ids():
    res = _live("--broker", "ccxt:binanse", "--testnet")
    assert res.exit_code == 2
    out = flat(res)
    assert "'binanse' is not a ccxt exchange id" in out and "ccxt.exchanges" in out
    assert "Traceback" not in res.output


def test_an_unknown_broker_names_the_ccxt_form():
    res = _live("--broker", "kraken")
    assert res.exit_code == 2
    assert "ccxt:<id>" in flat(res)


def test_ccxt_mainnet_is_refused_without_live_money_and_credentials_name_the_variables(
    monkeypatch,
):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    res = _live("--broker", "ccxt:binance")
    assert res.exit_code == 2
    assert "refusing to trade real money on ccxt:binance mainnet" in flat(res)
    for k in CREDS:
        monkeypatch.delenv(k)
    res = _live("--broker", "ccxt:binance", "--testnet")
    assert res.exit_code == 2
    assert "CCXT_BINANCE_API_KEY and CCXT_BINANCE_API_SECRET" in flat(res)


def test_capability_refusals_reach_the_front_door(monkeypatch):
    monkeypatch.setenv("CCXT_BITSTAMP_API_KEY", "k")
    monkeypatch.setenv("CCXT_BITSTAMP_API_SECRET", "s")
    res = _live("--broker", "ccxt:bitstamp", "--testnet")
    assert res.exit_code == 2 and "no sandbox/testnet" in flat(res)
    monkeypatch.setenv("CCXT_DERIBIT_API_KEY", "k")
    monkeypatch.setenv("CCXT_DERIBIT_API_SECRET", "s")
    res = _live("--broker", "ccxt:deribit", "--testnet")
    assert res.exit_code == 2 and "does not send a client order id" in flat(res)


def test_market_type_maps_to_spot_or_linear_swaps(monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    opts = {"algofile": ALGO, "broker": "ccxt:binance", "venue_url": "http://127.0.0.1:9"}
    engine = _build_engine(opts)
    assert engine.broker.exchange_id == "binance" and engine.broker.market_type == "spot"
    assert engine.broker.testnet is False and engine.broker.base_url == "http://127.0.0.1:9"
    opts["market_type"] = "futures"
    assert _build_engine(opts).broker.market_type == "swap"


def test_two_commands_trade_through_ccxt_against_the_local_fake_binance(tmp_path):
    port = free_port()
    fake = start_fake(port, "--interval", "0.1")
    try:
        res = subprocess.run(
            [
                RUSTYBT,
                "live",
                "-f",
                ALGO,
                "--broker",
                "ccxt:binance",
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
