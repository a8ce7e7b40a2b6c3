"""The SMA-cross job on NautilusTrader (run with ``.bench/venv-nautilus/bin/python``).

One ``BacktestEngine`` with a simulated XNAS venue (cash account, netting OMS), one test
``Equity`` per symbol, bars built with ``BarDataWrangler`` from the generated CSVs. All the data
wrangling and engine setup happen before the clock starts; only ``engine.run()`` is timed.
Logging is set to ERROR so log I/O does not dominate. Instruments carry zero maker/taker fees
and the default fill model has no slippage. NautilusTrader fills a market order against the
bar that triggered it (its bar-execution model), not the next bar.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ORDER_QTY, STYLES, Cross, cents, csv_files, emit, sign  # noqa: E402


def run(data_dir: str, style: str = "sums") -> dict:
    import nautilus_trader
    import pandas as pd
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.indicators.averages import SimpleMovingAverage
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import TraderId, Venue
    from nautilus_trader.model.objects import Money
    from nautilus_trader.persistence.wranglers import BarDataWrangler
    from nautilus_trader.test_kit.providers import TestInstrumentProvider
    from nautilus_trader.trading.strategy import Strategy

    venue = Venue("XNAS")
    engine = BacktestEngine(
        config=BacktestEngineConfig(
            trader_id=TraderId("BENCH-001"),
            logging=LoggingConfig(log_level="ERROR"),
        )
    )
    engine.add_venue(
        venue=venue,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USD,
        starting_balances=[Money(10_000_000, USD)],
    )

    instruments = []
    bar_types = []
    for f in csv_files(data_dir):
        instrument = TestInstrumentProvider.equity(symbol=f.stem, venue="XNAS")
        engine.add_instrument(instrument)
        bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
        df = pd.read_csv(f, index_col=0)
        df.index = pd.to_datetime(df.index, utc=True)
        bars = BarDataWrangler(bar_type, instrument).process(df)
        engine.add_data(bars)
        instruments.append(instrument)
        bar_types.append(bar_type)

    trades: list[list] = []
    counter = {"bars": 0, "fills": 0}
    fill_log: list[list] = []

    class SmaCross(Strategy):
        def on_start(self) -> None:
            self.slot = {bt: i for i, bt in enumerate(bar_types)}
            self.cross = [Cross(0) for _ in bar_types]
            self.qty = [inst.make_qty(ORDER_QTY) for inst in instruments]
            self.fast = [SimpleMovingAverage(10) for _ in bar_types]
            self.slow = [SimpleMovingAverage(30) for _ in bar_types]
            self.placed: dict = {}
            for i, bt in enumerate(bar_types):
                if style == "history":  # NautilusTrader's idiomatic way: registered indicators
                    self.register_indicator_for_bars(bt, self.fast[i])
                    self.register_indicator_for_bars(bt, self.slow[i])
                self.subscribe_bars(bt)

        def on_bar(self, bar: Bar) -> None:
            i = self.slot[bar.bar_type]
            counter["bars"] += 1
            # Price.raw is a scaled integer; as_double is exact enough to round back to cents.
            if style == "history":
                slow = self.slow[i]
                sig = sign(self.fast[i].value, slow.value) if slow.initialized else 0
            else:
                sig = self.cross[i].update(int(round(bar.close.as_double() * 100)))
            if sig == 0:
                return
            inst = instruments[i]
            net = self.portfolio.net_position(inst.id)
            if sig > 0 and net == 0:
                o = self.order_factory.market(inst.id, OrderSide.BUY, self.qty[i])
                self.placed[o.client_order_id] = bar.ts_event
                self.submit_order(o)
                trades.append([inst.id.symbol.value, _iso(bar.ts_event), "buy", ORDER_QTY])
            elif sig < 0 and net > 0:
                qty = inst.make_qty(net)
                o = self.order_factory.market(inst.id, OrderSide.SELL, qty)
                self.placed[o.client_order_id] = bar.ts_event
                self.submit_order(o)
                trades.append([inst.id.symbol.value, _iso(bar.ts_event), "sell", int(net)])

        def on_order_filled(self, event) -> None:
            counter["fills"] += 1
            qty = int(event.last_qty.as_double())
            placed = self.placed.get(event.client_order_id)
            fill_log.append(
                [
                    event.instrument_id.symbol.value,
                    _iso(placed) if placed is not None else None,
                    _iso(event.ts_event),
                    qty if event.order_side == OrderSide.BUY else -qty,
                    cents(event.last_px.as_double()),
                ]
            )

    engine.add_strategy(SmaCross())

    t0 = time.perf_counter()
    engine.run()
    wall = time.perf_counter() - t0
    engine.dispose()
    return {
        "peer": "nautilus-trader",
        "bars": counter["bars"],
        "orders": len(trades),
        "wall_s": wall,
        "trades": trades,
        "fills": counter["fills"],
        "fill_log": fill_log,
        "version": f"nautilus_trader {nautilus_trader.__version__}",
    }


def _iso(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ns // 1_000_000_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--style", choices=STYLES[:2], default="sums")
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
