"""The ``rustybt`` command: ingest data, backtest, and paper/live trade.

    rustybt ingest --bundle NAME FILES...
    rustybt bundles
    rustybt run -f algo.py --bundle demo [--start --end --capital-base --output]
    rustybt live -f algo.py --broker paper --bundle demo --speed max [--start --end]
    rustybt live --config live.toml
    rustybt live halt --reason ... --operator ...   (and: resume, status)
    rustybt --version

Every option is checked up front by :mod:`rustybt.cli.options` (one table per command);
every command body runs inside :func:`rustybt.cli.errors.front_door`, the one error path:
a user mistake is one ``error:`` line and exit 2, a failed run exit 1 (an unexpected error
also names the file holding its traceback), SIGINT/SIGTERM exit 130/143.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from rustybt.cli import options as optspec
from rustybt.cli.errors import (
    EXIT_FAILED,
    EXIT_OK,
    err_console,
    front_door,
    one_line,
)
from rustybt.cli.venue import venue_app
from rustybt.exceptions import ConfigError
from rustybt.live import event_loop

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="RustyBT: ingest data, backtest, and paper/live trade.",
)
live_app = typer.Typer(add_completion=False, help="Paper/live trading and its control channel.")
app.add_typer(live_app, name="live")
app.add_typer(venue_app, name="venue")
console = Console(soft_wrap=True)

BROKERS = optspec.BROKERS  # kept for importers; the list lives in rustybt.cli.options


def _show_version(value: bool) -> None:
    if value:
        from rustybt import __version__

        console.print(f"rustybt {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """RustyBT: ingest data, backtest, and paper/live trade."""


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
    with front_door("ingest stopped; nothing was written"):
        opts = optspec.check(
            optspec.INGEST_OPTIONS,
            {
                "bundle": bundle,
                "frequency": frequency,
                "asset_class": asset_class,
                "exchange": exchange,
                "calendar": calendar,
                "timezone": timezone,
            },
        )
        from rich.progress import Progress

        from rustybt.data.ingest import ingest as do_ingest

        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("ingesting", total=None)

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            summary = do_ingest(
                opts["bundle"],
                files,
                frequency=opts.get("frequency"),
                asset_class=opts["asset_class"],
                exchange=opts.get("exchange"),
                calendar=opts.get("calendar"),
                progress=report,
                timezone=opts["timezone"],
            )
    console.print(
        f"ingested {summary.rows:,} {summary.frequency} bars for {len(summary.symbols)} symbols "
        f"({', '.join(summary.symbols[:10])}) into bundle [bold]{summary.bundle}[/] "
        f"({summary.start:%Y-%m-%d} → {summary.end:%Y-%m-%d})"
    )


@app.command()
def bundles() -> None:
    """List the ingested bundles (the built-in `demo` is generated on first use)."""
    with front_door("listing bundles stopped"):
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
    allow_short: bool = typer.Option(
        False, "--allow-short", help="Allow short selling (off by default, as in `live`)."
    ),
    no_progress: bool = typer.Option(False, "--no-progress"),
    calendar: str = typer.Option(
        None, help="Clock calendar, e.g. XNYS or 24/7 (default: the strategy's assets')."
    ),
) -> None:
    """Backtest a strategy and print its summary (same cost and account defaults as
    `rustybt live`).

    A strategy's own set_commission/set_slippage replace the cost options here. A
    zipline-style script's analyze(context, perf) runs at the end.
    """
    with front_door("backtest stopped; no results were written", algofile):
        opts = optspec.check(
            optspec.RUN_OPTIONS,
            {
                "algofile": algofile,
                "bundle": bundle,
                "start": start,
                "end": end,
                "capital_base": capital_base,
                "data_frequency": data_frequency,
                "output": output,
                "strategy_name": strategy_name,
                "commission_per_share": commission_per_share,
                "slippage_bps": slippage_bps,
                "volume_limit_pct": volume_limit_pct,
                "calendar": calendar,
            },
        )
        optspec.check_date_order(opts)
        optspec.check_bundle(opts["bundle"], opts["data_frequency"], opts, command="run")

        from rustybt.backtest.runner import run_algorithm
        from rustybt.cli.strategy_file import load_strategy
        from rustybt.finance.decimal.commission import PerShareCommission
        from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage

        algo = load_strategy(opts["algofile"], opts.get("strategy_name"))
        end = opts.get("end")
        if end is not None and len(end) == 10:
            end = f"{end} 23:59:59"
        out = opts.get("output") or _results_dir(algo.strategy_name)
        result = run_algorithm(
            algo,
            bundle=opts["bundle"],
            data_frequency=opts["data_frequency"],
            start=opts.get("start"),
            end=end,
            capital_base=opts["capital_base"],
            commission_model=PerShareCommission(opts["commission_per_share"]),
            slippage_model=FixedBasisPointsSlippage(opts["slippage_bps"]),
            volume_limit_pct=opts["volume_limit_pct"],
            allow_short=allow_short,
            show_progress=not no_progress,
            output_dir=out,
            calendar=opts.get("calendar"),
        )
    from rustybt.metrics.performance import format_summary

    table = Table(title=f"Backtest: {result.strategy} on {bundle}", show_header=False)
    for k, v in format_summary(result.summary):
        table.add_row(k, v)
    table.add_row(
        "Bars", f"{result.bars:,} ({result.bars / max(result.wall_seconds, 1e-9):,.0f}/s)"
    )
    console.print(table)
    console.print(f"results saved to {out}")
    with front_door("report"):
        from rustybt.metrics.report import write_report

        console.print(f"report: {write_report(out, title=f'{result.strategy} backtest')}")


@app.command()
def report(
    results: Path = typer.Argument(..., help="A results folder written by `run -o` / `live -o`."),
) -> None:
    """Rebuild the HTML report of a results folder."""
    from rustybt.metrics.report import write_report

    with front_door("report"):
        console.print(f"report: {write_report(results)}")


def _results_dir(name: str) -> Path:
    from rustybt.data.bundles import rustybt_root

    return rustybt_root() / "results" / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}"


# --- live -----------------------------------------------------------------------------
def _load_config(path: Path) -> dict[str, Any]:
    """The typed options of a live.toml (each value checked, labelled ``file: key``)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; give the .toml file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    section = raw.get("live", raw)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [live] must be a table")
    data = {k.replace("-", "_"): v for k, v in section.items()}
    from rustybt.live.audit import SECRETS

    # Register secrets before anything can fail and print a message that might echo them.
    for key, opt in optspec.LIVE_OPTIONS.items():
        if opt.secret and isinstance(data.get(key), str):
            SECRETS.add(data[key])
    if isinstance(data.get("algofile"), str):
        data["algofile"] = str((path.parent / data["algofile"]).resolve())
    return optspec.check(optspec.LIVE_OPTIONS, data, source=path.name)


