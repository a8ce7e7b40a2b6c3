"""The ``rustybt`` command: ingest data, backtest, and paper/live trade.

    rustybt ingest --bundle NAME FILES...
    rustybt bundles
    rustybt run -f algo.py --bundle demo [--start --end --capital-base --output]
    rustybt live -f algo.py --broker paper --bundle demo --speed max [--start --end]
    rustybt live --config live.toml
    rustybt live halt --reason ... --operator ...   (and: resume, status)

Every error is a typed RustyBT error printed as one red line with what to fix; the exit
code is 2 for bad input and 1 for a failed run.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from rustybt.exceptions import ConfigError, RustyBTError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="RustyBT: ingest data, backtest, and paper/live trade.",
)
live_app = typer.Typer(add_completion=False, help="Paper/live trading and its control channel.")
app.add_typer(live_app, name="live")
console = Console()
err_console = Console(stderr=True)

BROKERS = ("paper",)


def _fail(exc: Exception, code: int = 2) -> None:
    from rustybt.live.audit import SECRETS

    err_console.print(f"[bold red]error:[/] {SECRETS.redact(str(exc))}", markup=True)
    raise typer.Exit(code)


def _decimal(name: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"--{name} {value!r} is not a number") from None
    if not out.is_finite():
        raise ConfigError(f"--{name} must be finite")
    return out


# --- data -----------------------------------------------------------------------------
@app.command()
def ingest(
    files: list[Path] = typer.Argument(..., help="CSV or Parquet files (or folders)."),
    bundle: str = typer.Option(..., "--bundle", "-b", help="Bundle name to create or merge."),
    frequency: str = typer.Option(None, help="minute or daily (detected when omitted)."),
    asset_class: str = typer.Option("equity", help="equity, crypto or future."),
    exchange: str = typer.Option(None, help="Exchange of the ingested symbols."),
    calendar: str = typer.Option(None, help="Trading calendar, e.g. XNYS or 24/7."),
    timezone: str = typer.Option("UTC", help="Time zone of timestamps without an offset."),
) -> None:
    """Ingest OHLCV files into a bundle under $RUSTYBT_ROOT."""
    from rich.progress import Progress

    from rustybt.data.ingest import ingest as do_ingest

    try:
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("ingesting", total=None)

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            summary = do_ingest(
                bundle,
                files,
                frequency=frequency,
                asset_class=asset_class,
                exchange=exchange,
                calendar=calendar,
                progress=report,
                timezone=timezone,
            )
    except RustyBTError as exc:
        _fail(exc)
    console.print(
        f"ingested {summary.rows:,} {summary.frequency} bars for {len(summary.symbols)} symbols "
        f"({', '.join(summary.symbols[:10])}) into bundle [bold]{summary.bundle}[/] "
        f"({summary.start:%Y-%m-%d} → {summary.end:%Y-%m-%d})"
    )


@app.command()
def bundles() -> None:
    """List the ingested bundles (the built-in `demo` is generated on first use)."""
    from rustybt.data.bundles import list_bundles

    names = list_bundles()
    console.print("\n".join(names) if names else "no bundles yet (demo is built on first use)")


# --- backtest -------------------------------------------------------------------------
@app.command()
def run(
    algofile: Path = typer.Option(..., "-f", "--algofile", help="Strategy file."),
    bundle: str = typer.Option("demo", "--bundle", "-b"),
    start: str = typer.Option(None, help="First day (YYYY-MM-DD); default: bundle start."),
    end: str = typer.Option(None, help="Last day (YYYY-MM-DD); default: bundle end."),
    capital_base: str = typer.Option("100000", "--capital-base"),
    data_frequency: str = typer.Option("minute", "--data-frequency"),
    output: Path = typer.Option(None, "--output", "-o", help="Folder for Parquet results."),
    strategy_name: str = typer.Option(None, help="Class to run when the file has several."),
    commission_per_share: str = typer.Option("0.005", help="Commission per share/unit."),
    slippage_bps: str = typer.Option("5", help="Slippage in basis points."),
    volume_limit_pct: str = typer.Option(
        "0.025", help="Max fraction of a bar's volume one asset's orders may take."
    ),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Backtest a strategy and print its summary (same cost defaults as `rustybt live`)."""
    from rustybt.backtest.runner import run_algorithm
    from rustybt.cli.strategy_file import load_strategy
    from rustybt.finance.decimal.commission import PerShareCommission
    from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage
    from rustybt.metrics.performance import format_summary

    try:
        algo = load_strategy(algofile, strategy_name)
        if end is not None and len(end) == 10:
            end = f"{end} 23:59:59"
        out = output or _results_dir(algo.strategy_name)
        result = run_algorithm(
            algo,
            bundle=bundle,
            data_frequency=data_frequency,
            start=start,
            end=end,
            capital_base=capital_base,
            commission_model=PerShareCommission(
                _decimal("commission-per-share", commission_per_share)
            ),
            slippage_model=FixedBasisPointsSlippage(_decimal("slippage-bps", slippage_bps)),
            volume_limit_pct=_decimal("volume-limit-pct", volume_limit_pct),
            show_progress=not no_progress,
            output_dir=out,
        )
    except RustyBTError as exc:
        _fail(exc)
    table = Table(title=f"Backtest: {result.strategy} on {bundle}", show_header=False)
    for k, v in format_summary(result.summary):
        table.add_row(k, v)
    table.add_row(
        "Bars", f"{result.bars:,} ({result.bars / max(result.wall_seconds, 1e-9):,.0f}/s)"
    )
    console.print(table)
    console.print(f"results saved to {out}")


