"""Engine-owned streams: the engine connects, supervises and stops them; a paper session
on streamed bars gives the same orders as a backtest on the same bars; a dead stream
blocks new risk and alerts; pushed prices must not be floats."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from rustybt import run_algorithm
from rustybt.algorithm import TradingAlgorithm
from rustybt.data.bar import Bar
from rustybt.data.bundles import write_bundle
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.exceptions import ConfigError, MalformedVenueMessage
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.streaming import BinanceWebSocketAdapter
from rustybt.live.streaming.models import StreamConfig, TickData

from .conftest import make_fake, wait_for

BAR = 0.5
# Quick reconnects, but a stale timeout a loaded test machine cannot trip by accident (a
# stale stream holds new risk, which would make paper and backtest differ for a reason
# that is not the kernel's).
FAST = StreamConfig(
    heartbeat_interval=1,
    heartbeat_timeout=5,
    reconnect_delay=0.05,
    max_reconnect_delay=0.2,
    max_reconnect_attempts=50,
    rest_timeout=3,
)


class Momentum(TradingAlgorithm):
    """Buys on an up-bar, sells out on a down-bar, and rests a limit buy every 4th bar.

    Decides from the bars' prices only (not their timestamps), so the same bars relabelled
    as minutes in a bundle must give the same orders."""

    def initialize(self):
        self.assets = [self.symbol("BTCUSDT"), self.symbol("ETHUSDT")]
        self.prev = {}
        self.seen = []
        self.placed = {}  # order id -> index of the bar it was placed on

    def _mark(self, order_id):
        if order_id is not None:
            self.placed[order_id] = len(self.seen) - 1

    def handle_data(self, context, data):
        self.seen.append(data.current_dt)
        for asset in self.assets:
            close = data.current(asset, "close")
            if close is None:
                continue
            prev = self.prev.get(asset)
            self.prev[asset] = close
            if prev is None:
                continue
            pos = context.portfolio.positions.get(asset)
            held = pos.amount if pos is not None else 0
            if close > prev and held <= 0:
                self._mark(self.order(asset, Decimal("0.05")))
            elif close < prev and held > 0:
                self._mark(self.order_target(asset, 0))
        if len(self.seen) % 4 == 0:
            asset = self.assets[1]
            price = data.current(asset, "close")
            self._mark(self.order(asset, Decimal("0.1"), limit_price=price - Decimal("2.00")))


def _engine(strategy, **kw):
    return LiveTradingEngine(
        strategy=strategy,
        broker_adapter=PaperBroker(
            starting_cash=Decimal("100000"), order_latency_ms=0, allow_short=True
        ),
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        circuit_breakers=CircuitBreakerManager(),
        control_socket=False,
        stop_when_data_ends=False,
        **kw,
    )


def _orders(orders, placed):
    """Orders keyed by the index of the bar they were placed on (live orders carry wall
    time, which on a loaded machine can fall after the next bar's end)."""
    out = []
    for o in orders:
        index = placed[o.id]
        out.append(
            (
                index,
                o.asset.symbol,
                o.amount,
                o.order_type.value,
                o.limit_price,
                o.filled,
                o.avg_fill_price,
                o.status.value,
            )
        )
    return sorted(out)


async def test_paper_on_streamed_bars_gives_the_same_orders_as_a_backtest_on_those_bars():
    strategy = Momentum()
    engine = _engine(strategy)
    async with make_fake("binance", rate=40, bar_seconds=BAR) as fake:
        stream = BinanceWebSocketAdapter(url=fake.url, config=FAST, rest_url=fake.rest_url)
        engine.add_stream(stream, ["BTCUSDT", "ETHUSDT"], ["trade"], bar_interval=BAR, grace=0.15)
        events = []
        builder = engine.streams.builder
        emit = builder.emit

        def record(ev):
            events.append(ev)
            emit(ev)

        builder.emit = record
        engine.stop_after_market_events = 16
        await asyncio.wait_for(engine.run(), 30)
    assert engine.get_status()["errors"] == 0, engine.audit.path.read_text()[-3000:]
    assert stream.state.value == "disconnected"  # the engine stopped its stream
    seen = strategy.seen
    assert len(seen) == 16
    bars = [ev for ev in events if ev.dt in set(seen)]
    assert [ev.dt for ev in bars] == seen  # handle_data once per bar, in order
    assert all(len(ev.bars) == 2 for ev in bars)  # both assets in one event

    # The same bars as a minute bundle (bar i at minute i), then a backtest on it.
    t0 = datetime(2024, 3, 1, 0, 1, tzinfo=UTC)
    rows = [
        {
            "symbol": b.asset.symbol,
            "dt": t0 + timedelta(minutes=i),
            "open": b.open,
            "high": b.high,
            "low": b.low,
            "close": b.close,
            "volume": b.volume,
        }
        for i, ev in enumerate(bars)
        for b in ev.bars
    ]
    frame = pl.DataFrame(rows).with_columns(pl.col("dt").dt.replace_time_zone("UTC"))
    assets = [engine.executor.asset_finder.lookup_symbol(s) for s in ("BTCUSDT", "ETHUSDT")]
    write_bundle("streamed", assets, {"minute": frame})

    bt_strategy = Momentum()
    backtest = run_algorithm(
        bt_strategy, bundle="streamed", capital_base=Decimal("100000"), allow_short=True
    )
    live = _orders(engine.order_manager.orders.values(), strategy.placed)
    bt = _orders(backtest.orders, bt_strategy.placed)
    assert len(bt) >= 5 and any(o[3] == "limit" for o in bt)
    assert any(o[5] != 0 for o in bt)  # some filled
    assert live == bt
    assert engine.ledger.cash == backtest.daily[-1]["cash"]


async def test_a_dead_stream_blocks_new_risk_and_alerts_until_it_is_back():
    strategy = Momentum()
    engine = _engine(strategy)
    async with make_fake("binance", rate=40, bar_seconds=BAR) as fake:
        stream = BinanceWebSocketAdapter(url=fake.url, config=FAST, rest_url=fake.rest_url)
        engine.add_stream(stream, ["BTCUSDT", "ETHUSDT"], bar_interval=BAR, grace=0.15)
        task = asyncio.create_task(engine.run())
        try:
            await wait_for(lambda: len(getattr(strategy, "seen", ())) >= 2, "first bars")
            assert engine.get_status()["can_trade"] is True
            await fake.restart(down_for=1.0)
            await wait_for(lambda: engine.get_status()["can_trade"] is False, "risk blocked")
            assert "market data" in engine.get_status()["trading_blocked"]
            await wait_for(
                lambda: any(a.kind == "market_data_stream" for a in engine.alerts), "alert"
            )
            n = len(strategy.seen)
            await wait_for(lambda: engine.get_status()["can_trade"] is True, "unblocked")
            await wait_for(lambda: len(strategy.seen) >= n + 3, "bars again")
            status = engine.get_status()["streams"]
            assert status["streams"][0]["reconnects"] >= 1
            assert status["bars"]["backfilled_bars"] >= 1
        finally:
            await engine.shutdown()
            await asyncio.wait_for(task, 10)
    assert stream.state.value == "disconnected"


async def test_an_unfillable_gap_reaches_the_strategy_hook_and_the_audit_log():
    class Told(Momentum):
        def initialize(self):
            super().initialize()
            self.gaps = []

        def on_data_gap(self, gap):
            self.gaps.append(gap)

    strategy = Told()
    engine = _engine(strategy)
    async with make_fake("binance", rate=40, bar_seconds=BAR) as fake:
        stream = BinanceWebSocketAdapter(url=fake.url, config=FAST, rest_url=fake.rest_url)
        engine.add_stream(stream, ["BTCUSDT", "ETHUSDT"], ["trade"], bar_interval=BAR, grace=0.15)
        task = asyncio.create_task(engine.run())
        try:
            await wait_for(lambda: len(getattr(strategy, "seen", ())) >= 2, "first bars")
            fake.rest_fail = True
            await fake.restart(down_for=0.8)
            await wait_for(lambda: strategy.gaps, "strategy told")
        finally:
            fake.rest_fail = False
            await engine.shutdown()
            await asyncio.wait_for(task, 10)
    gap = strategy.gaps[0]
    assert gap.symbol in ("BTCUSDT", "ETHUSDT") and gap.reason.startswith("REST backfill failed")
    assert engine.get_status()["data_gaps"] >= 1
    assert any(a.kind == "market_data_gap" for a in engine.alerts)


async def test_pushed_floats_are_refused_and_pushed_ticks_do_not_call_the_strategy():
    strategy = Momentum()
    engine = _engine(strategy, replay=False)
    engine.configure_bars(bar_interval=BAR, grace=0.1)
    task = asyncio.create_task(engine.run())
    try:
        await wait_for(lambda: engine.reconciliation_state == "ok", "started")
        with pytest.raises(MalformedVenueMessage, match="is a float"):
            engine.push_market_data({"symbol": "BTCUSDT", "price": 42000.5})
        with pytest.raises(MalformedVenueMessage, match="not a float"):
            engine.push_market_data(
                TickData("BTCUSDT", 42000.5, Decimal("1"), datetime.now(UTC))  # type: ignore[arg-type]
            )
        btc = engine.executor.asset_finder.lookup_symbol("BTCUSDT")
        with pytest.raises(MalformedVenueMessage, match="bar close 42000.5 is a float"):
            engine.push_market_data(
                Bar(btc, datetime.now(UTC), *(Decimal(42000),) * 3, 42000.5, Decimal(1))
            )
        assert engine.event_queue.empty()
        now = datetime.now(UTC)
        for i in range(20):
            engine.push_market_data(TickData("BTCUSDT", Decimal(42000 + i), Decimal("0.1"), now))
        await asyncio.sleep(0)
        # The last price moved at once; the strategy has not been called per tick.
        assert engine.executor.data.last_price(btc) == Decimal("42019")
        assert strategy.seen == []
        await wait_for(lambda: len(strategy.seen) == 1, "one bar from twenty ticks", timeout=5)
        bar = engine.executor.data.bar(btc)
        assert (bar.open, bar.high, bar.low, bar.close) == (
            Decimal(42000),
            Decimal(42019),
            Decimal(42000),
            Decimal(42019),
        )
        assert bar.volume == Decimal("2.0")
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)


def test_add_stream_refuses_bad_arguments_with_what_to_fix():
    engine = _engine(Momentum())
    engine.executor.initialize()
    stream = BinanceWebSocketAdapter(config=StreamConfig())
    with pytest.raises(ConfigError, match="must be a rustybt.live.streaming stream"):
        engine.add_stream(object(), ["BTCUSDT"])
    with pytest.raises(ConfigError, match="unknown channel 'book'"):
        engine.add_stream(stream, ["BTCUSDT"], ["book"])
    with pytest.raises(ConfigError, match="needs the assets"):
        engine.add_stream(stream, [])
    with pytest.raises(ConfigError, match="needs 'trade' or 'kline_1m'"):
        engine.add_stream(stream, ["BTCUSDT"], [])
    with pytest.raises(ConfigError, match="seconds or a timedelta"):
        engine.add_stream(stream, ["BTCUSDT"], bar_interval="1m")
    engine.add_stream(stream, ["BTCUSDT"])
    with pytest.raises(ConfigError, match="already streamed"):
        engine.add_stream(BinanceWebSocketAdapter(), ["BTCUSDT"])
