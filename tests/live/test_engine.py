"""LiveTradingEngine core: construction, replay, pushes, status, pause/resume, the event
queue, client order ids, failure handling and broker events — with the real PaperBroker."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.bar import Bar
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.exceptions import (
    ConfigError,
    InvalidOrder,
    MalformedVenueMessage,
    NoMarketData,
    SymbolNotFound,
)
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.data_feed import DataFeed, parse_speed
from rustybt.live.events import (
    AlertEvent,
    EventQueue,
    MarketDataEvent,
    OrderAckEvent,
    OrderFillEvent,
    OrderRejectEvent,
    ScheduledTriggerEvent,
    SystemErrorEvent,
)
from rustybt.live.models import ReconciliationStrategy
from rustybt.live.risk_limits import RiskLimits
from rustybt.live.state_manager import StateManager

D = Decimal
DAY = "2024-01-03"
ONE_SESSION = {"start": DAY, "end": f"{DAY} 23:59:59"}
# The first five minutes of the 3 January session (NYSE opens 14:30 UTC).
TINY = {"start": f"{DAY} 14:31", "end": f"{DAY} 14:35"}


def portal() -> PolarsDataPortal:
    return PolarsDataPortal(bundle_name="demo", data_frequency="minute")


def make_engine(strategy, broker=None, **kw) -> LiveTradingEngine:
    kw.setdefault("circuit_breakers", CircuitBreakerManager())
    kw.setdefault("control_socket", False)
    return LiveTradingEngine(
        strategy=strategy,
        broker_adapter=broker or PaperBroker(starting_cash=D("100000")),
        data_portal=portal(),
        **kw,
    )


async def run(engine: LiveTradingEngine, timeout: float = 30) -> None:
    await asyncio.wait_for(engine.run(), timeout)


async def wait_until(predicate, what: str, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def audit_events(engine: LiveTradingEngine) -> list[dict]:
    return [json.loads(line) for line in engine.audit.path.read_text().splitlines()]


class Counter(TradingAlgorithm):
    """Counts calls; buys 1 AAPL every ``every`` bars."""

    every = 30

    def initialize(self):
        self.aapl = self.symbol("AAPL")
        self.calls = 0
        self.seen_prices = []

    def handle_data(self, context, data):
        self.calls += 1
        self.seen_prices.append(data.current(self.aapl, "price"))
        if self.calls % self.every == 0:
            self.order(self.aapl, 1)


# --- construction ----------------------------------------------------------------------
def test_constructor_accepts_every_spec_parameter_plus_breakers_and_limits(tmp_path):
    breakers = CircuitBreakerManager()
    limits = RiskLimits(max_position_amount=D("100"))
    engine = LiveTradingEngine(
        strategy=Counter(),
        broker_adapter=PaperBroker(starting_cash=D("100000")),
        data_portal=portal(),
        portfolio=None,
        account=None,
        scheduler=None,
        state_manager=StateManager(tmp_path / "state"),
        checkpoint_interval_seconds=60,
        reconciliation_strategy=ReconciliationStrategy.WARN_ONLY,
        reconciliation_interval_seconds=300,
        shadow_mode=False,
        shadow_config=None,
        circuit_breakers=breakers,
        risk_limits=limits,
    )
    assert engine.circuit_breakers is breakers
    assert engine.risk_gate.limits is limits
    assert isinstance(engine.event_queue, EventQueue)
    status = engine.get_status()
    for key in (
        "running",
        "paused",
        "orders_submitted",
        "fills",
        "rejects",
        "errors",
        "events_processed",
        "portfolio_value",
    ):
        assert key in status
    assert status["running"] is False and status["paused"] is False


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"strategy": Counter}, "pass MyStrategy\\(\\)"),
        ({"broker_adapter": object()}, "BrokerAdapter"),
        ({"checkpoint_interval_seconds": 0}, "intervals must be > 0"),
        ({"reconciliation_strategy": "warn_only"}, "ReconciliationStrategy"),
        ({"speed": "warp"}, "speed='warp' is not valid"),
        ({"speed": -2}, "speed must be > 0"),
        ({"start": "2024-01-05", "end": "2024-01-03"}, "is after end"),
        ({"start": "yesterday-ish"}, "is not a date"),
    ],
)
def test_constructor_refuses_bad_arguments_with_a_config_error(kw, match):
    args = {
        "strategy": Counter(),
        "broker_adapter": PaperBroker(),
        "data_portal": portal(),
        "circuit_breakers": CircuitBreakerManager(),
    }
    args.update(kw)
    with pytest.raises(ConfigError, match=match):
        LiveTradingEngine(**args)


def test_default_replay_speed_is_as_fast_as_possible():
    engine = make_engine(Counter())
    assert engine.feed.speed is None
    assert parse_speed("max") is None
    assert parse_speed("60x") == 60.0
    assert parse_speed("realtime") == 1.0


# --- replay ------------------------------------------------------------------------------
async def test_replay_calls_handle_data_once_per_bar_and_fills_orders_on_the_next_bar():
    strategy = Counter()
    engine = make_engine(strategy, **ONE_SESSION)

    await run(engine)
    status = engine.get_status()
    assert strategy.calls == 390 == status["market_events"]
    assert status["events_processed"] >= 390
    # 13 orders (every 30th bar); the one placed on the session's last bar has no next
    # bar to fill on and stays open.
    assert status["orders_submitted"] == 13
    assert status["fills"] == 12 and status["open_orders"] == 1
    assert status["rejects"] == 0 and status["errors"] == 0
    assert status["running"] is False
    assert isinstance(status["portfolio_value"], Decimal)
    assert engine.ledger.positions[strategy.aapl].amount == 12
    (still_open,) = engine.order_manager.open_orders()
    assert still_open.created_dt == datetime(2024, 1, 3, 21, 0, tzinfo=UTC)  # last bar


async def test_status_reports_running_while_the_engine_runs():
    class Peek(Counter):
        def handle_data(self, context, data):
            super().handle_data(context, data)
            if self.calls == 2:
                self.status = self.engine.get_status()

    strategy = Peek()
    engine = make_engine(strategy, **TINY)
    strategy.engine = engine
    await run(engine)
    assert strategy.status["running"] is True
    assert strategy.status["market_events"] == 2
    assert engine.get_status()["running"] is False


async def test_replay_at_a_multiple_of_real_time_paces_bars_by_their_timestamps():
    feed = DataFeed(portal(), "6000x")
    t0 = datetime(2024, 1, 3, 14, 31, tzinfo=UTC)
    first = MarketDataEvent(t0, [])
    assert feed.delay_for(first) == 0.0  # the first bar anchors the pacing
    later = MarketDataEvent(t0 + timedelta(minutes=10), [])
    delay = feed.delay_for(later)
    assert 0 < delay <= 600 / 6000

    # A real engine at 6000x over four one-minute bars (~0.04 s of pacing) completes.
    strategy = Counter()
    engine = make_engine(strategy, speed="6000x", **TINY)
    await run(engine)
    assert strategy.calls == engine.get_status()["market_events"] == 5


async def test_stop_after_market_events_bounds_a_replay():
    strategy = Counter()
    engine = make_engine(strategy, **ONE_SESSION)
    engine.stop_after_market_events = 7
    await run(engine)
    assert strategy.calls == 7


# --- pushes, pause and resume ------------------------------------------------------------
@dataclass
class Tick:
    """Shaped like the spec's TickData (symbol, price, volume, timestamp)."""

    symbol: str
    price: Decimal
    volume: Decimal
    timestamp: datetime


