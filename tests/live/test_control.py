"""The engine's local control socket: halt, resume and status from outside the process."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.exceptions import ConfigError
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.control import send_command, socket_path

D = Decimal
TINY = {"start": "2024-01-03 14:31", "end": "2024-01-03 14:35"}


class Buyer(TradingAlgorithm):
    """Keeps one far-away limit buy resting; buys 1 AAPL at market on every bar."""

    def initialize(self):
        self.aapl = self.symbol("AAPL")
        self.resting = None
        self.placed = []

    def handle_data(self, context, data):
        if self.resting is None:
            self.resting = self.order(self.aapl, 1, limit_price=D("1.00"))
        self.placed.append(self.order(self.aapl, 1))


async def wait_until(predicate, what: str, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def running(tmp_path):
    strategy = Buyer()
    engine = LiveTradingEngine(
        strategy=strategy,
        broker_adapter=PaperBroker(starting_cash=D("100000")),
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        circuit_breakers=CircuitBreakerManager(),  # no manual breaker: halt adds one
        state_dir=tmp_path / "s",
        stop_when_data_ends=False,
        **TINY,
    )
    task = asyncio.create_task(engine.run())
    sock = socket_path(tmp_path / "s" / "control", "Buyer")
    await wait_until(lambda: sock.exists() and not engine.feed.replaying, "engine ready")
    try:
        yield engine, strategy, sock
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)


async def test_socket_is_owner_only(running):
    engine, strategy, sock = running
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700


async def test_halt_cancels_pending_refuses_new_orders_and_resume_restores_trading(running):
    engine, strategy, sock = running
    resting = engine.order_manager.get_order(strategy.resting)
    assert resting.is_open
    submitted = len(engine.broker.submissions)

    reply = await send_command(sock, {"cmd": "halt", "reason": "news", "operator": "ann"})
    assert reply["ok"] is True and reply["halted"] is True
    assert reply["status"]["can_trade"] is False
    await wait_until(lambda: not resting.is_open, "pending order cancelled")
    assert resting.status.value == "cancelled"

    t = datetime(2024, 1, 3, 14, 40, tzinfo=UTC)
    engine.push_market_data({"symbol": "AAPL", "price": "190", "timestamp": t})
    await wait_until(lambda: engine.get_status()["market_events"] == 6, "bar while halted")
    assert len(strategy.placed) == 5  # a halted engine runs no strategy code
    assert len(engine.broker.submissions) == submitted
    status = (await send_command(sock, {"cmd": "status"}))["status"]
    assert status["circuit_breakers"]["manual"]["state"] == "manually_halted"
    assert status["market_events"] == 6

    reply = await send_command(sock, {"cmd": "resume", "operator": "ann", "reason": "ok"})
    assert reply["ok"] is True and reply["status"]["can_trade"] is True
    engine.push_market_data({"symbol": "AAPL", "price": "191", "timestamp": t})
    await wait_until(lambda: len(engine.broker.submissions) > submitted, "trading again")


async def test_bad_control_commands_get_an_error_reply_and_change_nothing(running):
    engine, strategy, sock = running
    for msg, text in [
        ({"cmd": "halt", "reason": "x"}, "--operator"),
        ({"cmd": "halt", "operator": "x"}, "--reason"),
        ({"cmd": "resume"}, "--operator"),
        ({"cmd": "liquidate"}, "unknown control command 'liquidate'"),
    ]:
        reply = await send_command(sock, msg)
        assert reply["ok"] is False and text in reply["error"]
    assert engine.get_status()["can_trade"] is True


async def test_shutdown_removes_the_socket(tmp_path):
    engine = LiveTradingEngine(
        strategy=Buyer(),
        broker_adapter=PaperBroker(),
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        circuit_breakers=CircuitBreakerManager(),
        state_dir=tmp_path / "s",
        **TINY,
    )
    await asyncio.wait_for(engine.run(), 30)
    assert not socket_path(tmp_path / "s" / "control", "Buyer").exists()


async def test_client_without_a_running_engine_gets_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no running engine"):
        await send_command(tmp_path / "missing.sock", {"cmd": "status"})


# --- halts survive kill -9 (real `rustybt live` processes) ------------------------------
def test_an_acknowledged_halt_survives_sigkill_and_only_an_operator_resume_lifts_it(tmp_path):
    from tests.live.live_proc import Session, audit_events, kill

    session = Session(tmp_path / "acct", speed="600x", checkpoint_interval=60)
    engine = session.start()
    try:
        session.wait_for_socket(engine)
        reply = session.control("halt", "--reason", "venue outage", "--operator", "ann")
        assert reply.returncode == 0, reply.stderr
    finally:
        # Killed right after the acknowledgement, long before any checkpoint.
        assert kill(engine)
    halted_at = len(session.venue().submissions)

    again = session.start()
    try:
        session.wait_for_socket(again)
        status = session.control("status", "--json")
        st = json.loads(status.stdout)
        assert st["can_trade"] is False
        assert "venue outage" in json.dumps(st["circuit_breakers"])
        restored = audit_events(session.state, "halt_restored")
        assert restored and "ann" in json.dumps(restored[0])
        assert len(session.venue().submissions) == halted_at, "a halted engine traded"
        reply = session.control("resume", "--operator", "bob", "--reason", "venue back")
        assert reply.returncode == 0, reply.stderr
    finally:
        assert kill(again)
    (resumed,) = audit_events(session.state, "engine_resumed")
    assert resumed["operator"] == "bob" and resumed["reason"] == "venue back"
    assert resumed["released"] == ["manual"]

    # The resume was durable too: the next start is not halted.
    again = session.start()
    try:
        session.wait_for_socket(again)
        st = json.loads(session.control("status", "--json").stdout)
        assert st["can_trade"] is True, st
    finally:
        kill(again)
