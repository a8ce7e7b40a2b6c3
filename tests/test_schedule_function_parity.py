"""schedule_function fires at the same times in a backtest and in paper trading."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from rustybt import TradingAlgorithm, run_algorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.scheduling import date_rules, time_rules

START, END = "2024-01-02", "2024-01-09 23:59"


class Rebalancer(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("SPY")
        self.fired: list[str] = []
        self.schedule_function(self.open_job, date_rules.every_day(), time_rules.market_open())
        self.schedule_function(
            self.weekly, date_rules.week_start(), time_rules.market_close(minutes=15)
        )

    def open_job(self, context, data):
        self.fired.append(f"open {self.get_datetime():%Y-%m-%d %H:%M}")
        self.order_target(self.asset, 10)

    def weekly(self, context, data):
        self.fired.append(f"weekly {self.get_datetime():%Y-%m-%d %H:%M}")
        self.order_target(self.asset, 0)


def test_schedule_function_fires_identically_in_backtest_and_paper():
    bt = Rebalancer()
    run_algorithm(bt, start=START, end=END)

    live = Rebalancer()
    engine = LiveTradingEngine(
        strategy=live,
        broker_adapter=PaperBroker(starting_cash=Decimal("100000")),
        data_portal=PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        circuit_breakers=CircuitBreakerManager(),
        start=START,
        end=END,
        control_socket=False,
    )
    asyncio.run(engine.run())

    assert bt.fired == live.fired
    assert len([f for f in bt.fired if f.startswith("open")]) == 6  # six sessions
    assert "open 2024-01-02 14:31" in bt.fired  # 09:31 New York, one minute after the open
    assert [f for f in bt.fired if f.startswith("weekly")] == [
        "weekly 2024-01-02 20:45",  # Monday 1 January is a holiday: the week starts Tuesday
        "weekly 2024-01-08 20:45",
    ]