class PushTrader(TradingAlgorithm):
    def initialize(self):
        self.aapl = self.symbol("AAPL")
        self.msft = self.symbol("MSFT")
        self.prices = []
        self.positions_seen = []
        self.errors = []
        self.buy_next = False

    def handle_data(self, context, data):
        self.prices.append(data.current(self.aapl, "price"))
        pos = context.portfolio.positions.get(self.aapl)
        self.positions_seen.append(pos.amount if pos is not None else 0)
        if self.buy_next:
            self.buy_next = False
            self.order(self.aapl, 2)


async def _started_push_engine(strategy, **kw):
    engine = make_engine(strategy, stop_when_data_ends=False, **TINY, **kw)
    task = asyncio.create_task(engine.run())
    await wait_until(lambda: engine.get_status()["market_events"] == 5, "replay of 5 bars")
    await wait_until(lambda: not engine.feed.replaying, "end of replay")
    return engine, task


async def _stop(engine, task):
    await engine.shutdown()
    await asyncio.wait_for(task, 10)


async def test_push_market_data_accepts_tick_objects_dicts_and_bars_from_any_thread():
    strategy = PushTrader()
    engine, task = await _started_push_engine(strategy)
    try:
        t = datetime(2024, 1, 3, 15, 0, tzinfo=UTC)
        engine.push_market_data(Tick("AAPL", D("190.01"), D("500"), t))
        engine.push_market_data({"symbol": "aapl", "close": "190.02", "timestamp": t.isoformat()})
        engine.push_market_data(
            Bar(strategy.aapl, t + timedelta(minutes=1), *(D("190.03"),) * 4, D("10"))
        )
        await asyncio.to_thread(
            engine.push_market_data,
            {"asset": strategy.aapl, "price": "190.04", "dt": t + timedelta(minutes=2)},
        )
        await wait_until(lambda: len(strategy.prices) == 9, "four pushed ticks")
        assert strategy.prices[-4:] == [D("190.01"), D("190.02"), D("190.03"), D("190.04")]
    finally:
        await _stop(engine, task)


