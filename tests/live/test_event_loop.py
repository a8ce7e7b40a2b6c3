"""The live session's event loop: uvloop when installed, the stock loop on request, and
the same orders on both (the engine uses only the public asyncio API)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rustybt.cli.main import app
from rustybt.exceptions import ConfigError
from rustybt.live import event_loop
from tests.live.test_engine_recovery import Flipper, make_engine, venue

QUICKSTART = str(Path("examples/quickstart.py").resolve())


def test_auto_picks_uvloop_when_installed(monkeypatch):
    pytest.importorskip("uvloop")
    monkeypatch.delenv(event_loop.ENV_VAR, raising=False)
    name, factory = event_loop.loop_factory()
    assert name == "uvloop" and factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_asyncio_on_request_uses_the_stock_loop(monkeypatch):
    monkeypatch.setenv(event_loop.ENV_VAR, "asyncio")
    assert event_loop.loop_factory() == ("asyncio", None)

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert event_loop.run(which()).startswith("asyncio")


def test_an_unknown_loop_name_is_a_config_error_saying_the_choices(monkeypatch):
    monkeypatch.setenv(event_loop.ENV_VAR, "trio")
    with pytest.raises(ConfigError, match=r"'trio' is not one of auto, uvloop, asyncio"):
        event_loop.loop_factory()


def test_the_cli_refuses_an_unknown_loop_before_writing_any_state(monkeypatch, tmp_path):
    monkeypatch.setenv(event_loop.ENV_VAR, "trio")
    state = tmp_path / "state"
    res = CliRunner().invoke(
        app, ["live", "-f", QUICKSTART, "--no-progress", "--state-dir", str(state)]
    )
    assert res.exit_code == 2, res.output
    assert "RUSTYBT_EVENT_LOOP" in " ".join(res.output.split())
    assert not state.exists() or not any(state.rglob("*.journal"))


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_a_paper_replay_sends_the_same_orders_on_either_loop(monkeypatch, tmp_path, loop_name):
    if loop_name == "uvloop":
        pytest.importorskip("uvloop")
    monkeypatch.setenv(event_loop.ENV_VAR, loop_name)
    ref = make_engine(Flipper(), venue(tmp_path / "ref.json"), tmp_path / "ref")
    ref.stop_after_market_events = 90
    asyncio.run(ref.run())

    eng = make_engine(Flipper(), venue(tmp_path / "v.json"), tmp_path / "s")
    eng.stop_after_market_events = 90
    event_loop.run(eng.run())
    ours = [(o.asset.symbol, o.amount, o.filled) for o in eng.order_manager.orders.values()]
    theirs = [(o.asset.symbol, o.amount, o.filled) for o in ref.order_manager.orders.values()]
    assert ours == theirs and len(ours) >= 4
    assert eng.ledger.cash == ref.ledger.cash != Decimal(100000)
