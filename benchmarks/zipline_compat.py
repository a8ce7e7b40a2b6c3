"""``make compat``: zipline-reloaded's own example algorithms, run by ``rustybt run``.

The five examples (``buyapple``, ``buy_and_hold``, ``dual_moving_average``, ``olmar``,
``momentum_pipeline``) are read at run time from the zipline-reloaded package installed in
the benchmark's peer venv (``benchmarks/setup_peers.py``); nothing of zipline is copied
into this repository. Each file gets only its imports renamed (``zipline`` →
``rustybt``) and runs through the ``rustybt`` CLI on a generated bundle holding its
symbols (daily bars on the NYSE calendar, plus a 24/7 crypto pair so the clock rule is
exercised). Passing means: every example exits 0, and ``buyapple``, ``buy_and_hold``,
``olmar`` and ``momentum_pipeline`` place orders.

``--compare`` also runs ``buyapple`` and ``dual_moving_average`` with zipline-reloaded
itself on the same data (``peers/zipline_examples_job.py``) and compares the orders.

Usage: ``python -m benchmarks.zipline_compat [--compare] [--work DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

from benchmarks.setup_peers import BENCH_DIR, PEERS, ensure_peer

EXAMPLES = ("buyapple", "buy_and_hold", "dual_moving_average", "olmar", "momentum_pipeline")
MUST_ORDER = {"buyapple", "buy_and_hold", "olmar", "momentum_pipeline"}
COMPARED = ("buyapple", "dual_moving_average")
EQUITIES = ("AAPL", "MSFT", "AMD", "CERN", "COST", "DELL", "GPS", "INTC", "MMM")
CRYPTO = "BTCUSD"
START, END = "2010-01-04", "2013-12-31"
BUNDLE = "zipline-compat"
CAPITAL = "100000"
_SEED = 20120103
_IMPORT = re.compile(r"^(\s*(?:from|import)\s+)zipline(?=[\s.])", re.M)


def rename_imports(source: str) -> str:
    """The example with ``zipline`` replaced by ``rustybt`` in import statements only."""
    return _IMPORT.sub(r"\1rustybt", source)


def examples_dir(python: Path) -> Path:
    """Where the peer venv's zipline keeps its ``examples`` package."""
    out = subprocess.run(
        [str(python), "-c", "import zipline.examples as e, os; print(os.path.dirname(e.__file__))"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return Path(out.stdout.strip())


def generate_data(folder: Path) -> tuple[Path, Path]:
    """Seeded daily bars: equities on NYSE sessions, the crypto pair on every day."""
    import exchange_calendars as xcals
    import pandas as pd

    rng = np.random.default_rng(_SEED)
    with warnings.catch_warnings():  # exchange_calendars' own pandas deprecations
        warnings.simplefilter("ignore")
        sessions = xcals.get_calendar("XNYS").sessions_in_range(START, END)
    days = pd.date_range(START, END, freq="D")
    eq_dir, cr_dir = folder / "equities", folder / "crypto"
    eq_dir.mkdir(parents=True, exist_ok=True)
    cr_dir.mkdir(parents=True, exist_ok=True)
    for i, symbol in enumerate(EQUITIES):
        _write(eq_dir / f"{symbol}.csv", sessions, rng, 20.0 + 15 * i, 2_000_000)
    _write(cr_dir / f"{CRYPTO}.csv", days, rng, 5000.0, 50_000)
    return eq_dir, cr_dir


def _write(path: Path, index, rng: np.random.Generator, start: float, volume: int) -> None:
    n = len(index)
    close = start * np.exp(np.cumsum(rng.normal(0.0003, 0.018, n)))
    open_ = close * np.exp(rng.normal(0, 0.006, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, n)))
    vol = rng.integers(volume // 2, volume * 2, n)
    lines = ["date,open,high,low,close,volume"]
    for k, day in enumerate(index):
        o, h, lo, c = (round(float(x[k]), 2) for x in (open_, high, low, close))
        h, lo = max(h, o, c), min(lo, o, c)
        lines.append(f"{day:%Y-%m-%d},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{int(vol[k])}")
    path.write_text("\n".join(lines) + "\n")


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["RUSTYBT_ROOT"] = str(root)
    return env


def _rustybt() -> str:
    return str(Path(sys.executable).parent / "rustybt")


def ingest(root: Path, eq_dir: Path, cr_dir: Path) -> None:
    env = _env(root)
    for folder, klass in ((eq_dir, "equity"), (cr_dir, "crypto")):
        subprocess.run(
            [_rustybt(), "ingest", str(folder), "--bundle", BUNDLE, "--frequency", "daily",
             "--asset-class", klass],
            env=env, check=True, capture_output=True, text=True, timeout=600,
        )  # fmt: skip


def run_example(root: Path, script: Path, out: Path) -> dict:
    """``rustybt run`` one renamed example; its exit code, orders and the tail of stderr."""
    import polars as pl

    proc = subprocess.run(
        [_rustybt(), "run", "-f", str(script), "--bundle", BUNDLE, "--data-frequency", "daily",
         "--start", START, "--end", END, "--capital-base", CAPITAL, "--no-progress",
         "-o", str(out)],
        env=_env(root), capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    tables: dict[str, list[dict]] = {"orders": [], "transactions": [], "daily": []}
    if proc.returncode == 0:
        for name in tables:
            file = out / f"{name}.parquet"
            if file.exists():
                tables[name] = pl.read_parquet(file).to_dicts()
    return {
        "exit": proc.returncode,
        **tables,
        "stderr": proc.stderr.strip().splitlines()[-3:],
    }


def run_zipline(python: Path, data: Path, zroot: Path, name: str) -> dict:
    job = Path(__file__).resolve().parent / "peers" / "zipline_examples_job.py"
    base = [str(python), str(job), "--data-dir", str(data), "--zipline-root", str(zroot)]
    if not (zroot / "data" / "rustybt-compat").exists():
        subprocess.run([*base, "--prepare"], check=True, capture_output=True, timeout=900)
    proc = subprocess.run(
        [*base, "--example", name, "--start", START, "--end", END, "--capital-base", CAPITAL],
        capture_output=True, text=True, timeout=1800, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(res: dict, theirs: dict) -> dict:
    """Orders keyed by (session, symbol, amount); fills by (session, amount) with prices."""
    ours = res["orders"]
    mine = sorted((str(o["created"])[:10], o["symbol"], int(float(o["amount"]))) for o in ours)
    zl = sorted((o["session"], o["symbol"], o["amount"]) for o in theirs["orders"])
    same = sum(1 for a, b in zip(mine, zl, strict=False) if a == b)
    first_diff = next(
        ((a, b) for a, b in zip(mine, zl, strict=False) if a != b),
        None if len(mine) == len(zl) else ("length", len(mine), len(zl)),
    )
    my_fills = [
        (str(t["dt"])[:10], int(float(t["amount"])), float(t["price"])) for t in res["transactions"]
    ]
    zl_fills = [(t["session"], t["amount"], t["price"]) for t in theirs["transactions"]]
    same_fills = sum(1 for a, b in zip(my_fills, zl_fills, strict=False) if a[:2] == b[:2])
    price_gaps = [abs(a[2] - b[2]) for a, b in zip(my_fills, zl_fills, strict=False)]
    return {
        "rustybt_fills": len(my_fills),
        "zipline_fills": len(zl_fills),
        "fills_same_session_and_amount": same_fills,
        "max_fill_price_gap": max(price_gaps, default=0.0),
        "rustybt_ending_value": float(res["daily"][-1]["portfolio_value"]),
        "rustybt_orders": len(mine),
        "zipline_orders": len(zl),
        "identical_in_order": same,
        "first_difference": first_diff,
        "zipline_version": theirs["version"],
        "zipline_ending_value": theirs["ending_portfolio_value"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="also run zipline itself")
    parser.add_argument("--work", type=Path, default=BENCH_DIR / "compat")
    args = parser.parse_args(argv)
    spec = PEERS["zipline"]
    if not ensure_peer(spec):
        print(f"zipline-reloaded is not installed: see {spec.log()}", file=sys.stderr)
        return 2
    python = spec.python()
    source_dir = examples_dir(python)
    work: Path = args.work.resolve()
    root, scripts, results = work / "root", work / "scripts", work / "results"
    scripts.mkdir(parents=True, exist_ok=True)
    eq_dir, cr_dir = generate_data(work / "data")
    ingest(root, eq_dir, cr_dir)

    failed: list[str] = []
    report: dict[str, dict] = {}
    for name in EXAMPLES:
        script = scripts / f"{name}.py"
        script.write_text(rename_imports((source_dir / f"{name}.py").read_text()))
        res = run_example(root, script, results / name)
        n = len(res["orders"])
        ok = res["exit"] == 0 and (n > 0 or name not in MUST_ORDER)
        report[name] = {"exit": res["exit"], "orders": n, "ok": ok}
        print(f"{name:22s} exit={res['exit']} orders={n:5d} {'ok' if ok else 'FAILED'}")
        if not ok:
            failed.append(name)
            for line in res["stderr"]:
                print(f"    {line}")
        if args.compare and name in COMPARED and res["exit"] == 0:
            theirs = run_zipline(python, eq_dir, work / "zipline-root", name)
            report[name]["zipline"] = compare(res, theirs)
            print(f"    vs zipline: {json.dumps(report[name]['zipline'], default=str)}")
    (work / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"{len(EXAMPLES) - len(failed)}/{len(EXAMPLES)} examples passed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