async def test_a_late_tick_never_replaces_a_newer_price():
    strategy = PushTrader()
    engine, task = await _started_push_engine(strategy)
    try:
        t = datetime(2024, 1, 3, 15, 0, tzinfo=UTC)
        engine.push_market_data(Tick("AAPL", D("190.50"), D("5"), t + timedelta(minutes=1)))
        engine.push_market_data(Tick("AAPL", D("180.00"), D("5"), t))  # arrives late
        await wait_until(lambda: len(strategy.prices) == 7, "two pushed ticks")
        assert strategy.prices[-2:] == [D("190.50"), D("190.50")]
    finally:
        await _stop(engine, task)


async def test_fill_from_a_pushed_tick_is_applied_before_the_strategy_sees_the_next_tick():
    strategy = PushTrader()
    engine, task = await _started_push_engine(strategy)
    try:
        t = datetime(2024, 1, 3, 15, 0, tzinfo=UTC)
        strategy.buy_next = True
        engine.push_market_data(Tick("AAPL", D("190"), D("1000"), t))
        await wait_until(lambda: engine.get_status()["orders_submitted"] == 1, "order sent")
        await wait_until(lambda: engine.order_manager.drain is not None, "drain")
        await asyncio.sleep(0)
        engine.push_market_data(Tick("AAPL", D("191"), D("1000"), t + timedelta(seconds=1)))
        await wait_until(lambda: len(strategy.prices) == 7, "second tick")
        assert strategy.positions_seen[-1] == 2  # the fill landed between the ticks
        assert engine.get_status()["fills"] == 1
        assert engine.ledger.positions[strategy.aapl].cost_basis == D("191")
    finally:
        await _stop(engine, task)


async def test_malformed_pushes_raise_typed_errors_and_enqueue_nothing():
    engine = make_engine(PushTrader(), **TINY)
    engine.executor.initialize()
    q = engine.event_queue
    with pytest.raises(MalformedVenueMessage, match="no price"):
        engine.push_market_data({"symbol": "AAPL"})
    with pytest.raises(MalformedVenueMessage, match="finite number > 0"):
        engine.push_market_data({"symbol": "AAPL", "price": "NaN"})
    with pytest.raises(MalformedVenueMessage, match="finite number > 0"):
        engine.push_market_data({"symbol": "AAPL", "price": "-3"})
    with pytest.raises(MalformedVenueMessage, match="neither 'asset' nor 'symbol'"):
        engine.push_market_data({"price": "3"})
    with pytest.raises(MalformedVenueMessage, match="ISO 8601"):
        engine.push_market_data({"symbol": "AAPL", "price": "3", "timestamp": "noon"})
    with pytest.raises(SymbolNotFound, match="unknown symbol 'NOPE'"):
        engine.push_market_data({"symbol": "NOPE", "price": "3"})
    assert q.empty()


