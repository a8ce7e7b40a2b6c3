"""What `rustybt live` shows: the status line, the session summary, the status table."""

from __future__ import annotations

from decimal import Decimal

from typer.testing import CliRunner

from rustybt.cli.main import app
from rustybt.cli.status import status_line, status_table, trading_state
from rustybt.cli.strategy_file import load_strategy
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.metrics.performance import format_summary, no_negative_zero

runner = CliRunner()
QUICKSTART = "examples/quickstart.py"


def _status(**over):
    base = {
        "running": True,
        "paused": False,
        "can_trade": True,
        "trading_blocked": None,
        "circuit_breakers": {"manual": {"state": "normal", "reason": None}},
        "orders_submitted": 12345,
        "fills": 7,
        "rejects": 0,
        "errors": 7800,
        "portfolio_value": "100000.5",
        "cash": "5.25",
        "positions": 1,
        "reconciliation": "ok",
        "current_time": None,
    }
    return {**base, **over}


def test_trading_state_names_halts_blocks_and_pauses():
    assert trading_state(_status()) == "trading"
    halted = _status(
        can_trade=False,
        circuit_breakers={"manual": {"state": "manually_halted", "reason": "by qa: news"}},
    )
    assert trading_state(halted) == "HALTED (manual: by qa: news)"
    blocked = _status(can_trade=False, trading_blocked="reconciliation failed")
    assert trading_state(blocked) == "BLOCKED (reconciliation failed)"
    assert trading_state(_status(paused=True)).startswith("PAUSED")


def test_status_table_shows_words_not_none_and_thousands_separators():
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(status_table("S", _status(paused=True)))
    text = " ".join(console.export_text().split())
    assert "None" not in text.split("current_time")[0]
    assert "PAUSED" in text and "paused │ yes" in text and "trading_blocked │ no" in text
    assert "12,345" in text and "7,800" in text and "100,000.50" in text


def test_first_status_line_says_starting_not_value_zero():
    engine = LiveTradingEngine(
        load_strategy(QUICKSTART), PaperBroker(), None, audit_log=False, control_socket=False
    )
    line = status_line(engine)
    assert line.startswith("starting") and "0.00" not in line


def test_summary_has_no_negative_zero_and_groups_thousands():
    rows = dict(
        format_summary(
            {
                "starting_value": Decimal("100000"),
                "ending_value": Decimal("99999.9999"),
                "pnl": Decimal("-0.0001"),
                "total_return": Decimal("-0.000000001"),
                "max_drawdown": Decimal("0"),
                "sharpe": None,
                "orders": 12000,
                "fills": 11999,
                "rejects": 1000,
                "fees": Decimal("1234.5"),
            }
        )
    )
    assert rows["PnL"] == "0.00" and rows["Total return"] == "0.000%"
    assert rows["Orders"] == "12,000" and rows["Rejects"] == "1,000" and rows["Fees"] == "1,234.50"
    assert no_negative_zero("-1.000%") == "-1.000%"


def test_resumed_session_summary_separates_session_from_account_lifetime(tmp_path):
    args = [
        "live", "-f", QUICKSTART, "--no-progress", "--start", "2024-01-03", "--end", "2024-01-04",
        "--state-dir", str(tmp_path / "state"), "--paper-state", str(tmp_path / "paper.json"),
        "--max-bars", "60",
    ]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "(new)" in first.output and "Account lifetime PnL" not in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    out = second.output
    assert "(resumed)" in out
    for label in ("Session start value", "Session PnL", "Session return", "Account starting cash"):
        assert label in out, out
    assert "Account lifetime PnL" in out and "Fees (account lifetime)" in out
