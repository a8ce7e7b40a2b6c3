"""The run's clock follows the calendar of the strategy's assets, overridable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rustybt import run_algorithm
from rustybt.algorithm import ScriptAlgorithm, TradingAlgorithm
from rustybt.data.clock import clock_assets
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.exceptions import ConfigError
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager

START, END = "2024-01-05", "2024-01-08 23:59:59"  # a Friday and a Monday, weekend between


@pytest.fixture
def finder():
    return PolarsDataPortal("demo", "minute").asset_finder


def test_nothing_looked_up_follows_the_bundle_equities_calendar(finder):
    calendar, assets = clock_assets(finder, [])
    assert calendar == "XNYS"
    assert assets and all(a.calendar == "XNYS" for a in assets)


def test_any_24_7_asset_makes_the_clock_24_7(finder):
    btc, aapl = finder.lookup_symbol("BTCUSDT"), finder.lookup_symbol("AAPL")
    assert clock_assets(finder, [aapl, btc])[0] == "24/7"
    assert clock_assets(finder, [aapl]) == ("XNYS", [aapl])


def test_calendar_override_wins(finder):
    aapl = finder.lookup_symbol("AAPL")
    assert clock_assets(finder, [aapl], "24/7") == ("24/7", None)
    calendar, assets = clock_assets(finder, [], "XNYS")
    assert calendar == "XNYS" and finder.lookup_symbol("BTCUSDT") not in assets


@pytest.mark.parametrize("bad", ["XLON", "", "  "])
def test_unknown_or_empty_calendar_is_a_config_error_naming_the_choices(finder, bad):
    with pytest.raises(ConfigError, match="calendar"):
        clock_assets(finder, [], bad)


def _buy_and_hold() -> ScriptAlgorithm:
    """zipline's buy_and_hold shape: symbols looked up in handle_data, not initialize."""

    def initialize(context):
        context.has_ordered = False
        context.first_bar = None

    def handle_data(context, data):
        context.first_bar = context.first_bar or data.current_dt
        if not context.has_ordered:
            for stock in ("AAPL", "MSFT"):
                context.order(context.symbol(stock), 100)
            context.has_ordered = True

    return ScriptAlgorithm({"initialize": initialize, "handle_data": handle_data})


def test_buy_and_hold_on_a_bundle_with_crypto_starts_at_the_equity_open():
    algo = _buy_and_hold()
    result = run_algorithm(algo, start=START, end=END)
    assert algo.first_bar == datetime(2024, 1, 5, 14, 31, tzinfo=UTC)  # 09:31 New York
    assert result.summary["orders"] == 2 and result.summary["fills"] == 2
    assert len(result.daily) == 2  # Friday and Monday: no weekend sessions


def test_calendar_24_7_override_wakes_the_strategy_at_midnight():
    algo = _buy_and_hold()
    result = run_algorithm(algo, start=START, end=END, calendar="24/7")
    assert algo.first_bar == datetime(2024, 1, 5, 0, 1, tzinfo=UTC)
    assert len(result.daily) == 4  # every UTC day


def test_paper_replay_follows_the_same_clock_as_the_backtest():
    algo = _buy_and_hold()
    engine = LiveTradingEngine(
        strategy=algo,
        broker_adapter=PaperBroker(starting_cash=Decimal("100000")),
        data_portal=PolarsDataPortal("demo", "minute"),
        circuit_breakers=CircuitBreakerManager(),
        start=START,
        end=END,
        control_socket=False,
    )
    asyncio.run(asyncio.wait_for(engine.run(), timeout=120))
    assert algo.first_bar == datetime(2024, 1, 5, 14, 31, tzinfo=UTC)
    assert len(engine.order_manager.orders) == 2


class _Crypto(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("BTCUSDT")
        self.first = None

    def handle_data(self, context, data):
        self.first = self.first or data.current_dt


def test_a_strategy_that_looked_up_crypto_keeps_its_24_7_clock():
    algo = _Crypto()
    run_algorithm(algo, start=START, end=END)
    assert algo.first == datetime(2024, 1, 5, 0, 1, tzinfo=UTC)
