"""A reject that reaches a partly filled order (issue #10 item 9): the fills stand, the
remainder is cancelled; never an IllegalOrderTransition."""

from __future__ import annotations

from decimal import Decimal

from rustybt.assets import Equity
from rustybt.finance.blotter import Blotter
from rustybt.finance.ledger import Ledger
from rustybt.finance.order import OrderStatus

D = Decimal
AAPL = Equity("AAPL")


def test_rejecting_a_partly_filled_order_keeps_its_fills_and_cancels_the_remainder():
    blotter = Blotter(Ledger(D("100000")))
    order = blotter.place(AAPL, D("10"), reference_price=D("100"))
    blotter.apply_fill(order, D("4"), D("100"), D("0"))
    blotter.mark_rejected(order, "venue: insufficient margin")
    assert order.status is OrderStatus.CANCELLED
    assert order.filled == D("4")
    assert "rejected after a partial fill" in order.reason and "insufficient margin" in order.reason
    assert not blotter.open_orders(AAPL) and blotter.open_count == 0
    assert blotter.ledger.positions[AAPL].amount == D("4")


def test_rejecting_an_unfilled_order_is_a_reject():
    blotter = Blotter(Ledger(D("100000")))
    order = blotter.place(AAPL, D("10"), reference_price=D("100"))
    blotter.mark_rejected(order, "venue says no")
    assert order.status is OrderStatus.REJECTED and order.reason == "venue says no"
    assert blotter.rejected_count == 1