def _results_dir(name: str) -> Path:
    from rustybt.data.bundles import rustybt_root

    return rustybt_root() / "results" / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}"


# --- live -----------------------------------------------------------------------------
_LIVE_KEYS = {
    "algofile",
    "broker",
    "bundle",
    "speed",
    "start",
    "end",
    "starting_cash",
    "commission_per_share",
    "slippage_bps",
    "latency_ms",
    "latency_jitter_pct",
    "volume_limit_pct",
    "seed",
    "allow_short",
    "paper_state",
    "state_dir",
    "strategy_name",
    "reconciliation",
    "checkpoint_interval",
    "reconcile_interval",
    "max_bars",
    "risk_limits",
    # Credentials: accepted (the paper broker ignores them), registered as secrets so
    # they are masked in every log line, message and audit record, and never printed.
    "api_key",
    "api_secret",
}
_SECRET_KEYS = ("api_key", "api_secret")


def _load_config(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    data = {k.replace("-", "_"): v for k, v in raw.get("live", raw).items()}
    unknown = set(data) - _LIVE_KEYS
    if unknown:
        raise ConfigError(
            f"{path}: unknown keys {sorted(unknown)}; known keys: {sorted(_LIVE_KEYS)}"
        )
    if "algofile" in data:
        data["algofile"] = str((path.parent / data["algofile"]).resolve())
    from rustybt.live.audit import SECRETS

    for key in _SECRET_KEYS:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{path}: {key} must be a string")
        SECRETS.add(value)
    return data


@live_app.callback(invoke_without_command=True)
def live(
    ctx: typer.Context,
    algofile: Path = typer.Option(None, "-f", "--algofile", help="Strategy file."),
    broker: str = typer.Option(None, help="Broker: paper."),
    bundle: str = typer.Option(None, "--bundle", "-b", help="Bundle to replay (paper)."),
    speed: str = typer.Option(None, help="Replay speed: max, realtime, or e.g. 60x."),
    start: str = typer.Option(None),
    end: str = typer.Option(None),
    config: Path = typer.Option(None, "--config", help="live.toml with these options."),
    starting_cash: str = typer.Option(None, help="Paper account cash (default 100000)."),
    paper_state: Path = typer.Option(None, help="File that keeps the paper account."),
    state_dir: Path = typer.Option(None, help="Checkpoints, journal, logs, control socket."),
    strategy_name: str = typer.Option(None, help="Class to run when the file has several."),
    reconciliation: str = typer.Option(None, help="warn_only, trust_broker, halt_and_alert."),
    checkpoint_interval: float = typer.Option(None, help="Seconds between checkpoints."),
    max_bars: int = typer.Option(None, help="Stop after this many market data events."),
    seed: int = typer.Option(None, help="Seed for simulated latency jitter."),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Paper-trade (or live-trade) a strategy. Ctrl-C or SIGTERM stops it gracefully."""
    if ctx.invoked_subcommand is not None:
        return
    _redact_console_logs()
    opts: dict[str, Any] = {}
    try:
        if config is not None:
            opts.update(_load_config(config))
        cli = {
            "algofile": str(algofile) if algofile else None,
            "broker": broker,
            "bundle": bundle,
            "speed": speed,
            "start": start,
            "end": end,
            "starting_cash": starting_cash,
            "paper_state": str(paper_state) if paper_state else None,
            "state_dir": str(state_dir) if state_dir else None,
            "strategy_name": strategy_name,
            "reconciliation": reconciliation,
            "checkpoint_interval": checkpoint_interval,
            "max_bars": max_bars,
            "seed": seed,
        }
        opts.update({k: v for k, v in cli.items() if v is not None})
        if not opts.get("algofile"):
            raise ConfigError("give a strategy file with -f algo.py (or algofile in --config)")
        engine = _build_engine(opts)
    except RustyBTError as exc:
        _fail(exc)
    code = _run_engine(engine, show_progress=not no_progress)
    raise typer.Exit(code)


def _redact_console_logs() -> None:
    """Mask registered secrets in console log lines too (the audit file always does)."""
    import structlog

    from rustybt.live.audit import redact_event

    processors = list(structlog.get_config()["processors"])
    if redact_event not in processors:
        structlog.configure(processors=[redact_event, *processors])


def _build_engine(opts: dict[str, Any]) -> Any:
    from rustybt.cli.strategy_file import load_strategy
    from rustybt.data.polars.data_portal import PolarsDataPortal
    from rustybt.finance.decimal.commission import PerShareCommission
    from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage
    from rustybt.live import LiveTradingEngine
    from rustybt.live.brokers.paper_broker import PaperBroker
    from rustybt.live.models import ReconciliationStrategy
    from rustybt.live.risk_limits import RiskLimits
    from rustybt.live.state_manager import StateManager

    broker_name = str(opts.get("broker", "paper")).lower()
    if broker_name not in BROKERS:
        raise ConfigError(
            f"unknown broker {broker_name!r}; available: {', '.join(BROKERS)}. "
            "(Venue adapters are configured in Python: see docs/live-trading.md)"
        )
    algo = load_strategy(opts["algofile"], opts.get("strategy_name"))
    recon = str(opts.get("reconciliation", "warn_only")).lower()
    try:
        recon_strategy = ReconciliationStrategy(recon)
    except ValueError:
        raise ConfigError(
            f"reconciliation {recon!r} is not one of warn_only, trust_broker, halt_and_alert"
        ) from None
    end = opts.get("end")
    if end is not None and len(str(end)) == 10:
        end = f"{end} 23:59:59"
    portal = PolarsDataPortal(bundle_name=opts.get("bundle", "demo"), data_frequency="minute")
    broker = PaperBroker(
        starting_cash=_decimal("starting-cash", opts.get("starting_cash", "100000")),
        commission_model=PerShareCommission(
            _decimal("commission-per-share", opts.get("commission_per_share", "0.005"))
        ),
        slippage_model=FixedBasisPointsSlippage(
            _decimal("slippage-bps", opts.get("slippage_bps", "5"))
        ),
        order_latency_ms=float(opts.get("latency_ms", 100)),
        latency_jitter_pct=_decimal("latency-jitter-pct", opts.get("latency_jitter_pct", "0.2")),
        volume_limit_pct=_decimal("volume-limit-pct", opts.get("volume_limit_pct", "0.025")),
        seed=int(opts.get("seed", 0)),
        allow_short=bool(opts.get("allow_short", False)),
        state_path=opts.get("paper_state"),
    )
    risk = opts.get("risk_limits")
    state_dir = Path(opts["state_dir"]) if opts.get("state_dir") else None
    engine = LiveTradingEngine(
        strategy=algo,
        broker_adapter=broker,
        data_portal=portal,
        state_manager=StateManager(state_dir) if state_dir else None,
        checkpoint_interval_seconds=float(opts.get("checkpoint_interval", 60)),
        reconciliation_strategy=recon_strategy,
        reconciliation_interval_seconds=float(opts.get("reconcile_interval", 300)),
        risk_limits=RiskLimits.from_dict(risk) if risk else None,
        speed=opts.get("speed", "max"),
        start=opts.get("start"),
        end=end,
        state_dir=state_dir,
    )
    if opts.get("max_bars"):
        engine.stop_after_market_events = int(opts["max_bars"])
    return engine


def _run_engine(engine: Any, show_progress: bool) -> int:
    from rich.live import Live

    from rustybt.metrics.performance import format_summary, summarize

    def status_line() -> str:
        st = engine.get_status()
        done, total = st["replay_progress"]
        pct = f"{100 * done / total:5.1f}%" if total else "  live"
        halted = "" if st["can_trade"] else " [bold red]HALTED[/]"
        return (
            f"{pct} {st['current_time'] or ''} | value {st['portfolio_value']:,.2f} | "
            f"orders {st['orders_submitted']} fills {st['fills']} rejects {st['rejects']} "
            f"errors {st['errors']}{halted}"
        )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(engine.shutdown()))
        if not show_progress:
            await engine.run()
            return
        with Live(status_line(), console=err_console, refresh_per_second=4) as view:
            last = [0.0]

            def progress(_engine: Any) -> None:
                now = time.monotonic()
                if now - last[0] > 0.25:
                    last[0] = now
                    view.update(status_line())

            engine.on_progress = progress
            await engine.run()
            view.update(status_line())

    try:
        asyncio.run(main())
    except RustyBTError as exc:
        _fail(exc, 1)
    except Exception as exc:
        err_console.print(f"[bold red]engine failed:[/] {type(exc).__name__}: {exc}")
        return 1
    st = engine.get_status()
    # The last value is the ledger's, also when a restart replayed no bars.
    values = [*engine.value_history[:-1], engine.ledger.portfolio_value]
    summary = summarize(
        values,
        engine.ledger.starting_cash,
        orders=st["orders_submitted"],
        fills=st["fills"],
        fees=st["fees"],
        rejects=st["rejects"],
    )
    summary["max_drawdown"] = engine.max_drawdown
    table = Table(
        title=f"Paper session {engine.session_id}: {engine.strategy_name}", show_header=False
    )
    for k, v in format_summary(summary):
        if k != "Sharpe (annualised)":
            table.add_row(k, v)
    table.add_row("Market events", f"{st['market_events']:,}")
    table.add_row("Errors", str(st["errors"]))
    table.add_row("Circuit breakers", "OK" if st["can_trade"] else "TRIPPED / blocked")
    console.print(table)
    if engine.fatal_error:
        err_console.print(f"[bold red]stopped on error:[/] {engine.fatal_error}")
        return 1
    return 0


def _control_path(state_dir: Path | None, strategy: str) -> Path:
    from rustybt.live.control import socket_path

    base = state_dir or _default_state_dir()
    return socket_path(base / "control", strategy)


def _default_state_dir() -> Path:
    from rustybt.data.bundles import rustybt_root

    return rustybt_root() / "state"


def _control(cmd: dict[str, Any], strategy: str, state_dir: Path | None) -> dict[str, Any]:
    from rustybt.live.control import send_command

    try:
        reply = asyncio.run(send_command(_control_path(state_dir, strategy), cmd))
    except RustyBTError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(ConfigError(f"cannot reach the engine's control socket: {exc}"))
    if not reply.get("ok"):
        _fail(ConfigError(reply.get("error", "command failed")))
    return reply


@live_app.command()
def halt(
    reason: str = typer.Option(..., help="Why trading is halted (recorded)."),
    operator: str = typer.Option(..., help="Who halts it (recorded)."),
    strategy: str = typer.Option(..., "--strategy", "-s", help="Strategy (class) name."),
    state_dir: Path = typer.Option(None),
) -> None:
    """Halt a running engine now: cancel pending orders, refuse new ones."""
    _control({"cmd": "halt", "reason": reason, "operator": operator}, strategy, state_dir)
    console.print(f"[bold red]halted[/] {strategy}: {reason} (by {operator})")


@live_app.command()
def resume(
    operator: str = typer.Option(..., help="Who resumes trading (recorded)."),
    strategy: str = typer.Option(..., "--strategy", "-s"),
    reason: str = typer.Option("", help="Why it is safe to resume."),
    state_dir: Path = typer.Option(None),
) -> None:
    """Release a manual halt of a running engine."""
    _control({"cmd": "resume", "operator": operator, "reason": reason}, strategy, state_dir)
    console.print(f"[bold green]resumed[/] {strategy} (by {operator})")


@live_app.command()
def status(
    strategy: str = typer.Option(..., "--strategy", "-s"),
    state_dir: Path = typer.Option(None),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a running engine's status."""
    reply = _control({"cmd": "status"}, strategy, state_dir)
    st = reply["status"]
    if as_json:
        console.print_json(json.dumps(st))
        return
    table = Table(show_header=False, title=f"{strategy} status")
    for key in (
        "running",
        "paused",
        "can_trade",
        "trading_blocked",
        "orders_submitted",
        "fills",
        "rejects",
        "errors",
        "portfolio_value",
        "cash",
        "positions",
        "reconciliation",
        "current_time",
    ):
        table.add_row(key, str(st.get(key)))
    console.print(table)


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
