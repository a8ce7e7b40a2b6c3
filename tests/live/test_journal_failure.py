"""A journal that cannot be written means the order is not sent, and no new risk is taken."""

from __future__ import annotations

import errno
from datetime import UTC, datetime
from decimal import Decimal

import rustybt.live.journal as journal_module
from tests.live.test_engine import PushTrader, Tick, _started_push_engine, _stop, wait_until

D = Decimal


async def test_full_disk_on_the_journal_rejects_the_order_unsent_and_blocks_new_risk(
    monkeypatch,
):
    strategy = PushTrader()
    engine, task = await _started_push_engine(strategy)
    broker = engine.broker
    try:
        sent_before = len(broker.submissions)
        real_write = journal_module.os.write

        def full_disk(fd, data):
            if fd == engine.journal._fd:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(journal_module.os, "write", full_disk)
        strategy.buy_next = True
        engine.push_market_data(
            Tick("AAPL", D("190"), D("1000"), datetime(2024, 1, 3, 15, tzinfo=UTC))
        )
        await wait_until(lambda: engine.get_status()["rejects"] == 1, "the order to be refused")
        assert len(broker.submissions) == sent_before  # never reached the broker
        status = engine.get_status()
        assert status["open_orders"] == 0
        assert "journal" in status["trading_blocked"]
        assert status["can_trade"] is False
        (order,) = [o for o in engine.order_manager.orders.values() if o.status.value == "rejected"]
        assert "No space left" in order.reason
    finally:
        monkeypatch.undo()
        await _stop(engine, task)
