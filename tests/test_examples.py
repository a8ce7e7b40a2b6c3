"""The shipped examples run on the demo bundle, in a backtest, in paper trading and via
``rustybt live --config examples/live.toml``; the docs' Python snippets run as written.

Every run is bounded: a couple of sessions, or ``--max-bars``; subprocesses have a timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from rustybt import run_algorithm
from rustybt.algorithm import ScriptAlgorithm
from rustybt.cli.strategy_file import load_strategy
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.finance.decimal.commission import PerShareCommission
from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# example file -> (start, end) of a short range where it trades
CASES = {
    "quickstart.py": ("2024-01-02", "2024-01-03 23:59"),
    "ma_crossover.py": ("2024-01-02", "2024-01-03 23:59"),
    "crypto_momentum.py": ("2024-01-06", "2024-01-07 23:59"),
    "zipline_style.py": ("2024-01-02", "2024-01-03 23:59"),
}


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("rustybt")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from rustybt.cli.main import app; app()"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_backtest_trades_and_summary_is_consistent(name: str) -> None:
    start, end = CASES[name]
    algo = load_strategy(EXAMPLES / name)
    result = run_algorithm(algo, bundle="demo", start=start, end=end)
    s = result.summary

    assert s["orders"] > 0 and s["fills"] > 0, f"{name} placed no orders"
    assert s["rejects"] == 0
    assert s["starting_value"] == Decimal("100000")
    for key in ("ending_value", "pnl", "total_return", "max_drawdown", "fees"):
        assert isinstance(s[key], Decimal), key
    assert s["pnl"] == s["ending_value"] - s["starting_value"]
    assert abs(s["total_return"]) < Decimal("0.10")  # two sessions: no blow-up
    assert Decimal(0) <= s["max_drawdown"] < Decimal("0.10")
    assert len(result.daily) == 2  # one row per session (crypto: per UTC day)
    assert result.daily[-1]["portfolio_value"] == s["ending_value"]
    assert all(t["price"] > 0 for t in result.transactions)
    assert len(result.transactions) >= s["fills"] > 0


def test_zipline_style_example_loads_as_a_script_and_records_float_values() -> None:
    algo = load_strategy(EXAMPLES / "zipline_style.py")
    assert isinstance(algo, ScriptAlgorithm)
    result = run_algorithm(algo, bundle="demo", start="2024-01-02", end="2024-01-02 23:59")
    assert result.recorded and {"price", "mean"} <= set(result.recorded[-1])
    # a zipline script sees floats at the API (the ledger stays Decimal)
    assert type(result.recorded[-1]["price"]) is float
    assert isinstance(result.daily[-1]["portfolio_value"], Decimal)


def test_ma_crossover_signals_survive_in_get_state() -> None:
    algo = load_strategy(EXAMPLES / "ma_crossover.py")
    run_algorithm(algo, bundle="demo", start="2024-01-02", end="2024-01-02 23:59")
    state = algo.get_state()
    assert set(state["long"]) == {"AAPL", "MSFT", "SPY"}
    assert all(isinstance(v, bool) for v in state["long"].values())


@pytest.mark.parametrize("name", ["ma_crossover.py", "crypto_momentum.py", "zipline_style.py"])
def test_example_paper_trades_unchanged(name: str, tmp_path: Path) -> None:
    start, end = CASES[name]
    algo = load_strategy(EXAMPLES / name)
    broker = PaperBroker(
        starting_cash=Decimal("100000"),
        commission_model=PerShareCommission(Decimal("0.005")),
        slippage_model=FixedBasisPointsSlippage(Decimal("5")),
        order_latency_ms=100,
    )
    engine = LiveTradingEngine(
        strategy=algo,
        broker_adapter=broker,
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        start=start,
        end=end,
        state_dir=tmp_path / "state",
        control_socket=False,
    )
    asyncio.run(asyncio.wait_for(engine.run(), timeout=60))
    st = engine.get_status()
    assert st["fatal_error"] is None
    assert st["errors"] == 0
    assert st["orders_submitted"] > 0 and st["fills"] > 0
    assert st["portfolio_value"] > 0


@pytest.mark.parametrize("name", ["ma_crossover.py", "crypto_momentum.py", "zipline_style.py"])
def test_example_backtest_and_paper_produce_the_same_orders_and_value(
    name: str, tmp_path: Path
) -> None:
    """DESIGN invariant 1 on the shipped examples: same bars + same models = same orders."""
    start, end = CASES[name]

    def models():
        return PerShareCommission(Decimal("0.005")), FixedBasisPointsSlippage(Decimal("5"))

    commission, slippage = models()
    bt = run_algorithm(
        load_strategy(EXAMPLES / name),
        start=start,
        end=end,
        commission_model=commission,
        slippage_model=slippage,
        volume_limit_pct=Decimal("0.025"),
    )
    commission, slippage = models()
    broker = PaperBroker(
        starting_cash=Decimal("100000"),
        commission_model=commission,
        slippage_model=slippage,
        volume_limit_pct=Decimal("0.025"),
    )
    engine = LiveTradingEngine(
        strategy=load_strategy(EXAMPLES / name),
        broker_adapter=broker,
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        start=start,
        end=end,
        state_dir=tmp_path / "state",
        control_socket=False,
    )
    asyncio.run(asyncio.wait_for(engine.run(), timeout=60))

    def key(orders):
        return [(o.asset.symbol, o.amount, o.filled, o.created_dt) for o in orders]

    assert key(bt.orders) == key(engine.order_manager.orders.values())
    assert bt.summary["ending_value"] == engine.ledger.portfolio_value


def test_live_toml_runs_through_the_cli(tmp_path: Path) -> None:
    root = Path(os.environ["RUSTYBT_ROOT"])  # isolated by tests/conftest.py
    proc = subprocess.run(
        [*_cli(), "live", "--config", str(EXAMPLES / "live.toml"), "--max-bars", "400"]
        + ["--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "MovingAverageCrossover" in out
    assert re.search(r"Market events\s*│\s*400\b", out), out
    orders = int(re.search(r"Orders\s*│\s*(\d+)", out).group(1))
    assert orders > 0
    assert re.search(r"Circuit breakers\s*│\s*OK", out)

    state = root / "state"
    assert list((state / "MovingAverageCrossover").glob("*.ckpt")), "no final checkpoint"
    assert (state / "journal" / "MovingAverageCrossover.journal").stat().st_size > 0
    (log,) = (state / "logs").glob("MovingAverageCrossover-*.jsonl")
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    decisions = [e for e in events if e.get("event") == "risk_decision"]
    assert decisions and all(d["decision"] == "accept" for d in decisions)
    started = [e for e in events if e.get("event") == "engine_started"]
    assert started


def test_live_toml_with_unknown_key_fails_with_the_known_keys(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[live]\nalgofile = "x.py"\nspeeed = "max"\n')
    proc = subprocess.run(
        [*_cli(), "live", "--config", str(bad), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 2
    assert "speeed" in proc.stderr and "known keys" in proc.stderr


# --- the docs' snippets -----------------------------------------------------------------
DOCS = [
    "README.md",
    "docs/backtesting.md",
    "docs/strategy-api.md",
    "docs/paper-broker.md",
    "docs/live-trading.md",
    "docs/data.md",
]


def _snippets(path: Path) -> list[str]:
    """```python blocks, except those marked ``# not run`` (fragments, placeholders)."""
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)
    return [b for b in blocks if "# not run" not in b]


@pytest.mark.parametrize("doc", DOCS)
def test_doc_snippets_run_as_written(doc: str, tmp_path: Path, monkeypatch) -> None:
    path = ROOT / doc
    blocks = _snippets(path)
    assert blocks, f"{doc} has no runnable snippet"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__doc_snippet__"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{doc}[{i}]", "exec"), namespace)  # noqa: S102
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{doc} snippet {i} failed:\n{block}") from exc
