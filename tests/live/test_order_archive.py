"""Long sessions keep memory bounded: old closed orders and old fill ids are archived."""

from __future__ import annotations

import pytest

from rustybt.exceptions import OrderNotFound
from rustybt.live.order_manager import RecentIds
from tests.live.test_engine import Counter, make_engine, run


class EveryBar(Counter):
    every = 1


async def test_only_the_most_recent_closed_orders_stay_in_memory():
    strategy = EveryBar()
    engine = make_engine(strategy, start="2024-01-02 14:31", end="2024-01-02 15:30")
    engine.order_manager.max_closed_orders = 5
    await run(engine)
    om = engine.order_manager
    st = engine.get_status()
    assert st["orders_submitted"] == 60 and st["fills"] == 59  # the last order rests
    assert len(om.orders) == 5 + len(om.open_orders())
    first = f"{om.id_prefix}-1"
    with pytest.raises(OrderNotFound):
        om.get_order(first)
    # The ledger keeps everything: archiving forgets order objects, not fills.
    assert engine.ledger.positions[strategy.aapl].amount == 59


def test_recent_ids_forget_the_oldest_first():
    ids = RecentIds(3)
    ids |= ["a", "b", "c"]
    ids.add("d")
    assert "a" not in ids and all(x in ids for x in "bcd")
    assert len(ids) == 3