async def test_pause_stops_the_strategy_but_not_market_data_and_resume_restarts_it():
    strategy = PushTrader()
    engine, task = await _started_push_engine(strategy)
    try:
        t = datetime(2024, 1, 3, 15, 0, tzinfo=UTC)
        await engine.pause()
        assert engine.get_status()["paused"] is True
        engine.push_market_data(Tick("AAPL", D("200"), D("1"), t))
        await wait_until(lambda: engine.get_status()["market_events"] == 6, "paused tick")
        assert len(strategy.prices) == 5
        assert engine.ledger.cash == D("100000")  # market data still flows to the ledger
        await engine.resume()
        engine.push_market_data(Tick("AAPL", D("201"), D("1"), t + timedelta(seconds=1)))
        await wait_until(lambda: len(strategy.prices) == 6, "resumed tick")
        assert strategy.prices[-1] == D("201")
        assert engine.get_status()["paused"] is False
    finally:
        await _stop(engine, task)


# --- the event queue -------------------------------------------------------------------------
def test_event_queue_pops_by_priority_then_arrival_order():
    q = EventQueue()
    now = datetime(2024, 1, 3, tzinfo=UTC)
    md1, md2 = MarketDataEvent(now, []), MarketDataEvent(now, [])
    ack = OrderAckEvent("c", "b")
    rej = OrderRejectEvent("c", "b", "no")
    fill = OrderFillEvent("c", "b", None, D(1), D(1), D(0), "f1")
    fill2 = OrderFillEvent("c", "b", None, D(1), D(1), D(0), "f2")
    trig = ScheduledTriggerEvent(lambda: None, "job")
    err = SystemErrorEvent("boom")
    alert = AlertEvent("x", "y")
    for ev in (md1, ack, fill, trig, md2, rej, err, fill2, alert):
        q.put_nowait(ev)
    out = [q.get_nowait() for _ in range(len(q))]
    assert out == [err, alert, fill, fill2, ack, rej, trig, md1, md2]
    assert q.get_nowait() is None


async def test_event_queue_get_wakes_on_put_and_times_out_when_empty():
    q = EventQueue()
    q.bind_loop(asyncio.get_running_loop())
    assert await q.get(timeout=0.01) is None
    ev = SystemErrorEvent("x")
    asyncio.get_running_loop().call_soon(q.put_threadsafe, ev)
    assert await q.get(timeout=5) is ev


# --- client order ids ---------------------------------------------------------------------------
async def test_client_order_ids_are_unique_across_restarts(tmp_path):
    venue = tmp_path / "venue.json"
    ids: list[str] = []
    for _ in range(3):
        engine = make_engine(
            Counter(),
            PaperBroker(starting_cash=D("100000"), state_path=venue),
            state_dir=tmp_path / "state",
            **ONE_SESSION,
        )
        engine.strategy.every = 2
        engine.stop_after_market_events = 5  # a restart resumes after the last bar seen
        await run(engine)
        # Orders this session created (a restored engine also holds adopted ones).
        ids += [i for i in engine.order_manager.orders if engine.session_id in i]
        assert engine.get_status()["rejects"] == 0  # the venue refused no id as a duplicate
    assert len(ids) >= 6
    assert len(set(ids)) == len(ids)
    assert len({i.rsplit("-", 1)[0] for i in ids}) == 3  # one id prefix per session
    venue_ids = PaperBroker(state_path=venue).submissions
    assert sorted(venue_ids) == sorted(ids)


async def test_two_engines_started_back_to_back_have_distinct_sessions():
    a, b = make_engine(Counter()), make_engine(Counter())
    assert a.session_id != b.session_id
    assert a.order_manager.next_id() != b.order_manager.next_id()


