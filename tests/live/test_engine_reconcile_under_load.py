"""Reconciliation runs at its interval whatever the data rate (issue #10 item 2), and a
failing round never ends it (item 8).

The broker answers after a real round trip (an awaited delay on every account query)
while ticks arrive every few ms, so the event loop always moves during the fetch.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rustybt import TradingAlgorithm
from rustybt.data.bar import Bar
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.models import ReconciliationStrategy
from tests.live.test_engine import make_engine, wait_until

D = Decimal
T0 = datetime(2024, 1, 31, 14, 31, tzinfo=UTC)


class SlowBroker(PaperBroker):
    """The paper venue behind a network: every account query takes ``rtt`` seconds."""

    def __init__(self, rtt: float = 0.02, **kw) -> None:
        super().__init__(**kw)
        self.rtt = rtt
        self.extra_positions: list[dict] = []

    async def get_positions(self):
        await asyncio.sleep(self.rtt)
        return (await super().get_positions()) + self.extra_positions

    async def get_account_info(self):
        await asyncio.sleep(self.rtt)
        return await super().get_account_info()

    async def get_open_orders(self):
        await asyncio.sleep(self.rtt)
        return await super().get_open_orders()


class Idle(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.msft = self.symbol("MSFT")

    def handle_data(self, context, data):
        pass


class BuyEveryTick(Idle):
    def handle_data(self, context, data):
        self.order(self.asset, 1)


async def _tick_forever(engine, asset, stop: asyncio.Event, every: float = 0.003) -> int:
    n = 0
    while not stop.is_set() and n < 2000:  # bounded: ~6 s at most
        p = D("100")
        engine.push_market_data(Bar(asset, T0 + timedelta(seconds=n), p, p, p, p, D("1e6")))
        n += 1
        await asyncio.sleep(every)
    return n


async def _start(strategy, broker, **kw):
    engine = make_engine(
        strategy,
        broker,
        replay=False,
        stop_when_data_ends=False,
        reconciliation_interval_seconds=0.1,
        **kw,
    )
    task = asyncio.create_task(engine.run())
    await wait_until(lambda: engine.get_status()["reconciliation"] == "ok", "startup")
    return engine, task


async def test_a_real_discrepancy_is_seen_at_the_interval_under_a_tick_every_few_ms():
    broker = SlowBroker(starting_cash=D("100000"))
    strategy = Idle()
    engine, task = await _start(strategy, broker)
    stop = asyncio.Event()
    ticker = asyncio.create_task(_tick_forever(engine, strategy.asset, stop))
    try:
        base = engine.stats["reconciliations"]
        await wait_until(lambda: engine.stats["reconciliations"] >= base + 3, "rounds", 5)
        # 500 shares appear at the venue behind the engine's back.
        broker.ledger.apply_fill(strategy.asset, D("500"), D("100"), D("0"))

        def seen() -> bool:
            report = engine.last_reconciliation
            return report is not None and any(
                d.asset == strategy.asset and d.broker_amount == 500
                for d in report.position_discrepancies
            )

        await wait_until(seen, "the 500-share discrepancy", 5)
        assert engine.get_status()["market_events"] > 50  # ticks really flowed meanwhile
        assert engine.last_reconciliation.cash_discrepancy is not None
    finally:
        stop.set()
        await ticker
        await engine.shutdown()
        await asyncio.wait_for(task, 10)


async def test_fills_during_the_round_trip_are_not_mistaken_for_discrepancies():
    broker = SlowBroker(starting_cash=D("1000000"))
    strategy = BuyEveryTick()
    engine, task = await _start(
        strategy, broker, reconciliation_strategy=ReconciliationStrategy.HALT_AND_ALERT
    )
    stop = asyncio.Event()
    ticker = asyncio.create_task(_tick_forever(engine, strategy.asset, stop))
    try:
        base = engine.stats["reconciliations"]
        await wait_until(lambda: engine.stats["reconciliations"] >= base + 5, "rounds", 8)
        assert engine.get_status()["fills"] > 20  # fills happened during round trips
        assert engine.reconciliation_state == "ok", engine.last_reconciliation.to_dict()
        assert not engine.get_status()["paused"]
    finally:
        stop.set()
        await ticker
        await engine.shutdown()
        await asyncio.wait_for(task, 10)


async def test_trust_broker_failing_on_a_balance_with_no_price_is_reported_and_the_loop_goes_on():
    broker = SlowBroker(rtt=0.0, starting_cash=D("100000"))
    strategy = Idle()
    engine, task = await _start(
        strategy, broker, reconciliation_strategy=ReconciliationStrategy.TRUST_BROKER
    )
    try:
        # A spot balance the venue reports with neither an average nor a last price.
        broker.extra_positions = [
            {"asset": strategy.msft, "amount": D("5"), "average_price": None, "last_price": None}
        ]
        await wait_until(lambda: engine.reconciliation_state == "adjust_failed", "the failure")
        status = engine.get_status()
        assert status["can_trade"] is False and "TRUST_BROKER" in status["trading_blocked"]
        assert any(a.kind == "reconciliation" for a in engine.alerts)
        rounds = engine.stats["reconciliations"]
        await wait_until(lambda: engine.stats["reconciliations"] >= rounds + 2, "more rounds")
        # The venue's answer becomes usable again: the next round adopts it and unblocks.
        broker.extra_positions = []
        await wait_until(lambda: engine.get_status()["can_trade"], "trading again", 5)
        assert engine.reconciliation_state in ("ok", "adjusted")
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)
