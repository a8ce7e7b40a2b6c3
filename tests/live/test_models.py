"""Snapshots, checkpoint round trips, severities and the reconciliation report."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pytest

from rustybt.assets import Crypto, Equity
from rustybt.exceptions import CheckpointCorrupted, CheckpointError, InvalidOrder
from rustybt.live.models import (
    CashDiscrepancy,
    DiscrepancySeverity,
    OrderDiscrepancy,
    OrderSnapshot,
    PositionDiscrepancy,
    PositionSnapshot,
    ReconciliationReport,
    ReconciliationStrategy,
    StateCheckpoint,
    decode_state_value,
    encode_state_value,
)

AAPL = Equity("AAPL", sid=1)
BTC = Crypto("BTCUSDT")


def _checkpoint(**kw) -> StateCheckpoint:
    base = dict(
        timestamp=datetime(2024, 1, 2, 15, 30, tzinfo=UTC),
        portfolio_value=Decimal("105000"),
        cash=Decimal("5000"),
        positions=[PositionSnapshot(AAPL, Decimal("100"), Decimal("5000"))],
        pending_orders=[OrderSnapshot("order1", AAPL, Decimal("50"), "pending")],
    )
    base.update(kw)
    return StateCheckpoint(**base)


def test_strategy_enums_have_lowercase_values():
    assert ReconciliationStrategy.WARN_ONLY.value == "warn_only"
    assert ReconciliationStrategy.TRUST_BROKER.value == "trust_broker"
    assert ReconciliationStrategy.HALT_AND_ALERT.value == "halt_and_alert"
    assert ReconciliationStrategy("trust_broker") is ReconciliationStrategy.TRUST_BROKER
    assert DiscrepancySeverity.CRITICAL.value == "critical"


def test_severity_orders_by_rank_not_alphabetically():
    info, warn, crit = (
        DiscrepancySeverity.INFO,
        DiscrepancySeverity.WARNING,
        DiscrepancySeverity.CRITICAL,
    )
    assert info < warn < crit
    assert crit > info and crit >= crit and info <= info
    assert max([warn, crit, info]) is crit
    assert DiscrepancySeverity.highest([]) is info
    assert DiscrepancySeverity.highest([info, warn]) is warn
    assert {info: 1}["info"] == 1  # still hashes like its string value


def test_position_snapshot_keeps_total_signed_cost_basis():
    long = PositionSnapshot(AAPL, Decimal("100"), Decimal("5000"))
    short = PositionSnapshot(AAPL, Decimal("-50"), Decimal("-2500"), Decimal("49.5"))
    assert long.average_price == Decimal("50")
    assert short.average_price == Decimal("50")
    assert short.market_value == Decimal("-2475.0")
    assert long.market_value is None
    assert PositionSnapshot(AAPL, 0, 0).average_price == 0


def test_position_snapshot_converts_strings_and_float_through_repr():
    p = PositionSnapshot(AAPL, "10", 0.1)
    assert p.amount == Decimal("10")
    assert p.cost_basis == Decimal("0.1")  # not 0.1000000000000000055...


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount": Decimal("NaN")},
        {"amount": float("inf")},
        {"amount": "ten"},
        {"amount": True},
        {"cost_basis": None},
        {"last_price": Decimal("0")},
        {"last_price": Decimal("-1")},
        {"asset": "AAPL"},
    ],
)
def test_position_snapshot_rejects_bad_values_with_invalid_order(kwargs):
    args = {"asset": AAPL, "amount": Decimal("1"), "cost_basis": Decimal("1")} | kwargs
    with pytest.raises(InvalidOrder):
        PositionSnapshot(**args)


def test_order_snapshot_normalises_status_and_signs_filled_like_amount():
    o = OrderSnapshot("o1", AAPL, Decimal("-10"), "OPEN", filled=Decimal("4"))
    assert o.status == "open"
    assert o.filled == Decimal("-4")
    assert o.remaining == Decimal("-6")
    assert o.is_open
    assert not OrderSnapshot("o2", AAPL, Decimal("1"), "filled", filled=1).is_open


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"order_id": ""}, "order_id"),
        ({"amount": Decimal("0")}, "non-zero"),
        ({"amount": Decimal("sNaN")}, "finite"),
        ({"status": ""}, "status"),
        ({"filled": Decimal("11")}, "exceeds"),
        ({"limit_price": Decimal("0")}, "limit_price"),
        ({"stop_price": Decimal("-3")}, "stop_price"),
        ({"client_order_id": ""}, "client_order_id"),
    ],
)
def test_order_snapshot_rejects_bad_values_and_says_which_field(kwargs, fragment):
    args = {"order_id": "o1", "asset": AAPL, "amount": Decimal("10"), "status": "open"} | kwargs
    with pytest.raises(InvalidOrder, match=fragment):
        OrderSnapshot(**args)


def test_checkpoint_normalises_naive_pandas_timestamp_to_utc_as_local_time():
    naive = pd.Timestamp("2024-01-02 10:00:00")
    cp = _checkpoint(timestamp=naive)
    assert cp.timestamp.tzinfo is not None
    assert cp.timestamp.utcoffset() == timedelta(0)
    assert cp.timestamp == naive.to_pydatetime().astimezone(UTC)


def test_checkpoint_converts_aware_timestamps_and_iso_strings_to_utc():
    est = timezone(timedelta(hours=-5))
    cp = _checkpoint(timestamp=datetime(2024, 1, 2, 10, tzinfo=est))
    assert cp.timestamp == datetime(2024, 1, 2, 15, tzinfo=UTC)
    assert _checkpoint(timestamp="2024-01-02T15:00:00Z").timestamp == cp.timestamp


def test_spec_construction_with_five_fields_defaults_the_rest():
    cp = _checkpoint()
    assert cp.strategy_state == {} and cp.breaker_state == {} and cp.extra == {}
    assert cp.strategy_name is None and cp.session_id is None and cp.ledger_state is None
    assert cp.order_sequence == 0
    assert _checkpoint().strategy_state is not cp.strategy_state  # no shared default


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timestamp": "yesterday"},
        {"timestamp": 12345},
        {"cash": Decimal("NaN")},
        {"portfolio_value": "lots"},
        {"positions": ["AAPL"]},
        {"pending_orders": [object()]},
        {"order_sequence": -1},
        {"order_sequence": 1.5},
        {"strategy_state": []},
        {"strategy_name": ""},
    ],
)
def test_checkpoint_rejects_bad_fields_with_checkpoint_error(kwargs):
    with pytest.raises(CheckpointError):
        _checkpoint(**kwargs)


def test_checkpoint_to_dict_from_dict_round_trips_every_field():
    cp = _checkpoint(
        positions=[
            PositionSnapshot(AAPL, Decimal("100"), Decimal("5000"), Decimal("51.25")),
            PositionSnapshot(BTC, Decimal("-0.5"), Decimal("-32000.5")),
        ],
        pending_orders=[
            OrderSnapshot(
                "b-1",
                BTC,
                Decimal("-0.1"),
                "partially_filled",
                "s1-7",
                Decimal("0.05"),
                "limit",
                Decimal("64000.10"),
            )
        ],
        strategy_name="my_strategy",
        strategy_state={"window": 20, "target": {AAPL: Decimal("0.5")}, "ok": True},
        breaker_state={"drawdown": {"state": "tripped", "peak": Decimal("110000")}},
        session_id="s1",
        order_sequence=7,
        ledger_state={"realized_pnl": Decimal("12.5")},
        extra={"note": "x"},
    )
    d = cp.to_dict()
    assert d["cash"] == "5000" and d["positions"][1]["amount"] == "-0.5"
    assert d["positions"][0]["asset"] == AAPL.to_dict()
    back = StateCheckpoint.from_dict(d)
    assert back == cp
    assert isinstance(back.positions[1].asset, Crypto)
    assert back.strategy_state["target"] == {AAPL: Decimal("0.5")}


def test_checkpoint_from_dict_of_garbage_raises_corrupted():
    with pytest.raises(CheckpointCorrupted):
        StateCheckpoint.from_dict({"timestamp": "2024-01-01T00:00:00Z"})
    with pytest.raises(CheckpointCorrupted):
        StateCheckpoint.from_dict({**_checkpoint().to_dict(), "cash": "abc"})


def test_state_encoding_round_trips_types_json_would_lose():
    value = {
        "d": Decimal("1.10"),
        "dt": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "day": date(2024, 1, 2),
        "td": timedelta(days=1, seconds=5),
        "asset": AAPL,
        "tuple": (1, "a"),
        "set": {1, 2},
        "frozen": frozenset({"x"}),
        "by_asset": {AAPL: 1, BTC: 2},
        "dollar": {"$decimal": "not a tag"},
        "nan": float("nan"),
        "inf": float("-inf"),
        "nested": [[Decimal("2")]],
    }
    back = decode_state_value(encode_state_value(value))
    nan = back.pop("nan")
    value.pop("nan")
    assert math.isnan(nan)
    assert back == value
    assert str(back["d"]) == "1.10"


def test_state_encoding_names_the_unsupported_value():
    with pytest.raises(CheckpointError, match=r"strategy_state\['frame'\]"):
        encode_state_value({"frame": pd.DataFrame()}, "strategy_state")


def test_empty_report_has_no_discrepancies_and_info_severity():
    report = ReconciliationReport()
    assert not report.has_discrepancies
    assert not report.has_critical_discrepancies
    assert report.max_severity is DiscrepancySeverity.INFO
    assert report.to_dict()["max_severity"] == "info"


def test_report_max_severity_covers_positions_cash_and_orders():
    cash = CashDiscrepancy(
        Decimal("100"), Decimal("99"), Decimal("-1"), Decimal("0.01"), DiscrepancySeverity.INFO
    )
    order = OrderDiscrepancy(
        "o1", None, "orphaned_local", "open", None, DiscrepancySeverity.WARNING, "gone"
    )
    pos = PositionDiscrepancy(
        AAPL, "missing_locally", Decimal(0), Decimal(5), DiscrepancySeverity.CRITICAL, "x"
    )
    report = ReconciliationReport(cash_discrepancy=cash)
    assert report.has_discrepancies and report.max_severity is DiscrepancySeverity.INFO
    report.order_discrepancies.append(order)
    assert report.max_severity is DiscrepancySeverity.WARNING
    assert not report.has_critical_discrepancies
    report.position_discrepancies.append(pos)
    assert report.max_severity.value == "critical"
    assert report.has_critical_discrepancies
    assert pos.difference == Decimal(5)
    d = report.to_dict()
    assert d["position_discrepancies"][0]["kind"] == "missing_locally"
    assert d["cash_discrepancy"]["difference"] == "-1"
    assert d["order_discrepancies"][0]["severity"] == "warning"
