"""The SMA-cross job on RustyBT itself (run with the project's own ``.venv`` python).

Same rule, same data and same trade record as the peer jobs in ``benchmarks/peers/``: a
``TradingAlgorithm`` subclass run with ``rustybt.run_algorithm`` over the bundle the harness
ingested from the generated CSVs (``bench-<tag>``, under ``$RUSTYBT_ROOT``). ``--style sums``
keeps its own rolling sums (deques) of Decimal closes; ``--style history`` calls
``data.history`` once per minute for all assets and compares ``window.iloc[-10:].mean()``
with ``window.mean()`` (the way users and zipline's examples write it); ``--style
history-per-asset`` calls it once per asset. Every fill event is reported with its order. Only the
``run_algorithm`` call is timed. If RustyBT's backtest API cannot be imported the job prints a
JSON line with an ``error`` and exits 3, and the harness reports "not available".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from _common import FAST, ORDER_QTY, SLOW, STYLES, Cross, cents, csv_files, emit, sign  # noqa: E402

_ZERO = Decimal(0)


def _fail(message: str) -> None:
    sys.stdout.write("\n" + json.dumps({"peer": "rustybt", "error": message}) + "\n")
    sys.stdout.flush()
    raise SystemExit(3)


def run(data_dir: str, bundle: str, style: str = "sums") -> dict:
    try:
        import rustybt
        from rustybt import run_algorithm
        from rustybt.algorithm import TradingAlgorithm
    except ImportError as exc:  # the backtest API is not there (yet)
        _fail(f"ImportError: {exc}")

    symbols = [f.stem for f in csv_files(data_dir)]
    trades: list[list] = []
    counter = {"bars": 0}

    class SmaCross(TradingAlgorithm):
        def initialize(self, *args) -> None:
            self.assets = [self.symbol(s) for s in symbols]
            self.cross = {a: Cross(_ZERO) for a in self.assets}

        def handle_data(self, context, data) -> None:
            if style == "sums":
                cross = self.cross
                signals = [cross[a].update(data.current(a, "close")) for a in self.assets]
            elif style == "history":
                window = data.history(self.assets, "price", SLOW, "1m")
                if len(window) < SLOW:
                    signals = [0] * len(self.assets)
                else:
                    fast, slow = window.iloc[-FAST:].mean(), window.mean()
                    signals = [sign(f, s) for f, s in zip(fast, slow, strict=True)]
            else:
                signals = []
                for a in self.assets:
                    h = data.history(a, "price", SLOW, "1m")
                    signals.append(sign(h.iloc[-FAST:].mean(), h.mean()) if len(h) >= SLOW else 0)
            positions = self.portfolio.positions
            stamp = None
            for asset, sig in zip(self.assets, signals, strict=True):
                counter["bars"] += 1
                if sig == 0:
                    continue
                pos = positions.get(asset)
                held = pos.amount if pos is not None else _ZERO
                if sig > 0 and held == 0:
                    self.order(asset, ORDER_QTY)
                elif sig < 0 and held > 0:
                    self.order(asset, -held)
                else:
                    continue
                if stamp is None:
                    stamp = self.get_datetime().strftime("%Y-%m-%dT%H:%M:%SZ")
                side = "buy" if sig > 0 else "sell"
                trades.append([asset.symbol, stamp, side, ORDER_QTY if sig > 0 else int(held)])

    t0 = time.perf_counter()
    result = run_algorithm(
        strategy=SmaCross,
        bundle=bundle,
        data_frequency="minute",
        capital_base=Decimal("10000000"),
        start=None,
        end=None,
        show_progress=False,
    )
    wall = time.perf_counter() - t0
    orders = getattr(result, "orders", None)
    created = {o.id: o.created_dt for o in orders or ()}
    fill_log = [
        [
            t["symbol"],
            _iso(created.get(t["order_id"])),
            _iso(t["dt"]),
            int(t["amount"]),
            cents(t["price"]),
        ]
        for t in getattr(result, "transactions", ())
    ]
    fills = len(fill_log)  # fill events, not orders with a fill
    return {
        "peer": "rustybt",
        "fill_log": fill_log,
        "bars": counter["bars"],
        "orders": len(trades),
        "wall_s": wall,
        "trades": trades,
        "fills": fills,
        "result_orders": len(orders) if orders is not None else None,
        "version": f"rustybt {getattr(rustybt, '__version__', 'dev')}",
    }


def _iso(dt) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--style", choices=STYLES, default="sums")
    args = parser.parse_args()
    try:
        r = run(args.data_dir, args.bundle, args.style)
    except SystemExit:
        raise
    except Exception as exc:  # report any failure as data to the harness; traceback to stderr
        traceback.print_exc()
        _fail(f"{type(exc).__name__}: {exc}")
    emit(
        r["peer"],
        r["bars"],
        r["orders"],
        r["wall_s"],
        r["trades"],
        fills=r["fills"],
        fill_log=r["fill_log"],
        style=args.style,
        result_orders=r["result_orders"],
        version=r["version"],
    )


if __name__ == "__main__":
    main()
