"""Circuit breakers: thresholds, windows, re-arming, manual halts, the manager, persistence."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rustybt.exceptions import CheckpointCorrupted, ConfigError, DataError
from rustybt.live.circuit_breakers import (
    CircuitBreakerManager,
    CircuitBreakerState,
    CircuitBreakerType,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
    default_breakers,
)

D = Decimal
T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York


def at(seconds: float = 0, days: int = 0) -> datetime:
    return T0 + timedelta(days=days, seconds=seconds)


# --- enums --------------------------------------------------------------------------------
def test_state_and_type_values_are_lowercase_strings():
    assert CircuitBreakerState.MANUALLY_HALTED.value == "manually_halted"
    assert CircuitBreakerType.DAILY_LOSS.value == "daily_loss"
    assert DrawdownCircuitBreaker(D("0.1")).breaker_type.value == "drawdown"


# --- drawdown -----------------------------------------------------------------------------
def test_drawdown_breaker_trips_exactly_at_ten_percent_from_peak():
    b = DrawdownCircuitBreaker(max_drawdown_pct=D("0.10"))
    assert b.on_portfolio_value(D("100000"), at()) is False
    assert b.on_portfolio_value(D("90000"), at(60)) is True
    assert b.state is CircuitBreakerState.TRIPPED
    assert b.tripped_at == at(60)
    reason = b.get_trip_reason()
    assert "10.00%" in reason and "100000" in reason and "90000" in reason


def test_drawdown_breaker_does_not_trip_just_below_threshold():
    b = DrawdownCircuitBreaker(max_drawdown_pct=D("0.10"))
    b.on_portfolio_value(D("100000"), at())
    assert b.on_portfolio_value(D("90000.01"), at(60)) is False
    assert b.state is CircuitBreakerState.NORMAL


def test_drawdown_breaker_trips_just_above_threshold():
    b = DrawdownCircuitBreaker(max_drawdown_pct=D("0.10"))
    b.on_portfolio_value(D("100000"), at())
    assert b.on_portfolio_value(D("89999.99"), at(60)) is True


def test_drawdown_hook_returns_true_only_on_the_tripping_call():
    b = DrawdownCircuitBreaker(max_drawdown_pct=D("0.10"))
    b.on_portfolio_value(D("100"), at())
    assert b.on_portfolio_value(D("80"), at(1)) is True
    assert b.on_portfolio_value(D("70"), at(2)) is False
    assert b.is_tripped


def test_drawdown_new_peak_after_a_dip_becomes_the_reference():
    b = DrawdownCircuitBreaker(max_drawdown_pct=D("0.10"))
    b.on_portfolio_value(D("100"), at())
    b.on_portfolio_value(D("95"), at(1))
    b.on_portfolio_value(D("110"), at(2))
    assert b.peak == D("110")
    assert b.on_portfolio_value(D("99.5"), at(3)) is False  # 9.5 % below 110
    assert b.on_portfolio_value(D("99"), at(4)) is True  # exactly 10 % below 110


def test_drawdown_peak_older_than_lookback_days_is_forgotten():
    b = DrawdownCircuitBreaker(max_drawdown_pct=D("0.10"), lookback_days=3)
    b.on_portfolio_value(D("100"), at(days=0))
    b.on_portfolio_value(D("95"), at(days=1))
    b.on_portfolio_value(D("95"), at(days=2))
    assert b.peak == D("100")
    # day 3: the day-0 peak has left the 3-day window (days 1, 2, 3 remain): 86 is 9.5 %
    # below 95, which does not trip, though it is 14 % below the forgotten 100
    assert b.on_portfolio_value(D("86"), at(days=3)) is False
    assert b.peak == D("95")


def test_drawdown_window_keeps_peak_until_it_ages_out():
    b = DrawdownCircuitBreaker(max_drawdown_pct=D("0.10"), lookback_days=3)
    b.on_portfolio_value(D("100"), at(days=0))
    b.on_portfolio_value(D("95"), at(days=1))
    assert b.on_portfolio_value(D("91"), at(days=2)) is False  # 9 % below 100 (day 0 in window)
    assert b.peak == D("100")
    assert b.on_portfolio_value(D("91"), at(days=3)) is False  # peak now 95: 4.2 %
    assert b.peak == D("95")
    assert b.on_portfolio_value(D("91"), at(days=4)) is False  # peak now 91
    assert b.peak == D("91")


def test_drawdown_initial_peak_counts_a_loss_from_the_first_value():
    b = DrawdownCircuitBreaker(max_drawdown_pct=D("0.10"), initial_peak=D("100"))
    assert b.on_portfolio_value(D("90"), at()) is True


def test_drawdown_reset_requires_operator_and_forgets_the_peak():
    b = DrawdownCircuitBreaker(max_drawdown_pct=D("0.10"))
    b.on_portfolio_value(D("100"), at())
    b.on_portfolio_value(D("85"), at(1))
    with pytest.raises(ConfigError, match="operator"):
        b.reset(operator="")
    assert b.is_tripped  # unchanged by the refused reset
    assert b.reset(operator="ops_ann", reason="reviewed") is True
    assert b.state is CircuitBreakerState.NORMAL
    assert b.get_trip_reason() is None and b.tripped_at is None
    assert b.on_portfolio_value(D("85"), at(2)) is False  # new reference
    assert b.peak == D("85")
    assert b.history[-1]["operator"] == "ops_ann" and b.history[-1]["event"] == "reset"


def test_drawdown_reset_of_a_normal_breaker_is_a_no_op():
    b = DrawdownCircuitBreaker(max_drawdown_pct=D("0.10"))
    assert b.reset(operator="ops") is False
    assert b.history == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_drawdown_pct": D("0")},
        {"max_drawdown_pct": D("-0.1")},
        {"max_drawdown_pct": D("1.5")},
        {"max_drawdown_pct": D("NaN")},
        {"max_drawdown_pct": 0.1},
        {"max_drawdown_pct": D("0.1"), "lookback_days": 0},
        {"max_drawdown_pct": D("0.1"), "lookback_days": 1.5},
        {"max_drawdown_pct": D("0.1"), "name": ""},
    ],
)
def test_drawdown_bad_params_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        DrawdownCircuitBreaker(**kwargs)


@pytest.mark.parametrize("value", [D("NaN"), D("Infinity"), 100.0])
def test_drawdown_rejects_non_finite_or_float_value_and_keeps_state(value):
    b = DrawdownCircuitBreaker(max_drawdown_pct=D("0.10"))
    b.on_portfolio_value(D("100"), at())
    with pytest.raises(DataError, match="not a finite Decimal"):
        b.on_portfolio_value(value, at(1))
    assert b.peak == D("100") and b.state is CircuitBreakerState.NORMAL


# --- daily loss ---------------------------------------------------------------------------
def test_daily_loss_trips_exactly_at_money_limit():
    b = DailyLossCircuitBreaker(max_daily_loss=D("5000"))
    b.on_portfolio_value(D("100000"), at())
    assert b.on_portfolio_value(D("95000.01"), at(60)) is False
    assert b.on_portfolio_value(D("95000"), at(120)) is True
    assert "5000" in b.get_trip_reason()


def test_daily_loss_trips_just_above_pct_limit_not_below():
    b = DailyLossCircuitBreaker(max_daily_loss_pct=D("0.02"))
    b.on_portfolio_value(D("50000"), at())
    assert b.on_portfolio_value(D("49000.01"), at(1)) is False
    assert b.on_portfolio_value(D("48999.99"), at(2)) is True


def test_daily_loss_with_both_limits_the_tighter_one_trips():
    b = DailyLossCircuitBreaker(max_daily_loss=D("5000"), max_daily_loss_pct=D("0.01"))
    b.on_portfolio_value(D("100000"), at())
    assert b.on_portfolio_value(D("99000"), at(1)) is True  # 1 % < 5000


def test_daily_loss_rearms_at_the_new_york_midnight_not_utc_midnight():
    b = DailyLossCircuitBreaker(max_daily_loss=D("100"))
    listener_events = []
    m = CircuitBreakerManager()
    m.add_breaker(b)
    m.add_listener(lambda br, ev: listener_events.append(ev))
    # 2024-03-04 22:00 New York = 2024-03-05 03:00 UTC
    b.on_portfolio_value(D("1000"), datetime(2024, 3, 5, 3, 0, tzinfo=UTC))
    assert b.on_portfolio_value(D("900"), datetime(2024, 3, 5, 3, 30, tzinfo=UTC)) is True
    # 04:59 UTC is 23:59 in New York: still the same trading day, still tripped
    b.on_portfolio_value(D("950"), datetime(2024, 3, 5, 4, 59, tzinfo=UTC))
    assert b.is_tripped and not m.can_trade()
    # 05:00 UTC is midnight in New York (EST): a new day re-arms and rebases
    assert b.on_portfolio_value(D("950"), datetime(2024, 3, 5, 5, 0, tzinfo=UTC)) is False
    assert b.state is CircuitBreakerState.NORMAL and m.can_trade()
    assert b.day_start_value == D("950")
    assert listener_events == ["tripped", "reset"]
    assert b.history[-1]["event"] == "rearmed" and b.history[-1]["operator"] == "auto"


def test_daily_loss_day_boundary_follows_daylight_saving_time():
    b = DailyLossCircuitBreaker(max_daily_loss=D("100"))
    # 2024-07-01 (EDT, UTC-4): midnight New York is 04:00 UTC
    b.on_portfolio_value(D("1000"), datetime(2024, 7, 1, 3, 59, tzinfo=UTC))
    b.on_portfolio_value(D("1200"), datetime(2024, 7, 1, 4, 0, tzinfo=UTC))
    assert b.day_start_value == D("1200")


def test_daily_loss_in_utc_for_crypto():
    b = DailyLossCircuitBreaker(max_daily_loss=D("100"), timezone="UTC")
    b.on_portfolio_value(D("1000"), datetime(2024, 3, 4, 23, 59, tzinfo=UTC))
    b.on_portfolio_value(D("950"), datetime(2024, 3, 5, 0, 0, tzinfo=UTC))
    assert b.day_start_value == D("950")


def test_daily_loss_manual_reset_rebases_on_next_value():
    b = DailyLossCircuitBreaker(max_daily_loss=D("100"))
    b.on_portfolio_value(D("1000"), at())
    b.on_portfolio_value(D("900"), at(1))
    assert b.reset(operator="ops") is True
    assert b.on_portfolio_value(D("890"), at(2)) is False
    assert b.day_start_value == D("890")
    assert b.on_portfolio_value(D("790"), at(3)) is True


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"max_daily_loss": D("0")},
        {"max_daily_loss": D("-5")},
        {"max_daily_loss_pct": D("2")},
        {"max_daily_loss": 5000.0},
        {"max_daily_loss": D("100"), "timezone": "Mars/Olympus"},
    ],
)
def test_daily_loss_bad_params_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        DailyLossCircuitBreaker(**kwargs)


def test_daily_loss_rejects_naive_datetime():
    b = DailyLossCircuitBreaker(max_daily_loss=D("100"))
    with pytest.raises(DataError, match="time zone"):
        b.on_portfolio_value(D("1000"), datetime(2024, 3, 4, 12, 0))
    assert b.day_start_value is None


# --- order rate ---------------------------------------------------------------------------
def test_order_rate_allows_exactly_the_limit_and_trips_on_one_more():
    b = OrderRateCircuitBreaker(max_orders_per_minute=3, window_seconds=60)
    assert [b.on_order_submitted(at(i)) for i in range(3)] == [False] * 3
    assert b.on_order_submitted(at(3)) is True
    assert "4 orders within 60s" in b.get_trip_reason()


def test_order_rate_window_expiry_order_exactly_window_old_has_left():
    b = OrderRateCircuitBreaker(max_orders_per_minute=2, window_seconds=60)
    b.on_order_submitted(at(0))
    b.on_order_submitted(at(30))
    assert b.on_order_submitted(at(60)) is False  # the order at 0 is exactly 60 s old: gone
    assert b.on_order_submitted(at(89)) is True  # 30, 60, 89 are within 60 s


def test_order_rate_stays_tripped_after_window_drains_until_reset():
    b = OrderRateCircuitBreaker(max_orders_per_minute=1, window_seconds=10)
    b.on_order_submitted(at(0))
    b.on_order_submitted(at(1))
    assert b.is_tripped
    b.on_order_submitted(at(1000))
    assert b.is_tripped
    b.reset(operator="ops")
    assert b.on_order_submitted(at(1001)) is False


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_orders_per_minute": 0},
        {"max_orders_per_minute": -1},
        {"max_orders_per_minute": True},
        {"max_orders_per_minute": 10, "window_seconds": 0},
    ],
)
def test_order_rate_bad_params_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        OrderRateCircuitBreaker(**kwargs)


# --- error rate ---------------------------------------------------------------------------
def test_error_rate_trips_when_count_reaches_max_errors():
    b = ErrorRateCircuitBreaker(max_errors=5, window_seconds=300)
    assert [b.on_error(at(i)) for i in range(4)] == [False] * 4
    assert b.on_error(at(4)) is True
    assert "5 errors within 300s" in b.get_trip_reason()


def test_error_rate_old_errors_expire_from_the_window():
    b = ErrorRateCircuitBreaker(max_errors=3, window_seconds=300, max_consecutive=10)
    b.on_error(at(0))
    b.on_error(at(100))
    assert b.on_error(at(300)) is False  # error at 0 is exactly 300 s old: gone
    assert b.on_error(at(399)) is True


def test_error_rate_bad_params_raise_config_error():
    with pytest.raises(ConfigError):
        ErrorRateCircuitBreaker(max_errors=0)
    with pytest.raises(ConfigError):
        ErrorRateCircuitBreaker(max_errors=5, window_seconds=-1)
    with pytest.raises(ConfigError, match="max_consecutive"):
        ErrorRateCircuitBreaker(max_errors=5, max_consecutive=0)
    with pytest.raises(TypeError):
        ErrorRateCircuitBreaker(5, 300, 3)  # max_consecutive is keyword-only


def test_one_error_per_minute_never_fills_the_window_but_trips_the_consecutive_rule():
    # The default set's 10 errors / 300 s: one error per one-minute bar is at most 5 in
    # the window, forever. The consecutive rule (default max_errors) trips on the 10th.
    b = ErrorRateCircuitBreaker(max_errors=10, window_seconds=300)
    assert b.max_consecutive == 10
    assert [b.on_error(at(60 * i)) for i in range(9)] == [False] * 9
    assert b.on_error(at(60 * 9)) is True
    assert "10 consecutive errors" in b.get_trip_reason()


def test_a_success_between_errors_restarts_the_consecutive_count():
    b = ErrorRateCircuitBreaker(max_errors=10, window_seconds=300, max_consecutive=3)
    for i in range(5):
        assert b.on_error(at(600 * i)) is False
        assert b.on_error(at(600 * i + 60)) is False
        b.on_success(at(600 * i + 120))
    assert b.consecutive_errors == 0 and not b.is_tripped
    b.on_error(at(4000))
    b.on_error(at(4060))
    assert b.on_error(at(4120)) is True


def test_the_consecutive_count_survives_a_checkpoint_and_a_reset_clears_it():
    b = ErrorRateCircuitBreaker(max_errors=10, window_seconds=300, max_consecutive=4)
    for i in range(3):
        b.on_error(at(600 * i))
    m = CircuitBreakerManager()
    m.add_breaker(b)
    saved = json.loads(json.dumps(m.to_dict()))
    fresh = CircuitBreakerManager()
    again = fresh.add_breaker(ErrorRateCircuitBreaker(max_errors=10, max_consecutive=4))
    fresh.load_state(saved)
    assert again.consecutive_errors == 3
    assert again.on_error(at(3000)) is True
    again.reset(operator="ops")
    assert again.consecutive_errors == 0


def test_the_manager_passes_successes_to_the_breakers_that_count_them():
    m = CircuitBreakerManager()
    b = m.add_breaker(ErrorRateCircuitBreaker(max_errors=10, max_consecutive=2))
    m.on_error(at(0))
    m.on_success(at(1))
    assert m.on_error(at(2)) == []
    assert m.on_error(at(3)) == [b]


# --- manual -------------------------------------------------------------------------------
def test_manual_halt_and_release_record_operator_reason_and_time():
    b = ManualCircuitBreaker()
    b.trigger_halt(reason="Unexpected market conditions", operator="trader_john", dt=at())
    assert b.state is CircuitBreakerState.MANUALLY_HALTED
    assert b.halted_by == "trader_john" and b.tripped_at == at()
    assert "trader_john" in b.get_trip_reason()
    assert "Unexpected market conditions" in b.get_trip_reason()
    assert b.release(operator="risk_mary", reason="all clear", dt=at(60)) is True
    assert b.state is CircuitBreakerState.NORMAL and b.halted_by is None
    assert [(h["event"], h["operator"]) for h in b.history] == [
        ("halted", "trader_john"),
        ("released", "risk_mary"),
    ]
    assert b.history[1]["reason"] == "all clear"


@pytest.mark.parametrize(
    "reason, operator", [("", "john"), ("why", ""), ("why", "  "), (None, "j")]
)
def test_manual_halt_requires_reason_and_operator(reason, operator):
    b = ManualCircuitBreaker()
    with pytest.raises(ConfigError):
        b.trigger_halt(reason=reason, operator=operator)
    assert b.state is CircuitBreakerState.NORMAL and b.history == []


def test_manual_release_requires_operator_and_keeps_halt():
    b = ManualCircuitBreaker()
    b.trigger_halt(reason="x", operator="john")
    with pytest.raises(ConfigError):
        b.release(operator="")
    assert b.state is CircuitBreakerState.MANUALLY_HALTED


def test_manual_second_halt_is_audited_but_keeps_first_halt():
    b = ManualCircuitBreaker()
    b.trigger_halt(reason="first", operator="a", dt=at())
    b.trigger_halt(reason="second", operator="b", dt=at(5))
    assert b.halted_by == "a" and b.tripped_at == at()
    assert len(b.history) == 2


# --- manager ------------------------------------------------------------------------------
def test_manager_listener_fires_when_trigger_halt_is_called_on_the_breaker_directly():
    m = CircuitBreakerManager()
    manual = ManualCircuitBreaker()
    m.add_breaker(manual)
    seen = []
    m.add_listener(lambda b, ev: seen.append((b.name, ev, m.can_trade())))
    assert m.can_trade()
    manual.trigger_halt(reason="Unexpected market conditions", operator="trader_john")
    # the listener runs synchronously and already sees the cached flag updated
    assert seen == [("manual", "tripped", False)]
    assert not m.can_trade()
    manual.release(operator="trader_john")
    assert seen[-1] == ("manual", "reset", True)
    assert m.can_trade()


def test_manager_fan_out_returns_only_breakers_tripped_by_the_call():
    m = CircuitBreakerManager()
    dd = m.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=D("0.10")))
    dl = m.add_breaker(DailyLossCircuitBreaker(max_daily_loss=D("50")))
    m.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=1))
    m.add_breaker(ErrorRateCircuitBreaker(max_errors=1))
    assert m.on_portfolio_value(D("1000"), at()) == []
    assert m.on_portfolio_value(D("950"), at(1)) == [dl]
    assert m.on_portfolio_value(D("900"), at(2)) == [dd]
    assert m.on_portfolio_value(D("800"), at(3)) == []
    assert m.on_order_submitted(at(4)) == []
    assert [b.name for b in m.on_order_submitted(at(5))] == ["order_rate"]
    assert [b.name for b in m.on_error(at(6))] == ["error_rate"]
    assert not m.can_trade() and m.any_tripped()
    assert sorted(b.name for b in m.get_tripped()) == [
        "daily_loss",
        "drawdown",
        "error_rate",
        "order_rate",
    ]
    assert len(m.get_trip_reasons()) == 4


def test_manager_duplicate_name_raises_and_custom_name_allows_two_of_a_type():
    m = CircuitBreakerManager()
    m.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=D("0.10")))
    with pytest.raises(ConfigError, match="already added"):
        m.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=D("0.05")))
    m.add_breaker(
        DrawdownCircuitBreaker(max_drawdown_pct=D("0.05"), lookback_days=1, name="intraday_dd")
    )
    assert [b.name for b in m.breakers] == ["drawdown", "intraday_dd"]


def test_manager_rejects_non_breaker():
    with pytest.raises(ConfigError):
        CircuitBreakerManager().add_breaker("drawdown")


def test_manager_reset_by_name_and_all_needs_operator():
    m = default_breakers()
    m.get("manual").trigger_halt(reason="r", operator="a")
    m.on_error(at())
    for i in range(10):
        m.on_error(at(i))
    assert not m.can_trade()
    with pytest.raises(ConfigError, match="operator"):
        m.reset()
    assert not m.can_trade()
    assert m.reset("error_rate", operator="ops") == ["error_rate"]
    assert not m.can_trade()
    assert m.reset(operator="ops") == ["manual"]
    assert m.can_trade()


def test_manager_remove_refuses_a_tripped_breaker():
    m = CircuitBreakerManager()
    manual = m.add_breaker(ManualCircuitBreaker())
    manual.trigger_halt(reason="r", operator="a")
    with pytest.raises(ConfigError, match="reset it"):
        m.remove_breaker("manual")
    manual.release(operator="a")
    assert m.remove_breaker(manual) is manual
    assert len(m) == 0
    # detached: a later halt on the removed breaker no longer affects the manager
    manual.trigger_halt(reason="r", operator="a")
    assert m.can_trade()


def test_manager_unknown_name_raises_config_error():
    m = CircuitBreakerManager()
    with pytest.raises(ConfigError, match="no breaker named"):
        m.get("nope")
    with pytest.raises(ConfigError):
        m.remove_breaker("nope")


def test_manager_status_reports_type_state_reason_and_iso_time():
    m = CircuitBreakerManager()
    manual = m.add_breaker(ManualCircuitBreaker())
    manual.trigger_halt(reason="why", operator="who", dt=at())
    status = m.get_status()
    assert status["manual"]["type"] == "manual"
    assert status["manual"]["state"] == "manually_halted"
    assert status["manual"]["tripped_at"] == at().isoformat()
    assert "why" in status["manual"]["reason"]


def test_a_failing_listener_does_not_stop_the_trip_or_other_listeners():
    m = CircuitBreakerManager()
    manual = m.add_breaker(ManualCircuitBreaker())
    seen = []

    def broken(b, ev):
        raise RuntimeError("boom")

    m.add_listener(broken)
    m.add_listener(lambda b, ev: seen.append(ev))
    manual.trigger_halt(reason="r", operator="a")
    assert seen == ["tripped"] and not m.can_trade()


def test_breaker_shared_by_two_managers_halts_both():
    m1, m2 = CircuitBreakerManager(), CircuitBreakerManager()
    manual = ManualCircuitBreaker()
    m1.add_breaker(manual)
    m2.add_breaker(manual)
    manual.trigger_halt(reason="r", operator="a")
    assert not m1.can_trade() and not m2.can_trade()


def test_adding_an_already_tripped_breaker_halts_the_manager():
    manual = ManualCircuitBreaker()
    manual.trigger_halt(reason="r", operator="a")
    m = CircuitBreakerManager()
    m.add_breaker(manual)
    assert not m.can_trade()


# --- persistence --------------------------------------------------------------------------
def _tripped_manager() -> CircuitBreakerManager:
    m = CircuitBreakerManager()
    m.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=D("0.10")))
    m.add_breaker(DailyLossCircuitBreaker(max_daily_loss=D("5000")))
    m.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=10))
    m.add_breaker(ManualCircuitBreaker())
    m.on_portfolio_value(D("100000"), at())
    m.on_portfolio_value(D("89000"), at(60))
    m.on_order_submitted(at(61))
    return m


def test_persistence_round_trip_through_json_keeps_the_trip_and_rolling_data():
    saved = json.loads(json.dumps(_tripped_manager().to_dict()))
    fresh = CircuitBreakerManager()
    dd = fresh.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=D("0.10")))
    dl = fresh.add_breaker(DailyLossCircuitBreaker(max_daily_loss=D("5000")))
    rate = fresh.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=10))
    fresh.add_breaker(ManualCircuitBreaker())
    events = []
    fresh.add_listener(lambda b, ev: events.append((b.name, ev)))
    assert fresh.load_state(saved) == []
    assert not fresh.can_trade()
    assert dd.state is CircuitBreakerState.TRIPPED and dd.tripped_at == at(60)
    assert dd.peak == D("100000")
    assert dl.is_tripped and dl.day_start_value == D("100000")
    assert rate.to_dict()["data"]["times"] == [at(61).isoformat()]
    assert set(events) == {("drawdown", "tripped"), ("daily_loss", "tripped")}
    # the restored daily-loss trip still re-arms on the next New York day
    fresh.on_portfolio_value(D("89000"), at(days=1))
    assert not dl.is_tripped and dd.is_tripped


def test_manual_halt_survives_restart_with_its_operator():
    m = CircuitBreakerManager()
    m.add_breaker(ManualCircuitBreaker()).trigger_halt(reason="r", operator="john", dt=at())
    fresh = CircuitBreakerManager()
    manual = fresh.add_breaker(ManualCircuitBreaker())
    fresh.load_state(m.to_dict())
    assert manual.state is CircuitBreakerState.MANUALLY_HALTED
    assert manual.halted_by == "john"
    assert manual.history[0]["operator"] == "john"


def test_loading_a_normal_state_never_clears_a_current_trip():
    normal = CircuitBreakerManager()
    normal.add_breaker(ManualCircuitBreaker())
    saved = normal.to_dict()
    m = CircuitBreakerManager()
    manual = m.add_breaker(ManualCircuitBreaker())
    manual.trigger_halt(reason="r", operator="a")
    m.load_state(saved)
    assert manual.is_tripped and not m.can_trade()


def test_saved_trip_of_a_breaker_no_longer_configured_becomes_a_restored_halt():
    saved = _tripped_manager().to_dict()
    fresh = CircuitBreakerManager()
    fresh.add_breaker(ManualCircuitBreaker())
    unknown = fresh.load_state(saved)
    assert unknown == ["drawdown", "daily_loss", "order_rate"]
    assert not fresh.can_trade()
    names = [b.name for b in fresh.breakers]
    assert "restored_drawdown" in names and "restored_daily_loss" in names
    assert "restored_order_rate" not in names  # it was not tripped: reported only
    restored = fresh.get("restored_drawdown")
    assert restored.state is CircuitBreakerState.MANUALLY_HALTED
    assert "drawdown" in restored.get_trip_reason()
    # a restored halt survives another restart under the same name
    again = CircuitBreakerManager()
    again.add_breaker(ManualCircuitBreaker())
    again.load_state(fresh.to_dict())
    assert again.get("restored_drawdown").is_tripped
    # and an operator can release it
    assert sorted(again.reset(operator="ops")) == ["restored_daily_loss", "restored_drawdown"]
    assert again.can_trade()


def test_type_change_under_same_name_is_treated_as_unknown_and_keeps_halt():
    saved = _tripped_manager().to_dict()
    fresh = CircuitBreakerManager()
    fresh.add_breaker(ErrorRateCircuitBreaker(max_errors=3, name="drawdown"))
    unknown = fresh.load_state(saved)
    assert "drawdown" in unknown
    assert fresh.get("drawdown").state is CircuitBreakerState.NORMAL
    assert fresh.get("restored_drawdown").is_tripped


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version=99),
        lambda d: d.pop("breakers"),
        lambda d: d["breakers"][0].update(state="exploded"),
        lambda d: d["breakers"][0].update(tripped_at="yesterday"),
        lambda d: d["breakers"][0]["data"].update(days=[["2024-13-01", "1"]]),
        lambda d: d["breakers"][1]["data"].update(start_value="lots"),
        lambda d: d["breakers"][2]["data"].update(times="now"),
        lambda d: d["breakers"].append("garbage"),
    ],
)
def test_corrupt_state_raises_and_changes_nothing(mutate):
    saved = _tripped_manager().to_dict()
    mutate(saved)
    fresh = CircuitBreakerManager()
    dd = fresh.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=D("0.10")))
    fresh.add_breaker(DailyLossCircuitBreaker(max_daily_loss=D("5000")))
    fresh.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=10))
    fresh.add_breaker(ManualCircuitBreaker())
    with pytest.raises(CheckpointCorrupted):
        fresh.load_state(saved)
    assert fresh.can_trade() and dd.peak is None and len(fresh) == 4


def test_single_breaker_load_state_rejects_other_type():
    saved = ManualCircuitBreaker().to_dict()
    with pytest.raises(CheckpointCorrupted, match="saved type"):
        DrawdownCircuitBreaker(max_drawdown_pct=D("0.1")).load_state(saved)


# --- defaults -----------------------------------------------------------------------------
def test_default_breakers_has_documented_set_and_numbers():
    m = default_breakers(starting_value=D("100000"))
    status = m.get_status()
    assert set(status) == {"manual", "order_rate", "error_rate", "drawdown", "daily_loss"}
    assert status["order_rate"]["params"] == {"max_orders_per_minute": 60, "window_seconds": 60}
    assert status["error_rate"]["params"] == {
        "max_errors": 10,
        "window_seconds": 300,
        "max_consecutive": 10,
    }
    assert status["drawdown"]["params"] == {"max_drawdown_pct": "0.20", "lookback_days": 30}
    assert status["daily_loss"]["params"]["max_daily_loss_pct"] == "0.05"
    # the starting value seeds the drawdown peak
    assert m.on_portfolio_value(D("80000"), at())[0].name == "drawdown"


def test_alignment_breaker_trips_on_the_nth_misalignment_and_survives_a_reload():
    from rustybt.live.circuit_breakers import AlignmentCircuitBreaker, CircuitBreakerManager

    m = CircuitBreakerManager()
    b = m.add_breaker(AlignmentCircuitBreaker(3, Decimal("0.9")))
    t = datetime(2024, 1, 2, tzinfo=UTC)
    assert m.on_misalignment(t, "a") == []
    assert m.on_misalignment(t, "b") == []
    assert m.can_trade()
    assert m.on_misalignment(t, "c") == [b]
    assert not m.can_trade() and "3 misaligned bars" in b.get_trip_reason()
    m2 = CircuitBreakerManager()
    b2 = m2.add_breaker(AlignmentCircuitBreaker(3, Decimal("0.9")))
    m2.load_state(m.to_dict())
    assert not m2.can_trade() and b2.misalignments == 3
    m2.reset(operator="ops")
    assert m2.can_trade() and b2.misalignments == 0


def test_alignment_breaker_trips_when_execution_quality_falls_below_threshold():
    from rustybt.live.circuit_breakers import AlignmentCircuitBreaker, CircuitBreakerManager

    m = CircuitBreakerManager()
    m.add_breaker(AlignmentCircuitBreaker(3, Decimal("0.9")))
    t = datetime(2024, 1, 2, tzinfo=UTC)
    assert m.on_execution_quality(Decimal("0.9"), t) == []
    assert len(m.on_execution_quality(Decimal("0.89"), t)) == 1
    with pytest.raises(ConfigError):
        AlignmentCircuitBreaker(3, 0.9)
