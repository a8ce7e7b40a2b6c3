"""PositionReconciler: every discrepancy kind and severity, fail-closed broker errors."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from rustybt.assets import Crypto, Equity
from rustybt.exceptions import ConfigError, ReconciliationError
from rustybt.live.models import (
    DiscrepancySeverity,
    OrderSnapshot,
    PositionSnapshot,
    ReconciliationStrategy,
)
from rustybt.live.reconciler import PositionReconciler

D = Decimal
INFO, WARNING, CRITICAL = (
    DiscrepancySeverity.INFO,
    DiscrepancySeverity.WARNING,
    DiscrepancySeverity.CRITICAL,
)
asset1 = Equity("AAPL", sid=1)
asset2 = Equity("MSFT", sid=2)
BTC = Crypto("BTCUSDT")


class FakeBroker:
    """Async methods returning the DESIGN.md broker-adapter contract shapes."""

    def __init__(self, positions=None, cash=D("10000"), orders=None) -> None:
        self.positions = positions or []
        self.cash = cash
        self.orders = orders or []
        self.calls = 0

    async def get_positions(self):
        self.calls += 1
        return [
            {"asset": a, "amount": amt, "average_price": avg, "last_price": last}
            for a, amt, avg, last in self.positions
        ]

    async def get_account_info(self):
        return {"cash": self.cash, "portfolio_value": self.cash, "buying_power": self.cash}

    async def get_open_orders(self):
        return list(self.orders)


class UnreachableBroker(FakeBroker):
    async def get_positions(self):
        raise ConnectionError("connection refused")


class SlowBroker(FakeBroker):
    async def get_open_orders(self):
        await asyncio.sleep(10)
        return []


def _order(order_id, asset, amount, status="open", coid=None, filled=D(0)):
    return {
        "order_id": order_id,
        "client_order_id": coid,
        "asset": asset,
        "amount": amount,
        "filled": filled,
        "order_type": "limit",
        "limit_price": D("50"),
        "stop_price": None,
        "status": status,
    }


def _spec_locals():
    positions = [
        PositionSnapshot(asset=asset1, amount=D("100"), cost_basis=D("5000")),
        PositionSnapshot(asset=asset2, amount=D("-50"), cost_basis=D("-2500")),
    ]
    orders = [OrderSnapshot(order_id="order1", asset=asset1, amount=D("50"), status="pending")]
    return positions, D("10000"), orders


def _spec_broker(**kw) -> FakeBroker:
    args = dict(
        positions=[(asset1, D("100"), D("50"), D("51")), (asset2, D("-50"), D("50"), D("49"))],
        cash=D("10000"),
        orders=[_order("order1", asset1, D("50"), "new")],
    )
    args.update(kw)
    return FakeBroker(**args)


async def _reconcile(broker, positions=None, cash=D("10000"), orders=None, **kw):
    rec = PositionReconciler(broker, **kw)
    return await rec.reconcile_all(
        local_positions=positions or [], local_cash=cash, local_orders=orders or []
    )


async def test_spec_example_in_agreement_has_no_discrepancies():
    positions, cash, orders = _spec_locals()
    reconciler = PositionReconciler(
        broker_adapter=_spec_broker(),
        reconciliation_strategy=ReconciliationStrategy.WARN_ONLY,
        cash_tolerance_pct=0.01,
    )
    report = await reconciler.reconcile_all(
        local_positions=positions, local_cash=cash, local_orders=orders
    )
    assert not report.has_discrepancies
    assert report.max_severity.value == "info"
    assert report.strategy is ReconciliationStrategy.WARN_ONLY
    assert reconciler.cash_tolerance_pct == D("0.01")  # float read via repr, exactly
    assert reconciler.last_report is report


async def test_broker_state_holds_what_trust_broker_should_set():
    positions, cash, orders = _spec_locals()
    broker = _spec_broker(positions=[(asset1, D("90"), D("50.5"), D("51"))], cash=D("9000"))
    report = await _reconcile(
        broker, positions, cash, orders, reconciliation_strategy="trust_broker"
    )
    state = report.broker_state
    assert state.cash == D("9000") and state.portfolio_value == D("9000")
    assert state.positions == [PositionSnapshot(asset1, D("90"), D("4545.0"), D("51"))]
    assert state.open_orders[0].order_id == "order1"
    assert report.strategy is ReconciliationStrategy.TRUST_BROKER


async def test_short_position_cost_basis_from_broker_is_signed_total():
    broker = FakeBroker(positions=[(asset2, D("-50"), D("50"), None)])
    report = await _reconcile(broker, cash=D("10000"))
    assert report.broker_state.positions[0].cost_basis == D("-2500")


@pytest.mark.parametrize(
    "local,broker,severity",
    [
        (D("100"), D("99"), WARNING),  # 1% exactly: warning
        (D("100"), D("99.5"), WARNING),
        (D("100"), D("98"), CRITICAL),  # 2%: critical
        (D("100"), D("150"), CRITICAL),
        (D("-100"), D("-99"), WARNING),
    ],
)
async def test_quantity_mismatch_is_warning_up_to_one_percent_else_critical(
    local, broker, severity
):
    report = await _reconcile(
        FakeBroker(positions=[(asset1, broker, D("50"), None)]),
        [PositionSnapshot(asset1, local, local * 50)],
    )
    (d,) = report.position_discrepancies
    assert d.kind == "quantity_mismatch" and d.severity is severity
    assert d.local_amount == local and d.broker_amount == broker
    assert "AAPL" in d.message


async def test_quantity_difference_within_position_tolerance_is_info():
    report = await _reconcile(
        FakeBroker(positions=[(BTC, D("1.00000001"), D("60000"), None)]),
        [PositionSnapshot(BTC, D("1"), D("60000"))],
        position_tolerance=D("0.00001"),
    )
    (d,) = report.position_discrepancies
    assert d.severity is INFO and report.has_discrepancies
    assert report.max_severity is INFO and not report.has_critical_discrepancies


async def test_position_only_at_broker_is_missing_locally_and_critical():
    report = await _reconcile(FakeBroker(positions=[(asset1, D("10"), D("50"), None)]))
    (d,) = report.position_discrepancies
    assert (d.kind, d.severity, d.local_amount) == ("missing_locally", CRITICAL, D(0))
    assert report.has_critical_discrepancies


async def test_position_only_locally_is_missing_at_broker_and_critical():
    report = await _reconcile(FakeBroker(), [PositionSnapshot(asset1, D("10"), D("500"))])
    (d,) = report.position_discrepancies
    assert (d.kind, d.severity, d.broker_amount) == ("missing_at_broker", CRITICAL, D(0))


async def test_long_here_short_there_is_opposite_side_and_critical():
    report = await _reconcile(
        FakeBroker(positions=[(asset1, D("-10"), D("50"), None)]),
        [PositionSnapshot(asset1, D("10"), D("500"))],
    )
    (d,) = report.position_discrepancies
    assert (d.kind, d.severity) == ("opposite_side", CRITICAL)


async def test_zero_positions_and_duplicate_entries_are_netted():
    broker = FakeBroker(
        positions=[
            (asset1, D("6"), D("50"), None),
            (asset1, D("4"), D("50"), None),
            (asset2, D("0"), D("0"), None),
        ]
    )
    report = await _reconcile(
        broker, [PositionSnapshot(asset1, D("10"), D("500")), PositionSnapshot(BTC, 0, 0)]
    )
    assert report.position_discrepancies == []


@pytest.mark.parametrize(
    "broker_cash,severity",
    [
        (D("10000"), None),
        (D("9950"), INFO),  # 0.5%
        (D("9900"), INFO),  # exactly 1%
        (D("9500"), WARNING),  # 5%
        (D("9000"), WARNING),  # exactly 10%: 10x tolerance
        (D("8000"), CRITICAL),  # 20%
        (D("0"), CRITICAL),
    ],
)
async def test_cash_severity_scales_with_tolerance(broker_cash, severity):
    report = await _reconcile(FakeBroker(cash=broker_cash), cash=D("10000"))
    cash = report.cash_discrepancy
    if severity is None:
        assert cash is None and not report.has_discrepancies
        return
    assert cash.severity is severity
    assert cash.difference == broker_cash - D("10000")
    assert cash.local_cash == D("10000") and cash.broker_cash == broker_cash


async def test_cash_difference_pct_is_a_fraction_of_the_larger_balance():
    report = await _reconcile(FakeBroker(cash=D("9800")), cash=D("10000"))
    assert report.cash_discrepancy.difference_pct == D("0.02")
    assert report.cash_discrepancy.severity is WARNING


async def test_zero_cash_tolerance_makes_any_difference_critical():
    report = await _reconcile(
        FakeBroker(cash=D("9999.99")), cash=D("10000"), cash_tolerance_pct=D("0")
    )
    assert report.cash_discrepancy.severity is CRITICAL


async def test_local_open_order_unknown_to_broker_is_orphaned_local_warning():
    positions, cash, orders = _spec_locals()
    report = await _reconcile(_spec_broker(orders=[]), positions, cash, orders)
    (d,) = report.order_discrepancies
    assert (d.kind, d.severity, d.order_id) == ("orphaned_local", WARNING, "order1")
    assert d.local_status == "pending" and d.broker_status is None


async def test_broker_order_we_do_not_know_is_orphaned_broker_warning():
    broker = FakeBroker(orders=[_order("B7", asset1, D("5"), coid="foreign-1")])
    report = await _reconcile(broker)
    (d,) = report.order_discrepancies
    assert (d.kind, d.severity) == ("orphaned_broker", WARNING)
    assert d.order_id == "B7" and d.client_order_id == "foreign-1"


async def test_orders_match_by_client_order_id_before_order_id():
    local = [OrderSnapshot("internal-1", asset1, D("5"), "open", client_order_id="s1-1")]
    broker = FakeBroker(orders=[_order("B1", asset1, D("5"), "new", coid="s1-1")])
    report = await _reconcile(broker, orders=local)
    assert report.order_discrepancies == []


async def test_terminal_local_orders_are_not_expected_at_the_broker():
    local = [
        OrderSnapshot("o1", asset1, D("5"), "filled", filled=D("5")),
        OrderSnapshot("o2", asset1, D("5"), "cancelled"),
    ]
    report = await _reconcile(FakeBroker(), orders=local)
    assert report.order_discrepancies == []


async def test_missed_partial_fill_is_a_status_mismatch_warning():
    positions, cash, orders = _spec_locals()
    broker = _spec_broker(
        orders=[_order("order1", asset1, D("50"), "partially_filled", filled=D("20"))]
    )
    report = await _reconcile(broker, positions, cash, orders)
    (d,) = report.order_discrepancies
    assert (d.kind, d.severity) == ("status_mismatch", WARNING)
    assert d.local_status == "pending" and d.broker_status == "partially_filled"


async def test_order_amount_mismatch_is_warning_and_critical_when_sides_differ():
    local = [
        OrderSnapshot("o1", asset1, D("50"), "open"),
        OrderSnapshot("o2", asset1, D("5"), "open"),
    ]
    broker = FakeBroker(orders=[_order("o1", asset1, D("40")), _order("o2", asset1, D("-5"))])
    report = await _reconcile(broker, orders=local)
    by_id = {d.order_id: d for d in report.order_discrepancies}
    assert (by_id["o1"].kind, by_id["o1"].severity) == ("amount_mismatch", WARNING)
    assert (by_id["o2"].kind, by_id["o2"].severity) == ("amount_mismatch", CRITICAL)


async def test_every_problem_at_once_reports_each_and_critical_overall():
    positions, cash, orders = _spec_locals()
    broker = FakeBroker(
        positions=[(asset1, D("80"), D("50"), None), (BTC, D("1"), D("60000"), None)],
        cash=D("9500"),
        orders=[_order("B9", BTC, D("1"))],
    )
    report = await _reconcile(
        broker,
        positions,
        cash,
        orders,
        reconciliation_strategy=ReconciliationStrategy.HALT_AND_ALERT,
    )
    kinds = sorted(d.kind for d in report.position_discrepancies)
    assert kinds == ["missing_at_broker", "missing_locally", "quantity_mismatch"]
    assert report.cash_discrepancy.severity is WARNING
    assert sorted(d.kind for d in report.order_discrepancies) == [
        "orphaned_broker",
        "orphaned_local",
    ]
    assert report.max_severity is CRITICAL
    d = report.to_dict()
    assert d["strategy"] == "halt_and_alert" and d["max_severity"] == "critical"
    assert len(d["position_discrepancies"]) == 3


async def test_unreachable_broker_raises_reconciliation_error_never_flat():
    with pytest.raises(ReconciliationError, match="UNKNOWN") as info:
        await _reconcile(UnreachableBroker(), [PositionSnapshot(asset1, D("1"), D("1"))])
    assert isinstance(info.value.__cause__, ConnectionError)


async def test_broker_that_does_not_answer_in_time_raises_reconciliation_error():
    with pytest.raises(ReconciliationError, match="did not answer"):
        await _reconcile(SlowBroker(), timeout_seconds=0.05)


@pytest.mark.parametrize(
    "broker",
    [
        FakeBroker(positions=[(asset1, 1.5, D("50"), None)]),  # float: contract breach
        FakeBroker(positions=[("AAPL", D("1"), D("50"), None)]),  # not an Asset
        FakeBroker(cash="lots"),
        FakeBroker(orders=[_order("B1", asset1, D("0"))]),
        FakeBroker(orders=[{"order_id": "B1"}]),
    ],
)
async def test_malformed_broker_answers_raise_reconciliation_error(broker):
    with pytest.raises(ReconciliationError):
        await _reconcile(broker)


async def test_bad_local_inputs_raise_reconciliation_error():
    with pytest.raises(ReconciliationError, match="local_cash"):
        await _reconcile(FakeBroker(), cash=D("NaN"))
    with pytest.raises(ReconciliationError, match="local_positions"):
        await _reconcile(FakeBroker(), positions=[("AAPL", 1)])
    with pytest.raises(ReconciliationError, match="local_orders"):
        await _reconcile(FakeBroker(), orders=[{"order_id": "x"}])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reconciliation_strategy": "yolo"},
        {"cash_tolerance_pct": -0.01},
        {"cash_tolerance_pct": 1},
        {"cash_tolerance_pct": "abc"},
        {"position_tolerance": float("nan")},
        {"timeout_seconds": 0},
    ],
)
def test_bad_configuration_raises_config_error(kwargs):
    with pytest.raises(ConfigError):
        PositionReconciler(FakeBroker(), **kwargs)


def test_object_without_broker_methods_is_refused():
    with pytest.raises(ConfigError, match="get_positions"):
        PositionReconciler(object())
