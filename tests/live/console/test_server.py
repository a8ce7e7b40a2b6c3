"""The console's HTTP API and /metrics on a real paper session, over real HTTP."""

from __future__ import annotations

import asyncio
import os
import stat
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rustybt.exceptions import ConfigError
from rustybt.live.console.auth import load_or_create_token
from rustybt.live.console.metrics import LATENCY_BUCKETS_S
from rustybt.live.console.server import ConsoleServer
from tests.live.console.conftest import auth, settled
from tests.live.test_engine import make_engine, wait_until


async def test_every_endpoint_refuses_a_missing_or_wrong_token(session):
    engine, console, client = session
    for path in ("/", "/api/status", "/api/positions", "/metrics", "/api/events"):
        async with client.get(path) as resp:
            assert resp.status == 401, path
            assert str(console.token_file) in (await resp.json())["error"]
        async with client.get(path, headers={"Authorization": "Bearer nope"}) as resp:
            assert resp.status == 401, path
    async with client.post("/api/halt", json={"reason": "x"}) as resp:
        assert resp.status == 401
    assert engine.get_status()["can_trade"]


async def test_status_and_positions_match_the_engine(session):
    engine, console, client = session
    mine = await settled(engine)
    async with client.get("/api/status", headers=auth(console)) as resp:
        status = await resp.json()
    for key in ("orders_submitted", "fills", "rejects", "open_orders", "strategy"):
        assert status[key] == mine[key], key
    assert Decimal(status["portfolio_value"]) == mine["portfolio_value"]
    async with client.get("/api/positions", headers=auth(console)) as resp:
        [pos] = await resp.json()
    held = engine.ledger.positions[engine.strategy.aapl]
    assert pos["asset"] == "AAPL" and Decimal(pos["amount"]) == held.amount
    async with client.get("/api/fills", headers=auth(console)) as resp:
        fills = await resp.json()
    assert len(fills) == mine["fills"] and fills[0]["asset"] == "AAPL"
    async with client.get("/api/equity", headers=auth(console)) as resp:
        equity = await resp.json()
    assert equity["points"] and "drawdown" in equity["points"][0]
    async with client.get("/api/audit?lines=5", headers=auth(console)) as resp:
        audit = await resp.json()
    assert 0 < len(audit) <= 5 and all("event" in rec for rec in audit)
    async with client.get("/api/shadow", headers=auth(console)) as resp:
        assert resp.status in (200, 404)


async def test_halt_and_resume_need_a_reason_and_reach_the_engine(session):
    engine, console, client = session
    async with client.post("/api/halt", json={}, headers=auth(console)) as resp:
        assert resp.status == 400 and "reason" in (await resp.json())["error"]
    assert engine.get_status()["can_trade"]
    async with client.post(
        "/api/halt", json={"reason": "news", "operator": "ops"}, headers=auth(console)
    ) as resp:
        assert resp.status == 200
    assert not engine.get_status()["can_trade"]
    async with client.post(
        "/api/resume", json={"reason": "checked"}, headers=auth(console)
    ) as resp:
        assert resp.status == 200
    assert engine.get_status()["can_trade"]


async def test_event_stream_pushes_the_status(session):
    _, console, client = session
    async with client.get(f"/api/events?token={console.token}") as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        seen = b""
        while seen.count(b"event: status") < 2:
            seen += await asyncio.wait_for(resp.content.readany(), 5)
    assert b'"portfolio_value"' in seen


async def test_metrics_move_during_a_session_and_buckets_span_10us_to_1s(session):
    engine, console, client = session

    async def scrape() -> dict:
        async with client.get("/metrics", headers=auth(console)) as resp:
            text = await resp.text()
        return {f.name: f for f in text_string_to_metric_families(text)}

    def value(families: dict, name: str) -> float:
        return families[name].samples[0].value

    first = await scrape()
    before = value(first, "rustybt_fills")
    await wait_until(lambda: engine.get_status()["fills"] > before + 1, "more fills", 30)
    second = await scrape()
    assert value(second, "rustybt_fills") > before
    assert value(second, "rustybt_events_processed") > value(first, "rustybt_events_processed")
    hist = second["rustybt_tick_to_submit_seconds"]
    bounds = [float(s.labels["le"]) for s in hist.samples if s.name.endswith("_bucket")]
    assert bounds[0] == 1e-5 and bounds[-2] == 1.0 and bounds[-1] == float("inf")
    assert bounds[:-1] == list(LATENCY_BUCKETS_S)
    count = next(s.value for s in hist.samples if s.name.endswith("_count"))
    assert 0 < count <= engine.get_status()["orders_submitted"]
    for name in (
        "rustybt_portfolio_value",
        "rustybt_can_trade",
        "rustybt_circuit_breaker_tripped",
        "rustybt_unknown_outcome_orders",
        "rustybt_journal_unsynced_records",
        "rustybt_event_queue_depth",
        "rustybt_order_rejects",
    ):
        assert name in second, name


def test_binding_beyond_loopback_needs_an_explicit_flag(tmp_path):
    engine = make_engine_in(tmp_path)
    with pytest.raises(ConfigError, match="allow_remote"):
        ConsoleServer(engine, host="0.0.0.0")
    assert ConsoleServer(engine, host="0.0.0.0", allow_remote=True).allow_remote


def test_token_file_is_owner_only_and_reused(tmp_path):
    token = load_or_create_token(tmp_path)
    path = tmp_path / "console.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path) == token and len(token) >= 32
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_token(tmp_path)


def make_engine_in(tmp_path):
    from tests.live.console.conftest import EveryTenBars

    return make_engine(EveryTenBars(), state_dir=tmp_path)


def test_reject_reasons_are_bounded_categories():
    from rustybt.finance.blotter import reject_category

    assert reject_category("trading halted: circuit breaker tripped") == "halted"
    assert reject_category("trading blocked: broker connection down") == "blocked"
    assert reject_category("max order value 10000 exceeded") == "risk_limit"
    assert reject_category("insufficient buying power") == "insufficient_funds"
    assert reject_category("IB error 201: rejected") == "broker"
    assert reject_category("something new") == "other"
