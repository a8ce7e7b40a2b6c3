"""Run one of zipline-reloaded's own example algorithms on the compat data set, with zipline.

Run with ``.bench/venv-zipline/bin/python`` (zipline's own interpreter; RustyBT is not
installed there). ``--prepare`` ingests the daily CSVs of ``--data-dir`` into a private
bundle under ``--zipline-root`` (never the user's ``~/.zipline``); otherwise it imports
``zipline.examples.<name>`` from the installed package, runs it with
``zipline.run_algorithm`` (daily bars, its own ``initialize``/``handle_data``, no
``analyze``) and prints one JSON line: every order (id, session, symbol, amount, filled)
and every transaction (session, symbol, amount, price).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import warnings
from pathlib import Path

BUNDLE = "rustybt-compat"


def _frames(data_dir: str) -> dict:
    import pandas as pd

    frames = {}
    for f in sorted(Path(data_dir).glob("*.csv")):
        df = pd.read_csv(f, index_col=0)
        df.index = pd.DatetimeIndex(pd.to_datetime(df.index))
        frames[f.stem] = df
    return frames


def _register(data_dir: str) -> None:
    import pandas as pd
    from zipline.data import bundles

    frames = _frames(data_dir)

    def ingest(
        environ,
        asset_db_writer,
        minute_bar_writer,
        daily_bar_writer,
        adjustment_writer,
        calendar,
        start_session,
        end_session,
        cache,
        show_progress,
        output_dir,
    ):
        symbols = list(frames)
        meta = pd.DataFrame(
            {
                "symbol": symbols,
                "start_date": [frames[s].index[0] for s in symbols],
                "end_date": [frames[s].index[-1] for s in symbols],
                "auto_close_date": [frames[s].index[-1] + pd.Timedelta(days=1) for s in symbols],
                "exchange": ["NYSE"] * len(symbols),
            }
        )
        exchanges = pd.DataFrame(
            {"exchange": ["NYSE"], "canonical_name": ["NYSE"], "country_code": ["US"]}
        )
        asset_db_writer.write(equities=meta, exchanges=exchanges)
        daily_bar_writer.write(((sid, frames[s]) for sid, s in enumerate(symbols)))
        adjustment_writer.write()

    first = min(df.index[0] for df in frames.values())
    last = max(df.index[-1] for df in frames.values())
    bundles.register(BUNDLE, ingest, calendar_name="XNYS", start_session=first, end_session=last)


def prepare(data_dir: str) -> None:
    from zipline.data import bundles

    _register(data_dir)
    bundles.ingest(BUNDLE, os.environ, show_progress=False)


def run(data_dir: str, name: str, start: str, end: str, capital_base: float) -> dict:
    import pandas as pd
    import zipline
    from zipline import run_algorithm

    _register(data_dir)
    module = importlib.import_module(f"zipline.examples.{name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        perf = run_algorithm(
            start=pd.Timestamp(start),
            end=pd.Timestamp(end),
            initialize=module.initialize,
            handle_data=getattr(module, "handle_data", None),
            before_trading_start=getattr(module, "before_trading_start", None),
            capital_base=capital_base,
            data_frequency="daily",
            bundle=BUNDLE,
        )
    orders: dict[str, dict] = {}
    for day in perf["orders"]:
        for o in day:
            orders[o["id"]] = {
                "id": o["id"],
                "session": pd.Timestamp(o["created"]).strftime("%Y-%m-%d"),
                "symbol": o["sid"].symbol,
                "amount": int(o["amount"]),
                "filled": int(o["filled"]),
                "commission": float(o["commission"] or 0.0),
            }
    transactions = [
        {
            "session": pd.Timestamp(t["dt"]).strftime("%Y-%m-%d"),
            "symbol": t["sid"].symbol,
            "amount": int(t["amount"]),
            "price": float(t["price"]),
        }
        for day in perf["transactions"]
        for t in day
    ]
    return {
        "version": zipline.__version__,
        "orders": sorted(orders.values(), key=lambda o: (o["session"], o["symbol"])),
        "transactions": transactions,
        "ending_portfolio_value": float(perf["portfolio_value"].iloc[-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--zipline-root", required=True)
    parser.add_argument("--prepare", action="store_true")
    parser.add_argument("--example")
    parser.add_argument("--start")
    parser.add_argument("--end")
    parser.add_argument("--capital-base", type=float, default=100_000.0)
    args = parser.parse_args()
    os.environ["ZIPLINE_ROOT"] = str(Path(args.zipline_root).resolve())
    Path(args.zipline_root).mkdir(parents=True, exist_ok=True)
    if args.prepare:
        prepare(args.data_dir)
        return
    out = run(args.data_dir, args.example, args.start, args.end, args.capital_base)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
