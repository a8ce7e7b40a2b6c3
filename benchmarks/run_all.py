"""Run every benchmark section and rewrite ``docs/performance.md`` from the results.

``make bench`` calls ``python -m benchmarks.run_all``. The harness is a list of sections
(:data:`SECTIONS`); each is a function ``(Context) -> SectionResult`` giving a markdown block and
its raw numbers. The backtest section lives here: the same SMA-cross job run by RustyBT and by
the peers (zipline-reloaded, backtrader, NautilusTrader, each in its own ``.bench/venv-*``)
plus a bare Python Decimal loop as the ceiling, every run in a fresh subprocess so peak RSS
(``ru_maxrss`` from ``os.wait4``) belongs to that one run, runs alternating between jobs, medians
reported. Other sections are modules ``benchmarks/<name>.py`` with a ``run()`` that returns rows
(a list of dicts), a markdown string, or a dict ``{"rows"|"markdown", "raw", "notes"}``; a module
that does not exist yet is listed as not run. Live targets are read from any section's raw
numbers under the keys ``events_per_s`` and ``tick_to_submit_p99_us``.

CLI: ``python -m benchmarks.run_all [--quick] [--runs 5] [--only backtest,...] [--jobs ...]``.
``--quick`` uses 2 symbols × 1 session and skips peers whose venv is missing (the smoke test).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import setup_peers
from benchmarks.data import MINUTES_PER_SESSION, Dataset, generate

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "docs" / "performance.md"
RECORDED = ROOT / "benchmarks" / "recorded.md"
JOB_TIMEOUT_S = 900
FULL_SIZE = (10, 20)  # symbols, sessions -> 78,000 bars
QUICK_SIZE = (2, 1)  # 780 bars
BACKTEST_TARGET_BPS = 150_000
BACKTEST_TARGET_RATIO = 5
LIVE_TARGET_EPS = 100_000
LIVE_TARGET_P99_US = 100
BASELINE = "bare-decimal"
CEILING = "pandas-ceiling"
RUSTYBT = "rustybt"

# Figures quoted in the issue for this machine kind (run call only, median of 5).
REFERENCE_BPS = {
    "zipline-reloaded": ("≈ 30,000", "34 µs/bar; zipline-reloaded 3.2.1"),
    "nautilus-trader": ("≈ 16,000", "NautilusTrader 1.221.0"),
    "backtrader-pandas": ("≈ 6,000", "PandasData feed"),
    "backtrader-direct": ("≈ 18,000", "direct itertuples feed"),
    "bare-decimal": ("≈ 1,300,000", "the ceiling"),
}


# --- plumbing shared by all sections --------------------------------------------------------
@dataclass
class Context:
    """What every section gets: run options and the results of sections run before it."""

    quick: bool = False
    runs: int = 5
    bench_dir: Path = setup_peers.BENCH_DIR
    jobs: list[str] | None = None
    install: bool = True
    argv: list[str] = field(default_factory=list)
    results: dict[str, SectionResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    log: Callable[[str], None] = print
    prepared: set[str] = field(default_factory=set)
    ratios_markdown: str = ""
    load_at_start: str = field(default_factory=lambda: _loadavg())


@dataclass
class SectionResult:
    """A section's markdown block (without its heading) and raw numbers for the JSON dump."""

    title: str
    markdown: str
    raw: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False


@dataclass(frozen=True)
class Section:
    name: str
    run: Callable[[Context], SectionResult]
    #: The section's heading, to carry its figures over from an earlier run when it is not
    #: run this time ("" for sections whose heading depends on the run).
    title: str = ""


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3]) + " (1, 5, 15 min)"
    except OSError:
        return "unknown"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _rel(path: Path | str) -> str:
    try:
        return str(Path(os.path.abspath(path)).relative_to(ROOT))
    except ValueError:
        return str(path)


# --- measuring one subprocess ---------------------------------------------------------------
@dataclass
class Measurement:
    report: dict[str, Any] | None
    error: str | None
    process_s: float
    max_rss_mb: float
    rss_source: str


TIME_BIN = "/usr/bin/time"


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except OSError:
        pass


