"""The ceiling: the same SMA-cross job as a bare Python loop over Decimal bars.

No framework at all: bars are pre-parsed into per-symbol lists of Decimal (not timed), then one
loop walks minute by minute over every symbol, fills the previous bar's order at this bar's open
(the same next-bar rule RustyBT, zipline and backtrader use), updates cash and position, and
applies the rule. Any framework's overhead is measured against this.

Run: ``python benchmarks/peers/bare_decimal.py --data-dir .bench/data/<tag>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ORDER_QTY, Cross, csv_files, emit, read_rows  # noqa: E402


def run(data_dir: str) -> dict:
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

    t0 = time.perf_counter()
    for i, dt in enumerate(times):
        for s in range(n_sym):
            qty = pending[s]
            if qty:
                cash -= qty * opens[s][i]
                position[s] += qty
                pending[s] = 0
                fills += 1
            sig = crosses[s].update(closes[s][i])
            if sig > 0 and position[s] == 0:
                pending[s] = ORDER_QTY
                trades.append([symbols[s], dt, "buy", ORDER_QTY])
            elif sig < 0 and position[s] > 0:
                pending[s] = -position[s]
                trades.append([symbols[s], dt, "sell", position[s]])
            bars += 1
    wall = time.perf_counter() - t0
    return {
        "peer": "bare-decimal",
        "bars": bars,
        "orders": len(trades),
        "wall_s": wall,
        "trades": trades,
        "fills": fills,
        "version": f"Python {sys.version.split()[0]}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    r = run(args.data_dir)
    emit(
        r["peer"],
        r["bars"],
        r["orders"],
        r["wall_s"],
        r["trades"],
        fills=r["fills"],
        version=r["version"],
    )


if __name__ == "__main__":
    main()
