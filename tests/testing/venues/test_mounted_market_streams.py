"""The fake trading venues serve their public market stream on their own port
(``rustybt venue serve binance|bybit``): one ``venue_url`` reaches trading and market
data, the stream's closed klines are the bars resting orders match against, and the
venue's REST klines (the backfill source) are exactly the bars the stream closed."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rustybt.live.streaming.models import StreamConfig
from rustybt.live.streaming.registry import make_stream
from rustybt.testing.venues.binance import market_stream as binance_stream
from rustybt.testing.venues.binance.server import FakeBinance
from rustybt.testing.venues.bybit import market_stream as bybit_stream
from rustybt.testing.venues.bybit.server import FakeBybit

CONFIG = StreamConfig(
    heartbeat_interval=0.5, heartbeat_timeout=3, reconnect_delay=0.05, max_reconnect_delay=0.2
)

FAKES = {
    "binance": (lambda: FakeBinance("spot"), binance_stream.attach),
    "bybit": (lambda: FakeBybit("linear"), bybit_stream.attach),
}


async def _until(cond, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("venue", sorted(FAKES))
async def test_the_venue_port_serves_its_market_stream_and_klines_equal_the_closed_bars(venue):
    make_fake, attach = FAKES[venue]
    fake = make_fake()
    market = attach(fake, rate=20, bar_seconds=0.3)
    await fake.start()
    closed = []
    ticks = []
    stream = make_stream(venue, venue_url=fake.base_url, config=CONFIG)
    stream.on_tick = ticks.append
    stream.on_kline = lambda k: k.closed and closed.append(k)
    try:
        await stream.connect()
        await stream.subscribe(["BTCUSDT", "ETHUSDT"], ["trade", "kline_1m"])
        await _until(lambda: len({k.start for k in closed if k.symbol == "BTCUSDT"}) >= 4)
        assert stream.url.startswith(f"ws://127.0.0.1:{fake.port}/")
        assert {t.symbol for t in ticks} == {"BTCUSDT", "ETHUSDT"}
        # The stream moves the venue's last price (what a market order fills at).
        last = [t for t in ticks if t.symbol == "BTCUSDT"][-1].price
        await asyncio.sleep(0)
        assert fake.exchange.symbols["BTCUSDT"].price == market.sim.prices["BTCUSDT"]
        assert last > 0
        # REST klines over the same range are the stream's final klines, field by field.
        btc = sorted((k for k in closed if k.symbol == "BTCUSDT"), key=lambda k: k.start)
        rest = await stream.fetch_klines("BTCUSDT", btc[0].start, btc[-1].start)
        by_start = {k.start: k for k in rest}
        for k in btc:
            r = by_start[k.start]
            assert (r.open, r.high, r.low, r.close, r.volume) == (
                k.open,
                k.high,
                k.low,
                k.close,
                k.volume,
            )
    finally:
        await stream.disconnect()
        await fake.stop()
    assert market.clients == set()  # the venue's shutdown closed the market stream too


async def test_a_resting_limit_order_fills_against_the_streams_next_bar():
    fake = FakeBinance("spot")
    market = binance_stream.attach(fake, rate=50, bar_seconds=0.2)
    await fake.start()
    try:
        spec = fake.exchange.symbols["BTCUSDT"]
        await _until(lambda: market.sim.klines["BTCUSDT"])
        # A buy limit far below the market rests; once a closed bar trades through it
        # (the stream's walk), the venue fills it at the limit.
        limit = (spec.price * Decimal("0.999")).quantize(Decimal("0.01"))
        order = fake.exchange.new_order(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": str(limit),
                "newClientOrderId": "rest-1",
            }
        )
        assert order.status == "NEW"
        await _until(lambda: order.status == "FILLED", timeout=20)
        # It filled on a bar the stream closed, one that traded at or below the limit.
        assert any(k.low <= limit for k in market.sim.klines["BTCUSDT"].values())
        assert order.core.avg_fill_price <= limit
    finally:
        await fake.stop()


def test_venue_serve_mounts_the_market_stream_on_the_venue_port(tmp_path):
    """``rustybt venue serve binance``: a Binance market-stream subscription on the venue's
    own port is acknowledged and trades follow; ``/api/v3/klines`` serves the closed bars."""
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    from websockets.sync.client import connect

    rustybt = str(Path(sys.executable).with_name("rustybt"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [rustybt, "venue", "serve", "binance", "--port", str(port), "--interval", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "fake venue did not start"
                time.sleep(0.1)
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5) as ws:
            ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 7}))
            frames = [json.loads(ws.recv(timeout=5)) for _ in range(5)]
        assert frames[0] == {"result": None, "id": 7}
        trade = frames[1]
        assert trade["e"] == "trade" and trade["s"] == "BTCUSDT"
        assert isinstance(trade["p"], str) and isinstance(trade["T"], int)
        time.sleep(0.5)
        start = int((datetime.now(UTC) - timedelta(seconds=5)).timestamp() * 1000)
        url = f"http://127.0.0.1:{port}/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime={start}"
        with urllib.request.urlopen(url, timeout=5) as r:
            rows = json.load(r)
        assert len(rows) >= 2
        assert all(row[6] - row[0] == 199 for row in rows)  # 0.2 s bars: T = t + 200 - 1
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(proc.stderr.read()[-5000:]) from None


async def test_the_fake_closes_a_bar_at_its_boundary_not_at_the_next_trade():
    """A venue finalises its kline when the bar ends; with one trade a second and
    0.3-second bars, waiting for the next trade would deliver it up to a second late (and
    the REST backfill right after the bar would find nothing)."""
    import time

    from rustybt.testing.venues.binance.market_stream import BinanceMarketStream

    late = []
    async with BinanceMarketStream({"BTCUSDT": "42000"}, rate=1, bar_seconds=0.3) as fake:
        stream = make_stream("binance", url=fake.url, rest_url=fake.rest_url, config=CONFIG)

        def on_kline(k):
            if k.closed:
                late.append(time.time() - k.end.timestamp())

        stream.on_kline = on_kline
        await stream.connect()
        await stream.subscribe(["BTCUSDT"], ["kline_1m"])
        await _until(lambda: len(late) >= 3, timeout=15)
        await stream.disconnect()
    assert max(late) < 0.25, late
