"""Order submission starts at once, and a network-style adapter that waits still completes."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from rustybt.live.brokers.paper_broker import PaperBroker
from tests.live.test_engine import Counter, make_engine, run

D = Decimal


class SlowVenue(PaperBroker):
    """The paper venue behind a (loopback-free) network-like round trip."""

    simulated = True

    def __init__(self, **kw):
        super().__init__(**kw)
        self.waits = 0

    async def submit_order(self, *args, **kwargs):
        self.waits += 1
        await asyncio.sleep(0.001)  # a real wait: the submission must finish on a task
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.001, fut.set_result, None)
        await fut
        return await super().submit_order(*args, **kwargs)


class BuyEvery10(Counter):
    every = 10


async def test_an_in_process_venue_is_entered_inside_the_order_call():
    strategy = BuyEvery10()
    engine = make_engine(strategy, start="2024-01-02 14:31", end="2024-01-02 15:00")
    seen: list[int] = []
    original = engine.broker.submit_order

    async def spy(*args, **kwargs):
        seen.append(strategy.calls)  # the strategy's bar counter at submit time
        return await original(*args, **kwargs)

    engine.broker.submit_order = spy
    await run(engine)
    assert seen == [10, 20, 30]  # entered during the very bar that ordered


async def test_an_adapter_that_awaits_the_network_completes_every_submission():
    strategy = BuyEvery10()
    venue = SlowVenue(starting_cash=D("100000"))
    engine = make_engine(strategy, broker=venue, start="2024-01-02 14:31", end="2024-01-02 15:00")
    await run(engine)
    st = engine.get_status()
    assert venue.waits == 3 and st["orders_submitted"] == 3
    assert st["fills"] == 2 and st["rejects"] == 0  # the last bar's order has no next bar
    assert all(o.broker_order_id for o in engine.order_manager.orders.values())
