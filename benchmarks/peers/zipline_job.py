"""The SMA-cross job on zipline-reloaded (run with ``.bench/venv-zipline/bin/python``).

Two steps, both as subprocesses of the harness:
``--prepare``: ingest the generated CSVs into a private bundle under ``--zipline-root``
(a folder inside ``.bench``; never the user's ``~/.zipline``). Not timed.
default: run the algorithm with ``zipline.run_algorithm`` and time only that call.

Zero commission (``PerShare(0)``) and zero slippage (``FixedSlippage(spread=0)``, which also
has no volume cap); market orders placed on bar t fill at bar t+1's close (zipline's rule).
No benchmark: zipline then uses all-zero benchmark returns.

``--style`` (see ``_common.STYLES``): ``sums`` (running sums of cents), ``history`` (one
``data.history(assets, "price", 30, "1m")`` per minute, then ``.iloc[-10:].mean()`` vs
``.mean()`` on zipline's float frame, as in zipline's examples), ``history-per-asset``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    FAST,
    ORDER_QTY,
    SLOW,
    STYLES,
    Cross,
    cents,
    csv_files,
    emit,
    sign,
    to_cents,
)

BUNDLE = "rustybt-bench"


def _register(data_dir: str) -> None:
    import pandas as pd
    from zipline.data import bundles

    files = csv_files(data_dir)

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
        frames = {}
        for f in files:
            df = pd.read_csv(f, index_col=0)
            df.index = pd.DatetimeIndex(pd.to_datetime(df.index, utc=True))
            frames[f.stem] = df
        first = next(iter(frames.values()))
        start = first.index[0].tz_convert(None).normalize()
        end = first.index[-1].tz_convert(None).normalize()
        meta = pd.DataFrame(
            {
                "symbol": list(frames),
                "start_date": [start] * len(frames),
                "end_date": [end] * len(frames),
                "auto_close_date": [end + pd.Timedelta(days=1)] * len(frames),
                "exchange": ["NYSE"] * len(frames),
            }
        )
        exchanges = pd.DataFrame(
            {"exchange": ["NYSE"], "canonical_name": ["NYSE"], "country_code": ["US"]}
        )
        asset_db_writer.write(equities=meta, exchanges=exchanges)
        minute_bar_writer.write(((sid, df) for sid, df in enumerate(frames.values())))

        def daily(df):
            session = df.index.tz_convert("America/New_York").tz_localize(None).normalize()
            g = df.groupby(session)
            return pd.DataFrame(
                {
                    "open": g["open"].first(),
                    "high": g["high"].max(),
                    "low": g["low"].min(),
                    "close": g["close"].last(),
                    "volume": g["volume"].sum(),
                }
            )

        daily_bar_writer.write(((sid, daily(df)) for sid, df in enumerate(frames.values())))
        adjustment_writer.write()

    bundles.register(BUNDLE, ingest, calendar_name="XNYS", minutes_per_day=390)


def prepare(data_dir: str) -> None:
    from zipline.data import bundles

    _register(data_dir)
    bundles.ingest(BUNDLE, os.environ, show_progress=False)
    print("ingested", BUNDLE)


def run(data_dir: str, style: str = "sums") -> dict:
    import pandas as pd
    import zipline
    from zipline import run_algorithm
    from zipline.api import order, set_commission, set_slippage, symbol
    from zipline.finance import commission, slippage

    _register(data_dir)
    files = csv_files(data_dir)
    names = [f.stem for f in files]
    with files[0].open() as fh:
        next(fh)
        first_dt = fh.readline().split(",")[0]
        last_dt = first_dt
        for line in fh:
            if line.strip():
                last_dt = line.split(",")[0]
    start = pd.Timestamp(first_dt).tz_convert("America/New_York").tz_localize(None).normalize()
    end = pd.Timestamp(last_dt).tz_convert("America/New_York").tz_localize(None).normalize()

    trades: list[list] = []
    counter = {"bars": 0}

    def initialize(context):
        set_commission(commission.PerShare(cost=0.0, min_trade_cost=0.0))
        set_slippage(slippage.FixedSlippage(spread=0.0))
        context.assets = [symbol(n) for n in names]
        context.cross = {a: Cross(0) for a in context.assets}

    def handle_data(context, data):
        dt = context.get_datetime().strftime("%Y-%m-%dT%H:%M:%SZ")
        positions = context.portfolio.positions
        assets = context.assets
        context.minutes = getattr(context, "minutes", 0) + 1
        if style == "sums":
            cross = context.cross
            signals = [cross[a].update(to_cents(data.current(a, "close"))) for a in assets]
        elif context.minutes < SLOW:  # no 30 bars yet (zipline would pad with NaN)
            signals = [0] * len(assets)
        elif style == "history":
            window = data.history(assets, "price", SLOW, "1m")
            fast, slow = window.iloc[-FAST:].mean(), window.mean()
            signals = [sign(f, s) for f, s in zip(fast, slow)]  # noqa: B905
        else:
            signals = []
            for a in assets:
                h = data.history(a, "price", SLOW, "1m")
                signals.append(sign(h.iloc[-FAST:].mean(), h.mean()))
        for asset, sig in zip(assets, signals):  # noqa: B905
            counter["bars"] += 1
            if sig > 0:
                if asset not in positions or positions[asset].amount == 0:
                    order(asset, ORDER_QTY)
                    trades.append([asset.symbol, dt, "buy", ORDER_QTY])
            elif sig < 0 and asset in positions and positions[asset].amount > 0:
                qty = positions[asset].amount
                order(asset, -qty)
                trades.append([asset.symbol, dt, "sell", int(qty)])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        perf = run_algorithm(
            start=start,
            end=end,
            initialize=initialize,
            handle_data=handle_data,
            capital_base=10_000_000,
            data_frequency="minute",
            bundle=BUNDLE,
        )
        wall = time.perf_counter() - t0
    created = {}
    for day in perf["orders"]:
        for o in day:
            created.setdefault(o["id"], o["created"])
    fill_log = []
    for day in perf["transactions"]:
        for tx in day:
            fill_log.append(
                [
                    tx["sid"].symbol,
                    _iso(created.get(tx["order_id"])),
                    _iso(tx["dt"]),
                    int(tx["amount"]),
                    cents(float(tx["price"])),
                ]
            )
    fills = len(fill_log)
    return {
        "peer": "zipline-reloaded",
        "bars": counter["bars"],
        "orders": len(trades),
        "wall_s": wall,
        "trades": trades,
        "fills": fills,
        "fill_log": fill_log,
        "version": f"zipline-reloaded {zipline.__version__}",
    }


def _iso(ts) -> str | None:
    import pandas as pd

    if ts is None:
        return None
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--zipline-root", required=True)
    parser.add_argument("--prepare", action="store_true")
    parser.add_argument("--style", choices=STYLES, default="sums")
    args = parser.parse_args()
    os.environ["ZIPLINE_ROOT"] = str(Path(args.zipline_root).resolve())
    Path(args.zipline_root).mkdir(parents=True, exist_ok=True)
    if args.prepare:
        prepare(args.data_dir)
        return
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
