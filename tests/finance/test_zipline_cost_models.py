"""zipline's cost-model API at zipline's paths, on the Decimal models; set_commission/set_slippage
in backtest and paper alike, ignored with a warning on a real venue."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import structlog

from rustybt import run_algorithm
from rustybt.algorithm import TradingAlgorithm
from rustybt.assets import Equity
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.exceptions import ConfigError
from rustybt.finance import commission, slippage
from rustybt.finance.decimal.commission import PerDollarCommission, PerShareCommission
from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage as SpecBps
from rustybt.finance.execution import ExecutionSimulator
from rustybt.finance.order import Order, OrderType
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.live.strategy_executor import StrategyExecutor

START, END = "2024-01-03", "2024-01-04 23:59:59"
AAPL = Equity("AAPL")


def _order(amount: str) -> Order:
    return Order("o1", AAPL, Decimal(amount), OrderType.MARKET)


def test_zipline_commission_classes_have_zipline_defaults_and_parameter_names():
    assert commission.PerShare().cost == Decimal("0.001")
    assert commission.PerShare().min_trade_cost == Decimal("0")
    assert commission.PerTrade().cost == Decimal("0")
    assert commission.PerDollar().cost == Decimal("0.0015")
    fee = commission.PerShare(cost=0.0075, min_trade_cost=1.0)
    assert fee.cost == Decimal("0.0075") and fee.min_trade_cost == Decimal("1")
    # one implementation underneath: the spec's Decimal models
    assert isinstance(fee, PerShareCommission)
    assert isinstance(commission.PerDollar(), PerDollarCommission)


def test_zipline_commission_models_charge_exact_decimal_fees():
    per_share = commission.PerShare(cost=0.0075, min_trade_cost=1.0)
    assert per_share.calculate(_order("10"), Decimal("100"), Decimal("10")) == Decimal("1")
    assert per_share.calculate(_order("1000"), Decimal("100"), Decimal("1000")) == Decimal("7.5")
    per_dollar = commission.PerDollar(cost=0.0015)
    assert per_dollar.calculate(_order("10"), Decimal("100"), Decimal("10")) == Decimal("1.5")
    assert commission.PerTrade(cost=5).calculate(_order("3"), Decimal("9"), Decimal("3")) == 5
    assert commission.NoCommission().calculate(_order("3"), Decimal("9"), Decimal("3")) == 0


def test_zipline_slippage_classes_have_zipline_defaults():
    vss = slippage.VolumeShareSlippage()
    assert (vss.volume_limit, vss.price_impact) == (Decimal("0.025"), Decimal("0.1"))
    bps = slippage.FixedBasisPointsSlippage()
    assert (bps.basis_points, bps.volume_limit) == (Decimal("5.0"), Decimal("0.1"))
    assert isinstance(bps, SpecBps)
    assert slippage.FixedSlippage().spread == 0
    assert slippage.NoSlippage().volume_limit is None


def test_fixed_slippage_pays_half_the_spread_each_side_rounded_to_tick():
    model = slippage.FixedSlippage(spread=0.05)
    assert model.fill_price(Decimal("100"), Decimal("10"), Decimal("1000"), AAPL) == Decimal(
        "100.03"
    )  # 100.025 rounded up against the buyer
    assert model.fill_price(Decimal("100"), Decimal("-10"), Decimal("1000"), AAPL) == Decimal(
        "99.97"
    )


def test_volume_share_slippage_impact_follows_zipline_formula():
    model = slippage.VolumeShareSlippage(volume_limit=0.25, price_impact=0.1)
    # share 10/100 = 0.1 → impact 0.1 × 0.01 = 0.001 → 100.1
    assert model.fill_price(Decimal("100"), Decimal("10"), Decimal("100"), AAPL) == Decimal("100.1")


@pytest.mark.parametrize(
    "make",
    [
        lambda: commission.PerShare(cost=-1),
        lambda: commission.PerShare(cost="abc"),
        lambda: commission.PerDollar(cost=float("nan")),
        lambda: slippage.VolumeShareSlippage(volume_limit=2),
        lambda: slippage.FixedSlippage(spread=-0.1),
        lambda: slippage.FixedBasisPointsSlippage(basis_points=True),
    ],
)
def test_bad_cost_model_parameters_raise_config_error_naming_them(make):
    with pytest.raises(ConfigError):
        make()


def test_simulator_set_models_replaces_models_and_volume_cap():
    sim = ExecutionSimulator(SpecBps(Decimal("5")), PerShareCommission(), Decimal("0.5"))
    sim.set_models(slippage_model=slippage.VolumeShareSlippage(volume_limit=0.1))
    assert sim.volume_cap == Decimal("0.1")
    sim.set_models(slippage_model=slippage.FixedSlippage())
    assert sim.volume_cap is None  # zipline's FixedSlippage has no volume limit
    with pytest.raises(ConfigError):
        sim.set_models(commission_model="free")


class _BuyWithZiplineCosts(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.set_commission(commission.PerShare(cost=0.0075, min_trade_cost=1.0))
        self.set_slippage(slippage.FixedSlippage(spread=0.10))
        self.done = False

    def handle_data(self, context, data):
        if not self.done and data.can_trade(self.asset):
            self.order(self.asset, 10)
            self.done = True


def test_set_commission_and_set_slippage_replace_the_run_cost_models_in_a_backtest():
    result = run_algorithm(
        _BuyWithZiplineCosts(),
        start=START,
        end=END,
        commission_model=PerShareCommission(Decimal("0.5")),  # replaced by the strategy's
        slippage_model=SpecBps(Decimal("100")),
    )
    (tx,) = result.transactions
    assert tx["commission"] == Decimal("1")  # PerShare's minimum, not 10 × 0.5
    portal = PolarsDataPortal("demo", "minute")
    close = portal.get_spot_value("AAPL", "close", tx["dt"])
    assert tx["price"] == close + Decimal("0.05")  # half of the 0.10 spread


def test_set_commission_outside_initialize_is_refused():
    class Late(TradingAlgorithm):
        def initialize(self):
            self.asset = self.symbol("AAPL")

        def handle_data(self, context, data):
            self.set_commission(commission.PerShare())

    with pytest.raises(ConfigError, match="only inside initialize"):
        run_algorithm(Late(), start=START, end=END)


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.set_commission(slippage.NoSlippage()),
        lambda a: a.set_slippage(commission.PerShare()),
        lambda a: a.set_commission(),
        lambda a: a.set_commission(commission.PerShare(), commission.PerTrade()),
    ],
)
def test_set_cost_models_with_wrong_arguments_raise_config_error(call):
    class Bad(TradingAlgorithm):
        def initialize(self):
            call(self)

    with pytest.raises(ConfigError):
        run_algorithm(Bad(), start=START, end=END)


def test_set_commission_accepts_zipline_us_equities_keyword():
    class Kw(_BuyWithZiplineCosts):
        def initialize(self):
            super().initialize()
            self.set_commission(us_equities=commission.PerTrade(cost=2))

    (tx,) = run_algorithm(Kw(), start=START, end=END).transactions
    assert tx["commission"] == Decimal("2")


def test_paper_broker_applies_the_strategy_cost_models_like_the_backtest():
    backtest = run_algorithm(_BuyWithZiplineCosts(), start=START, end=END)
    broker = PaperBroker(
        starting_cash=Decimal("100000"),
        commission_model=PerShareCommission(Decimal("0.5")),
        slippage_model=SpecBps(Decimal("100")),
    )
    engine = LiveTradingEngine(
        strategy=_BuyWithZiplineCosts(),
        broker_adapter=broker,
        data_portal=PolarsDataPortal("demo", "minute"),
        circuit_breakers=CircuitBreakerManager(),
        start=START,
        end=END,
        control_socket=False,
    )
    asyncio.run(asyncio.wait_for(engine.run(), timeout=60))
    (order,) = engine.order_manager.orders.values()
    (tx,) = backtest.transactions
    assert order.commission == tx["commission"] == Decimal("1")
    assert order.avg_fill_price == tx["price"]
    assert engine.ledger.cash == backtest.daily[-1]["cash"]


class _RealVenue:
    """A broker without simulated fills (no set_cost_models), as a real venue adapter."""


def test_cost_models_are_ignored_with_a_warning_on_a_real_venue():
    algo = _BuyWithZiplineCosts()
    executor = StrategyExecutor(
        algo,
        ledger=None,
        blotter=None,
        asset_finder=PolarsDataPortal("demo", "minute").asset_finder,
        portal=None,
        clock=lambda: None,
        on_error=lambda where, exc: None,
        broker=_RealVenue(),
    )
    with structlog.testing.capture_logs() as logs:
        executor.initialize()
    ignored = [e for e in logs if e["event"] == "cost_models_ignored"]
    assert len(ignored) == 2  # commission and slippage
    assert ignored[0]["broker"] == "_RealVenue"
    assert "PerShare" in ignored[0]["models"]
