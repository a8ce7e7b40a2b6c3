"""The audit trail: one JSON-lines file per session recording every order, risk, broker,
breaker, checkpoint and reconciliation event — with secrets masked everywhere."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from rustybt.algorithm import TradingAlgorithm
from rustybt.assets import Equity
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live import LiveTradingEngine
from rustybt.live.audit import REDACTED, SECRETS, AuditLog, new_session_id
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager, ManualCircuitBreaker

D = Decimal
KEY = "TESTKEY-9f8e7d6c5b4a"


@pytest.fixture
def secret():
    SECRETS.add(KEY)
    yield KEY
    SECRETS._values.discard(KEY)


def read(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_audit_lines_carry_session_and_strategy_and_mask_secrets_by_key_and_value(tmp_path, secret):
    log = AuditLog(tmp_path / "a.jsonl", "sess1", "Strat")
    log.record(
        "order_intent",
        amount=D("1.50"),
        asset=Equity("AAPL"),
        api_key="whatever",
        broker_secret="x",
        note=f"connected with {secret} ok",
    )
    log.warning("oops", error=f"HTTP 401 for key={secret}")
    log.close()
    log.record("after_close")  # ignored, no crash
    first, second = read(tmp_path / "a.jsonl")
    assert first["session_id"] == second["session_id"] == "sess1"
    assert first["strategy"] == "Strat" and first["event"] == "order_intent"
    assert first["amount"] == "1.50" and first["asset"] == "AAPL"
    assert first["api_key"] == first["broker_secret"] == REDACTED
    assert first["note"] == f"connected with {REDACTED} ok"
    assert second["level"] == "warning" and secret not in json.dumps(second)
    assert "timestamp" in first


def test_disabled_audit_log_writes_nothing(tmp_path):
    log = AuditLog(None, "s", "x")
    log.record("anything", a=1)
    log.close()
    assert list(tmp_path.iterdir()) == []


def test_session_ids_are_unique_and_sortable():
    ids = [new_session_id() for _ in range(50)]
    assert len(set(ids)) == 50
    assert ids == sorted(ids, key=lambda s: (len(s), s))


class Lifecycle(TradingAlgorithm):
    """Bar 1: market buy + far limit buy. Bar 2: a short sale (rejected by the venue).
    Bar 3: cancel the limit and raise an error leaking a secret. Bar 4: manual halt (the
    operator releases it on the next bar: a halted strategy is not called)."""

    def initialize(self):
        self.aapl = self.symbol("AAPL")
        self.calls = 0

    def handle_data(self, context, data):
        self.calls += 1
        if self.calls == 1:
            self.order(self.aapl, 5)
            self.limit = self.order(self.aapl, 1, limit_price=D("1.00"))
        elif self.calls == 2:
            self.order(self.aapl, -50)
        elif self.calls == 3:
            self.cancel_order(self.limit)
            raise RuntimeError(f"could not reach venue with key {KEY}")
        elif self.calls == 4:
            self.manual.trigger_halt(reason="drill", operator="ops")
            self.order(self.aapl, 1)  # refused by the risk gate


async def test_a_session_records_the_whole_order_and_safety_lifecycle(tmp_path, secret):
    breakers = CircuitBreakerManager()
    manual = breakers.add_breaker(ManualCircuitBreaker())
    strategy = Lifecycle()
    strategy.manual = manual
    engine = LiveTradingEngine(
        strategy=strategy,
        broker_adapter=PaperBroker(starting_cash=D("100000")),
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        circuit_breakers=breakers,
        state_dir=tmp_path / "state",
        control_socket=False,
        start="2024-01-03 14:31",
        end="2024-01-03 14:37",
    )

    def operator(engine):
        if manual.is_tripped and engine.stats["strategy_calls_skipped"]:
            manual.release(operator="ops", reason="drill over")

    engine.on_progress = operator
    await asyncio.wait_for(engine.run(), 30)

    path = engine.audit.path
    assert path.parent == tmp_path / "state" / "logs"
    assert engine.session_id in path.name
    lines = read(path)
    assert {e["session_id"] for e in lines} == {engine.session_id}
    kinds = [e["event"] for e in lines]
    for kind in (
        "engine_starting",
        "reconciliation",
        "engine_started",
        "order_intent",
        "risk_decision",
        "order_submitted",
        "broker_ack",
        "fill",
        "cancel_requested",
        "order_cancelled",
        "order_rejected",
        "strategy_error",
        "circuit_breakers_tripped",
        "halt_cancel_all",
        "circuit_breaker_reset",
        "checkpoint_saved",
        "engine_stopped",
    ):
        assert kind in kinds, kind
    decisions = [e for e in lines if e["event"] == "risk_decision"]
    assert [d["decision"] for d in decisions].count("reject") == 1
    rejected = [d for d in decisions if d["decision"] == "reject"][0]
    assert "manual halt by ops: drill" in rejected["reason"]
    fill = next(e for e in lines if e["event"] == "fill")
    assert fill["amount"] == "5" and D(fill["price"]) > 0
    error = next(e for e in lines if e["event"] == "strategy_error")
    assert error["error"] == f"RuntimeError: could not reach venue with key {REDACTED}"

    # The secret is nowhere on disk: not in the audit log, the journal or checkpoints.
    for f in (tmp_path / "state").rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f
