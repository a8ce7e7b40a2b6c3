"""TaskSupervisor and DataWatchdog: a background task's end is always seen; a quiet feed
is reported only while the market is open."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from rustybt.live.supervision import DataWatchdog, TaskSupervisor, market_open


async def test_a_task_that_raises_or_returns_is_reported_a_cancelled_one_is_not():
    seen = []
    sup = TaskSupervisor(
        lambda name, what, critical: seen.append((name, what, critical)), lambda: False
    )

    async def boom():
        raise ValueError("bad state")

    async def quits():
        return None

    async def forever():
        await asyncio.sleep(3600)

    sup.spawn("reconcile", boom(), critical=True)
    sup.spawn("checkpoint", quits())
    sup.spawn("idle", forever())
    await asyncio.sleep(0.01)
    await sup.stop()
    assert sorted(seen) == [
        ("checkpoint", "stopped while the engine was running", False),
        ("reconcile", "ValueError: bad state", True),
    ]
    assert set(sup.failures) == {"reconcile", "checkpoint"}


async def test_nothing_is_reported_while_the_engine_stops():
    seen = []
    sup = TaskSupervisor(lambda *a: seen.append(a), lambda: True)

    async def boom():
        raise ValueError("during shutdown")

    sup.spawn("feed", boom())
    await asyncio.sleep(0.01)
    assert seen == []


def test_the_watchdog_reports_a_quiet_open_market_once_and_recovers_on_data():
    now = [0.0]
    events = []
    dog = DataWatchdog(
        10, "24/7", lambda q: events.append(("stale", q)), lambda: events.append("fresh"),
        now=lambda: now[0],
    )  # fmt: skip
    now[0] = 9.9
    assert dog.check() is False
    now[0] = 10.0
    assert dog.check() is True and dog.check() is True
    assert events == [("stale", 10.0)]
    dog.on_data()
    assert events[-1] == "fresh" and not dog.stale


def test_a_closed_market_is_not_stale():
    now = [0.0]
    events = []
    dog = DataWatchdog(10, "XNYS", events.append, lambda: None, now=lambda: now[0])
    now[0] = 100.0
    saturday = datetime(2024, 1, 6, 16, 0, tzinfo=UTC)
    assert dog.check(saturday) is False and events == []
    monday_open = datetime(2024, 1, 8, 15, 0, tzinfo=UTC)  # 10:00 New York
    now[0] = 111.0
    assert dog.check(monday_open) is True


def test_market_hours():
    assert market_open("24/7", datetime(2024, 1, 6, 3, 0, tzinfo=UTC))
    assert market_open("XNYS", datetime(2024, 1, 8, 14, 30, tzinfo=UTC))  # 09:30 NY
    assert not market_open("XNYS", datetime(2024, 1, 8, 14, 29, tzinfo=UTC))
    assert not market_open("XNYS", datetime(2024, 1, 8, 21, 0, tzinfo=UTC))  # 16:00 NY
