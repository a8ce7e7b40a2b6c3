"""The blotter's running per-asset open totals always equal a scan of its open orders."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rustybt.assets import Equity
from rustybt.finance.blotter import Blotter
from rustybt.finance.ledger import Ledger
from rustybt.finance.order import OrderType
from rustybt.finance.risk_gate import RiskGate
from rustybt.live.risk_limits import RiskLimits

ASSETS = [Equity("AAA"), Equity("BBB"), Equity("CCC")]
ZERO = Decimal(0)


def scanned(blotter: Blotter) -> dict:
    out: dict = {}
    for o in blotter.iter_open_orders():
        entry = out.setdefault(o.asset, [ZERO, ZERO])
        entry[0 if o.open_amount > 0 else 1] += o.open_amount
    return out


actions = st.lists(
    st.tuples(
        st.sampled_from(["place", "fill", "cancel"]),
        st.integers(0, 2),
        st.integers(-50, 50).filter(lambda x: x != 0),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(actions)
def test_open_book_matches_a_scan_after_any_sequence_of_places_fills_and_cancels(steps):
    blotter = Blotter(Ledger(Decimal("1000000")), RiskGate())
    for kind, i, qty in steps:
        asset = ASSETS[i]
        open_orders = blotter.open_orders(asset)
        if kind == "place":
            blotter.place(asset, Decimal(qty), OrderType.MARKET, reference_price=Decimal("10"))
        elif kind == "fill" and open_orders:
            order = open_orders[0]
            part = (
                order.open_amount if abs(qty) > 25 else order.open_amount / abs(order.open_amount)
            )
            blotter.apply_fill(order, part, Decimal("10"), ZERO)
        elif kind == "cancel" and open_orders:
            blotter.cancel(open_orders[-1].id)
    expected = scanned(blotter)
    got = {a: [e[0], e[1]] for a, e in blotter.open_book.items()}
    assert got == expected
    assert blotter.open_count == len(blotter.open_orders())


def test_risk_limits_give_the_same_answer_from_the_open_book_and_from_a_scan():
    limits = RiskLimits(max_position_amount=Decimal(100), max_gross_exposure=Decimal(5000))
    blotter = Blotter(Ledger(Decimal("1000000")), RiskGate())
    blotter.place(ASSETS[0], Decimal(60), OrderType.LIMIT, Decimal("10"))
    blotter.place(ASSETS[1], Decimal(-30), OrderType.LIMIT, Decimal("20"))
    args = (ASSETS[0], Decimal(50), Decimal("10"), blotter.ledger.positions)
    outcomes = []
    for kwargs in (
        {"open_orders": list(blotter.iter_open_orders())},
        {
            "open_orders": (),
            "open_book": blotter.open_book,
            "open_count": blotter.open_count,
        },
    ):
        try:
            limits.check_order(*args, kwargs.pop("open_orders"), Decimal("1000000"), **kwargs)
            outcomes.append(None)
        except Exception as exc:  # noqa: BLE001 - compare the messages
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
    assert "max_position_amount" in outcomes[0]


exposure_steps = st.lists(
    st.tuples(
        st.sampled_from(["place", "fill", "cancel", "mark"]),
        st.integers(0, 2),
        st.integers(-50, 50).filter(lambda x: x != 0),
    ),
    max_size=40,
)


def _verdict(call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - compare the messages
        return str(exc)
    return None


@settings(max_examples=150, deadline=None)
@given(exposure_steps, st.integers(0, 2), st.integers(-80, 80).filter(lambda x: x != 0))
def test_cached_exposure_gives_the_same_verdict_as_a_full_scan(steps, i, qty):
    limits = RiskLimits(max_gross_exposure=Decimal(3000), max_leverage=Decimal("0.002"))
    gate = RiskGate(limits)
    blotter = Blotter(Ledger(Decimal("1000000")), RiskGate())  # holds orders, never refuses
    gate.attach(blotter.ledger)  # the gate under test tracks this ledger incrementally
    led = blotter.ledger
    for kind, k, q in steps:
        asset = ASSETS[k]
        open_orders = blotter.open_orders(asset)
        if kind == "place":
            blotter.place(asset, Decimal(q), OrderType.LIMIT, Decimal(10 + k))
        elif kind == "fill" and open_orders:
            order = open_orders[0]
            blotter.apply_fill(order, order.open_amount, Decimal(10 + k), ZERO)
        elif kind == "cancel" and open_orders:
            blotter.cancel(open_orders[-1].id)
        elif kind == "mark":
            blotter.ledger.update_price(asset, Decimal(abs(q)))
        # check after every step, so the cache is exercised while it changes
        args = (ASSETS[i], Decimal(qty), Decimal("12"), led.positions)
        scan = _verdict(
            lambda a=args: limits.check_order(
                *a, list(blotter.iter_open_orders()), led.portfolio_value
            )
        )
        cached = _verdict(
            lambda a=args: limits.check_order(
                *a,
                (),
                led.portfolio_value,
                open_book=blotter.open_book,
                open_count=blotter.open_count,
                exposure=gate._exposure,
            )
        )
        assert scan == cached


mixed_steps = st.lists(
    st.tuples(
        st.sampled_from(["place", "fill", "cancel", "mark"]),
        st.integers(0, 2),
        st.integers(-50, 50).filter(lambda x: x != 0),
        st.sampled_from(["market", "limit", "stop", "stop_limit"]),
        st.integers(5, 30),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(mixed_steps, st.integers(0, 2), st.integers(-80, 80).filter(lambda x: x != 0))
def test_cached_and_scanned_exposure_agree_with_any_order_types_and_prices(steps, i, qty):
    # Open orders of one asset at different limit/stop prices, stops, market orders:
    # both paths value an asset with only open orders at the highest limit/stop price
    # among them (its worst case), and refuse the same orders.
    limits = RiskLimits(max_gross_exposure=Decimal(3000), max_leverage=Decimal("0.002"))
    gate = RiskGate(limits)
    blotter = Blotter(Ledger(Decimal("1000000")), RiskGate())
    gate.attach(blotter.ledger)
    led = blotter.ledger
    for kind, k, q, otype, px in steps:
        asset = ASSETS[k]
        open_orders = blotter.open_orders(asset)
        if kind == "place":
            p = Decimal(px)
            blotter.place(
                asset,
                Decimal(q),
                OrderType(otype),
                p if otype in ("limit", "stop_limit") else None,
                p - 1 if otype in ("stop", "stop_limit") else None,
                reference_price=Decimal("10"),
            )
        elif kind == "fill" and open_orders:
            order = open_orders[0]
            blotter.apply_fill(order, order.open_amount, Decimal(px), ZERO)
        elif kind == "cancel" and open_orders:
            blotter.cancel(open_orders[-1].id)
        elif kind == "mark":
            led.update_price(asset, Decimal(abs(q)))
        args = (ASSETS[i], Decimal(qty), Decimal("12"), led.positions)
        scan = _verdict(
            lambda a=args: limits.check_order(
                *a, list(blotter.iter_open_orders()), led.portfolio_value
            )
        )
        cached = _verdict(
            lambda a=args: limits.check_order(
                *a,
                (),
                led.portfolio_value,
                open_book=blotter.open_book,
                open_count=blotter.open_count,
                exposure=gate._exposure,
            )
        )
        book = _verdict(
            lambda a=args: limits.check_order(
                *a,
                (),
                led.portfolio_value,
                open_book=blotter.open_book,
                open_count=blotter.open_count,
            )
        )
        # Same decision and same rule (which unvalued asset is named first may differ).
        assert _rule(scan) == _rule(cached) == _rule(book)


def _rule(verdict):
    return None if verdict is None else verdict.split(":")[0]
