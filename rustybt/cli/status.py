"""What ``rustybt live`` shows: the status line while it runs, the session summary at the end,
and the ``rustybt live status`` table.

Kept apart from the command definitions so the wording lives in one place: the first line
says "starting" until a bar has been seen (never "value 0.00"); without a terminal there is
no live-redrawn line, only a final one with its newline; a resumed session's summary
separates this session's figures from the account's lifetime ones.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from rustybt.metrics.performance import format_summary, no_negative_zero, summarize


def status_line(engine: Any) -> str:
    st = engine.get_status()
    if not st["market_events"]:
        return "starting: connecting, reconciling, waiting for the first bar"
    done, total = st["replay_progress"]
    pct = f"{100 * done / total:5.1f}%" if total else "  live"
    halted = "" if st["can_trade"] else " [bold red]HALTED[/]"
    paused = " [yellow]PAUSED[/]" if st["paused"] else ""
    return (
        f"{pct} {st['current_time'] or ''} | value {st['portfolio_value']:,.2f} | "
        f"orders {st['orders_submitted']:,} fills {st['fills']:,} rejects {st['rejects']:,} "
        f"errors {st['errors']:,}{halted}{paused}"
    )


class SessionView:
    """The redrawn status line on a terminal (``live=True``); nothing otherwise."""

    def __init__(self, engine: Any, console: Console, live: bool) -> None:
        self.engine = engine
        self.console = console
        self.live = live
        self._view: Live | None = None
        self._last = 0.0

    def line(self) -> str:
        return status_line(self.engine)

    def __enter__(self) -> SessionView:
        if self.live:
            self._view = Live(self.line(), console=self.console, refresh_per_second=4)
            self._view.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._view is not None:
            self._view.update(self.line())
            self._view.__exit__(*exc)
            self._view = None

    def progress(self, _engine: Any) -> None:
        if self._view is None:
            return
        now = time.monotonic()
        if now - self._last > 0.25:
            self._last = now
            self._view.update(self.line())


def session_summary(engine: Any) -> Table:
    """The end-of-session table. A resumed session reports this session and the account."""
    st = engine.get_status()
    ledger = engine.ledger
    restored = getattr(engine, "_restored_from", None)
    # The last value is the ledger's, also when a restart replayed no bars.
    values = [*engine.value_history[:-1], ledger.portfolio_value]
    session_start = Decimal(restored.portfolio_value) if restored else ledger.starting_cash
    summary = summarize(
        values,
        session_start,
        orders=st["orders_submitted"],
        fills=st["fills"],
        fees=st["fees"],
        rejects=st["rejects"],
    )
    summary["max_drawdown"] = engine.max_drawdown
    kind = "resumed" if restored else "new"
    table = Table(
        title=f"{'Paper' if getattr(engine.broker, 'simulated', False) else 'Live'} session "
        f"{engine.session_id} ({kind}): {engine.strategy_name}",
        show_header=False,
    )
    rename = {"Starting value": "Session start value", "PnL": "Session PnL"} if restored else {}
    for k, v in format_summary(summary):
        if k == "Sharpe (annualised)":
            continue
        if restored and k == "Total return":
            k = "Session return"
        if restored and k == "Fees":
            k = "Fees (account lifetime)"
        table.add_row(rename.get(k, k), v)
    if restored:
        start_cash = ledger.starting_cash
        lifetime = ledger.portfolio_value - start_cash
        table.add_row("Account starting cash", f"{start_cash:,.2f}")
        table.add_row("Account lifetime PnL", no_negative_zero(f"{lifetime:,.2f}"))
    table.add_row("Market events", f"{st['market_events']:,}")
    table.add_row("Errors", f"{st['errors']:,}")
    table.add_row("Circuit breakers", "OK" if st["can_trade"] else "TRIPPED / blocked")
    if getattr(engine, "shadow", None) is not None:
        for line in engine.get_shadow_report().summary_lines():
            name, _, value = line.partition(": ")
            table.add_row(name, value)
    return table


def trading_state(st: dict[str, Any]) -> str:
    """One word and why: trading, HALTED (which breakers, by whom), PAUSED, BLOCKED."""
    tripped = [
        f"{name}: {b.get('reason') or b.get('state')}"
        for name, b in (st.get("circuit_breakers") or {}).items()
        if b.get("state") not in (None, "normal")
    ]
    if tripped:
        return "HALTED (" + "; ".join(tripped) + ")"
    if st.get("trading_blocked"):
        return f"BLOCKED ({st['trading_blocked']})"
    if st.get("paused"):
        return "PAUSED (the strategy is not called; `rustybt live resume` continues)"
    if not st.get("can_trade", True):
        return "HALTED"
    return "trading"


def status_table(strategy: str, st: dict[str, Any]) -> Table:
    """``rustybt live status``: the trading state first, then the counters."""
    table = Table(show_header=False, title=f"{strategy} status")
    table.add_row("trading", trading_state(st))
    table.add_row("running", "yes" if st.get("running") else "no")
    table.add_row("paused", "yes" if st.get("paused") else "no")
    table.add_row("trading_blocked", st.get("trading_blocked") or "no")
    for key in ("orders_submitted", "fills", "rejects", "errors"):
        value = st.get(key)
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    for key in ("portfolio_value", "cash"):
        value = st.get(key)
        try:
            table.add_row(key, f"{Decimal(str(value)):,.2f}")
        except Exception:
            table.add_row(key, str(value))
    for key in ("positions", "reconciliation", "current_time"):
        table.add_row(key, str(st.get(key)))
    return table
