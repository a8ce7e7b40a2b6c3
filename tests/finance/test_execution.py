"""ExecutionSimulator: the fill rules shared by backtest, paper and shadow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rustybt.assets import Crypto, Equity
from rustybt.data.bar import Bar
from rustybt.exceptions import ConfigError, InvalidOrder
from rustybt.finance.decimal.commission import PerShareCommission
from rustybt.finance.decimal.slippage import (
    FixedBasisPointsSlippage,
    NoSlippage,
    VolumeShareSlippage,
)
from rustybt.finance.execution import (
    ExecutionSimulator,
    Fill,
    LimitOrder,
    MarketOrder,
    StopLimitOrder,
    StopOrder,
)
from rustybt.finance.ledger import Ledger
from rustybt.finance.order import Order, OrderStatus, OrderType, TimeInForce

D = Decimal
AAPL = Equity("AAPL")
MSFT = Equity("MSFT")
BTC = Crypto("BTCUSDT")
T0 = datetime(2024, 1, 2, 14, 31, tzinfo=UTC)


def bar(o, h, low, c, v="1000000", asset=AAPL, minute: int = 0) -> Bar:
    return Bar(asset, T0 + timedelta(minutes=minute), D(o), D(h), D(low), D(c), D(v))


def order(amount, otype=OrderType.MARKET, limit=None, stop=None, asset=AAPL, tif=None, oid="o"):
    return Order(
        oid,
        asset,
        D(amount),
        otype,
        None if limit is None else D(limit),
        None if stop is None else D(stop),
        tif or TimeInForce.GTC,
        T0,
    )


SIM = ExecutionSimulator()


# --- market ------------------------------------------------------------------------------
def test_market_order_fills_in_full_at_the_bar_close():
    assert SIM.process(order(100), bar(10, 12, 9, 11)) == Fill(D(100), D(11), D(0))
    assert SIM.process(order(-100), bar(10, 12, 9, 11)) == Fill(D(-100), D(11), D(0))


def test_process_does_not_change_the_order():
    o = order(100)
    before = o.to_dict()
    SIM.process(o, bar(10, 12, 9, 11))
    assert o.to_dict() == before


def test_closed_orders_get_nothing():
    for end in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
        o = order(100)
        o.transition(end)
        assert SIM.process(o, bar(10, 12, 9, 11)) is None
    filled = order(5)
    filled.apply_fill(D(5), D(10))
    assert SIM.process(filled, bar(10, 12, 9, 11)) is None


def test_a_bar_of_another_asset_is_refused():
    with pytest.raises(InvalidOrder, match="MSFT"):
        SIM.process(order(1), bar(10, 12, 9, 11, asset=MSFT))


def test_order_type_given_as_a_string_is_understood():
    o = Order("s", AAPL, D(1), "limit", D(10))
    assert SIM.process(o, bar(11, 12, 9, 11)) == Fill(D(1), D(10), D(0))


# --- stop ----------------------------------------------------------------------------------
def test_buy_stop_triggers_only_when_the_bar_high_reaches_the_stop():
    o = order(10, OrderType.STOP, stop="105")
    assert SIM.process(o, bar(100, "104.99", 99, 104)) is None
    assert o.stop_reached is False
    fill = SIM.process(o, bar(104, 105, 103, "104.50"))
    assert o.stop_reached is True
    assert fill == Fill(D(10), D(105), D(0))  # at the stop price, not the bar's close


def test_buy_stop_fills_at_the_open_when_the_bar_gaps_through_the_stop():
    o = order(10, OrderType.STOP, stop="105")
    assert SIM.process(o, bar(108, 110, 107, 100)) == Fill(D(10), D(108), D(0))


def test_sell_stop_fills_at_the_open_when_the_bar_gaps_through_the_stop():
    o = order(-10, OrderType.STOP, stop="95")
    assert SIM.process(o, bar(90, 99, 89, 98)) == Fill(D(-10), D(90), D(0))


def test_stop_fill_price_gets_slippage_against_the_trader():
    sim = ExecutionSimulator(FixedBasisPointsSlippage(D("10")))
    fill = sim.process(order(10, OrderType.STOP, stop="100"), bar(99, 101, 98, 95))
    assert fill.price == D("100.10")  # stop 100 + 10 bp, not the close 95


def test_sell_stop_triggers_only_when_the_bar_low_reaches_the_stop():
    o = order(-10, OrderType.STOP, stop="95")
    assert SIM.process(o, bar(100, 101, "95.01", 96)) is None
    assert not o.stop_reached
    assert SIM.process(o, bar(96, 97, 94, "94.50")) == Fill(D(-10), D(95), D(0))
    assert o.stop_reached


def test_triggered_stop_persists_and_fills_later_bars_as_a_market_order():
    sim = ExecutionSimulator(volume_limit_pct=D("0.5"))
    o = order(10, OrderType.STOP, stop="105")
    # triggers on a bar with no volume: no fill, but the trigger sticks
    assert sim.process(o, bar(104, 106, 103, 105, v="0")) is None
    assert o.stop_reached
    # next bar never reaches the stop again, yet fills at its close
    assert sim.process(o, bar(100, 101, 99, 100, minute=1)) == Fill(D(10), D(100), D(0))


# --- limit -----------------------------------------------------------------------------------
def test_buy_limit_fills_only_when_low_reaches_the_limit_at_limit_or_better():
    o = order(10, OrderType.LIMIT, limit="100")
    assert SIM.process(o, bar(102, 103, "100.01", 101)) is None
    assert SIM.process(o, bar(102, 103, 99, 101)) == Fill(D(10), D(100), D(0))
    assert SIM.process(o, bar(102, 103, 98, 99)) == Fill(D(10), D(99), D(0))


def test_sell_limit_fills_only_when_high_reaches_the_limit_at_limit_or_better():
    o = order(-10, OrderType.LIMIT, limit="100")
    assert SIM.process(o, bar(98, "99.99", 97, 99)) is None
    assert SIM.process(o, bar(98, 101, 97, 99)) == Fill(D(-10), D(100), D(0))
    assert SIM.process(o, bar(98, 102, 97, 101)) == Fill(D(-10), D(101), D(0))


def test_slippage_never_pushes_a_limit_fill_past_its_limit():
    sim = ExecutionSimulator(FixedBasisPointsSlippage(D(50)))
    buy = order(10, OrderType.LIMIT, limit="100")
    assert sim.process(buy, bar(102, 103, 99, 101)).price == D(100)
    sell = order(-10, OrderType.LIMIT, limit="100")
    assert sim.process(sell, bar(98, 101, 97, 99)).price == D(100)
    # with room below the limit, slippage applies but stops at the limit
    assert sim.process(buy, bar(99, 100, 98, "99.80")).price == D(100)
    assert sim.process(buy, bar(98, 99, 97, 98)).price == D("98.49")


def test_limit_never_fills_through_the_limit_on_off_tick_closes():
    o = order(1, OrderType.LIMIT, limit="100")
    assert SIM.process(o, bar(100, 101, "99.995", "99.999")).price == D(100)


# --- stop limit -----------------------------------------------------------------------------
def test_stop_limit_fills_on_the_trigger_bar_when_the_limit_is_marketable():
    o = order(10, OrderType.STOP_LIMIT, limit="106", stop="105")
    assert SIM.process(o, bar(100, 104, 99, 103)) is None
    assert not o.stop_reached
    # triggers at 105, within the limit: fills at the trigger price
    assert SIM.process(o, bar(104, 107, 103, "106.50")) == Fill(D(10), D(105), D(0))
    assert o.stop_reached


def test_stop_limit_gapping_past_its_limit_fills_at_the_limit_when_the_bar_reaches_it():
    o = order(10, OrderType.STOP_LIMIT, limit="106", stop="105")
    # opens at 108 (above the limit), trades down to 105.50: the limit is reachable
    assert SIM.process(o, bar(108, 109, "105.50", 107)) == Fill(D(10), D(106), D(0))


def test_stop_limit_waits_as_a_limit_order_after_triggering():
    o = order(-10, OrderType.STOP_LIMIT, limit="96", stop="95")
    # trigger bar trades through the stop but never back up to the limit
    assert SIM.process(o, bar(95, "95.50", 90, 91)) is None
    assert o.stop_reached
    # limit still not reached
    assert SIM.process(o, bar(91, "95.99", 90, 95, minute=1)) is None
    # now marketable: sells at max(close, limit)
    assert SIM.process(o, bar(95, 97, 94, "95.50", minute=2)) == Fill(D(-10), D(96), D(0))


# --- volume cap ---------------------------------------------------------------------------------
def test_volume_capped_order_fills_partially_then_the_remainder_on_later_bars():
    sim = ExecutionSimulator(volume_limit_pct=D("0.025"))
    ledger = Ledger(D("100000"))
    o = order(100)
    o.transition(OrderStatus.SUBMITTED)
    volumes = ["2000", "0", "1000", "4000", "4000"]
    fills = []
    for minute, v in enumerate(volumes):
        fill = sim.process(o, bar(10, 10, 10, 10, v=v, minute=minute))
        if fill is not None:
            o.apply_fill(fill.amount, fill.price, fill.commission)
            ledger.apply_fill(o.asset, fill.amount, fill.price, fill.commission)
        fills.append(None if fill is None else fill.amount)
        statuses = o.status
    assert fills == [D(50), None, D(25), D(25), None]
    assert statuses is OrderStatus.FILLED
    assert ledger.positions[AAPL].amount == 100 and ledger.cash == D(99000)


def test_orders_on_one_asset_share_the_bar_volume_but_other_assets_do_not():
    sim = ExecutionSimulator(volume_limit_pct=D("0.1"))
    first, second = order(80, oid="a"), order(-80, oid="b")
    other = order(80, asset=MSFT, oid="c")
    b = bar(10, 10, 10, 10, v="1000")
    assert sim.process(first, b).amount == D(80)
    assert sim.process(second, b).amount == D(-20)
    assert sim.process(second, b) is None  # room exhausted in this bar
    assert sim.process(other, bar(10, 10, 10, 10, v="1000", asset=MSFT)).amount == D(80)
    # a new bar brings new room
    assert sim.process(second, bar(10, 10, 10, 10, v="1000", minute=1)).amount == D(-80)


def test_volume_capped_fill_is_rounded_down_to_the_lot_size():
    sim = ExecutionSimulator(volume_limit_pct=D("0.025"))
    o = order("1", asset=BTC)
    fill = sim.process(o, bar(30000, 30000, 30000, 30000, v="0.123456789", asset=BTC))
    assert fill.amount == D("0.00308")  # 0.0030864197... down to 0.00001 lots
    equity_fill = sim.process(order(100), bar(10, 10, 10, 10, v="999"))
    assert equity_fill.amount == D(24)  # 24.975 -> 24 shares


def test_no_fill_when_the_cap_rounds_below_one_lot():
    sim = ExecutionSimulator(volume_limit_pct=D("0.025"))
    assert sim.process(order(100), bar(10, 10, 10, 10, v="39")) is None


def test_zero_volume_bar_fills_in_full_without_a_cap_and_not_at_all_with_one():
    assert SIM.process(order(100), bar(10, 10, 10, 10, v="0")).amount == D(100)
    capped = ExecutionSimulator(volume_limit_pct=D("0.5"))
    assert capped.process(order(100), bar(10, 10, 10, 10, v="0")) is None


def test_effective_cap_is_the_smaller_of_the_simulator_and_slippage_limits():
    sim = ExecutionSimulator(
        VolumeShareSlippage(volume_limit=D("0.025")), volume_limit_pct=D("0.5")
    )
    assert sim.volume_cap == D("0.025")
    sim2 = ExecutionSimulator(
        FixedBasisPointsSlippage(D(5), volume_limit=D("0.5")), volume_limit_pct=D("0.1")
    )
    assert sim2.volume_cap == D("0.1")
    assert sim2.process(order(1000), bar(10, 10, 10, 10, v="1000")).amount == D(100)
    assert ExecutionSimulator().volume_cap is None


def test_fill_or_kill_gets_everything_or_nothing():
    sim = ExecutionSimulator(volume_limit_pct=D("0.1"))
    fok = order(200, tif=TimeInForce.FOK)
    assert sim.process(fok, bar(10, 10, 10, 10, v="1000")) is None
    assert sim.process(fok, bar(10, 10, 10, 10, v="5000", minute=1)).amount == D(200)


# --- costs ------------------------------------------------------------------------------------
def test_slippage_and_commission_come_from_the_models():
    sim = ExecutionSimulator(FixedBasisPointsSlippage(D(5)), PerShareCommission(D("0.005")))
    fill = sim.process(order(100), bar(100, 101, 99, 100))
    assert fill == Fill(D(100), D("100.05"), D("0.5"))
    fill = sim.process(order(-100), bar(100, 101, 99, 100))
    assert fill == Fill(D(-100), D("99.95"), D("0.5"))


def test_per_order_minimum_commission_works_across_volume_capped_partial_fills():
    sim = ExecutionSimulator(
        commission_model=PerShareCommission(D("0.01"), min_trade_cost=D(1)),
        volume_limit_pct=D("0.01"),
    )
    o = order(300)
    charged = []
    for minute in range(4):
        fill = sim.process(o, bar(10, 10, 10, 10, v="10000", minute=minute))
        if fill is None:
            break
        o.apply_fill(fill.amount, fill.price, fill.commission)
        charged.append(fill.commission)
    assert charged == [D(1), D(1), D(1)]
    assert o.commission == D(3) and o.status is OrderStatus.FILLED


# --- construction -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"volume_limit_pct": D(0)},
        {"volume_limit_pct": D("1.01")},
        {"volume_limit_pct": D("NaN")},
        {"volume_limit_pct": "lots"},
        {"slippage_model": "5bps"},
        {"commission_model": PerShareCommission},
    ],
)
def test_bad_simulator_configuration_raises_config_error(kwargs):
    with pytest.raises(ConfigError):
        ExecutionSimulator(**kwargs)


def test_defaults_are_no_slippage_no_commission_no_cap():
    sim = ExecutionSimulator(volume_limit_pct=0.025)
    assert isinstance(sim.slippage_model, NoSlippage)
    assert sim.volume_limit_pct == D("0.025")


def test_zipline_order_styles_are_importable_from_execution():
    assert MarketOrder().order_type is OrderType.MARKET
    assert LimitOrder(D(1)).order_type is OrderType.LIMIT
    assert StopOrder(D(1)).order_type is OrderType.STOP
    assert StopLimitOrder(D(2), D(1)).order_type is OrderType.STOP_LIMIT