def measure(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = JOB_TIMEOUT_S
) -> Measurement:
    """Run ``cmd`` in a fresh process; return its JSON report, wall time and peak RSS.

    Peak RSS comes from GNU time's ``%M`` (the job's ``ru_maxrss``) when ``/usr/bin/time``
    exists: the job is then forked from the small ``time`` process. Forking the job straight
    from this harness would not do: Linux carries the RSS high-water mark across ``exec``, so
    every job would appear at least as big as the harness itself. Without GNU time the job's
    own ``VmHWM`` (reported in its JSON line) is used, then ``os.wait4``'s ``ru_maxrss``.
    """
    use_time = os.access(TIME_BIN, os.X_OK)
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r", suffix=".rss") as rss,
    ):
        full = [TIME_BIN, "-f", "%M", "-o", rss.name, *cmd] if use_time else cmd
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            full, stdout=out, stderr=err, env=env, cwd=ROOT, start_new_session=True
        )
        timer = threading.Timer(timeout, _kill_group, (proc,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        time_lines = [ln.strip() for ln in rss.read().splitlines() if ln.strip()]
    report = None
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                report = json.loads(line)
            except json.JSONDecodeError:
                report = None
            break
    if use_time and time_lines and time_lines[-1].isdigit():
        rss_mb, source = int(time_lines[-1]) / 1024, "GNU time %M"
    elif report is not None and report.get("vmhwm_mb"):
        rss_mb, source = float(report["vmhwm_mb"]), "job VmHWM"
    else:
        rss_mb, source = usage.ru_maxrss / 1024, "wait4 ru_maxrss (includes harness size)"
    error = None
    if report is not None and report.get("error"):
        error = str(report["error"])
    elif proc.returncode != 0 or report is None:
        tail = [ln for ln in stderr.splitlines() if ln.strip() and "exited with" not in ln][-3:]
        why = "killed after timeout" if proc.returncode in (-9, 137) else f"exit {proc.returncode}"
        error = f"{why}: {' | '.join(tail)[:500] or 'no JSON report on stdout'}"
    return Measurement(report if error is None else None, error, elapsed, rss_mb, source)


# --- the backtest jobs ----------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One framework running the SMA-cross job; ``peer`` names its venv (None: main venv)."""

    name: str
    peer: str | None
    script: str
    args: Callable[[Context, Dataset], list[str]] = lambda ctx, ds: []
    fills: str = ""
    style: str = "sums"
    framework: str = ""  # the column of the ratio table (defaults to the name)

    def python(self, ctx: Context) -> str:
        if self.peer is None:
            return sys.executable
        return str(setup_peers.PEERS[self.peer].python(ctx.bench_dir))

    def command(self, ctx: Context, ds: Dataset) -> list[str]:
        return [
            self.python(ctx),
            str(ROOT / self.script),
            "--data-dir",
            str(ds.directory),
            *self.args(ctx, ds),
            *(["--style", self.style] if self.style != "sums" else []),
        ]


def _zipline_root(ctx: Context, ds: Dataset) -> Path:
    return ctx.bench_dir / "zipline" / ds.tag


def _rustybt_root(ctx: Context) -> Path:
    return ctx.bench_dir / "rustybt"


def _bundle(ds: Dataset) -> str:
    return f"bench-{ds.tag}"


_RB_FILLS = "bar t+1, at that bar's close (an order never fills on the bar that triggered it)"
_ZL_FILLS = "bar t+1, at that bar's close (zipline's minute-mode rule)"
_NT_FILLS = (
    "bar t itself: the simulated venue has already seen bar t, so a market order sent from "
    "on_bar fills at once at its close"
)
_ZL_ARGS: Callable[[Context, Dataset], list[str]] = lambda ctx, ds: [  # noqa: E731
    "--zipline-root",
    str(_zipline_root(ctx, ds)),
]
_RB_ARGS: Callable[[Context, Dataset], list[str]] = lambda ctx, ds: ["--bundle", _bundle(ds)]  # noqa: E731

#: Every job. ``style`` (see ``benchmarks/peers/_common.py``): ``sums`` = running sums;
#: ``history`` = the framework's idiomatic way (one ``data.history`` call per minute for all
#: assets; built-in SMA indicators where there is no ``data.history``); ``history-per-asset``
#: = one ``data.history`` call per asset.
JOBS: list[Job] = [
    Job(RUSTYBT, None, "benchmarks/rustybt_job.py", _RB_ARGS, _RB_FILLS),
    Job(
        "rustybt [history]",
        None,
        "benchmarks/rustybt_job.py",
        _RB_ARGS,
        _RB_FILLS,
        "history",
        RUSTYBT,
    ),  # fmt: skip
    Job(
        "rustybt [history per asset]",
        None,
        "benchmarks/rustybt_job.py",
        _RB_ARGS,
        _RB_FILLS,
        "history-per-asset",
        RUSTYBT,
    ),  # fmt: skip
    Job("zipline-reloaded", "zipline", "benchmarks/peers/zipline_job.py", _ZL_ARGS, _ZL_FILLS),
    Job(
        "zipline-reloaded [history]",
        "zipline",
        "benchmarks/peers/zipline_job.py",
        _ZL_ARGS,
        _ZL_FILLS,
        "history",
        "zipline-reloaded",
    ),  # fmt: skip
    Job(
        "zipline-reloaded [history per asset]",
        "zipline",
        "benchmarks/peers/zipline_job.py",
        _ZL_ARGS,
        _ZL_FILLS,
        "history-per-asset",
        "zipline-reloaded",
    ),  # fmt: skip
    Job(
        "backtrader-pandas",
        "backtrader",
        "benchmarks/peers/backtrader_job.py",
        lambda ctx, ds: ["--variant", "pandas"],
        "bar t+1, at that bar's open",
    ),
    Job(
        "backtrader-direct",
        "backtrader",
        "benchmarks/peers/backtrader_job.py",
        lambda ctx, ds: ["--variant", "direct"],
        "bar t+1, at that bar's open",
    ),
    Job(
        "backtrader-direct [SMA indicators]",
        "backtrader",
        "benchmarks/peers/backtrader_job.py",
        lambda ctx, ds: ["--variant", "direct"],
        "bar t+1, at that bar's open",
        "history",
        "backtrader-direct",
    ),  # fmt: skip
    Job("nautilus-trader", "nautilus", "benchmarks/peers/nautilus_job.py", fills=_NT_FILLS),
    Job(
        "nautilus-trader [SMA indicators]",
        "nautilus",
        "benchmarks/peers/nautilus_job.py",
        fills=_NT_FILLS,
        style="history",
        framework="nautilus-trader",
    ),  # fmt: skip
    Job(
        BASELINE,
        None,
        "benchmarks/peers/bare_decimal.py",
        fills="bar t+1, at that bar's open (hand-written)",
    ),
    Job(
        CEILING,
        None,
        "benchmarks/peers/bare_decimal.py",
        fills="bar t+1, at that bar's open (hand-written)",
        style="history",
        framework=CEILING,
    ),  # fmt: skip
]
JOB_NAMES = [j.name for j in JOBS]


def _ingest_for_rustybt(ds: Dataset, root: Path) -> str:
    """ADAPTER: put the generated CSVs into RustyBT bundle ``bench-<tag>`` under ``root``.

    Uses ``rustybt.data.ingest.ingest`` (what ``rustybt ingest`` runs) when it exists and
    succeeds; otherwise writes the bundle directly with ``rustybt.data.bundles.write_bundle``
    (same files, same schema) so the backtest can still be measured. Returns which path was
    taken, and why, for the report. Raises whatever the fallback raises; the caller reports it.
    """
    name = _bundle(ds)
    failure = ""
    try:
        from rustybt.data.ingest import ingest
    except ImportError:
        ingest = None
    if ingest is not None:
        params = inspect.signature(ingest).parameters
        kwargs: dict[str, Any] = {}
        if "frequency" in params:
            kwargs["frequency"] = "minute"
        kwargs["root"] = root
        try:
            ingest(name, [str(p) for p in ds.paths], **kwargs)
            return "rustybt.data.ingest.ingest"
        except Exception as exc:  # keep benchmarking the backtest even if ingest is broken
            failure = f" because rustybt.data.ingest.ingest raised {type(exc).__name__}: {exc}"
            failure = failure.splitlines()[0][:300]

    import polars as pl

    from rustybt.assets import Equity
    from rustybt.data.bundles import SCHEMA, write_bundle

    frames = []
    for path in ds.paths:
        frame = pl.read_csv(path, schema_overrides={c: pl.Utf8 for c in SCHEMA if c != "symbol"})
        frames.append(
            frame.select(
                pl.lit(path.stem).alias("symbol"),
                pl.col("dt").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC", time_unit="us"),
                *[
                    pl.col(c).str.to_decimal(scale=8).cast(SCHEMA[c])
                    for c in SCHEMA
                    if c not in ("symbol", "dt")
                ],
            )
        )
    assets = [Equity(p.stem, sid=i) for i, p in enumerate(ds.paths)]
    write_bundle(name, assets, {"minute": pl.concat(frames)}, root=root)
    return "rustybt.data.bundles.write_bundle (adapter fallback" + failure + ")"


def _prepare(job: Job, ctx: Context, ds: Dataset) -> str | None:
    """Per-job, untimed setup (install, ingest). Returns None when ready, else why not."""
    if job.peer is not None:
        spec = setup_peers.PEERS[job.peer]
        if not setup_peers.is_installed(spec, ctx.bench_dir):
            if ctx.quick or not ctx.install:
                return f"venv {_rel(spec.venv(ctx.bench_dir))} missing (not installed in this mode)"
            ctx.log(f"installing {spec.name} into {_rel(spec.venv(ctx.bench_dir))} ...")
            if not setup_peers.ensure_peer(spec, ctx.bench_dir):
                reason = setup_peers.install_failure(spec, ctx.bench_dir) or "install failed"
                return f"install failed: {reason}"
    if (job.name == RUSTYBT or job.framework == RUSTYBT) and RUSTYBT not in ctx.prepared:
        ctx.prepared.add(RUSTYBT)
        try:
            how = _ingest_for_rustybt(ds, _rustybt_root(ctx))
            ctx.notes.append(f"RustyBT bundle `{_bundle(ds)}` written by {how}.")
            ctx.log(f"rustybt: bundle {_bundle(ds)} ingested via {how}")
        except Exception as exc:  # any RustyBT failure is a result to report, not a crash
            return f"not available (ingest failed: {type(exc).__name__}: {exc})"
    if job.peer == "zipline":
        root = _zipline_root(ctx, ds)
        stamp = root / ".ingested"
        if not stamp.exists():
            cmd = [*job.command(ctx, ds), "--prepare"]
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=JOB_TIMEOUT_S, cwd=ROOT
            )
            if proc.returncode != 0:
                tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
                return f"bundle ingest failed: {tail[:500]}"
            stamp.write_text("ok\n")
    return None


def _job_env(job: Job, ctx: Context) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    if job.peer is None:
        env["RUSTYBT_ROOT"] = str(_rustybt_root(ctx))
    return env


@dataclass
class JobSummary:
    name: str
    version: str
    bars: int
    orders: int
    fills: int | None
    wall_s: float
    process_s: float
    rss_mb: float
    rss_source: str
    runs: int
    failures: list[str]
    trades: list[list[Any]]
    trades_sha: str
    fill_log: list[list[Any]] = field(default_factory=list)
    style: str = "sums"
    data_bars: int = 0

    @property
    def bars_per_s(self) -> float:
        # the data set's bars: a job whose strategy starts after a warm-up still read them all
        bars = self.data_bars or self.bars
        return bars / self.wall_s if self.wall_s > 0 else float("inf")

    @property
    def us_per_bar(self) -> float:
        bars = self.data_bars or self.bars
        return self.wall_s / bars * 1e6 if bars else float("nan")


def _summarise(name: str, ms: list[Measurement], failures: list[str]) -> JobSummary:
    reports = [m.report for m in ms if m.report is not None]
    last = reports[-1]
    return JobSummary(
        name=name,
        version=str(last.get("version", "")),
        bars=int(last["bars"]),
        orders=int(last["orders"]),
        fills=last.get("fills"),
        wall_s=statistics.median(float(r["wall_s"]) for r in reports),
        process_s=statistics.median(m.process_s for m in ms if m.report is not None),
        rss_mb=statistics.median(m.max_rss_mb for m in ms if m.report is not None),
        rss_source=ms[-1].rss_source,
        runs=len(reports),
        failures=failures,
        trades=[list(t) for t in last.get("trades", [])],
        trades_sha=str(last.get("trades_sha", "")),
        fill_log=[list(f) for f in last.get("fill_log", [])],
        style=str(last.get("style", "sums")),
    )


def _last_bar(ds: Dataset) -> str:
    """The timestamp of the data set's final bar, as the jobs write it."""
    with ds.paths[0].open() as fh:
        lines = [ln for ln in fh.read().splitlines() if ln.strip()]
    return lines[-1].split(",")[0]


def _fmt_int(v: float) -> str:
    return f"{v:,.0f}"


_STYLE_LABEL = {
    "sums": "running sums (`3·Σ10` vs `Σ30`)",
    "history": "idiomatic: one `data.history` per minute for all assets (peers without it: "
    "built-in SMA indicators)",
    "history-per-asset": "idiomatic: one `data.history` per asset per minute",
}
_PEER_FRAMEWORKS = ("zipline-reloaded", "backtrader-direct", "nautilus-trader")


def _framework(job: Job) -> str:
    return job.framework or job.name


def _ratio_table(
    summaries: dict[str, JobSummary], jobs: dict[str, Job]
) -> tuple[str, dict[str, Any]]:
    """RustyBT's speed over each peer's, style by style, plus the pandas ceiling."""
    cell: dict[tuple[str, str], JobSummary] = {}
    for name, s in summaries.items():
        job = jobs[name]
        cell[(_framework(job), job.style)] = s
    rows = []
    raw: dict[str, Any] = {}
    for style in ("history", "history-per-asset", "sums"):
        rb = cell.get((RUSTYBT, style))
        if rb is None:
            continue
        row = [_STYLE_LABEL[style], f"{rb.bars_per_s:,.0f}"]
        for peer in _PEER_FRAMEWORKS:
            ps = cell.get((peer, style))
            if ps is None:
                row.append("—")
                continue
            ratio = rb.bars_per_s / ps.bars_per_s
            raw[f"{style}/{peer}"] = ratio
            row.append(f"**{ratio:.2f}×** ({ps.bars_per_s:,.0f})")
        ceiling = cell.get((CEILING, style)) if style == "history" else None
        if ceiling is not None:
            frac = ceiling.bars_per_s / rb.bars_per_s
            raw["history/ceiling_over_rustybt"] = frac
            row.append(f"{frac:.2f}× slower than the ceiling ({ceiling.bars_per_s:,.0f})")
        else:
            row.append("—")
        rows.append(row)
    if not rows:
        return "_RustyBT was not measured: no ratios._", raw
    head = ["job style", "RustyBT bars/s"]
    head += [f"vs {p} (its bars/s)" for p in _PEER_FRAMEWORKS]
    head.append("vs the user's pandas work alone")
    text = (
        "Speed ratio = RustyBT bars/s ÷ the peer's bars/s, each written in the same style; "
        "above 1 favours RustyBT. Goals (issue #19): idiomatic ≥ 1.5× zipline-reloaded and "
        "within 1.3× of the ceiling (the same user code on pre-built pandas objects, "
        f"`{CEILING}`), per asset ≥ 1.2× zipline-reloaded, running sums ≥ 6×.\n\n"
        + _table(head, rows)
    )
    return text, raw


def _bars_by_symbol(ds: Dataset) -> dict[str, tuple[list[str], dict[str, int], list[list[int]]]]:
    """Per symbol: bar times, time -> row, and rows of (open, high, low, close) in cents."""
    out = {}
    for path in ds.paths:
        times: list[str] = []
        ohlc: list[list[int]] = []
        with path.open() as fh:
            next(fh)
            for line in fh:
                if not line.strip():
                    continue
                parts = line.rstrip("\n").split(",")
                times.append(parts[0])
                ohlc.append([round(float(x) * 100) for x in parts[1:5]])
        out[path.stem] = (times, {t: i for i, t in enumerate(times)}, ohlc)
    return out


def _classify_fill(bars: Any, fill: list[Any]) -> str:
    """Which bar and price a fill took, relative to the bar its order was placed on."""
    symbol, placed, filled, _amount, price = fill
    times, row, ohlc = bars.get(symbol, ([], {}, []))
    t = row.get(placed)
    f = row.get(filled)
    if t is None or f is None:
        return "unknown bar"
    lag = f - t
    names = ["open", "high", "low", "close"]
    hits = [n for n, v in zip(names, ohlc[f], strict=True) if v == price]
    where = "=".join(hits) if hits else "another price"
    return f"bar t{'' if lag == 0 else f'+{lag}'} {where}"


def _fills_report(
    ds: Dataset, summaries: dict[str, JobSummary], jobs: dict[str, Job], ref_name: str
) -> str:
    """Every job's orders and fill events against the reference's, order by order."""
    bars = _bars_by_symbol(ds)
    ref = summaries[ref_name]
    ref_fills = {(f[0], f[1]): f for f in ref.fill_log}
    last_bar = _last_bar(ds)
    rows = []
    details: list[str] = []
    for name, s in summaries.items():
        orders = {tuple(t) for t in s.trades}
        ref_orders = {tuple(t) for t in ref.trades}
        missing = sorted(ref_orders - orders, key=lambda t: (t[1], t[0]))
        extra = sorted(orders - ref_orders, key=lambda t: (t[1], t[0]))
        kinds: dict[str, int] = {}
        for f in s.fill_log:
            k = _classify_fill(bars, f)
            kinds[k] = kinds.get(k, 0) + 1
        same_time = same_price = 0
        first_diff = None
        for f in s.fill_log:
            r = ref_fills.get((f[0], f[1]))
            if r is None:
                continue
            same_time += r[2] == f[2]
            same_price += r[4] == f[4]
            if first_diff is None and (r[2], r[4]) != (f[2], f[4]):
                first_diff = (f, r)
        on_last = sum(1 for t in s.trades if t[1] == last_bar)
        verdict = "reference" if name == ref_name else (
            "same orders" if not missing and not extra else
            f"{len(missing)} missing, {len(extra)} extra"
        )  # fmt: skip
        rows.append(
            [
                name,
                f"{len(s.trades):,}",
                f"{len(s.fill_log):,}",
                verdict,
                "; ".join(f"{k}: {v:,}" for k, v in sorted(kinds.items())) or "—",
                f"{same_time:,} / {same_price:,}",
                jobs[name].fills + (f"; {on_last} order(s) on the final bar" if on_last else ""),
            ]
        )
        if missing or extra:
            first = (missing or extra)[0]
            details.append(
                f"- **{name}**: {len(missing)} of the reference's orders missing, {len(extra)} "
                f"extra; first: {'missing' if missing else 'extra'} {list(first)}."
                + _why_different(s.style, jobs[name])
            )
        elif first_diff is not None and name != ref_name:
            f, r = first_diff
            details.append(
                f"- **{name}**: first fill that differs from the reference: order "
                f"{f[0]} placed {f[1]} filled {f[2]} at {f[4]}¢ (reference: {r[2]} at "
                f"{r[4]}¢) — the framework's fill convention, not a different decision."
            )
    text = (
        f"An order is (symbol, bar it was placed on, side, quantity); a fill event is (symbol, "
        f"order's bar, fill bar, signed amount, price in cents), one per fill event "
        f"(`fills` counts events, not orders with a fill). Both compared with `{ref_name}`, "
        "whose rule is exact (running sums of Decimals). *Fill taken* classifies every fill "
        "against the data: the bar it happened on relative to the order's bar t, and which "
        "of that bar's prices it took.\n\n"
        + _table(
            [
                "job",
                "orders",
                "fill events",
                "orders vs reference",
                "fill taken",
                "same fill bar / same price as reference",
                "fill rule",
            ],
            rows,
        )
    )
    if details:
        text += "\n\nWhere and why they differ:\n\n" + "\n".join(details)
    return text


def _why_different(style: str, job: Job) -> str:
    if style == "sums":
        return " Unexpected: the running-sums rule is exact in every framework."
    if job.peer is None:
        return " Unexpected: RustyBT's history values and means are exact Decimals."
    return (
        " Expected: this framework's averages are floats, so a tie (`3·Σ10 = Σ30`) or a "
        "difference below float resolution can come out either way, and the sign flips the "
        "decision on that bar (and the position path after it)."
    )


def backtest_section(ctx: Context) -> SectionResult:
    n_sym, n_sess = QUICK_SIZE if ctx.quick else FULL_SIZE
    ds = generate(ctx.bench_dir / "data", n_sym, n_sess)
    title = (
        f"Backtest: SMA(10)/SMA(30) cross, {len(ds.symbols)} symbols × {len(ds.sessions)} "
        f"NYSE sessions × {MINUTES_PER_SESSION} minute bars ({ds.bars:,} bars)"
    )
    selected = [j for j in JOBS if ctx.jobs is None or j.name in ctx.jobs]
    unavailable: dict[str, str] = {}
    ready: list[Job] = []
    for job in selected:
        why = _prepare(job, ctx, ds)
        if why is None:
            ready.append(job)
        else:
            unavailable[job.name] = why
            ctx.log(f"{job.name}: {why}")

    measurements: dict[str, list[Measurement]] = {j.name: [] for j in ready}
    failures: dict[str, list[str]] = {j.name: [] for j in ready}
    for r in range(ctx.runs):
        # Rotate the order each round so no job always runs first (cold caches) or last.
        order = ready[r % len(ready) :] + ready[: r % len(ready)] if ready else []
        for job in order:
            if job.name in unavailable:
                continue
            m = measure(job.command(ctx, ds), env=_job_env(job, ctx))
            if m.error is not None:
                failures[job.name].append(m.error)
                if not measurements[job.name]:  # failed on its first run: don't retry 5 times
                    unavailable[job.name] = f"not available ({m.error})"
                ctx.log(f"run {r + 1}/{ctx.runs} {job.name}: FAILED {m.error}")
                continue
            measurements[job.name].append(m)
            rep = m.report or {}
            ctx.log(
                f"run {r + 1}/{ctx.runs} {job.name}: {rep.get('bars')} bars, "
                f"{rep.get('orders')} orders, {float(rep.get('wall_s', 0)):.3f} s, "
                f"{m.max_rss_mb:.0f} MB"
            )

    summaries = {
        j.name: _summarise(j.name, measurements[j.name], failures[j.name])
        for j in ready
        if measurements[j.name]
    }
    for s in summaries.values():
        s.data_bars = ds.bars
    rss_source = next((s.rss_source for s in summaries.values()), "not measured")
    md: list[str] = []
    md.append(
        "The same job for every framework: per symbol, SMA(10) and SMA(30) of the close; when "
        "fast > slow and flat, buy 100 shares; when fast < slow and long, sell to 0. Market "
        "orders, zero commission, zero slippage. Input: a seeded random walk "
        f"(`benchmarks/data.py`, tag `{ds.tag}`, sessions {ds.start} … {ds.end}), exported "
        "once to each framework's own input format outside the timed region. **Wall** is the "
        "run call only (`time.perf_counter` around `run_algorithm` / `cerebro.run` / "
        "`engine.run` / the loop), median of the runs; **process** is the whole subprocess "
        "(interpreter start, imports, data loading); **peak RSS** is the whole job "
        f"process's resident-set high-water mark ({rss_source}), median of the runs. Runs "
        "alternate between jobs (the order rotates each "
        f"round); {ctx.runs} run(s) per job"
        + (" — fewer than 5, so indicative only." if ctx.runs < 5 else ".")
    )
    rows = []
    for j in selected:
        s = summaries.get(j.name)
        if s is None:
            continue
        rows.append(
            [
                f"{j.name}" + (" (ceiling)" if j.name == BASELINE else ""),
                s.version,
                f"{s.wall_s:.4f}",
                _fmt_int(s.bars_per_s),
                f"{s.us_per_bar:.2f}",
                f"{s.rss_mb:.0f}",
                f"{s.process_s:.2f}",
                f"{s.bars:,}",
                f"{s.orders:,}",
                "n/a" if s.fills is None else f"{s.fills:,}",
                f"{s.runs}" + (f" ({len(s.failures)} failed)" if s.failures else ""),
            ]
        )
    md.append(
        _table(
            [
                "job",
                "version",
                "wall s",
                "bars/s",
                "µs/bar",
                "peak RSS MB",
                "process s",
                "bars",
                "orders",
                "fills",
                "runs",
            ],
            rows,
        )
        if rows
        else "_No job produced a result._"
    )

    rb = summaries.get(RUSTYBT)
    by_name = {j.name: j for j in selected}
    ratio_md, ratio_raw = _ratio_table(summaries, by_name)
    ctx.ratios_markdown = ratio_md
    md.append("### RustyBT / peer ratios, same style")
    md.append(ratio_md)

    md.append("### Orders and fills, order by order")
    ref_name = BASELINE if BASELINE in summaries else next(iter(summaries), None)
    if ref_name is None:
        md.append("_Nothing to compare._")
    else:
        md.append(_fills_report(ds, summaries, by_name, ref_name))

    if ctx.notes:
        md.append("### Notes")
        md.append("\n".join(f"- {n}" for n in ctx.notes))
    if unavailable:
        md.append("### Not measured")
        md.append("\n".join(f"- **{name}**: {why}" for name, why in unavailable.items()))
    md.append("### Reference figures (from the issue, same machine kind)")
    ref_rows = [
        [name, bps, _fmt_int(summaries[name].bars_per_s) if name in summaries else "—", note]
        for name, (bps, note) in REFERENCE_BPS.items()
    ]
    md.append(
        _table(["job", "reference bars/s", "measured bars/s", "note"], ref_rows)
        + ("\n\n_Measured on the quick (tiny) data set: not comparable._" if ctx.quick else "")
        + "\n\nThe ratio target is judged against the peers measured in this run, not against "
        "these figures. Every job here uses the same hand-rolled running sums rather than a "
        "framework's built-in SMA indicator (a one-off check on this machine: backtrader with "
        "`bt.ind.SMA` on PandasData ran at about the same speed as the hand-rolled version)."
    )
    md.append("### Commands of this section")
    cmds = []
    for j in selected:
        env = "RUSTYBT_ROOT=" + _rel(_rustybt_root(ctx)) + " " if j.name == RUSTYBT else ""
        cmd = [_rel(c) if c.startswith(str(ROOT) + os.sep) else c for c in j.command(ctx, ds)]
        cmds.append(env + " ".join(shlex.quote(c) for c in cmd))
        if j.name == "zipline-reloaded":
            cmds.insert(-1, " ".join(shlex.quote(c) for c in cmd) + " --prepare  # ingest, untimed")
    md.append("```\n" + "\n".join(cmds) + "\n```")

    fastest_peer = max(
        (
            s
            for n, s in summaries.items()
            if s.style == "sums" and n not in (RUSTYBT, BASELINE, CEILING)
        ),
        key=lambda s: s.bars_per_s,
        default=None,
    )
    raw = {
        "dataset": {
            "tag": ds.tag,
            "symbols": len(ds.symbols),
            "sessions": len(ds.sessions),
            "bars": ds.bars,
        },
        "jobs": {
            n: {k: v for k, v in s.__dict__.items() if k not in ("trades", "fill_log")}
            | {"bars_per_s": s.bars_per_s, "us_per_bar": s.us_per_bar}
            for n, s in summaries.items()
        },
        "unavailable": unavailable,
        "rustybt_bars_per_s": rb.bars_per_s if rb else None,
        "ratios": ratio_raw,
        "fastest_peer": fastest_peer.name if fastest_peer else None,
        "fastest_peer_bars_per_s": fastest_peer.bars_per_s if fastest_peer else None,
    }
    return SectionResult(title, "\n\n".join(md), raw)


# --- sections written by others -------------------------------------------------------------
def _coerce(title: str, out: Any) -> SectionResult:
    if isinstance(out, SectionResult):
        return out
    if isinstance(out, str):
        return SectionResult(title, out)
    notes = ""
    raw: dict[str, Any] = {}
    if isinstance(out, dict):
        notes = str(out.get("notes", ""))
        raw = dict(out.get("raw", {}))
        if "markdown" in out:
            return SectionResult(
                title, str(out["markdown"]) + ("\n\n" + notes if notes else ""), raw
            )
        out = out.get("rows", [])
    rows = list(out or [])
    raw.setdefault("rows", rows)
    if not rows:
        return SectionResult(title, "_No rows._" + ("\n\n" + notes if notes else ""), raw)
    headers: list[str] = []
    for row in rows:
        for k in row:
            if k not in headers:
                headers.append(k)
    body = _table(headers, [[_fmt_cell(row.get(h, "")) for h in headers] for row in rows])
    return SectionResult(title, body + ("\n\n" + notes if notes else ""), raw)


def _fmt_cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) >= 100 else f"{v:.4g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _main_output(module: str, title: str, ctx: Context) -> SectionResult:
    """Fallback for a module with only ``main()``: run it as a script, embed what it prints."""
    script = f"benchmarks/{module}.py"
    proc = subprocess.run(
        [sys.executable, str(ROOT / script)],
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])[:500]
        return SectionResult(title, f"**Failed** (`{script}` exit {proc.returncode}): `{tail}`")
    body = (
        f"Printed by `.venv/bin/python {script}` (the module has no `run()` returning rows, "
        "so its output is shown as is):\n\n```\n" + proc.stdout.strip() + "\n```"
    )
    return SectionResult(title, body, {"stdout": proc.stdout})


