from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rustybt.assets import Equity
from rustybt.exceptions import CheckpointCorrupted
from rustybt.finance.order import Order, OrderStatus, OrderType
from rustybt.live.shadow.alignment import AlignmentTracker, Signal

T0 = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
D = Decimal


def _sig(oid, amount, before="0", symbol="AAPL"):
    return Signal(oid, symbol, D(amount), D(before))


def _flat(symbol):
    return D(0)


def test_equal_signals_align_and_a_size_outside_tolerance_does_not():
    t = AlignmentTracker(D("0.05"))
    t.record("live", T0, _sig("L1", "100"))
    t.record("shadow", T0, _sig("S1", "100"))
    assert t.compare_bar(T0, _flat, _flat).aligned
    t1 = T0 + timedelta(minutes=1)
    t.record("live", t1, _sig("L2", "104"))  # 3.8 % of 104: inside 5 %
    t.record("shadow", t1, _sig("S2", "100"))
    assert t.compare_bar(t1, _flat, _flat).aligned
    t2 = T0 + timedelta(minutes=2)
    t.record("live", t2, _sig("L3", "110"))
    t.record("shadow", t2, _sig("S3", "100"))
    out = t.compare_bar(t2, _flat, _flat)
    assert not out.aligned and "live ordered 110" in out.reasons[0]
    rep = t.report()
    assert (rep.signal_bars, rep.aligned_bars) == (3, 2)
    assert rep.alignment_rate == D(2) / D(3)
    assert rep.misaligned[0]["live"][0]["amount"] == "110"
    assert rep.misaligned[0]["shadow"][0]["amount"] == "100"


def test_opposite_side_or_missing_order_is_misaligned():
    t = AlignmentTracker(D("0.05"))
    t.record("live", T0, _sig("L1", "-10"))
    t.record("shadow", T0, _sig("S1", "10"))
    assert not t.compare_bar(T0, _flat, _flat).aligned
    t1 = T0 + timedelta(minutes=1)
    t.record("live", t1, _sig("L2", "10"))
    assert not t.compare_bar(t1, _flat, _flat).aligned


def test_target_order_size_drift_is_aligned_by_intended_exposure():
    # Live still holds 40 of a lagging fill the shadow got fully: order_target(100) asks
    # live for 60 and the shadow for 0 -> both aim at 100.
    t = AlignmentTracker(D("0.05"))
    t.record("live", T0, _sig("L1", "60", before="40"))
    out = t.compare_bar(T0, _flat, lambda s: D(100))
    assert out.aligned and out.drift_adjusted
    assert t.report().drift_adjusted_bars == 1


def _order(oid, amount, price, created, status=OrderStatus.FILLED):
    o = Order(oid, Equity("AAPL", 1), D(amount), OrderType.MARKET, created_dt=created)
    o.transition(OrderStatus.SUBMITTED)
    if price is not None:
        o.apply_fill(D(amount), D(price), D(0), created)
    else:
        o.cancel("test")
    return o


def test_fill_rate_slippage_and_latency_match_hand_computed_values():
    t = AlignmentTracker(D("0.05"))
    t.record("live", T0, _sig("L1", "100"))
    t.record("shadow", T0, _sig("S1", "100"))
    t.record("live", T0, _sig("L2", "-50", symbol="MSFT"))
    t.record("shadow", T0, _sig("S2", "-50", symbol="MSFT"))
    t.compare_bar(T0, _flat, _flat)
    orders = {
        "L1": _order("L1", "100", "100.10", T0),  # buy 10 bps worse
        "S1": _order("S1", "100", "100.00", T0),
        "L2": _order("L2", "-50", "49.95", T0),  # sell 5 bps... worse by 0.05/50 = 10 bps
        "S2": _order("S2", "-50", "50.00", T0),
    }
    t.on_live_fill("L1", T0 + timedelta(milliseconds=250))
    t.on_live_fill("L2", T0 + timedelta(milliseconds=750))
    assert sorted(t.settle_pairs(orders.get, orders.get)) == ["L1", "L2"]
    rep = t.report()
    assert rep.avg_slippage_bps == D("10.0000")
    assert rep.avg_latency_ms == D("500.0000")
    assert rep.execution_quality == 1
    assert rep.pairs_compared == 2


def test_unfilled_live_order_lowers_execution_quality():
    t = AlignmentTracker(D("0.05"))
    t.record("live", T0, _sig("L1", "100"))
    t.record("shadow", T0, _sig("S1", "100"))
    t.compare_bar(T0, _flat, _flat)
    orders = {"L1": _order("L1", "100", None, T0), "S1": _order("S1", "100", "10", T0)}
    t.settle_pairs(orders.get, orders.get)
    assert t.report().execution_quality == 0


def test_state_round_trips_and_malformed_state_raises_typed_error():
    t = AlignmentTracker(D("0.05"))
    t.record("live", T0, _sig("L1", "110"))
    t.record("shadow", T0, _sig("S1", "100"))
    t.compare_bar(T0, _flat, _flat)
    t.record("live", T0 + timedelta(minutes=1), _sig("L2", "5"))
    t.on_values(D(100), D(100))
    t.on_values(D(101), D(100))
    u = AlignmentTracker(D("0.05"))
    u.load(t.to_dict())
    assert u.to_dict() == t.to_dict()
    assert u.report().returns_deviation == D("0.01")
    before = u.to_dict()
    with pytest.raises(CheckpointCorrupted):
        u.load({"pending": {}})
    assert u.to_dict() == before