@live_app.callback(invoke_without_command=True)
def live(
    ctx: typer.Context,
    algofile: Path = typer.Option(None, "-f", "--algofile", help="Strategy file."),
    broker: str = typer.Option(
        None, help="Broker: paper, ib, binance, bybit, hyperliquid or ccxt:<id> (any ccxt id)."
    ),
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
    checkpoint_interval: str = typer.Option(None, help="Seconds between checkpoints."),
    max_bars: str = typer.Option(None, help="Stop after this many market data events."),
    seed: str = typer.Option(None, help="Seed for simulated latency jitter."),
    host: str = typer.Option(None, help="IB: TWS / IB Gateway host (default 127.0.0.1)."),
    port: str = typer.Option(None, help="IB: API port (TWS paper 7497, Gateway paper 4002)."),
    client_id: str = typer.Option(None, "--client-id", help="IB: API client id (default 1)."),
    live_money: bool = typer.Option(
        False, "--live-money", help="Allow real money (IB ports 7496/4001, Binance mainnet)."
    ),
    calendar: str = typer.Option(None, help="Replay clock calendar, e.g. XNYS or 24/7."),
    data: str = typer.Option(None, help="Market data: replay (the bundle) or stream."),
    venue: str = typer.Option(None, help="Stream venue: binance, bybit, hyperliquid."),
    symbols: str = typer.Option(None, help="Symbols to stream (default: the strategy's)."),
    bar_seconds: str = typer.Option(None, help="Bar length of streamed data (default 60)."),
    dashboard: bool = typer.Option(
        False, "--dashboard", help="Serve the operator console (API, dashboard, /metrics)."
    ),
    dashboard_port: str = typer.Option(None, help="Console port (default 8787; 0: any free)."),
    dashboard_host: str = typer.Option(None, help="Console address (default 127.0.0.1)."),
    dashboard_allow_remote: bool = typer.Option(
        False, "--dashboard-allow-remote", help="Allow binding the console beyond loopback."
    ),
    allow_short: bool = typer.Option(
        None, "--allow-short", help="Allow short selling on the paper venue (off by default)."
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="Folder for Parquet results (same files as `run -o`)."
    ),
    no_progress: bool = typer.Option(False, "--no-progress"),
    shadow: bool = typer.Option(
        False,
        "--shadow",
        help="Run a shadow backtest beside the session and check every signal and fill "
        "against it (docs/shadow-trading.md).",
    ),
    testnet: bool = typer.Option(False, "--testnet", help="Binance: use its testnet."),
    venue_url: str = typer.Option(
        None,
        help="http://host:port of the venue (proxy or local fake; ws:// follows): the "
        "Binance broker and/or the --data stream market data.",
    ),
    market_type: str = typer.Option(None, help="Binance: spot or futures."),
) -> None:
    """Paper-trade (or live-trade) a strategy. Ctrl-C or SIGTERM stops it gracefully."""
    if ctx.invoked_subcommand is not None:
        return
    _quiet_console_logs()
    opts: dict[str, Any] = {}
    with front_door("paper session not started", algofile):
        if config is not None:
            opts.update(_load_config(config))
        cli = {
            "algofile": algofile,
            "broker": broker,
            "bundle": bundle,
            "speed": speed,
            "start": start,
            "end": end,
            "starting_cash": starting_cash,
            "paper_state": paper_state,
            "state_dir": state_dir,
            "strategy_name": strategy_name,
            "reconciliation": reconciliation,
            "checkpoint_interval": checkpoint_interval,
            "max_bars": max_bars,
            "seed": seed,
            "host": host,
            "port": port,
            "client_id": client_id,
            "live_money": live_money or None,
            "testnet": testnet or None,
            "venue_url": venue_url,
            "market_type": market_type,
            "calendar": calendar,
            "data": data,
            "venue": venue,
            "symbols": symbols,
            "bar_seconds": bar_seconds,
            "dashboard": dashboard or None,
            "dashboard_port": dashboard_port,
            "dashboard_host": dashboard_host,
            "dashboard_allow_remote": dashboard_allow_remote or None,
            "allow_short": allow_short,
            "shadow": shadow or None,
        }
        opts.update(optspec.check(optspec.LIVE_OPTIONS, cli))
        if not opts.get("algofile"):
            raise ConfigError("give a strategy file with -f algo.py (or algofile in --config)")
        optspec.check_date_order(opts)
        event_loop.loop_factory()  # a bad RUSTYBT_EVENT_LOOP stops here, before any state
        if not optspec.is_venue_broker(opts.get("broker", "paper")):  # venue data: no bundle
            optspec.check_bundle(opts.get("bundle", "demo"), "minute", opts, command="live")
        engine = _build_engine(opts)
        wants_analyze = _defines_analyze(engine.strategy)
        recording = output is not None or wants_analyze
        recorder = engine.record_results() if recording else None
    with front_door("paper session stopped", opts["algofile"]):
        try:
            code = _run_engine(engine, show_progress=not no_progress, opts=opts)
        finally:
            _prune(engine, _retention(opts))
            if recorder is not None and output is not None:
                # Same files and columns as `rustybt run -o DIR`; written even after an
                # error or Ctrl-C, for the part of the session that ran.
                recorder.result().save(output)
                if engine.shadow is not None:
                    engine.save_shadow_report(output)
                console.print(f"results saved to {output}")
                _session_report(engine, output)
        if wants_analyze and recorder is not None:
            # As at the end of a backtest: zipline's analyze(context, perf) gets the
            # session's results in the same shape.
            algo = engine.strategy
            algo._call(algo.analyze, algo, recorder.result())
    raise typer.Exit(code)