def module_section(module: str, title: str) -> Callable[[Context], SectionResult]:
    """A section backed by ``benchmarks/<module>.py``'s ``run()`` (optional ``quick`` kwarg)."""

    def run(ctx: Context) -> SectionResult:
        if not (ROOT / "benchmarks" / f"{module}.py").exists():
            return SectionResult(
                title, f"`benchmarks/{module}.py` does not exist yet.", skipped=True
            )
        try:
            mod = importlib.import_module(f"benchmarks.{module}")
            fn = getattr(mod, "run", None)
            if fn is None:
                return _main_output(module, title, ctx)
            params = inspect.signature(fn).parameters
            kwargs: dict[str, Any] = {}
            if "quick" in params:
                kwargs["quick"] = ctx.quick
            if "bench_dir" in params:
                kwargs["bench_dir"] = ctx.bench_dir
            return _coerce(title, fn(**kwargs))
        except Exception as exc:  # one broken section must not lose the others' results
            msg = f"{type(exc).__name__}: {exc}"
            return SectionResult(title, f"**Failed**: `{msg}`", {"error": msg})

    return run


def _module(name: str, module: str, title: str) -> Section:
    return Section(name, module_section(module, title), title)


#: Every section, in document order. The lead's live-engine benchmarks plug in here: add a
#: module ``benchmarks/bench_<x>.py`` with ``run()`` and a line below. Live targets are read
#: from raw keys ``events_per_s`` and ``tick_to_submit_p99_us`` (in rows or raw).
SECTIONS: list[Section] = [
    Section("backtest", backtest_section),
    _module("history", "bench_history", "data.history per call"),
    _module("checkpoint", "bench_checkpoint", "Checkpoint save/load"),
    _module("journal", "bench_journal", "Order journal (write before send)"),
    _module("live", "bench_live", "Live engine: events/s and tick-to-submit"),
    _module("risk_gate", "bench_risk_gate", "Risk gate cost per order"),
    _module("reconcile", "bench_reconcile", "Reconciliation scaling"),
    _module("restart", "bench_restart", "Restart to trading-ready"),
    _module("soak", "bench_soak", "RSS soak"),
    _module("ib", "bench_ib", "Interactive Brokers adapter ↔ fake TWS"),
    _module("binance", "bench_venue", "Binance adapter ↔ fake Binance"),
    _module("bybit", "bench_venue_bybit", "Bybit adapter ↔ fake Bybit"),
    _module("ccxt", "bench_venue_ccxt", "Generic ccxt adapter ↔ fake Binance"),
    _module("hyperliquid", "bench_venue_hyperliquid", "Hyperliquid adapter ↔ fake Hyperliquid"),
    _module("streaming", "bench_streaming", "Market-data streams: parse rate, bar close, soak"),
    _module("console", "bench_console", "Operator console overhead"),
    _module("shadow", "bench_shadow", "Shadow trading overhead"),
]
SECTION_NAMES = [s.name for s in SECTIONS]


