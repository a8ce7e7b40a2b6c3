"""Backtest and paper agree on the cases that used to differ (issue #11), each named.

Every case runs the same strategy through ``run_algorithm`` and through
``LiveTradingEngine`` + ``PaperBroker`` on the same bundle and compares orders (asset,
amount, type, prices, time, fills, status), cash and portfolio value.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from rustybt import run_algorithm
from rustybt.algorithm import TradingAlgorithm
from rustybt.data.ingest import ingest
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.finance.decimal.commission import PerShareCommission
from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import (
    CircuitBreakerManager,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    OrderRateCircuitBreaker,
    default_breakers,
)
from rustybt.scheduling import date_rules, time_rules

D = Decimal


def _one_symbol_bundle(tmp_path: Path, name: str = "mine") -> PolarsDataPortal:
    """A user-ingested bundle: one symbol, two NYSE sessions of minute bars from a CSV,
    with missing minutes and quiet bars, as a new user would bring it."""
    rng = random.Random(7)
    lines = ["date,symbol,open,high,low,close,volume"]
    price = D("50.00")
    for day in (datetime(2024, 1, 3, 14, 31, tzinfo=UTC), datetime(2024, 1, 4, 14, 31, tzinfo=UTC)):
        for i in range(390):
            if rng.random() < 0.05:
                continue  # no trade that minute
            dt = day + timedelta(minutes=i)
            opened = price
            price = max(price + D(rng.randint(-8, 8)) / 100, D("1.00"))
            high = max(opened, price) + D(rng.randint(0, 5)) / 100
            low = min(opened, price) - D(rng.randint(0, 5)) / 100
            volume = rng.choice([0, 300, 2_000, 20_000])
            lines.append(f"{dt:%Y-%m-%d %H:%M:%S},ACME,{opened},{high},{low},{price},{volume}")
    csv = tmp_path / "acme.csv"
    csv.write_text("\n".join(lines) + "\n")
    ingest(name, [csv], frequency="minute")
    return PolarsDataPortal(bundle_name=name, data_frequency="minute")


def _rows(orders):
    return [
        (
            o.asset.symbol,
            o.amount,
            o.order_type.value,
            o.limit_price,
            o.stop_price,
            o.created_dt,
            o.filled,
            o.avg_fill_price,
            o.commission,
            o.status.value,
        )
        for o in orders
    ]


def _both(strategy_cls, bundle, *, breakers=None, cli_costs=True, allow_short=False, **kw):
    """Run ``strategy_cls`` as ``rustybt run`` and ``rustybt live`` would (their defaults)."""

    def costs():
        if not cli_costs:
            return {}
        return {
            "commission_model": PerShareCommission(D("0.005")),
            "slippage_model": FixedBasisPointsSlippage(D("5")),
            "volume_limit_pct": D("0.025"),
        }

    backtest = run_algorithm(
        strategy_cls(),
        bundle=bundle,
        allow_short=allow_short,
        circuit_breakers=breakers() if breakers else None,
        **costs(),
        **kw,
    )
    broker = PaperBroker(
        starting_cash=kw.get("capital_base", D("100000")),
        order_latency_ms=100,  # the CLI's paper defaults: latency with jitter
        latency_jitter_pct=D("0.2"),
        allow_short=allow_short,
        **costs(),
    )
    engine = LiveTradingEngine(
        strategy=strategy_cls(),
        broker_adapter=broker,
        data_portal=PolarsDataPortal(bundle_name=bundle, data_frequency="minute"),
        circuit_breakers=breakers() if breakers else CircuitBreakerManager(),
        control_socket=False,
        audit_log=False,
        start=kw.get("start"),
        end=kw.get("end"),
    )
    asyncio.run(asyncio.wait_for(engine.run(), timeout=120))
    return backtest, engine


def _assert_same(backtest, engine):
    assert engine.stats["strategy_errors"] == 0
    assert _rows(engine.order_manager.orders.values()) == _rows(backtest.orders)
    assert engine.ledger.cash == backtest.daily[-1]["cash"]
    assert engine.ledger.portfolio_value == backtest.daily[-1]["portfolio_value"]


class HalfIn(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("ACME")

    def handle_data(self, context, data):
        self.order_target_percent(self.asset, D("0.5"))


@pytest.mark.parametrize(
    "cli_costs, allow_short", [(True, False), (False, True)], ids=["cli_defaults", "no_cap_short"]
)
def test_reviewer_case_one_symbol_ingested_bundle_target_percent_every_bar(
    tmp_path, cli_costs, allow_short
):
    # The reviewer's report: 294 orders / 100,884.16 in `rustybt run` vs 308 / 100,882.78
    # in `rustybt live` with the CLI defaults (costs, volume cap, no shorting, default
    # breakers); still 295 vs 306 with the volume cap off and shorting allowed. Same
    # settings, same answer, both ways.
    _one_symbol_bundle(tmp_path)
    backtest, engine = _both(
        HalfIn, "mine", breakers=default_breakers, cli_costs=cli_costs, allow_short=allow_short
    )
    assert len(backtest.orders) > 50
    assert len(engine.order_manager.orders) == len(backtest.orders)
    assert engine.ledger.portfolio_value == backtest.daily[-1]["portfolio_value"]
    _assert_same(backtest, engine)


class OrdersBeforeTheOpen(TradingAlgorithm):
    """Orders from before_trading_start must not fill on the bar the strategy just read."""

    def initialize(self):
        self.asset = self.symbol("ACME")

    def before_trading_start(self, context, data):
        self.order(self.asset, 10)


def test_before_trading_start_orders_fill_on_the_next_bar_in_both(tmp_path):
    _one_symbol_bundle(tmp_path)
    backtest, engine = _both(OrdersBeforeTheOpen, "mine")
    for order in backtest.orders:
        (fill,) = [t for t in backtest.transactions if t["order_id"] == order.id][:1]
        assert fill["dt"] > order.created_dt  # no look-ahead
    _assert_same(backtest, engine)


class FirstBar(TradingAlgorithm):
    """Orders MSFT on the very first bar, when MSFT has not traded yet in the range."""

    def initialize(self):
        self.asset = self.symbol("ACME")
        self.after = []

    def handle_data(self, context, data):
        if not self.after:
            self.order(self.asset, 5)
            self.after.append(data.current(self.asset, "price"))


def test_first_bar_is_priced_from_the_bar_before_start_in_both(tmp_path):
    # The range starts mid-session at a minute with no ACME bar: both price ACME at its
    # last close before start (backtest and paper alike), and order on the first bar.
    _one_symbol_bundle(tmp_path)
    start = "2024-01-03 15:00"
    backtest, engine = _both(FirstBar, "mine", start=start, end="2024-01-03 16:00")
    assert backtest.orders[0].created_dt == datetime(2024, 1, 3, 15, 0, tzinfo=UTC)
    _assert_same(backtest, engine)


class Flood(TradingAlgorithm):
    """Rests far limit orders, then places more than the order-rate breaker allows."""

    def initialize(self):
        self.asset = self.symbol("ACME")
        self.n = 0

    def handle_data(self, context, data):
        self.n += 1
        if self.n in (5, 6, 7, 8):
            self.order(self.asset, 1, limit_price=D("1.00"))


def _rate_breakers():
    manager = CircuitBreakerManager()
    manager.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=3, window_seconds=600))
    return manager


def test_a_breaker_trip_cancels_pending_orders_in_the_backtest_too(tmp_path):
    _one_symbol_bundle(tmp_path)
    backtest, engine = _both(Flood, "mine", breakers=_rate_breakers, cli_costs=False)
    statuses = [o.status.value for o in backtest.orders]
    # accepted orders rest (limit far below) until the trip cancels them; after the trip
    # new orders are refused
    assert statuses[0] == "cancelled" and statuses[-1] == "rejected"
    assert set(statuses) == {"cancelled", "rejected"}
    assert "circuit breaker tripped" in backtest.orders[0].reason
    _assert_same(backtest, engine)


@pytest.mark.parametrize("allow_short", [False, True])
def test_short_and_buying_power_rules_are_the_same_in_both(tmp_path, allow_short):
    class Aggressive(TradingAlgorithm):
        def initialize(self):
            self.asset = self.symbol("ACME")
            self.n = 0

        def handle_data(self, context, data):
            self.n += 1
            if self.n % 7 == 0:
                self.order(self.asset, -30)  # sells more than held
            elif self.n % 5 == 0:
                self.order(self.asset, 60)  # soon beyond the cash

    _one_symbol_bundle(tmp_path)
    backtest, engine = _both(Aggressive, "mine", allow_short=allow_short, capital_base=D("10000"))
    reasons = " ".join(o.reason or "" for o in backtest.orders)
    assert "buying power" in reasons or "insufficient" in reasons
    assert ("short selling is disabled" in reasons) is (not allow_short)
    assert all(row["cash"] >= 0 for row in backtest.daily)
    _assert_same(backtest, engine)


def _late_listing_bundle(tmp_path: Path, name: str = "late") -> None:
    """ACME trades from the open; NEWCO lists at 15:00 UTC (no bar, no price before)."""
    lines = ["date,symbol,open,high,low,close,volume"]
    start = datetime(2024, 1, 3, 14, 31, tzinfo=UTC)
    for i in range(60):
        dt = start + timedelta(minutes=i)
        lines.append(f"{dt:%Y-%m-%d %H:%M:%S},ACME,50.00,50.10,49.90,50.00,10000")
        if dt >= datetime(2024, 1, 3, 15, 0, tzinfo=UTC):
            lines.append(f"{dt:%Y-%m-%d %H:%M:%S},NEWCO,20.00,20.10,19.90,20.00,10000")
    csv = tmp_path / "late.csv"
    csv.write_text("\n".join(lines) + "\n")
    ingest(name, [csv], frequency="minute")


class ValueOrdersBeforeTheListing(TradingAlgorithm):
    """Every value-based order function, every bar, on an asset that has no price yet."""

    def initialize(self):
        self.acme = self.symbol("ACME")
        self.newco = self.symbol("NEWCO")
        self.returned = []

    def handle_data(self, context, data):
        if len(self.returned) < 8:
            self.returned += [
                self.order_value(self.newco, 1000),
                self.order_percent(self.newco, D("0.01")),
                self.order_target_value(self.newco, 2000),
                self.order_target_percent(self.newco, D("0.02")),
            ]
            self.order_target_percent(self.newco, 0)  # flat needs no price: a no-op
            self.order(self.acme, 1)  # the rest of handle_data runs


def test_value_orders_on_an_asset_with_no_price_are_rejected_orders_in_both(tmp_path):
    # Before: order_value & co. logged order_not_sized and returned None, leaving no order
    # behind; now each is a REJECTED order with the reason, in the backtest and in paper.
    _late_listing_bundle(tmp_path)
    backtest, engine = _both(
        ValueOrdersBeforeTheListing, "late", cli_costs=False, end="2024-01-03 14:40"
    )
    assert backtest.summary["rejects"] == 8
    for every in (backtest.orders, list(engine.order_manager.orders.values())):
        orders = [o for o in every if o.asset.symbol == "NEWCO"]
        assert len(orders) == 8
        assert {o.status.value for o in orders} == {"rejected"}
        assert all(o.amount == 0 for o in orders)
        # ... and the line after them ran each time: ACME orders, filled
        assert [o.status.value for o in every if o.asset.symbol == "ACME"] == ["filled"] * 2
        reasons = [o.reason for o in orders]
        assert all("no market data for NEWCO yet" in r for r in reasons)
        assert "order_value(1000) cannot be sized" in reasons[0]
        assert "order_percent(0.01) cannot be sized" in reasons[1]
        assert "order_target_value(2000) cannot be sized" in reasons[2]
        assert "order_target_percent(0.02) cannot be sized" in reasons[3]
    assert engine.order_manager.rejected_count == 8
    assert [o.reason for o in engine.order_manager.orders.values()] == [
        o.reason for o in backtest.orders
    ]
    table = backtest.orders_frame()
    newco = table.filter(table["symbol"] == "NEWCO")
    assert newco["status"].to_list() == ["rejected"] * 8
    assert newco["amount"].to_list() == ["0"] * 8
    assert newco["reason"].str.contains("no market data for NEWCO").all()
    _assert_same(backtest, engine)


def test_value_orders_once_the_asset_has_a_price_are_sized_in_both(tmp_path):
    _late_listing_bundle(tmp_path)
    backtest, engine = _both(
        ValueOrdersBeforeTheListing,
        "late",
        cli_costs=False,
        start="2024-01-03 15:05",
        end="2024-01-03 15:20",
    )
    first = backtest.orders[0]
    assert (first.amount, first.status.value) == (50, "filled")  # 1000 / 20.00
    assert not any("no market data" in (o.reason or "") for o in backtest.orders)
    _assert_same(backtest, engine)


def _gap_bundle(tmp_path: Path, name: str = "gap") -> None:
    """ACME at 100, except one bar that gaps down to 80 at the open and closes at 100."""
    lines = ["date,symbol,open,high,low,close,volume"]
    start = datetime(2024, 1, 3, 14, 31, tzinfo=UTC)
    for i in range(12):
        dt = start + timedelta(minutes=i)
        bar = "80.00,101.00,80.00,100.00" if i == 3 else "100.00,100.00,100.00,100.00"
        lines.append(f"{dt:%Y-%m-%d %H:%M:%S},ACME,{bar},1000000")
    csv = tmp_path / "gap.csv"
    csv.write_text("\n".join(lines) + "\n")
    ingest(name, [csv], frequency="minute")


class StoppedOutOnAGap(TradingAlgorithm):
    """Buys 900, then rests two sell stops for a quarter each at 95 and a far limit buy;
    keeps adding a far limit buy every bar (not once a breaker has tripped)."""

    def initialize(self):
        self.asset = self.symbol("ACME")
        self.n = 0

    def handle_data(self, context, data):
        if self.n == 0:
            self.order(self.asset, 900)
        elif self.n == 1:
            self.order(self.asset, -225, stop_price=D("95"))
            self.order(self.asset, -225, stop_price=D("95"))
        if self.n >= 1:
            self.order(self.asset, 1, limit_price=D("50"))
        self.n += 1


@pytest.mark.parametrize("end", [None, "2024-01-03 14:34"])
def test_a_drawdown_trip_happens_on_the_same_bar_and_cancels_the_same_orders_in_both(tmp_path, end):
    # On the gap bar the stops fill at the open (80): right after the first fill the
    # account is worth 82,000 (the rest marked at the fill price), 18 % below its peak; at
    # the bar's close (100) it is worth 91,000, 9 % below. Breakers observe the value after
    # every fill and once per bar in both modes, so a 10 % drawdown breaker trips on the
    # gap bar in both and cancels the same resting orders. Before, only paper saw the
    # fill-time value: it tripped there while the backtest never tripped. The second stop
    # fills on the same bar after the trip; paper used to apply it after marking the bar
    # (the trip stopped the engine applying the bar's fills), so a run ending on the gap
    # bar ended at 82,000 in paper and 91,000 in the backtest (end="...14:34").
    _gap_bundle(tmp_path)
    made = []

    def breakers():
        manager = CircuitBreakerManager()
        manager.add_breaker(DrawdownCircuitBreaker(D("0.10")))
        made.append(manager)
        return manager

    backtest, engine = _both(StoppedOutOnAGap, "gap", breakers=breakers, cli_costs=False, end=end)
    gap_bar = datetime(2024, 1, 3, 14, 34, tzinfo=UTC)
    (bt_drawdown,) = made[0].breakers
    (live_drawdown,) = engine.circuit_breakers.breakers
    assert bt_drawdown.is_tripped and live_drawdown.is_tripped
    assert bt_drawdown.tripped_at == live_drawdown.tripped_at == gap_bar
    cancelled = [o.id.rsplit("-", 1)[1] for o in backtest.orders if o.status.value == "cancelled"]
    assert cancelled == ["4", "5"]  # the far limit buys resting at the trip
    assert [o.status.value for o in backtest.orders[:3]] == ["filled"] * 3
    assert all("circuit breaker tripped" in o.reason for o in backtest.orders[3:])
    live_orders = list(engine.order_manager.orders.values())
    assert [o.id.rsplit("-", 1)[1] for o in live_orders if o.status.value == "cancelled"] == (
        cancelled
    )
    # After the trip the strategy is halted in both: no more orders.
    assert len(backtest.orders) == len(live_orders) == 5
    assert backtest.daily[-1]["portfolio_value"] == D("91000")
    _assert_same(backtest, engine)


def _multi_asset_bundle(tmp_path: Path, name: str = "multi") -> None:
    """Three symbols over two NYSE sessions of minute bars: quiet minutes, zero-volume
    bars, a gap at the second open, and one symbol (NEWCO) listing mid-morning."""
    rng = random.Random(11)
    lines = ["date,symbol,open,high,low,close,volume"]
    prices = {"ACME": D("50.00"), "BOLT": D("120.00"), "NEWCO": D("20.00")}
    for day in (datetime(2024, 1, 3, 14, 31, tzinfo=UTC), datetime(2024, 1, 4, 14, 31, tzinfo=UTC)):
        for i in range(120):
            dt = day + timedelta(minutes=i)
            for symbol, price in prices.items():
                if symbol == "NEWCO" and dt < datetime(2024, 1, 3, 15, 10, tzinfo=UTC):
                    continue  # not listed yet
                if rng.random() < 0.08:
                    continue  # no trade that minute
                gap = D("0.03") if i == 0 and day.day == 4 else D(0)
                opened = (price * (1 + gap)).quantize(D("0.01"))
                close = max(opened + D(rng.randint(-15, 15)) / 100, D("1.00"))
                high = max(opened, close) + D(rng.randint(0, 8)) / 100
                low = min(opened, close) - D(rng.randint(0, 8)) / 100
                volume = rng.choice([0, 400, 3_000, 30_000])
                lines.append(
                    f"{dt:%Y-%m-%d %H:%M:%S},{symbol},{opened},{high},{low},{close},{volume}"
                )
                prices[symbol] = close
    csv = tmp_path / "multi.csv"
    csv.write_text("\n".join(lines) + "\n")
    ingest(name, [csv], frequency="minute")


class Rotation(TradingAlgorithm):
    """A realistic multi-asset strategy: a morning rebalance (scheduled), an opening order
    from before_trading_start, momentum-driven target weights, protective stops and
    resting limits, cancels — on assets that list late and skip minutes."""

    def initialize(self):
        self.assets = self.symbols("ACME", "BOLT", "NEWCO")
        self.n = 0
        self.schedule_function(
            self.rebalance, date_rules.every_day(), time_rules.market_open(minutes=20)
        )

    def before_trading_start(self, context, data):
        self.order(self.assets[0], 10)

    def rebalance(self, context, data):
        for asset in self.assets:
            self.order_target_percent(asset, D("0.25"))

    def handle_data(self, context, data):
        self.n += 1
        for k, asset in enumerate(self.assets):
            if (self.n + k) % 9:
                continue
            price = data.current(asset, "price")
            weight = D("0.4") if (self.n // 9) % 2 else D("0.1")
            self.order_target_percent(asset, weight)
            if price is None:
                continue
            held = self.portfolio.positions[asset].amount
            if held > 0:
                self.order(
                    asset, -max(held // 4, 1), stop_price=(price * D("0.995")).quantize(D("0.01"))
                )
            self.order(asset, 5, limit_price=(price * D("0.99")).quantize(D("0.01")))
        if self.n % 13 == 0:
            for orders in self.get_open_orders().values():
                self.cancel_order(orders[0])


def test_realistic_multi_asset_strategy_places_the_same_orders_in_both(tmp_path):
    # The combined case (156 orders in the backtest vs 108 in paper): scheduled
    # rebalances, before_trading_start orders, value orders on a symbol not listed yet,
    # stops through a gap, buying power and the default breakers, with the CLI's costs.
    _multi_asset_bundle(tmp_path)
    backtest, engine = _both(Rotation, "multi", breakers=default_breakers)
    assert len(backtest.orders) > 60
    statuses = {o.status.value for o in backtest.orders}
    assert {"filled", "cancelled", "rejected"} <= statuses
    _assert_same(backtest, engine)


class RefusedSells(TradingAlgorithm):
    """Every bar: a sell the cash account refuses (nothing held), then a small buy."""

    def initialize(self):
        self.asset = self.symbol("ACME")

    def handle_data(self, context, data):
        self.order(self.asset, -1)
        self.order(self.asset, 1, limit_price=D("1.00"))


def test_the_error_rate_breaker_counts_successes_in_the_backtest_as_in_paper(tmp_path):
    # Each bar has a refusal (an error) and an accepted order and a strategy call that
    # returned (successes): never 10 errors in a row. The backtest used to count only the
    # errors and tripped after 10 bars; paper never tripped.
    _gap_bundle(tmp_path)
    made = []

    def breakers():
        manager = CircuitBreakerManager()
        manager.add_breaker(ErrorRateCircuitBreaker(max_errors=1000, max_consecutive=10))
        made.append(manager)
        return manager

    backtest, engine = _both(RefusedSells, "gap", breakers=breakers, cli_costs=False)
    assert not made[0].breakers[0].is_tripped
    assert not engine.circuit_breakers.breakers[0].is_tripped
    assert [o.status.value for o in backtest.orders].count("rejected") == 12
    _assert_same(backtest, engine)
