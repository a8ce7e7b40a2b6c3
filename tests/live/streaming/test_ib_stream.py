"""Interactive Brokers real-time bars through the engine's stream path, against the fake
TWS over a real socket: TWS's short bars are aggregated into the strategy's bars (one
multi-asset event per bar close, on the timer), the bar joined mid-way is not emitted, a
TWS outage holds risk and its missed bars are recorded as gaps (alerted, the strategy
told), and no bar built from partial data ever reaches the strategy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rustybt import TradingAlgorithm
from rustybt.exceptions import ConfigError
from rustybt.live.brokers.ib_adapter import IBBrokerAdapter
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.engine import LiveTradingEngine
from rustybt.live.streaming import IBRealTimeBarStream
from rustybt.live.streaming.models import StreamConfig
from rustybt.testing.venues.ib.server import FakeTWS
from tests.live.test_engine import portal

from .conftest import wait_for

# TWS's bars are 5 s; the fake publishes 1-second bars the same way so that a 2-second
# strategy bar (two sub-bars) takes seconds, not minutes.
SUB = 1
BAR = 2
CONFIG = StreamConfig(heartbeat_interval=0.5, heartbeat_timeout=5)


class TwoStocks(TradingAlgorithm):
    """Records every bar it sees; buys 10 AAPL on the 2nd bar; told about gaps."""

    def initialize(self):
        self.assets = [self.symbol("AAPL"), self.symbol("MSFT")]
        self.seen = []
        self.gaps = []

    def handle_data(self, context, data):
        self.seen.append(data.current_dt)
        if len(self.seen) == 2:
            self.order(self.assets[0], 10)

    def on_data_gap(self, gap):
        self.gaps.append(gap)


def _record_pushes(tws):
    """Every bar the fake TWS published: (symbol, start) → (o, h, l, c, v)."""
    made = {}
    push = tws.push_bar

    def recording(symbol, o, h, lo, c, v=None, *, start=None):
        made[(symbol, start)] = tuple(Decimal(x) for x in (o, h, lo, c, v))
        push(symbol, o, h, lo, c, v, start=start)

    tws.push_bar = recording
    return made


def _expected(made, symbol, end):
    """The strategy's bar ending at ``end``: the aggregate of the TWS bars inside it, or
    None when the fake did not publish every one of them."""
    first = int(end.timestamp()) - BAR
    rows = [made.get((symbol, first + i * SUB)) for i in range(BAR // SUB)]
    if any(r is None for r in rows):
        return None
    return (
        rows[0][0],
        max(r[1] for r in rows),
        min(r[2] for r in rows),
        rows[-1][3],
        sum(r[4] for r in rows),
    )


async def _session(tmp_path, events_wanted, during=None):
    tws = FakeTWS()
    await tws.start()
    made = _record_pushes(tws)
    market = asyncio.create_task(tws.run_real_time_bars(seconds=SUB, seed=3))
    broker = IBBrokerAdapter(port=tws.port, client_id=21, request_timeout=2, reconnect_delay=0.1)
    strategy = TwoStocks()
    engine = LiveTradingEngine(
        strategy,
        broker,
        data_portal=portal(),
        circuit_breakers=CircuitBreakerManager(),
        control_socket=False,
        state_dir=tmp_path,
        stop_when_data_ends=False,
    )
    stream = IBRealTimeBarStream(broker, CONFIG, bar_seconds=SUB)
    engine.add_stream(stream, bar_interval=BAR, grace=0.3)  # the strategy's assets
    events = []
    builder = engine.streams.builder
    emit = builder.emit

    def record(ev):
        events.append(ev)
        emit(ev)

    builder.emit = record
    engine.stop_after_market_events = events_wanted
    run = asyncio.create_task(engine.run())
    try:
        if during is not None:
            await during(engine, tws)
        await asyncio.wait_for(asyncio.shield(run), 60)
    finally:
        if not run.done():
            await engine.shutdown()
            await asyncio.wait_for(run, 20)
        market.cancel()
        await tws.stop()
    return engine, strategy, stream, events, made, tws


async def test_tws_bars_become_one_multi_asset_bar_per_interval_closed_on_the_timer(tmp_path):
    engine, strategy, stream, events, made, tws = await _session(tmp_path, 3)
    assert engine.get_status()["errors"] == 0
    assert stream.state.value == "disconnected"  # the engine stopped its stream
    assert len(strategy.seen) == 3
    assert [ev.dt for ev in events] == strategy.seen  # handle_data once per bar close
    for a, b in zip(strategy.seen, strategy.seen[1:], strict=False):
        assert b - a == timedelta(seconds=BAR)  # consecutive bars, none skipped
    for ev in events:
        assert ev.dt.timestamp() % BAR == 0  # stamped at the bar's end
        assert sorted(b.asset.symbol for b in ev.bars) == ["AAPL", "MSFT"]  # one event
        for bar in ev.bars:
            # Exactly the TWS bars of that interval, aggregated: no partial first bar.
            assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == _expected(
                made, bar.asset.symbol, ev.dt
            )
    bars = engine.get_status()["streams"]["bars"]
    assert bars["bars_emitted"] == 6 and bars["gap_bars"] == 0
    # Before the first full bar: the one joined mid-way was dropped, not emitted short
    # (unless the session happened to start exactly on a bar boundary).
    assert bars["partial_first_bars"] in (0, 2)
    # The order on the 2nd bar went to TWS and filled there.
    [order] = tws.orders.values()
    assert order.total_quantity == 10
    await wait_for(lambda: engine.ledger.positions.get(strategy.assets[0]) is not None, "fill", 1)


async def test_a_tws_outage_holds_risk_and_its_missed_bars_are_gaps_never_partial_bars(tmp_path):
    async def outage(engine, tws):
        await wait_for(lambda: len(getattr(engine.strategy, "seen", ())) >= 1, "first bar", 20)
        await tws.restart(downtime=2.2)  # sockets dropped, the port away: bars missed
        await wait_for(lambda: engine.get_status()["streams"]["held"], "the stream hold", 5)
        status = engine.get_status()
        assert not status["can_trade"]
        assert "ib stream reconnecting" in status["streams"]["held"]

    engine, strategy, stream, events, made, tws = await _session(tmp_path, 3, outage)
    assert stream.stats["disconnects"] >= 1 and stream.stats["reconnects"] >= 1
    # The missed bars were recorded, alerted and told to the strategy.
    assert engine.data_gaps and strategy.gaps
    gap = strategy.gaps[0]
    assert gap.symbol in ("AAPL", "MSFT") and "not backfilled" in gap.reason
    assert any(a.kind == "market_data_gap" for a in engine.alerts)
    assert any(a.kind == "market_data_stream" for a in engine.alerts)
    # Every bar the strategy saw is the full aggregate of the TWS bars of its interval.
    for ev in events:
        for bar in ev.bars:
            want = _expected(made, bar.asset.symbol, ev.dt)
            assert want is not None
            assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == want
    gap_ends = {(g.symbol, g.end) for g in engine.data_gaps}
    seen = {(b.asset.symbol, ev.dt) for ev in events for b in ev.bars}
    assert not gap_ends & seen  # a gap bar is never also emitted
    assert len(strategy.seen) == 3
    assert strategy.seen == sorted(set(strategy.seen))


def test_bad_ib_stream_settings_are_refused_with_what_to_fix():
    broker = IBBrokerAdapter(port=7497)
    with pytest.raises(ConfigError, match="IBBrokerAdapter"):
        IBRealTimeBarStream(object())
    with pytest.raises(ConfigError, match="whole number of seconds"):
        IBRealTimeBarStream(broker, bar_seconds=0)
    with pytest.raises(ConfigError, match="StreamConfig"):
        IBRealTimeBarStream(broker, config={"heartbeat_interval": 1})
    stream = IBRealTimeBarStream(broker)
    with pytest.raises(ConfigError, match="multiple of them"):
        stream.check_interval(timedelta(seconds=7))
    stream.check_interval(timedelta(minutes=1))


async def test_the_stream_refuses_to_start_without_the_brokers_tws_connection():
    from rustybt.exceptions import BrokerConnectionError

    stream = IBRealTimeBarStream(IBBrokerAdapter(port=7497))
    with pytest.raises(BrokerConnectionError, match="connect the IBBrokerAdapter first"):
        await stream.connect()
    assert stream.state.value == "disconnected"


def test_engine_refuses_a_bar_interval_that_is_not_whole_tws_bars(tmp_path):
    broker = IBBrokerAdapter(port=7497)
    engine = LiveTradingEngine(
        TwoStocks(), broker, data_portal=portal(), control_socket=False, state_dir=tmp_path
    )
    with pytest.raises(ConfigError, match="must be a multiple"):
        engine.add_stream(IBRealTimeBarStream(broker), ["AAPL"], bar_interval=12.5)
    assert engine.streams.streams == []  # nothing half-added


def test_first_bar_joined_mid_way_is_dropped_by_the_builder():
    """The builder's rule on its own: sub-bars from the middle of a bar do not make one."""
    from rustybt.assets import Equity
    from rustybt.live.streaming.bar_builder import BarBuilder
    from rustybt.live.streaming.models import KlineData

    out = []
    t0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    builder = BarBuilder(out.append, interval=timedelta(seconds=15), grace=timedelta(0))
    aapl = Equity("AAPL", sid=1)

    def sub(i, close):
        start = t0 + timedelta(seconds=5 * i)
        p = Decimal(close)
        return KlineData(
            "AAPL",
            start,
            start + timedelta(seconds=5),
            p,
            p + 1,
            p - 1,
            p,
            Decimal(10),
            True,
            asset=aapl,
        )

    for i, close in ((1, "10"), (2, "11"), (3, "12"), (4, "13"), (5, "14"), (5, "99")):
        builder.add_kline(sub(i, close))  # joined at t0+5 s; the last one is a repeat
    asyncio.run(builder.close_due(t0 + timedelta(seconds=30)))
    assert [ev.dt for ev in out] == [t0 + timedelta(seconds=30)]
    [bar] = out[0].bars
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        Decimal(12),
        Decimal(15),
        Decimal(11),
        Decimal(14),
        Decimal(30),
    )
    assert builder.stats["partial_first_bars"] == 1
    assert builder.stats["duplicate_sub_bars"] == 1