def _defines_analyze(algo: Any) -> bool:
    """True when the strategy has its own ``analyze`` (a method or a script function)."""
    from rustybt.algorithm import TradingAlgorithm

    ns = getattr(algo, "_ns", None)
    if isinstance(ns, dict):
        return callable(ns.get("analyze"))
    return type(algo).analyze is not TradingAlgorithm.analyze


def _session_report(engine: Any, output: Path) -> None:
    """The HTML report of a live session next to its results (never fails the session)."""
    from rustybt.exceptions import RustyBTError
    from rustybt.metrics.report import write_breaker_events, write_report

    try:
        write_breaker_events(output, engine.audit.path)
        page = write_report(output, title=f"{engine.strategy_name} live session")
    except (RustyBTError, OSError) as exc:
        err_console.print(f"no report written: {one_line(str(exc))}")
        return
    console.print(f"report: {page}")


def _quiet_console_logs() -> None:
    """Console log lines: registered secrets masked, and no tracebacks (the error path
    writes those to a file; the audit file never had them)."""
    import structlog

    from rustybt.live.audit import redact_event

    processors = list(structlog.get_config()["processors"])
    if redact_event not in processors:
        processors = [redact_event, _drop_traceback, *processors]
        structlog.configure(processors=processors)


def _drop_traceback(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    if event.get("event") == "engine_failed":
        import structlog

        # The error path prints this failure as its one `error:` line (the audit log,
        # a separate logger, still records it).
        raise structlog.DropEvent
    event.pop("traceback", None)
    event.pop("exc_info", None)
    return event


def _build_engine(opts: dict[str, Any]) -> Any:
    from rustybt.cli.strategy_file import load_strategy
    from rustybt.data.polars.data_portal import PolarsDataPortal
    from rustybt.live import LiveTradingEngine
    from rustybt.live.models import ReconciliationStrategy
    from rustybt.live.state_manager import StateManager

    algo = load_strategy(opts["algofile"], opts.get("strategy_name"))
    broker_name = opts.get("broker", "paper")
    recon_default = "warn_only" if broker_name in optspec.SIMULATED_BROKERS else "halt_and_alert"
    recon_strategy = ReconciliationStrategy(opts.get("reconciliation", recon_default))
    end = opts.get("end")
    if end is not None and len(str(end)) == 10:
        end = f"{end} 23:59:59"
    if optspec.is_venue_broker(broker_name):
        from rustybt.cli.venue_brokers import venue_broker

        return _attach_stream(
            _build_venue_engine(opts, algo, venue_broker(broker_name, opts), recon_strategy),
            opts,
        )
    portal = PolarsDataPortal(bundle_name=opts.get("bundle", "demo"), data_frequency="minute")
    broker = _ib_broker(opts) if broker_name == "ib" else _paper_broker(opts)
    state_dir = Path(opts["state_dir"]) if opts.get("state_dir") else None
    retention = _retention(opts)
    engine = LiveTradingEngine(
        strategy=algo,
        broker_adapter=broker,
        data_portal=portal,
        state_manager=StateManager(state_dir, keep=retention.checkpoints),
        checkpoint_interval_seconds=float(opts.get("checkpoint_interval", 60)),
        reconciliation_strategy=recon_strategy,
        reconciliation_interval_seconds=float(opts.get("reconcile_interval", 300)),
        risk_limits=opts.get("risk_limits"),
        shadow_mode=bool(opts.get("shadow", False)),
        speed=opts.get("speed", "max"),
        start=opts.get("start"),
        end=end,
        state_dir=state_dir,
        calendar=opts.get("calendar"),
    )
    if opts.get("max_bars"):
        engine.stop_after_market_events = int(opts["max_bars"])
    return _attach_stream(engine, opts)


def _attach_stream(engine: Any, opts: dict[str, Any]) -> Any:
    """``--data stream``: the engine trades bars built from the venue's market stream."""
    if opts.get("data") == "stream":
        from rustybt.live.streaming.registry import make_stream

        if opts.get("broker") == "ib":
            from rustybt.live.streaming.ib import IBRealTimeBarStream

            if opts.get("venue") not in (None, "ib"):
                raise ConfigError(
                    f"--broker ib streams TWS's own real-time bars; drop --venue "
                    f"{opts['venue']} (or trade it with --broker paper --data stream)"
                )
            stream = IBRealTimeBarStream(engine.broker)
        else:
            venue = opts.get("venue") or (
                opts["broker"]
                if opts.get("broker") in ("binance", "bybit", "hyperliquid")
                else None
            )
            venue = venue or "binance"
            options = {}
            if venue == "bybit":
                # The stream of the market traded: perpetuals (the Bybit broker's default)
                # or spot; a paper session on Bybit data streams spot unless told.
                default = "linear" if opts.get("broker") == "bybit" else "spot"
                kind = str(opts.get("market_type") or default)
                options["category"] = "linear" if kind in ("linear", "futures") else kind
            stream = make_stream(venue, venue_url=opts.get("venue_url"), **options)
        engine.add_stream(stream, opts.get("symbols"), bar_interval=opts.get("bar_seconds"))
    return engine


def _paper_broker(opts: dict[str, Any]) -> Any:
    from rustybt.finance.decimal.commission import PerShareCommission
    from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage
    from rustybt.live.brokers.paper_broker import PaperBroker

    return PaperBroker(
        starting_cash=opts.get("starting_cash", Decimal("100000")),
        commission_model=PerShareCommission(opts.get("commission_per_share", Decimal("0.005"))),
        slippage_model=FixedBasisPointsSlippage(opts.get("slippage_bps", Decimal("5"))),
        order_latency_ms=float(opts.get("latency_ms", 100)),
        latency_jitter_pct=opts.get("latency_jitter_pct", Decimal("0.2")),
        volume_limit_pct=opts.get("volume_limit_pct", Decimal("0.025")),
        seed=int(opts.get("seed", 0)),
        allow_short=bool(opts.get("allow_short", False)),
        state_path=str(opts["paper_state"]) if opts.get("paper_state") else None,
    )


def _ib_broker(opts: dict[str, Any]) -> Any:
    from rustybt.live.brokers.ib_adapter import IBBrokerAdapter

    return IBBrokerAdapter(
        host=opts.get("host", "127.0.0.1"),
        port=opts.get("port", 7497),
        client_id=opts.get("client_id", 1),
        live_money=bool(opts.get("live_money", False)),
    )


def _retention(opts: dict[str, Any]) -> Any:
    from rustybt.live.retention import Retention

    given = {
        name: opts[f"keep_{name}"]
        for name in ("checkpoints", "old_journals", "audit_logs")
        if f"keep_{name}" in opts
    }
    return Retention(**given)


def _prune(engine: Any, retention: Any) -> None:
    """Drop the oldest set-aside journals and audit logs (never fails the session)."""
    from rustybt.live.retention import prune_state

    with contextlib.suppress(OSError):
        prune_state(engine.state_dir, engine.strategy_name, retention)


def _build_venue_engine(opts: dict[str, Any], algo: Any, broker: Any, recon: Any) -> Any:
    """A live engine on a network venue: market data from the venue, no bundle replay."""
    from rustybt.live import LiveTradingEngine
    from rustybt.live.state_manager import StateManager

    state_dir = Path(opts["state_dir"]) if opts.get("state_dir") else None
    engine = LiveTradingEngine(
        strategy=algo,
        broker_adapter=broker,
        state_manager=StateManager(state_dir) if state_dir else None,
        checkpoint_interval_seconds=float(opts.get("checkpoint_interval", 60)),
        reconciliation_strategy=recon,
        reconciliation_interval_seconds=float(opts.get("reconcile_interval", 300)),
        risk_limits=opts.get("risk_limits"),
        shadow_mode=bool(opts.get("shadow", False)),
        state_dir=state_dir,
        replay=False,
        stop_when_data_ends=False,
    )
    if opts.get("max_bars"):
        engine.stop_after_market_events = int(opts["max_bars"])
    return engine


def _run_engine(engine: Any, show_progress: bool, opts: dict[str, Any] | None = None) -> int:
    """Run the engine to its end or a signal; print the summary; the exit code.

    ``opts`` may ask for the operator console (``dashboard*``) and alert channels
    (``alerts``); both run on the engine's loop and stop with it.
    """
    opts = opts or {}
    from rustybt.cli.status import SessionView, session_summary

    interrupted: list[signal.Signals] = []
    view = SessionView(engine, err_console, live=show_progress and err_console.is_terminal)

    def on_signal(sig: signal.Signals) -> None:
        if interrupted:
            return  # already stopping; shutdown settles in-flight orders first
        interrupted.append(sig)
        engine.audit.warning(
            "interrupted", signal=sig.name, action="graceful shutdown: settle, checkpoint"
        )
        asyncio.ensure_future(engine.shutdown())

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        console_server, router = await _start_console(engine, opts)
        try:
            with view:
                engine.on_progress = view.progress
                await engine.run()
        finally:
            if router is not None:
                await router.stop()
            if console_server is not None:
                await console_server.stop()

    failure: BaseException | None = None
    try:
        event_loop.run(main())
    except Exception as exc:
        failure = exc
    st = engine.get_status()
    if st["market_events"] or failure is None:
        if show_progress and not view.live:
            err_console.print(view.line())
        console.print(session_summary(engine))
    if interrupted:
        sig = interrupted[0]
        err_console.print(
            f"interrupted ({sig.name}): stopped cleanly after {st['market_events']:,} market "
            f"events; state saved in {engine.state_dir}"
        )
        return 128 + sig.value
    if failure is not None:
        raise failure  # the caller's front_door words it and picks the exit code
    if engine.fatal_error:
        err_console.print(f"[bold red]stopped on error:[/] {one_line(engine.fatal_error)}")
        return EXIT_FAILED
    return EXIT_OK


async def _start_console(engine: Any, opts: dict[str, Any]) -> tuple[Any, Any]:
    """Start the console and the alert router the options ask for (either may be None)."""
    server = router = None
    alerts = opts.get("alerts")
    if alerts is not None:
        from rustybt.live.audit import SECRETS
        from rustybt.live.console.alerts import AlertRouter

        for secret in alerts.secrets():
            SECRETS.add(secret)
        router = AlertRouter(alerts, strategy=engine.strategy_name)
        await router.start()
        engine.alert_listeners.append(router.on_engine_alert)
    if opts.get("dashboard"):
        from rustybt.live.console.server import ConsoleServer

        host = opts.get("dashboard_host", "127.0.0.1")
        server = ConsoleServer(
            engine,
            host=host,
            port=opts.get("dashboard_port", 8787),
            allow_remote=bool(opts.get("dashboard_allow_remote", False)),
        )
        try:
            await server.start()
        except OSError as exc:
            raise ConfigError(
                f"cannot serve the console on {host}:{server.port}: {exc.strerror}; pick "
                "another --dashboard-port"
            ) from None
        if host not in ("127.0.0.1", "::1", "localhost"):
            err_console.print(
                f"[bold red]WARNING: the console listens on {host}, reachable from other "
                "machines; anyone with the token can halt and resume trading. Put it behind "
                "TLS.[/]"
            )
        err_console.print(
            f"console: {server.url} (token in {server.token_file}; `rustybt live token` prints it)"
        )
    return server, router


@live_app.command()
def token(
    state_dir: Path = typer.Option(None, help="The engine's --state-dir."),
) -> None:
    """Print the operator console's access token (created on first use)."""
    from rustybt.live.console.auth import load_or_create_token

    with front_door("live token"):
        console.print(load_or_create_token(state_dir or _default_state_dir()))


def _control_path(state_dir: Path | None, strategy: str) -> Path:
    from rustybt.live.control import socket_path

    base = state_dir or _default_state_dir()
    return socket_path(base / "control", strategy)


def _default_state_dir() -> Path:
    from rustybt.data.bundles import rustybt_root

    return rustybt_root() / "state"


def _control(cmd: dict[str, Any], strategy: str, state_dir: Path | None) -> dict[str, Any]:
    from rustybt.live.control import send_command

    with front_door(f"live {cmd['cmd']} stopped"):
        try:
            reply = asyncio.run(send_command(_control_path(state_dir, strategy), cmd))
        except OSError as exc:
            raise ConfigError(f"cannot reach the engine's control socket: {exc}") from None
        if not reply.get("ok"):
            raise ConfigError(reply.get("error", "command failed"))
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
    reason: str = typer.Option("", help="Why it is safe to resume (recorded)."),
    state_dir: Path = typer.Option(None),
) -> None:
    """Release a manual halt (and a pause) of a running engine."""
    _control({"cmd": "resume", "operator": operator, "reason": reason}, strategy, state_dir)
    console.print(f"[bold green]resumed[/] {strategy} (by {operator})")


@live_app.command()
def status(
    strategy: str = typer.Option(..., "--strategy", "-s"),
    state_dir: Path = typer.Option(None),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a running engine's status."""
    from rustybt.cli.status import status_table

    reply = _control({"cmd": "status"}, strategy, state_dir)
    st = reply["status"]
    if as_json:
        console.print_json(json.dumps(st))
        return
    console.print(status_table(strategy, st))


def main() -> None:  # pragma: no cover - console entry
    app()
