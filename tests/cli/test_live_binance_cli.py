"""``rustybt live --broker binance`` and ``rustybt venue serve binance``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from decimal import Decimal
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


STREAM_ALGO = '''
import json
import os
from decimal import Decimal

from rustybt.algorithm import TradingAlgorithm


class RecordBars(TradingAlgorithm):
    """Writes every bar it sees; buys on the 3rd bar, sells out on the 6th."""

    def initialize(self):
        self.btc = self.symbol("BTCUSDT")
        self.n = 0

    def handle_data(self, context, data):
        self.n += 1
        row = {
            "dt": data.current_dt.isoformat(),
            "close": str(data.current(self.btc, "close")),
            "volume": str(data.current(self.btc, "volume")),
        }
        with open(os.environ["BARS_OUT"], "a") as f:
            f.write(json.dumps(row) + "\\n")
        if self.n == 3:
            self.order(self.btc, Decimal("0.01"))
        elif self.n == 6:
            self.order_target(self.btc, 0)
'''


def test_live_binance_data_stream_trades_on_the_bars_of_the_venues_market_stream(tmp_path):
    """``rustybt venue serve binance`` (one port: REST, user stream, market stream) and
    ``rustybt live --broker binance --data stream`` against it: the strategy gets one bar
    per interval from the market stream, each equal to the venue's own kline for that
    time, and its orders fill on the venue."""
    import json
    import urllib.request
    from datetime import datetime

    algo = tmp_path / "record_bars.py"
    algo.write_text(STREAM_ALGO)
    bars_out = tmp_path / "bars.jsonl"
    port = free_port()
    fake = start_fake(port, "--interval", "0.5")
    try:
        res = subprocess.run(
            [
                RUSTYBT,
                "live",
                "-f",
                str(algo),
                "--broker",
                "binance",
                "--venue-url",
                f"http://127.0.0.1:{port}",
                "--data",
                "stream",
                "--bar-seconds",
                "0.5",
                "--max-bars",
                "8",
                "--no-progress",
                "--state-dir",
                str(tmp_path / "state"),
            ],
            env={**os.environ, **CREDS, "BARS_OUT": str(bars_out)},
            capture_output=True,
            text=True,
            timeout=90,
        )
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/_fake/state", timeout=5) as r:
            state = json.load(r)
        with urllib.request.urlopen(
            f"{base}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1000", timeout=5
        ) as r:
            klines = json.load(r)
    finally:
        fake.terminate()
        fake.wait(10)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "stream_connected" in out and "ws://127.0.0.1:" in out
    bars = [json.loads(line) for line in bars_out.read_text().splitlines()]
    assert len(bars) == 8
    # One bar per half second, in order, none skipped (bars are stamped at their end).
    times = [datetime.fromisoformat(b["dt"]) for b in bars]
    assert all((b - a).total_seconds() == 0.5 for a, b in zip(times, times[1:], strict=False))
    # Each bar is the venue's kline for that half second (close time T = end - 1 ms).
    venue = {int(k[6]) + 1: (k[4], k[5]) for k in klines}
    for b, t in zip(bars, times, strict=True):
        close, volume = venue[int(t.timestamp() * 1000)]
        assert Decimal(b["close"]) == Decimal(close)
        assert Decimal(b["volume"]) == Decimal(volume)
    # The buy and the sell reached the venue and filled: flat again, no BTC left.
    orders = state["orders"]
    assert [(o["side"], o["status"], o["executedQty"]) for o in orders] == [
        ("BUY", "FILLED", "0.01"),
        ("SELL", "FILLED", "0.01"),
    ], state
    assert state["trades"] == 2