# --- failures -----------------------------------------------------------------------------------
class Flaky(Counter):
    def handle_data(self, context, data):
        super().handle_data(context, data)
        if self.calls % 3 == 0:
            raise ZeroDivisionError("strategy bug")


async def test_strategy_exception_is_logged_with_traceback_counted_and_never_kills_the_engine():
    strategy = Flaky()
    strategy.every = 2
    engine = make_engine(strategy, **TINY)
    with capture_logs() as logs:
        await run(engine)
    assert strategy.calls == 5  # every bar was still handed to the strategy
    status = engine.get_status()
    assert status["errors"] == 1 == status["strategy_errors"]
    assert status["fatal_error"] is None
    assert status["orders_submitted"] == 2
    (entry,) = [e for e in logs if e["event"] == "strategy_error"]
    assert "ZeroDivisionError: strategy bug" in entry["error"]
    assert "Traceback" in entry["traceback"] and "handle_data" in entry["traceback"]


async def test_engine_internal_failure_becomes_a_system_error_and_a_graceful_shutdown(tmp_path):
    strategy = Counter()
    engine = make_engine(strategy, state_dir=tmp_path / "state", **ONE_SESSION)
    # A corrupt event from a (hypothetical) broken feed: the bar list holds garbage.
    engine.event_queue.put_nowait(MarketDataEvent(datetime(2024, 1, 3, 14, 31, tzinfo=UTC), [42]))
    with capture_logs() as logs:
        await run(engine)  # returns: a graceful shutdown, not an exception
    status = engine.get_status()
    assert status["system_errors"] == 1
    assert "MarketDataEvent handler failed" in status["fatal_error"]
    assert status["running"] is False
    assert strategy.calls < 390  # it stopped instead of trading on
    assert any(e["event"] == "engine_internal_error" for e in logs)
    kinds = [e["event"] for e in audit_events(engine)]
    assert "system_error" in kinds and kinds[-1] == "engine_stopped"
    assert engine.state_manager.list_checkpoints(engine.strategy_name)  # final checkpoint


async def test_unknown_symbol_in_initialize_fails_the_run_with_a_clear_error():
    class Typo(TradingAlgorithm):
        def initialize(self):
            self.asset = self.symbol("APPL")

    engine = make_engine(Typo(), **TINY)
    with pytest.raises(SymbolNotFound, match="unknown symbol 'APPL'.*AAPL"):
        await run(engine)
    assert engine.get_status()["running"] is False


async def test_bad_orders_from_the_strategy_raise_typed_errors_it_can_catch():
    class BadOrders(TradingAlgorithm):
        def initialize(self):
            self.aapl = self.symbol("AAPL")
            self.btc = self.symbol("BTCUSDT")
            self.caught = {}

        def handle_data(self, context, data):
            if self.caught:
                return
            attempts = {
                "nan": lambda: self.order(self.aapl, D("NaN")),
                "inf": lambda: self.order(self.aapl, float("inf")),
                "zero_limit": lambda: self.order(self.aapl, 1, limit_price=D("0")),
                "negative_stop": lambda: self.order(self.aapl, 1, stop_price=D("-1")),
                "off_tick": lambda: self.order(self.aapl, 1, limit_price=D("100.001")),
                "not_an_asset": lambda: self.order("AAPL", 1),
            }
            for name, attempt in attempts.items():
                try:
                    attempt()
                except Exception as exc:
                    self.caught[name] = (type(exc), str(exc))

    strategy = BadOrders()
    engine = make_engine(strategy, **TINY)
    await run(engine)
    c = strategy.caught
    assert set(c) == {"nan", "inf", "zero_limit", "negative_stop", "off_tick", "not_an_asset"}
    assert all(issubclass(t, InvalidOrder) for t, _ in c.values())
    assert "tick" in c["off_tick"][1]
    assert engine.get_status()["orders_submitted"] == 0
    assert engine.get_status()["errors"] == 0