# --- the document ---------------------------------------------------------------------------
def machine_info() -> dict[str, str]:
    cpu = "unknown"
    mem = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "nproc": str(os.cpu_count()),
        "memory": mem,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def _find_metric(obj: Any, key: str) -> float | None:
    if isinstance(obj, dict):
        if key in obj and isinstance(obj[key], int | float):
            return float(obj[key])
        for v in obj.values():
            found = _find_metric(v, key)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for v in obj:
            found = _find_metric(v, key)
            if found is not None:
                return found
    return None


def targets_markdown(ctx: Context) -> str:
    bt = ctx.results.get("backtest")
    raw = bt.raw if bt else {}
    bps = raw.get("rustybt_bars_per_s")
    peer_bps = raw.get("fastest_peer_bars_per_s")
    live_raw = [r.raw for n, r in ctx.results.items() if n != "backtest"]
    eps = _find_metric(live_raw, "events_per_s")
    p99 = _find_metric(live_raw, "tick_to_submit_p99_us")

    def verdict(value: float | None, ok: bool) -> str:
        return "not measured" if value is None else ("**met**" if ok else "**missed**")

    ratio = bps / peer_bps if bps and peer_bps else None
    ratios = raw.get("ratios", {})
    idiom_rows = []
    for key, goal, what in (
        ("history/zipline-reloaded", 1.5, "idiomatic job vs zipline-reloaded"),
        ("history-per-asset/zipline-reloaded", 1.2, "per-asset history vs zipline-reloaded"),
        ("sums/zipline-reloaded", 6.0, "running sums vs zipline-reloaded"),
    ):
        value = ratios.get(key)
        idiom_rows.append(
            [
                what,
                f"≥ {goal}×",
                "—" if value is None else f"{value:.2f}×",
                verdict(value, value is not None and value >= goal),
            ]
        )
    ceil = ratios.get("history/ceiling_over_rustybt")
    idiom_rows.append(
        [
            "idiomatic job vs the user's pandas work alone",
            "within 1.3× of the ceiling",
            "—" if ceil is None else f"{ceil:.2f}× slower",
            verdict(ceil, ceil is not None and ceil <= 1.3),
        ]
    )
    rows = [
        [
            "backtest throughput",
            f"≥ {BACKTEST_TARGET_BPS:,} bars/s",
            "—" if bps is None else f"{bps:,.0f} bars/s",
            verdict(bps, bps is not None and bps >= BACKTEST_TARGET_BPS),
        ],
        [
            "backtest vs fastest peer",
            f"≥ {BACKTEST_TARGET_RATIO}× ({raw.get('fastest_peer') or 'no peer measured'})",
            "—" if ratio is None else f"{ratio:.2f}×",
            verdict(ratio, ratio is not None and ratio >= BACKTEST_TARGET_RATIO),
        ],
        *idiom_rows,
        [
            "live engine throughput",
            f"≥ {LIVE_TARGET_EPS:,} events/s",
            "—" if eps is None else f"{eps:,.0f} events/s",
            verdict(eps, eps is not None and eps >= LIVE_TARGET_EPS),
        ],
        [
            "tick-to-submit p99",
            f"≤ {LIVE_TARGET_P99_US} µs",
            "—" if p99 is None else f"{p99:.1f} µs",
            verdict(p99, p99 is not None and p99 <= LIVE_TARGET_P99_US),
        ],
    ]
    note = ""
    if ctx.quick:
        note = "\n\n_Quick mode (tiny sizes): these numbers are not meaningful as targets._"
    return _table(["target", "goal", "measured", "verdict"], rows) + note


