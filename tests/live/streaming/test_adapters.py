"""Each venue's stream adapter against its loopback fake over real sockets: the venue's
subscribe/heartbeat protocol, Decimal/UTC parsing, and every StreamConfig rule
(heartbeat, stale reconnect, backoff, malformed-frame reconnect, re-subscribe after every
reconnect, a clean close noticed at once, giving up after max_reconnect_attempts)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rustybt.exceptions import BrokerConnectionError, ConfigError
from rustybt.live.streaming.models import ConnectionState, StreamConfig, TickData

from .conftest import BTC, ETH, FAST, make_adapter, make_fake, wait_for

EXPECTED_SUBSCRIBE = {
    "binance": [["btcusdt@trade", "ethusdt@trade", "btcusdt@kline_1m", "ethusdt@kline_1m"]],
    "bybit": [["publicTrade.BTCUSDT", "publicTrade.ETHUSDT", "kline.1.BTCUSDT", "kline.1.ETHUSDT"]],
    "hyperliquid": [
        [json.dumps({"coin": "BTC", "type": "trades"}, sort_keys=True)],
        [json.dumps({"coin": "ETH", "type": "trades"}, sort_keys=True)],
        [json.dumps({"coin": "BTC", "interval": "1m", "type": "candle"}, sort_keys=True)],
        [json.dumps({"coin": "ETH", "interval": "1m", "type": "candle"}, sort_keys=True)],
    ],
}


async def test_trades_and_klines_arrive_as_decimal_utc_with_venue_symbol_and_asset(venue):
    ticks, klines = [], []
    async with make_fake(venue, bar_seconds=0.5) as fake:
        stream = make_adapter(venue, fake, on_tick=ticks.append, on_kline=klines.append)
        await stream.connect()
        assert stream.state is ConnectionState.CONNECTED
        await stream.subscribe(symbols=[BTC, ETH], channels=["trade", "kline_1m"])
        await wait_for(lambda: len(ticks) >= 40 and len(klines) >= 4, "ticks and klines")
        await stream.disconnect()
    assert stream.state is ConnectionState.DISCONNECTED
    assert [what for _, what in fake.subscribe_log] == EXPECTED_SUBSCRIBE[venue]
    t = ticks[0]
    assert isinstance(t, TickData) and t.venue == venue
    assert isinstance(t.price, Decimal) and isinstance(t.volume, Decimal) and t.price > 0
    assert t.timestamp.tzinfo is UTC
    assert abs(datetime.now(UTC) - t.timestamp) < timedelta(seconds=10)
    assert {x.asset for x in ticks} == {BTC, ETH}
    venue_syms = {x.symbol for x in ticks}
    assert venue_syms == ({"BTC", "ETH"} if venue == "hyperliquid" else {"BTCUSDT", "ETHUSDT"})
    # Trade ids and prices are the fake's, exactly (no float round trip).
    sim_prices = {str(p) for p in fake.sim.prices.values()}
    assert all(len(str(x.price).split(".")[-1]) == 2 for x in ticks)
    assert sim_prices
    k = klines[-1]
    assert k.asset in (BTC, ETH) and k.end - k.start == timedelta(milliseconds=500)
    assert k.low <= k.open <= k.high and k.low <= k.close <= k.high


async def test_rest_klines_fill_with_the_bars_the_venue_made(venue):
    async with make_fake(venue, bar_seconds=0.2, rate=50) as fake:
        stream = make_adapter(venue, fake)
        await asyncio.sleep(1.0)
        now = datetime.now(UTC)
        rows = await stream.fetch_klines(BTC, now - timedelta(seconds=0.8), now)
    assert len(rows) >= 3
    sym = "BTC" if venue == "hyperliquid" else "BTCUSDT"
    for k in rows:
        ref = fake.sim.klines[sym][int(k.start.timestamp() * 1000)]
        assert (k.open, k.high, k.low, k.close, k.volume) == (
            ref.open,
            ref.high,
            ref.low,
            ref.close,
            ref.volume,
        )
        assert k.asset is None or k.asset == BTC
    path = {"binance": "/api/v3/klines", "bybit": "/v5/market/kline", "hyperliquid": "/info"}
    assert fake.rest_requests[-1][1] == path[venue]


async def test_heartbeats_keep_a_quiet_stream_alive(venue):
    # One trade every 2 s, heartbeat_timeout 0.8 s: only the heartbeat answers keep it up.
    async with make_fake(venue, rate=0.5) as fake:
        stream = make_adapter(venue, fake)
        await stream.connect()
        await stream.subscribe([BTC], ["trade"])
        await asyncio.sleep(2.0)
        assert stream.stats["heartbeats"] >= 5
        assert stream.stats["stale_drops"] == 0
        assert stream.stats["reconnects"] == 0
        await stream.disconnect()


async def test_a_dropped_connection_reconnects_and_resubscribes(venue):
    states = []
    async with make_fake(venue) as fake:
        stream = make_adapter(venue, fake, on_state=lambda s, st: states.append(st))
        await stream.connect()
        await stream.subscribe([BTC], ["trade"])
        fake.drop()
        await wait_for(lambda: stream.stats["reconnects"] == 1, "reconnect")
        await wait_for(lambda: {c for c, _ in fake.subscribe_log} == {1, 2}, "re-subscribe")
        n = stream.stats["ticks"]
        await wait_for(lambda: stream.stats["ticks"] > n + 5, "ticks after reconnect")
        await stream.disconnect()
    assert [conn for conn, _ in fake.subscribe_log] == [1, 2]
    assert fake.subscribe_log[0][1] == fake.subscribe_log[1][1]
    assert states[:4] == [
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.RECONNECTING,
        ConnectionState.CONNECTED,
    ]


async def test_a_stall_past_heartbeat_timeout_reconnects(venue):
    async with make_fake(venue) as fake:
        stream = make_adapter(venue, fake)
        await stream.connect()
        await stream.subscribe([BTC], ["trade"])
        t0 = time.monotonic()
        fake.stall()
        await wait_for(lambda: stream.stats["stale_drops"] >= 1, "stale drop")
        waited = time.monotonic() - t0
        fake.stall(False)
        await wait_for(lambda: stream.is_connected and stream.stats["reconnects"] >= 1, "back")
        await wait_for(lambda: len({c for c, _ in fake.subscribe_log}) >= 2, "re-subscribe")
        await stream.disconnect()
    assert waited >= FAST.heartbeat_timeout * 0.9


async def test_malformed_frames_in_a_row_force_a_reconnect_and_fewer_do_not(venue):
    async with make_fake(venue, rate=5) as fake:
        stream = make_adapter(venue, fake)
        await stream.connect()
        await stream.subscribe([BTC], ["trade"])
        await fake.garbage(FAST.max_consecutive_errors - 1)
        await wait_for(lambda: stream.stats["malformed"] == 2, "two bad frames")
        await asyncio.sleep(0.3)
        assert stream.stats["reconnects"] == 0 and stream.is_connected
        await fake.garbage(FAST.max_consecutive_errors)
        await wait_for(lambda: stream.stats["reconnects"] == 1, "reconnect after bad frames")
        assert stream.last_error == "3 malformed messages in a row"
        await stream.disconnect()


async def test_a_clean_close_by_the_venue_is_noticed_at_once(venue):
    slow = StreamConfig(
        heartbeat_interval=10,
        heartbeat_timeout=30,
        reconnect_delay=0.05,
        max_reconnect_delay=0.1,
        rest_timeout=3,
    )
    async with make_fake(venue) as fake:
        stream = make_adapter(venue, fake, config=slow)
        await stream.connect()
        await stream.subscribe([BTC], ["trade"])
        t0 = time.monotonic()
        await fake.close_clean()
        await wait_for(lambda: stream.stats["reconnects"] == 1, "reconnect", timeout=5)
        assert time.monotonic() - t0 < 2  # not the 30 s heartbeat_timeout
        assert "1000" in (stream.last_error or "")
        await wait_for(lambda: {c for c, _ in fake.subscribe_log} == {1, 2}, "re-subscribe")
        await stream.disconnect()


async def test_a_restarted_server_is_reconnected_and_resubscribed(venue):
    async with make_fake(venue) as fake:
        stream = make_adapter(venue, fake)
        await stream.connect()
        await stream.subscribe([BTC, ETH], ["trade"])
        await fake.restart(down_for=0.4)
        await wait_for(lambda: stream.is_connected and stream.stats["reconnects"] == 1, "back")
        await wait_for(lambda: {c for c, _ in fake.subscribe_log} == {1, 2}, "re-subscribe")
        await stream.disconnect()


async def test_a_slow_consumer_is_cut_off_by_the_venue_and_reconnects():
    busy = [True]

    async def slow(tick):
        if busy[0]:
            await asyncio.sleep(0.02)  # the consumer falls behind for a while

    async with make_fake("binance", rate=500, send_queue=50, send_buffer=4096) as fake:
        stream = make_adapter("binance", fake, on_tick=slow)
        await stream.connect()
        # Small kernel buffers on this side too, so the backlog reaches the venue fast.
        sock = stream._ws.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await stream.subscribe([BTC, ETH], ["trade"])
        await wait_for(lambda: fake.slow_consumers_dropped >= 1, "slow consumer cut off")
        busy[0] = False
        await wait_for(lambda: stream.stats["reconnects"] >= 1, "reconnect")
        await wait_for(lambda: {c for c, _ in fake.subscribe_log} == {1, 2}, "re-subscribe")
        await stream.disconnect()


async def test_gives_up_after_max_reconnect_attempts_and_says_so():
    cfg = StreamConfig(
        heartbeat_interval=0.2,
        heartbeat_timeout=0.5,
        reconnect_delay=0.01,
        max_reconnect_delay=0.02,
        max_reconnect_attempts=3,
        rest_timeout=1,
    )
    fake = await make_fake("binance").start()
    stream = make_adapter("binance", fake, config=cfg)
    await stream.connect()
    await fake.stop()
    await wait_for(lambda: stream.failed, "give up")
    assert stream.state is ConnectionState.DISCONNECTED
    with pytest.raises(BrokerConnectionError, match="unreachable after 3 attempts"):
        await stream.connect()
    await stream.disconnect()


def test_reconnect_backoff_doubles_with_jitter_up_to_the_cap():
    cfg = StreamConfig(reconnect_delay=1, max_reconnect_delay=8, jitter=0.25)
    from rustybt.live.streaming import BinanceWebSocketAdapter

    stream = BinanceWebSocketAdapter(config=cfg)
    for attempt, base in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 8), (9, 8)]:
        waits = [stream._backoff(attempt) for _ in range(200)]
        assert all(base <= w <= base * 1.25 for w in waits)
        assert max(waits) > min(waits)  # jittered


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"heartbeat_interval": 0}, "heartbeat_interval must be > 0"),
        ({"heartbeat_interval": 90, "heartbeat_timeout": 30}, "must be longer than"),
        ({"reconnect_delay": -1}, "reconnect_delay must be > 0"),
        ({"max_reconnect_attempts": 2.5}, "whole number"),
        ({"max_consecutive_errors": "5"}, "must be a number"),
        ({"jitter": 2}, "between 0 and 1"),
        ({"reconnect_delay": 10, "max_reconnect_delay": 5}, "at least reconnect_delay"),
    ],
)
def test_bad_stream_config_is_refused_with_what_to_fix(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        StreamConfig(**kwargs)


async def test_bad_adapter_arguments_are_refused():
    from rustybt.live.streaming import BinanceWebSocketAdapter, BybitWebSocketAdapter

    with pytest.raises(ConfigError, match="not a websocket URL"):
        BinanceWebSocketAdapter(url="http://127.0.0.1:1/ws")
    with pytest.raises(ConfigError, match="not an HTTP URL"):
        BinanceWebSocketAdapter(url="ws://127.0.0.1:1/ws", rest_url="ftp://x")
    with pytest.raises(ConfigError, match="must be a StreamConfig"):
        BinanceWebSocketAdapter(config={"heartbeat_interval": 1})
    with pytest.raises(ConfigError, match="on_tick must be callable"):
        BinanceWebSocketAdapter(on_tick="print")
    with pytest.raises(ConfigError, match="category"):
        BybitWebSocketAdapter(category="options")
    stream = BinanceWebSocketAdapter()
    with pytest.raises(ConfigError, match="unknown channel 'depth'"):
        await stream.subscribe(["BTCUSDT"], ["depth"])
    with pytest.raises(ConfigError, match="at least one symbol"):
        await stream.subscribe([], ["trade"])
    assert stream.subscriptions == {}


def test_binance_frames_parse_exactly_and_floats_are_refused():
    from rustybt.exceptions import MalformedVenueMessage
    from rustybt.live.streaming import BinanceWebSocketAdapter

    s = BinanceWebSocketAdapter()
    trade = {
        "e": "trade",
        "E": 1672515782136,
        "s": "BNBBTC",
        "t": 12345,
        "p": "0.00100000",
        "q": "100.10000000",
        "T": 1672515782136,
        "m": True,
        "M": True,
    }
    (tick,) = s._parse(trade)
    assert tick.price == Decimal("0.00100000") and tick.volume == Decimal("100.1")
    assert tick.timestamp == datetime(2022, 12, 31, 19, 43, 2, 136000, tzinfo=UTC)
    assert tick.trade_id == "12345" and tick.side == "sell"
    (same,) = s._parse({"stream": "bnbbtc@trade", "data": trade})
    assert same == tick
    with pytest.raises(MalformedVenueMessage, match="not a float"):
        s._parse({**trade, "p": 0.001})
    with pytest.raises(MalformedVenueMessage, match="unknown Binance event"):
        s._parse({"e": "depthUpdate"})
    assert s._parse({"result": None, "id": 7}) is None


def test_a_bybit_stream_listens_to_the_public_stream_of_its_category():
    """Bybit's perpetuals trade on /v5/public/linear, not on the spot stream: a linear
    stream must not show the strategy spot prices (and backfill them from linear klines)."""
    from rustybt.live.streaming import BybitWebSocketAdapter
    from rustybt.live.streaming.registry import make_stream

    assert BybitWebSocketAdapter().url == "wss://stream.bybit.com/v5/public/spot"
    linear = BybitWebSocketAdapter(category="linear")
    assert linear.url == "wss://stream.bybit.com/v5/public/linear"
    assert linear._kline_request("BTCUSDT", 0, 1)[2]["category"] == "linear"
    assert BybitWebSocketAdapter(url="ws://127.0.0.1:1/x", category="linear").url == (
        "ws://127.0.0.1:1/x"
    )
    local = make_stream("bybit", venue_url="http://127.0.0.1:9", category="linear")
    assert (local.url, local.category) == ("ws://127.0.0.1:9/v5/public/linear", "linear")
    assert make_stream("bybit", venue_url="http://127.0.0.1:9").url.endswith("/public/spot")
