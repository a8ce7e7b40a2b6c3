"""Reconciliation inside the engine: fail-closed start-up, an unreachable broker, the
periodic repeat, and the three strategies (TRUST_BROKER, HALT_AND_ALERT, WARN_ONLY).

The venue is the real PaperBroker, fed by pushed ticks like a real venue's stream (its
``simulated`` flag is off, so the engine does not replay the bundle). "Unreachable" is a
tiny real subclass whose account queries raise ``BrokerConnectionError``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from decimal import Decimal

from structlog.testing import capture_logs

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.exceptions import BrokerConnectionError
from rustybt.finance.order import LimitOrder
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.journal import OrderJournal
from rustybt.live.models import ReconciliationStrategy

D = Decimal
PRICE = D("170.00")


class StreamVenue(PaperBroker):
    """The paper venue fed by a stream; its account API can be made unreachable."""

    simulated = False

    def __init__(self, **kw) -> None:
        super().__init__(starting_cash=D("100000"), **kw)
        self.reachable = True

    async def get_positions(self):
        if not self.reachable:
            raise BrokerConnectionError("connection refused: venue unreachable")
        return await super().get_positions()

    async def get_account_info(self):
        if not self.reachable:
            raise BrokerConnectionError("connection refused: venue unreachable")
        return await super().get_account_info()


class Trader(TradingAlgorithm):
    """Buys 10 JPM per bar while ``buy`` is set; cancels what is open when ``cancel`` is."""

    def initialize(self):
        self.asset = self.symbol("JPM")
        self.calls = 0
        self._buy = True
        self._cancel = False
        self._resting = False

    def handle_data(self, context, data):
        self.calls += 1
        if self._resting:
            self._resting = False
            self.order(self.asset, 5, style=LimitOrder(D("1.00")))
        if self._cancel:
            self._cancel = False
            for o in self.get_open_orders(self.asset):
                self.cancel_order(o)
        if self._buy:
            self.order(self.asset, 10)


def make_engine(strategy, broker, tmp_path, **kw) -> LiveTradingEngine:
    kw.setdefault("circuit_breakers", CircuitBreakerManager())
    kw.setdefault("control_socket", False)
    kw.setdefault("reconciliation_interval_seconds", 3600)
    kw.setdefault("checkpoint_interval_seconds", 3600)
    return LiveTradingEngine(
        strategy=strategy,
        broker_adapter=broker,
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        state_dir=tmp_path / "state",
        **kw,
    )


async def wait_until(predicate, what: str, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.asynccontextmanager
async def running(engine: LiveTradingEngine):
    task = asyncio.create_task(engine.run())
    try:
        # start-up is done once the supervised tasks (after the first reconciliation) exist
        await wait_until(
            lambda: len(engine.supervisor.tasks) >= 3 or task.done(), "engine start-up"
        )
        if task.done():
            task.result()
        yield task
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)


async def push(engine: LiveTradingEngine, price: Decimal = PRICE) -> None:
    """One tick for the strategy's asset; returns once it and its orders are handled."""
    n = engine.stats["market_events"]
    engine.push_market_data(
        {
            "asset": engine.strategy.asset,
            "price": price,
            "volume": D(10**6),
            "timestamp": datetime.now(UTC),
        }
    )
    await wait_until(lambda: engine.stats["market_events"] > n, "tick handled")
    await engine.order_manager.drain()
    for _ in range(5):
        await asyncio.sleep(0)


def placed(engine: LiveTradingEngine) -> list:
    """Every order the strategy placed, accepted or refused, oldest first."""
    return list(engine.order_manager.orders.values())


def out_of_band_trade(broker: StreamVenue, amount: str = "7") -> None:
    """A trade at the venue the engine did not make (another terminal, a manual fill)."""
    broker.ledger.apply_fill(broker_asset(broker), D(amount), PRICE)


def broker_asset(broker: StreamVenue):
    return next(iter(broker._last_price))


# --- fail closed -------------------------------------------------------------------------
async def test_startup_with_unreachable_broker_takes_no_risk_until_reconciliation_passes(
    tmp_path,
):
    broker = StreamVenue()
    broker.reachable = False
    engine = make_engine(Trader(), broker, tmp_path)
    async with running(engine):
        assert engine.reconciliation_state == "unknown"  # never "flat"
        await push(engine)
        (refused,) = placed(engine)
        assert refused.status.value == "rejected"
        assert "trading blocked" in refused.reason and "unreachable" in refused.reason
        assert broker.submissions == []
        status = engine.get_status()
        assert status["reconciliation"] == "unknown" and status["can_trade"] is False

        broker.reachable = True  # the venue is back: the next reconciliation unblocks
        await engine.reconcile()
        assert engine.reconciliation_state == "ok" and engine.get_status()["can_trade"]
        await push(engine)
        accepted = placed(engine)[-1]
        assert accepted.id in broker.submissions and accepted.status.value != "rejected"
        # Seeded from the broker once it answered: the ledger is the account's.
        assert engine.ledger.cash == broker.ledger.cash


