"""Shadow trading inside a running engine: the real PaperBroker, the real demo bundle."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.exceptions import ConfigError
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.shadow.config import ShadowTradingConfig

D = Decimal
SESSION = {"start": "2024-01-03 14:31", "end": "2024-01-03 16:30"}


class EveryTen(TradingAlgorithm):
    """Buys 5 AAPL every 10th bar while the account it looks at holds none.

    With ``venue`` it looks at the broker's account instead of its own portfolio: the live
    instance sees its position appear, the shadow's copy of the broker never changes, so
    the shadow keeps buying — a strategy whose live behaviour depends on the broker.
    """

    def __init__(self, venue=None) -> None:
        super().__init__()
        self.venue = venue

    def initialize(self):
        self.a = self.symbol("AAPL")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars % 10:
            return
        if self.venue is not None:
            held = self.a in self.venue.ledger.positions
        else:
            held = self.a in self.portfolio.positions
        if not held:
            self.order(self.a, 5)


class Flipper(TradingAlgorithm):
    def initialize(self):
        self.a = self.symbol("JPM")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars % 20 == 0:
            self.order_target(self.a, 40 if (self.bars // 20) % 2 else 0)


def make_engine(strategy, broker, state_dir: Path, config=None, **kw) -> LiveTradingEngine:
    kw.setdefault("circuit_breakers", CircuitBreakerManager())
    kw.setdefault("control_socket", False)
    for k, v in SESSION.items():
        kw.setdefault(k, v)
    return LiveTradingEngine(
        strategy=strategy,
        broker_adapter=broker,
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        state_dir=state_dir,
        shadow_mode=True,
        shadow_config=config or ShadowTradingConfig(max_misalignment_count=3),
        **kw,
    )


async def run(engine: LiveTradingEngine, events: int | None = None) -> None:
    engine.stop_after_market_events = events
    await asyncio.wait_for(engine.run(), 60)


async def test_broker_reading_strategy_is_caught_on_the_right_bar_and_trips_after_exactly_three(
    tmp_path,
):
    broker = PaperBroker(starting_cash=D("100000"))
    engine = make_engine(EveryTen(venue=broker), broker, tmp_path / "state")
    trips = []
    engine.circuit_breakers.add_listener(lambda b, e: trips.append((b.name, e)))
    await run(engine)
    rep = engine.get_shadow_report()
    first = engine.feed._dts[0]
    # Both buy on bar 10; live holds 5 from bar 11 on, the shadow's broker copy never
    # does: bars 20, 30 and 40 differ, the third trips the breaker.
    bars = [first + timedelta(minutes=n - 1) for n in (20, 30, 40)]
    assert [m["dt"] for m in rep.misaligned[:3]] == [b.isoformat() for b in bars]
    assert rep.misaligned[0]["live"] == []
    assert rep.misaligned[0]["shadow"][0]["amount"] == "5"
    breaker = engine.circuit_breakers.get("alignment")
    assert breaker.is_tripped and breaker.tripped_at == bars[2]
    assert breaker.misalignments == 3
    assert trips == [("alignment", "tripped")]
    assert not engine.circuit_breakers.can_trade()
    # Halted like any breaker: the live strategy stopped, so later bars are not compared.
    assert engine.stats["strategy_calls_skipped"] > 0
    assert len(rep.misaligned) == 3
    assert len(broker.submissions) == 1


async def test_slippage_and_latency_match_hand_computed_values(tmp_path):
    # The venue takes 90 s to accept: a live order placed on bar t fills at bar t+2, the
    # shadow's at bar t+1 (both at the bar's close, no slippage model).
    broker = PaperBroker(starting_cash=D("100000"), order_latency_ms=90_000)
    engine = make_engine(EveryTen(), broker, tmp_path / "state")
    await run(engine, events=25)
    rep = engine.get_shadow_report()
    portal = engine.feed.portal
    first = engine.feed._dts[0]
    aapl = engine.executor.asset_finder.lookup_symbol("AAPL")

    def close(n):
        return portal.get_spot_value(aapl, "close", first + timedelta(minutes=n - 1))

    live, shadow = close(12), close(11)
    assert rep.pairs_compared == 1
    assert rep.avg_slippage_bps == ((live - shadow) / shadow * 10_000).quantize(D("0.0001"))
    assert rep.avg_latency_ms == D("120000.0000")  # bar 10 -> bar 12
    assert rep.execution_quality == 1
    assert rep.alignment_rate == 1


async def test_a_restart_resumes_the_shadow_where_the_checkpoint_left_it(tmp_path):
    whole = make_engine(Flipper(), PaperBroker(starting_cash=D("100000")), tmp_path / "a")
    await run(whole, events=110)
    expected = whole.get_shadow_report().to_dict()
    expected_ledger = whole.shadow.ledger.to_dict()

    path = tmp_path / "venue.json"
    first = make_engine(Flipper(), PaperBroker(D("100000"), state_path=path), tmp_path / "b")
    await run(first, events=70)
    second = make_engine(Flipper(), PaperBroker(D("100000"), state_path=path), tmp_path / "b")
    await run(second, events=40)
    assert second._restored_from is not None
    assert second.shadow.steps == 110
    assert second.shadow.algo.bars == 110
    assert second.get_shadow_report().to_dict() == expected
    assert second.shadow.ledger.to_dict() == expected_ledger


def test_bad_shadow_config_and_report_without_shadow_raise_config_error(tmp_path):
    broker = PaperBroker(starting_cash=D("100000"))
    with pytest.raises(ConfigError, match="ShadowTradingConfig"):
        LiveTradingEngine(
            strategy=Flipper(),
            broker_adapter=broker,
            shadow_mode=True,
            shadow_config={"enabled": True},
            state_dir=tmp_path,
        )
    plain = LiveTradingEngine(strategy=Flipper(), broker_adapter=broker, state_dir=tmp_path)
    with pytest.raises(ConfigError, match="shadow_mode=True"):
        plain.get_shadow_report()


async def test_an_alignment_trip_is_durable_a_restarted_engine_comes_back_halted(tmp_path):
    broker = PaperBroker(starting_cash=D("100000"))
    first = make_engine(EveryTen(venue=broker), broker, tmp_path / "state")
    await run(first, events=45)
    assert first.circuit_breakers.get("alignment").is_tripped
    again = PaperBroker(starting_cash=D("100000"))
    second = make_engine(EveryTen(venue=again), again, tmp_path / "state")
    await run(second, events=5)
    breaker = second.circuit_breakers.get("alignment")
    assert breaker.is_tripped and "misaligned bars" in breaker.get_trip_reason()
    assert not second.circuit_breakers.can_trade()
    assert again.submissions == []  # halted from the first bar: nothing was sent


def test_malformed_shadow_state_raises_checkpoint_corrupted_and_changes_nothing(tmp_path):
    from rustybt.exceptions import CheckpointCorrupted

    engine = make_engine(Flipper(), PaperBroker(starting_cash=D("100000")), tmp_path)
    shadow = engine.shadow
    before = shadow.to_dict()
    good = dict(before, ledger={"cash": "not money"})
    for bad in ({"version": 2}, {"version": 1}, good):
        with pytest.raises(CheckpointCorrupted, match="shadow"):
            shadow.load(bad)
        assert shadow.to_dict() == before


class ScheduledOnly(TradingAlgorithm):
    """Trades only from scheduled functions: a buy 10 minutes after the open, a target
    back to flat at 11:00 New York, every day."""

    def initialize(self):
        from rustybt.scheduling import date_rules, time_rules

        self.a = self.symbol("AAPL")
        self.runs = 0
        self.schedule_function(self.buy, date_rules.every_day(), time_rules.market_open(minutes=10))
        self.schedule_function(
            self.flatten, date_rules.every_day(), time_rules.market_open(minutes=30)
        )

    def buy(self, context, data):
        self.runs += 1
        self.order(self.a, 7)

    def flatten(self, context, data):
        self.runs += 1
        self.order_target(self.a, 0)

    def handle_data(self, context, data):
        pass


async def test_orders_placed_only_from_scheduled_functions_are_fully_aligned(tmp_path):
    engine = make_engine(ScheduledOnly(), PaperBroker(starting_cash=D("100000")), tmp_path)
    await run(engine, events=60)
    rep = engine.get_shadow_report()
    # The shadow ran both jobs on the same bars as live, and placed the same orders.
    assert engine.strategy.runs == engine.shadow.algo.runs == 2
    assert rep.signal_bars == 2
    assert rep.alignment_rate == 1 and rep.misaligned == []
    assert rep.pairs_compared == 2 and rep.execution_quality == 1
    assert not engine.circuit_breakers.get("alignment").is_tripped


class SlippedBuyer(TradingAlgorithm):
    """Sets its own slippage and commission in initialize, then buys on bars 5 and 15."""

    def initialize(self):
        from rustybt.finance.commission import PerShare
        from rustybt.finance.slippage import FixedBasisPointsSlippage

        self.a = self.symbol("AAPL")
        self.bars = 0
        self.set_slippage(FixedBasisPointsSlippage(basis_points=25, volume_limit=1))
        self.set_commission(PerShare(cost=0.01, min_trade_cost=1))

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars in (5, 15):
            self.order(self.a, 10)


async def test_the_strategys_cost_models_reach_the_shadows_simulated_venue_too(tmp_path):
    engine = make_engine(SlippedBuyer(), PaperBroker(starting_cash=D("100000")), tmp_path)
    await run(engine, events=30)
    rep = engine.get_shadow_report()
    assert rep.pairs_compared == 2
    # Same 25 bps slippage and the same commission on both sides: identical fills.
    assert rep.avg_slippage_bps == 0
    assert engine.shadow.ledger.fees_paid == engine.ledger.fees_paid == D("2")
    assert rep.returns_deviation == 0
    assert rep.alignment_rate == 1


def test_paper_broker_execution_rules_are_copies_sharing_nothing_with_the_venue():
    from rustybt.finance.kernel import ExecutionRules
    from rustybt.finance.slippage import FixedSlippage
    from rustybt.live.brokers.base import BrokerAdapter

    broker = PaperBroker(starting_cash=D("1000"), volume_limit_pct=D("0.5"), allow_short=True)
    rules = broker.execution_rules()
    assert isinstance(rules, ExecutionRules)
    assert rules.simulator.volume_limit_pct == D("0.5") and rules.rules.allow_short
    before = type(broker.execution_rules().simulator.slippage_model)
    rules.set_cost_models(slippage_model=FixedSlippage(spread=1))
    assert rules.simulator.volume_limit_pct is None  # the model's own cap replaced it
    again = broker.execution_rules()  # the venue itself is unchanged
    assert again.simulator.volume_limit_pct == D("0.5")
    assert type(again.simulator.slippage_model) is before is not FixedSlippage
    assert BrokerAdapter.execution_rules(broker) is None  # a real venue: no model


class Recorder(TradingAlgorithm):
    """Writes down what ``data`` shows on each bar and buys 1 on every second bar."""

    def initialize(self):
        self.a = self.symbol("AAPL")
        self.seen = []

    def handle_data(self, context, data):
        hist = data.history(self.a, "price", 3, "1m")
        self.seen.append((data.current_dt, data.current(self.a, "price"), list(hist)))
        if len(self.seen) % 2 == 0:
            self.order(self.a, 1)


async def test_pushed_bars_in_a_burst_each_shadow_step_sees_the_data_of_its_own_bar(tmp_path):
    from datetime import UTC, datetime

    from rustybt.data.bar import Bar

    strategy = Recorder()
    engine = make_engine(
        strategy,
        PaperBroker(starting_cash=D("100000")),
        tmp_path,
        replay=False,
        stop_when_data_ends=False,
        start=None,
        end=None,
    )
    task = asyncio.create_task(engine.run())
    try:
        for _ in range(1000):
            if engine.get_status()["reconciliation"] == "ok":
                break
            await asyncio.sleep(0.01)
        assert not engine.feed.replaying
        t0 = datetime(2024, 1, 31, 14, 31, tzinfo=UTC)
        # All queued before the engine runs any: each bar's shadow step is still queued
        # when the next bar reaches the shared data view, and must run first.
        for i in range(6):
            p = D("190") + i
            engine.push_market_data(
                Bar(strategy.a, t0 + timedelta(minutes=i), p, p, p, p, D("1e6"))
            )
        for _ in range(1000):
            if engine.shadow.steps == 6 and not engine.shadow.pending:
                break
            await asyncio.sleep(0.01)
        twin = engine.shadow.algo
        assert len(strategy.seen) == 6
        assert twin.seen == strategy.seen
        assert [s[1] for s in twin.seen] == [D("190") + i for i in range(6)]
        rep = engine.get_shadow_report()
        assert rep.signal_bars == 3 and rep.alignment_rate == 1
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)