async def test_tws_bars_shorter_than_bar_seconds_are_reported_as_a_mismatch():
    """A fake TWS publishing 1-second bars to a stream told they are 5 s long: said once,
    loudly (the liveness proof would run ahead of what arrived)."""
    from rustybt.assets import Equity

    tws = FakeTWS()
    await tws.start()
    broker = IBBrokerAdapter(port=tws.port, client_id=22, request_timeout=2)
    await broker.connect()
    stream = IBRealTimeBarStream(broker, CONFIG)  # bar_seconds=5, as TWS
    got = []
    stream.on_kline = got.append
    try:
        await stream.connect()
        await stream.subscribe([Equity("AAPL", exchange="NASDAQ")])
        # reqRealTimeBars has no answer: wait until the fake TWS has the subscription.
        await wait_for(lambda: any(c.bars for c in tws._clients), "the subscription", 5)
        t0 = 1_800_000_000
        for i in range(3):
            tws.push_bar("AAPL", "190", "191", "189", "190.5", "100", start=t0 + i)
        await wait_for(lambda: len(got) == 3, "the bars", 5)
        assert stream.stats["bar_length_mismatch"] == 2
        assert [k.end - k.start for k in got] == [timedelta(seconds=5)] * 3
    finally:
        await stream.disconnect()
        await broker.disconnect()
        await tws.stop()