async def test_order_on_an_asset_without_market_data_yet_is_rejected_and_the_run_goes_on():
    class Early(PushTrader):
        def handle_data(self, context, data):
            try:
                self.order(self.msft, 1)
            except NoMarketData as exc:
                self.errors.append(str(exc))

    strategy = Early()
    engine, task = await _started_push_engine(strategy)
    await _stop(engine, task)
    assert strategy.errors == []  # MSFT traded in the replay
    strategy2 = Early()
    engine2 = make_engine(strategy2, stop_when_data_ends=False, **TINY)
    engine2.executor.initialize()
    # Before any bar: no price for MSFT. Not an exception: a rejected order, and the
    # strategy's next line runs.
    assert strategy2.order(strategy2.msft, 1) is None
    (rejected,) = engine2.order_manager.orders.values()
    assert rejected.status.value == "rejected"
    assert "no market data for MSFT yet" in rejected.reason


# --- broker events ------------------------------------------------------------------------------
class EventMix(TradingAlgorithm):
    """Bar 1: a big market buy (partially filled by the volume cap), a far limit buy and a
    short sale (rejected: shorting is off). Bar 3: cancel the limit."""

    def initialize(self):
        self.jpm = self.symbol("JPM")
        self.msft = self.symbol("MSFT")
        self.calls = 0
        self.ids = {}

    def handle_data(self, context, data):
        self.calls += 1
        if self.calls == 1:
            volume = data.current(self.jpm, "volume")
            self.ids["big"] = self.order(self.jpm, int(volume / 40) * 2 + 1)
            price = data.current(self.jpm, "price")
            self.ids["limit"] = self.order(self.jpm, 1, limit_price=(price / 2).quantize(D("0.01")))
            self.ids["short"] = self.order(self.msft, -5)
        elif self.calls == 3:
            self.cancel_order(self.ids["limit"])


async def test_ack_partial_fill_fill_cancel_and_reject_all_reach_the_engine():
    strategy = EventMix()
    broker = PaperBroker(starting_cash=D("10000000"), volume_limit_pct=D("0.025"))
    engine = make_engine(strategy, broker, **ONE_SESSION)
    engine.stop_after_market_events = 30
    await run(engine)
    om = engine.order_manager
    big, limit = (om.get_order(strategy.ids[k]) for k in ("big", "limit"))
    # A short sale is refused by the paper venue at submit: order() returns None and the
    # order is kept as REJECTED with the venue's reason.
    assert strategy.ids["short"] is None
    (short,) = [o for o in om.orders.values() if o.asset == strategy.msft]
    assert big.status.value == "filled" and big.filled == big.amount
    assert limit.status.value == "cancelled"
    assert short.status.value == "rejected" and "allow_short" in short.reason
    events = audit_events(engine)
    by_kind: dict[str, list[dict]] = {}
    for e in events:
        by_kind.setdefault(e["event"], []).append(e)
    assert {e["client_order_id"] for e in by_kind["broker_ack"]} >= {big.id, limit.id}
    big_fills = [e for e in by_kind["fill"] if e["client_order_id"] == big.id]
    assert len(big_fills) >= 2  # a partial fill, then the rest on later bars
    assert [e["client_order_id"] for e in by_kind["order_cancelled"]] == [limit.id]
    assert short.id in [e["client_order_id"] for e in by_kind["order_rejected"]]
    status = engine.get_status()
    assert status["rejects"] == 1
    assert status["fills"] == len(big_fills)
    assert status["open_orders"] == 0


def test_audit_file_is_per_session_under_state_dir(tmp_path):
    engine = make_engine(Counter(), state_dir=tmp_path / "s")
    assert engine.audit.path.parent == Path(tmp_path / "s" / "logs")
    assert engine.session_id in engine.audit.path.name


async def test_shutdown_before_run_means_the_engine_never_trades():
    engine = make_engine(Counter(), **TINY)
    await engine.shutdown()
    with pytest.raises(ConfigError, match="shut down before run"):
        await run(engine)
    assert engine.broker.submissions == []
    assert engine.get_status()["market_events"] == 0
