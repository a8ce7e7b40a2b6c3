"""`rustybt live --broker paper --data stream --venue-url ...`: a real subprocess paper-
trades bars streamed from a loopback fake venue (websocket and REST on one port)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rustybt.cli.main import app
from rustybt.testing.venues.binance.market_stream import BinanceMarketStream
from rustybt.testing.venues.bybit.market_stream import BybitMarketStream

RUSTYBT = str(Path(sys.executable).parent / "rustybt")
QUICKSTART = str(Path("examples/quickstart.py").resolve())
runner = CliRunner()

BUYER = """
from decimal import Decimal
from rustybt.algorithm import TradingAlgorithm


class StreamBuyer(TradingAlgorithm):
    def initialize(self):
        self.btc = self.symbol("BTCUSDT")

    def handle_data(self, context, data):
        self.order(self.btc, Decimal("0.01"))
"""


async def _live(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        RUSTYBT,
        "live",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ.copy(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("fake_cls", [BinanceMarketStream, BybitMarketStream])
async def test_paper_session_trades_bars_streamed_from_a_fake_venue(tmp_path, fake_cls):
    algo = tmp_path / "buyer.py"
    algo.write_text(BUYER)
    state = tmp_path / "state"
    async with fake_cls(rate=30, bar_seconds=1) as fake:
        code, out, err = await _live(
            "-f",
            str(algo),
            "--broker",
            "paper",
            "--data",
            "stream",
            "--venue",
            fake.venue,
            "--venue-url",
            fake.venue_url,
            "--bar-seconds",
            "1",
            "--max-bars",
            "4",
            "--state-dir",
            str(state),
            "--no-progress",
        )
        subscribed = list(fake.subscribe_log)
        rest = list(fake.rest_requests)
    assert code == 0, err[-2000:]
    assert subscribed, "the session subscribed on the fake venue"
    assert any("BTCUSDT" in " ".join(what).upper() for _, what in subscribed)
    assert rest == []  # klines subscribed: the venue's kline completes the first bar
    events = []
    for f in (state / "logs").glob("*.jsonl"):
        events += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    stopped = [e for e in events if e.get("event") == "engine_stopped"][-1]["status"]
    assert stopped["market_events"] == 4
    assert stopped["orders_submitted"] >= 3
    assert stopped["fills"] >= 2  # paper fills on the streamed bars
    stream = stopped["streams"]["streams"][0]
    assert stream["venue"] == fake.venue and stream["klines"] > 0 and stream["ticks"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--venue", "kraken"], "--venue 'kraken' is not one of binance, bybit, hyperliquid"),
        (["--venue-url", "ws://x:1"], "must be http://host:port"),
        (["--data", "firehose"], "--data 'firehose' is not one of replay, stream"),
        (["--symbols", " , "], "--symbols needs at least one symbol"),
    ],
)
def test_stream_options_are_checked_before_anything_starts(args, message):
    res = runner.invoke(app, ["live", "-f", QUICKSTART, "--no-progress", "--data", "stream", *args])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
