"""The SMA-cross job on backtrader (run with ``.bench/venv-backtrader/bin/python``).

Two feed variants, chosen with ``--variant``:
``pandas``: the documented way, one ``bt.feeds.PandasData`` per symbol.
``direct``: a minimal ``DataBase`` subclass whose ``_load`` walks pre-built tuples (what
``DataFrame.itertuples`` gives), skipping PandasData's per-row column lookups.

Feeds are built before the clock starts; only ``cerebro.run()`` is timed. Zero commission,
no slippage; backtrader fills a market order placed on bar t at bar t+1's open.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ORDER_QTY, STYLES, Cross, cents, csv_files, emit, sign, to_cents  # noqa: E402


def _frames(data_dir: str):
    import pandas as pd

    out = []
    for f in csv_files(data_dir):
        df = pd.read_csv(f, index_col=0)
        # backtrader works in naive datetimes; keep them UTC so trade times compare directly.
        df.index = pd.to_datetime(df.index, utc=True).tz_localize(None)
        out.append((f.stem, df))
    return out


def run(data_dir: str, variant: str, style: str = "sums") -> dict:
    import backtrader as bt

    class TupleFeed(bt.feed.DataBase):
        params = (("rows", None),)

        def start(self):
            super().start()
            self._rows = iter(self.p.rows)

        def _load(self):
            row = next(self._rows, None)
            if row is None:
                return False
            lines = self.lines
            lines.datetime[0] = bt.date2num(row[0])
            lines.open[0] = row[1]
            lines.high[0] = row[2]
            lines.low[0] = row[3]
            lines.close[0] = row[4]
            lines.volume[0] = row[5]
            lines.openinterest[0] = 0.0
            return True

    trades: list[list] = []
    counter = {"bars": 0, "fills": 0}

    fill_log: list[list] = []

    class SmaCross(bt.Strategy):
        def __init__(self):
            self.cross = [Cross(0) for _ in self.datas]
            if style == "history":  # backtrader's idiomatic way: built-in SMA indicators
                self.fast = [bt.ind.SMA(d.close, period=10) for d in self.datas]
                self.slow = [bt.ind.SMA(d.close, period=30) for d in self.datas]

        def notify_order(self, order):
            if order.status == order.Completed:
                counter["fills"] += 1
                ex = order.executed
                fill_log.append(
                    [
                        order.data._name,
                        _iso(bt.num2date(order.created.dt)),
                        _iso(bt.num2date(ex.dt)),
                        int(ex.size),
                        cents(float(ex.price)),
                    ]
                )

        def next(self):
            for i, d in enumerate(self.datas):
                if style == "history":
                    sig = sign(self.fast[i][0], self.slow[i][0])
                else:
                    sig = self.cross[i].update(to_cents(d.close[0]))
                counter["bars"] += 1
                if sig == 0:
                    continue
                size = self.getposition(d).size
                if sig > 0 and size == 0:
                    self.buy(data=d, size=ORDER_QTY)
                    trades.append([d._name, _iso(d.datetime.datetime(0)), "buy", ORDER_QTY])
                elif sig < 0 and size > 0:
                    self.sell(data=d, size=size)
                    trades.append([d._name, _iso(d.datetime.datetime(0)), "sell", int(size)])

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(10_000_000.0)
    cerebro.broker.setcommission(commission=0.0)
    for name, df in _frames(data_dir):
        if variant == "pandas":
            feed = bt.feeds.PandasData(
                dataname=df, timeframe=bt.TimeFrame.Minutes, compression=1, openinterest=None
            )
        else:
            rows = [
                (ts.to_pydatetime(), o, h, lo, c, v)
                for ts, o, h, lo, c, v in df.itertuples(index=True, name=None)
            ]
            feed = TupleFeed(rows=rows, timeframe=bt.TimeFrame.Minutes, compression=1)
        cerebro.adddata(feed, name=name)
    cerebro.addstrategy(SmaCross)

    t0 = time.perf_counter()
    cerebro.run()
    wall = time.perf_counter() - t0
    return {
        "peer": f"backtrader-{variant}",
        "bars": counter["bars"],
        "orders": len(trades),
        "wall_s": wall,
        "trades": trades,
        "fills": counter["fills"],
        "fill_log": fill_log,
        "version": f"backtrader {bt.__version__}",
    }


def _iso(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--variant", choices=("pandas", "direct"), default="pandas")
    parser.add_argument("--style", choices=STYLES[:2], default="sums")
    args = parser.parse_args()
    r = run(args.data_dir, args.variant, args.style)
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