async def test_cancels_still_reach_the_broker_while_positions_are_unconfirmed(tmp_path):
    broker = StreamVenue()
    strategy = Trader()
    engine = make_engine(strategy, broker, tmp_path)
    async with running(engine):
        strategy._buy = False
        strategy._resting = True  # a limit buy far below the market: it rests
        await push(engine)
        (resting,) = placed(engine)
        assert resting.is_open and resting.id in broker.submissions

        broker.reachable = False
        assert await engine.reconcile() is None
        assert engine.reconciliation_state == "unknown"

        strategy._cancel = True
        strategy._buy = True
        await push(engine)
        new = placed(engine)[-1]
        assert new.status.value == "rejected" and "unreachable" in new.reason
        await wait_until(lambda: not resting.is_open, "cancel confirmed")
        assert resting.status.value == "cancelled"
        assert broker._orders[resting.broker_order_id].status.value == "cancelled"


async def test_reconciliation_repeats_every_interval(tmp_path):
    engine = make_engine(Trader(), StreamVenue(), tmp_path, reconciliation_interval_seconds=0.02)
    async with running(engine):
        await wait_until(lambda: engine.stats["reconciliations"] >= 4, "periodic reconciliations")
        assert engine.reconciliation_state == "ok"


# --- the three strategies --------------------------------------------------------------
async def test_trust_broker_takes_the_brokers_positions_cash_and_orders_and_journals_it(
    tmp_path,
):
    broker = StreamVenue()
    strategy = Trader()
    engine = make_engine(
        strategy, broker, tmp_path, reconciliation_strategy=ReconciliationStrategy.TRUST_BROKER
    )
    async with running(engine):
        await push(engine)
        strategy._buy = False
        await push(engine)  # the first order fills
        assert engine.ledger.positions[strategy.asset].amount == 10
        out_of_band_trade(broker, "7")
        manual = await broker.submit_order(
            strategy.asset, D("3"), "limit", D("2.00"), client_order_id="manual-1"
        )
        checkpoints = engine.stats["checkpoints"]

        report = await engine.reconcile()
        assert report.has_critical_discrepancies
        assert engine.reconciliation_state == "adjusted" and engine.get_status()["can_trade"]
        assert engine.ledger.cash == broker.ledger.cash
        assert engine.ledger.positions[strategy.asset].amount == 17
        adopted = engine.order_manager.get_order("manual-1")
        assert adopted.is_open and adopted.broker_order_id == manual
        journal = OrderJournal.replay(engine.journal.path)
        (adjust,) = journal.adjustments
        assert adjust["reason"] == "TRUST_BROKER" and adjust["orders_adopted"] == ["manual-1"]
        assert adjust["before"]["positions"]["JPM"] == "10"
        assert adjust["after"]["positions"]["JPM"] == "17"
        await wait_until(lambda: engine.stats["checkpoints"] > checkpoints, "checkpoint")
        # Now both sides agree.
        assert (await engine.reconcile()).max_severity.value == "info"


async def test_halt_and_alert_pauses_trading_and_raises_an_alert(tmp_path):
    broker = StreamVenue()
    strategy = Trader()
    strategy_calls = []
    engine = make_engine(
        strategy, broker, tmp_path, reconciliation_strategy=ReconciliationStrategy.HALT_AND_ALERT
    )
    async with running(engine):
        await push(engine)
        out_of_band_trade(broker)
        await engine.reconcile()
        assert engine.reconciliation_state == "halted"
        status = engine.get_status()
        assert status["paused"] is True and status["can_trade"] is False
        await wait_until(lambda: engine.alerts, "alert raised")
        assert engine.alerts[0].kind == "reconciliation"
        strategy_calls.append(strategy.calls)
        await push(engine)
        assert strategy.calls == strategy_calls[0]  # the strategy is not called while halted
        assert len(broker.submissions) == 1


async def test_warn_only_logs_loudly_and_keeps_trading(tmp_path):
    broker = StreamVenue()
    strategy = Trader()
    engine = make_engine(
        strategy, broker, tmp_path, reconciliation_strategy=ReconciliationStrategy.WARN_ONLY
    )
    async with running(engine):
        await push(engine)
        out_of_band_trade(broker)
        with capture_logs() as logs:
            report = await engine.reconcile()
        assert report.has_critical_discrepancies
        loud = [e for e in logs if e["event"] == "reconciliation_discrepancies_ignored"]
        assert loud and loud[0]["log_level"] == "warning"
        assert engine.reconciliation_state == "discrepancies_ignored"
        await push(engine)
        assert placed(engine)[-1].id in broker.submissions
        assert (
            engine.ledger.positions[strategy.asset].amount
            != broker.ledger.positions[strategy.asset].amount
        )  # WARN_ONLY changes nothing locally