_CARRIED = "_Not rerun by this run;"


def _previous_sections(text: str) -> dict[str, str]:
    """The ``## title`` sections of an earlier document: title -> body."""
    sections: dict[str, str] = {}
    title: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("## "):
            if title is not None:
                sections[title] = "\n".join(body).strip()
            title, body = line[3:].strip(), []
        elif title is not None:
            body.append(line)
    if title is not None:
        sections[title] = "\n".join(body).strip()
    return sections


def render(ctx: Context, started: datetime, finished: datetime, previous: str | None = None) -> str:
    m = machine_info()
    argv = " ".join(shlex.quote(a) for a in ctx.argv)
    out = [
        "# Performance",
        "",
        "_Generated by `benchmarks/run_all.py`; do not edit by hand — rerun `make bench`._",
        "",
        f"Date: {finished.strftime('%Y-%m-%d %H:%M UTC')} "
        f"(run took {(finished - started).total_seconds():.0f} s). "
        f"Load average at start: {ctx.load_at_start}.",
        "",
        "## Backtest ratios (RustyBT ÷ peer, same style)",
        "",
        ctx.ratios_markdown or "_The backtest section was not run._",
        "",
        "## Targets",
        "",
        targets_markdown(ctx),
        "",
        "## Machine",
        "",
        _table(
            ["CPU", "cores (nproc)", "memory", "Python", "OS"],
            [[m["cpu"], m["nproc"], m["memory"], m["python"], m["os"]]],
        ),
        "",
        "## How to reproduce",
        "",
        "```",
        "make bench                                  # = .venv/bin/python -m benchmarks.run_all",
        f".venv/bin/python -m benchmarks.run_all {argv}".rstrip() + "   # this run",
        ".venv/bin/python -m benchmarks.setup_peers  # only the peer venvs (.bench/venv-*)",
        "```",
        "",
        "The first full run creates one virtualenv per peer under `.bench/` "
        "(`zipline-reloaded` with `pandas<3`, `backtrader`, `nautilus_trader==1.221.0`, the last "
        "release with Python 3.11 wheels), installed with pip by package name; a stamp file makes "
        "it idempotent. Generated data and peer bundles live in `.bench/` too (git-ignored). "
        "CI does not run the benchmarks; `tests/benchmarks/test_harness_smoke.py` keeps the "
        "harness working.",
        "",
    ]
    skipped = []
    earlier = _previous_sections(previous or "")
    for section in SECTIONS:
        res = ctx.results.get(section.name)
        if res is None:
            # Not run this time (e.g. `make bench` leaves the venues to bench-full): keep
            # the previous document's figures, saying they are older, instead of losing them.
            body = earlier.get(section.title) if section.title else None
            if body is not None:
                if not body.startswith(_CARRIED):  # carried before: the note is there
                    body = (
                        f"{_CARRIED} kept from the previous version of this file (the section "
                        "says when and how it was measured; `make bench-full` reruns it)._"
                        f"\n\n{body}"
                    )
                out += [f"## {section.title}", "", body, ""]
            continue
        if res.skipped:
            skipped.append(f"- {section.name}: {res.markdown}")
            continue
        out += [f"## {res.title}", "", res.markdown, ""]
    if skipped:
        out += ["## Sections not run", "", *skipped, ""]
    if RECORDED.exists():
        # Before/after comparisons measured once for a change (they need two checkouts,
        # so a run cannot regenerate them); kept verbatim in every generated document.
        out += [RECORDED.read_text().rstrip(), ""]
    return "\n".join(out).rstrip() + "\n"


