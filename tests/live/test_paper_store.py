"""The paper venue's persistence (``rustybt.live.brokers.paper_store``): one appended line
per change, compaction in a worker thread, and an account that survives SIGKILL."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rustybt.assets import Equity
from rustybt.data.bar import Bar
from rustybt.exceptions import ConfigError
from rustybt.live.brokers.paper_broker import PaperBroker

D = Decimal
AAPL = Equity("AAPL", sid=1)
T0 = datetime(2024, 1, 3, 14, 31, tzinfo=UTC)


def _bar(i: int, close: str = "100") -> Bar:
    p = D(close)
    return Bar(AAPL, T0 + timedelta(minutes=i), p, p, p, p, D("1000000"))


async def _trade(broker: PaperBroker, orders: int, start: int = 0) -> None:
    await broker.connect()
    broker.on_market_data([_bar(start)])
    for i in range(orders):
        # Resting limit buys far below the market: the account grows order by order.
        await broker.submit_order(
            AAPL, D("1"), "limit", limit_price=D("1"), client_order_id=f"c-{start + i}"
        )


def test_a_change_appends_one_line_whatever_the_size_of_the_account(tmp_path):
    path = tmp_path / "paper.json"
    broker = PaperBroker(starting_cash=D("1000000"), state_path=path, compact_every=100_000)
    asyncio.run(_trade(broker, 10))
    log = path.with_name("paper.json.log")
    small = log.stat().st_size
    asyncio.run(_trade(broker, 10, start=10))
    per_change_small = (log.stat().st_size - small) / 10
    asyncio.run(_trade(broker, 600, start=20))
    before = log.stat().st_size
    asyncio.run(_trade(broker, 10, start=5000))
    per_change_large = (log.stat().st_size - before) / 10
    # O(change): the bytes written per order do not grow with the account, and the
    # whole account (the snapshot) is not rewritten on the event loop.
    assert per_change_large < per_change_small * 1.5
    assert not path.exists()
    loaded = PaperBroker(starting_cash=D("1000000"), state_path=path)
    assert loaded.submissions == broker.submissions and len(loaded.submissions) == 630
    assert sum(len(b) for b in loaded._open.values()) == 630


def test_compaction_folds_the_log_in_a_worker_thread_and_loading_gives_the_same_account(
    tmp_path,
):
    path = tmp_path / "paper.json"
    broker = PaperBroker(starting_cash=D("100000"), state_path=path, compact_every=40)
    workers: list[str] = []
    real_start = threading.Thread.start

    def spy(self):
        workers.append(self.name)
        real_start(self)

    threading.Thread.start = spy  # type: ignore[method-assign]
    try:

        async def session():
            await broker.connect()
            broker.on_market_data([_bar(0)])
            for i in range(30):
                await broker.submit_order(AAPL, D("2"), "market", client_order_id=f"m-{i}")
                broker.on_market_data([_bar(i + 1, str(100 + i))])  # fills it
            for i in range(30, 60):
                await broker.submit_order(
                    AAPL, D("1"), "limit", limit_price=D("1"), client_order_id=f"m-{i}"
                )
            await broker.cancel_order(None, client_order_id="m-59")

        asyncio.run(session())
    finally:
        threading.Thread.start = real_start  # type: ignore[method-assign]
    assert "paper-state-compaction" in workers
    broker._log.join()
    assert path.exists()  # a snapshot was written by the worker
    loaded = PaperBroker(starting_cash=D("100000"), state_path=path)
    assert loaded.submissions == broker.submissions
    assert loaded.ledger.cash == broker.ledger.cash
    assert {a: p.amount for a, p in loaded.ledger.positions.items()} == {
        a: p.amount for a, p in broker.ledger.positions.items()
    }
    assert {o.id for b in loaded._open.values() for o in b} == {
        o.id for b in broker._open.values() for o in b
    }
    assert loaded._fills.keys() == broker._fills.keys()
    assert loaded.market_now == broker.market_now
    # disconnect() leaves one compact snapshot and no log.
    asyncio.run(broker.disconnect())
    assert not path.with_name("paper.json.log").exists()
    again = PaperBroker(starting_cash=D("100000"), state_path=path)
    assert again.submissions == broker.submissions and again.ledger.cash == broker.ledger.cash


def test_compact_every_must_be_a_positive_int(tmp_path):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="compact_every"):
            PaperBroker(state_path=tmp_path / "p.json", compact_every=bad)


VENUE = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from rustybt.assets import Equity
from rustybt.data.bar import Bar
from rustybt.live.brokers.paper_broker import PaperBroker

aapl = Equity("AAPL", sid=1)
t0 = datetime(2024, 1, 3, 14, 31, tzinfo=UTC)
broker = PaperBroker(starting_cash=D("10000000"), state_path=sys.argv[1], compact_every=25)

def bar(i):
    p = D(100 + i % 7)
    return Bar(aapl, t0 + timedelta(minutes=i), p, p, p, p, D("1000000"))

async def main():
    await broker.connect()
    start = len(broker.submissions)
    broker.on_market_data([bar(start)])
    for i in range(start, start + 100000):
        await broker.submit_order(aapl, D("3"), "market", client_order_id=f"k-{i}")
        print("acked", f"k-{i}", flush=True)
        broker.on_market_data([bar(i + 1)])

asyncio.run(main())
"""


def test_a_sigkilled_paper_venue_keeps_every_acknowledged_change(tmp_path):
    path = tmp_path / "paper.json"
    script = tmp_path / "venue.py"
    script.write_text(VENUE)
    rng = random.Random(14)
    acked: list[str] = []
    for _ in range(2):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
        )
        want = rng.randint(30, 200)
        got = 0
        try:
            for line in proc.stdout:
                acked.append(line.split()[1])
                got += 1
                if got >= want:
                    break
        finally:
            proc.kill()  # SIGKILL, mid-stream: compactions and appends in flight
            proc.wait(timeout=10)
        assert got == want, "the venue script stopped early"
    venue = PaperBroker(starting_cash=D("10000000"), state_path=path)
    # Every order the venue acknowledged is there, once; its fills are in the ledger.
    assert set(acked) <= set(venue.submissions)
    assert len(venue.submissions) == len(set(venue.submissions))
    fills = [f for fs in venue._fills.values() for f in fs]
    assert fills
    held = sum((f["amount"] for f in fills), D(0))
    assert venue.ledger.positions[AAPL].amount == held
    spent = sum((f["amount"] * f["price"] + f["commission"] for f in fills), D(0))
    assert venue.ledger.cash == D("10000000") - spent
    filled_orders = {o.id for o in venue._orders.values() if o.filled}
    assert filled_orders == set(venue._fills)
