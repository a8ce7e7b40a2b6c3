"""The ceiling: the same SMA-cross job as a bare Python loop over Decimal bars.

No framework at all: bars are pre-parsed into per-symbol lists of Decimal (not timed), then one
loop walks minute by minute over every symbol, fills the previous bar's order at this bar's open
(the same next-bar rule RustyBT, zipline and backtrader use), updates cash and position, and
applies the rule. Any framework's overhead is measured against this.

``--style history`` is the ceiling of the idiomatic job: the user's pandas code
(``window.iloc[-10:].mean()`` vs ``window.mean()``) on pre-built 30-bar windows — the same
``HistoryFrame`` of Decimals RustyBT's ``data.history`` returns, built before the clock
starts — plus the same loop. No framework and no history lookup: what the user's own
pandas work costs. It imports ``rustybt.data.history``, so it runs in the main venv.

Run: ``python benchmarks/peers/bare_decimal.py --data-dir .bench/data/<tag>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FAST, ORDER_QTY, SLOW, Cross, cents, csv_files, emit, read_rows, sign  # noqa: E402


def _windows(times: list[str], closes: list[list[Decimal]], symbols: list[str]) -> list:
    """Per minute, the last 30 closes of every symbol as a HistoryFrame (None while < 30)."""
    import numpy as np
    import pandas as pd

    from rustybt.data.history import HistoryFrame

    block = np.array(closes, dtype=object).T
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).as_unit("ns")
    out: list = []
    for i in range(len(times)):
        if i + 1 < SLOW:
            out.append(None)
            continue
        lo = i + 1 - SLOW
        out.append(HistoryFrame(block[lo : i + 1], index=index[lo : i + 1], columns=symbols))
    return out


def run(data_dir: str, style: str = "sums") -> dict:
    files = csv_files(data_dir)
    symbols = [f.stem for f in files]
    columns = [read_rows(f) for f in files]
    times = [r[0] for r in columns[0]]
    opens = [[Decimal(r[1]) for r in rows] for rows in columns]
    closes = [[Decimal(r[4]) for r in rows] for rows in columns]
    n_sym = len(symbols)

    crosses = [Cross(Decimal(0)) for _ in symbols]
    position = [0] * n_sym
    pending = [0] * n_sym
    cash = Decimal("10000000")
    trades: list[list] = []
    bars = 0
    fills = 0
    fill_log: list[list] = []
    placed = [""] * n_sym

    windows = _windows(times, closes, symbols) if style == "history" else None
    t0 = time.perf_counter()
    for i, dt in enumerate(times):
        if windows is not None:
            w = windows[i]
            if w is None:
                signals = [0] * n_sym
            else:
                signals = [sign(f, s) for f, s in zip(w.iloc[-FAST:].mean(), w.mean(), strict=True)]
        for s in range(n_sym):
            qty = pending[s]
            if qty:
                cash -= qty * opens[s][i]
                position[s] += qty
                pending[s] = 0
                fills += 1
                fill_log.append([symbols[s], placed[s], dt, qty, cents(opens[s][i])])
            sig = crosses[s].update(closes[s][i]) if windows is None else signals[s]
            if sig > 0 and position[s] == 0:
                pending[s] = ORDER_QTY
                placed[s] = dt
                trades.append([symbols[s], dt, "buy", ORDER_QTY])
            elif sig < 0 and position[s] > 0:
                pending[s] = -position[s]
                placed[s] = dt
                trades.append([symbols[s], dt, "sell", position[s]])
            bars += 1
    wall = time.perf_counter() - t0
    return {
        "peer": "bare-decimal" if style == "sums" else "pandas-ceiling",
        "bars": bars,
        "orders": len(trades),
        "wall_s": wall,
        "trades": trades,
        "fills": fills,
        "fill_log": fill_log,
        "version": f"Python {sys.version.split()[0]}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--style", choices=("sums", "history"), default="sums")
    args = parser.parse_args()
    r = run(args.data_dir, args.style)
    emit(
        r["peer"],
        r["bars"],
        r["orders"],
        r["wall_s"],
        r["trades"],
        fills=r["fills"],
        fill_log=r["fill_log"],
        style=args.style,
        version=r["version"],
    )


if __name__ == "__main__":
    main()