def run(ctx: Context, sections: list[str] | None = None, previous: str | None = None) -> str:
    started = datetime.now(UTC)
    for section in SECTIONS:
        if sections is not None and section.name not in sections:
            continue
        ctx.log(f"== {section.name}")
        ctx.results[section.name] = section.run(ctx)
    return render(ctx, started, datetime.now(UTC), previous)


def _csv_arg(value: str, allowed: list[str], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"unknown {what} {bad or value!r}; choose from {allowed}")
    return items


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run_all", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes; skip peers without a venv"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per job (median reported)")
    parser.add_argument(
        "--only",
        type=lambda v: _csv_arg(v, SECTION_NAMES, "section"),
        help=f"comma list of sections: {','.join(SECTION_NAMES)}",
    )
    parser.add_argument(
        "--jobs",
        type=lambda v: _csv_arg(v, JOB_NAMES, "job"),
        help=f"comma list of backtest jobs: {','.join(JOB_NAMES)}",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--bench-dir", type=Path, default=setup_peers.BENCH_DIR)
    parser.add_argument("--no-install", action="store_true", help="never create peer venvs")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    ctx = Context(
        quick=args.quick,
        runs=args.runs,
        bench_dir=args.bench_dir.resolve(),
        jobs=args.jobs,
        install=not args.no_install,
        argv=argv,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    previous = args.output.read_text() if args.output.exists() else None
    document = run(ctx, args.only, previous)
    if ctx.ratios_markdown:
        print("Backtest ratios (RustyBT ÷ peer, same style)\n\n" + ctx.ratios_markdown + "\n")
    print("Targets\n\n" + targets_markdown(ctx) + "\n")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(document)
    raw_dir = ctx.bench_dir / "results"
    raw_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (raw_dir / f"{stamp}.json").write_text(
        json.dumps({n: r.raw for n, r in ctx.results.items()}, indent=2, default=str)
    )
    print(f"wrote {args.output} (raw numbers: {raw_dir / (stamp + '.json')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
