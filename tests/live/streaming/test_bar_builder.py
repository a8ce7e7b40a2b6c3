"""The bar builder with an injected clock: bars close on the timer at the bar boundary
(+ grace), by venue event time, one multi-asset event per close; venue klines win over
trades; late trades never change a closed bar; tainted bars are backfilled or recorded
as gaps, never emitted from partial data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from rustybt.exceptions import ConfigError
from rustybt.live.streaming.bar_builder import BarBuilder
from rustybt.live.streaming.models import KlineData, TickData

from .conftest import BTC, ETH

T0 = datetime(2024, 1, 3, 15, 0, tzinfo=UTC)
S = timedelta(seconds=1)


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def tick(asset, sec, price, qty="1"):
    return TickData(asset.symbol, D(price), D(qty), T0 + timedelta(seconds=sec), asset=asset)


def kline(asset, start_sec, o, h, lo, c, v, closed=True):
    start = T0 + timedelta(seconds=start_sec)
    return KlineData(
        asset.symbol, start, start + 60 * S, *map(D, (o, h, lo, c, v)), closed, asset=asset
    )


def builder(**kw):
    events = []
    clock = Clock(T0)
    b = BarBuilder(events.append, clock=clock, grace=timedelta(seconds=2), **kw)
    return b, events, clock


async def test_trades_become_one_multi_asset_bar_closed_at_the_boundary_plus_grace():
    b, events, clock = builder()
    for t in [
        tick(BTC, 1, "100", "2"),
        tick(ETH, 5, "10"),
        tick(BTC, 30, "105"),
        tick(BTC, 59, "99"),
    ]:
        b.add_tick(t)
    clock.t = T0 + 61 * S  # past the boundary, inside the grace
    assert await b.close_due(clock.t) == 0
    clock.t = T0 + 62 * S
    assert await b.close_due(clock.t) == 1
    (ev,) = events
    assert ev.dt == T0 + 60 * S  # stamped at the bar's end, like the bundles
    btc, eth = ev.bars
    assert (btc.asset, btc.open, btc.high, btc.low, btc.close, btc.volume) == (
        BTC,
        D("100"),
        D("105"),
        D("99"),
        D("99"),
        D("4"),
    )
    assert eth.asset == ETH and eth.close == D("10") and eth.dt == ev.dt


async def test_a_quiet_bar_closes_on_the_timer_without_waiting_for_the_next_trade():
    b, events, clock = builder()
    b.add_tick(tick(BTC, 10, "100"))
    clock.t = T0 + 62 * S
    await b.close_due(clock.t)
    assert len(events) == 1
    clock.t = T0 + 182 * S  # two empty minutes: no event, no invented bar
    await b.close_due(clock.t)
    assert len(events) == 1


async def test_a_late_trade_within_grace_counts_and_after_the_close_is_dropped():
    b, events, clock = builder()
    b.add_tick(tick(BTC, 10, "100"))
    b.add_tick(tick(BTC, 59.5, "101"))  # arrives during the grace: still in its bar
    clock.t = T0 + 62 * S
    await b.close_due(clock.t)
    b.add_tick(tick(BTC, 59.9, "500"))  # after the close: dropped, counted
    b.add_tick(tick(BTC, 61, "102"))
    clock.t = T0 + 122 * S
    await b.close_due(clock.t)
    assert [e.bars[0].close for e in events] == [D("101"), D("102")]
    assert events[1].bars[0].high == D("102")
    assert b.stats["late_trades"] == 1


async def test_a_venue_kline_is_preferred_over_the_trades_of_its_bar():
    b, events, clock = builder()
    b.kline_assets.add(BTC)
    b.add_tick(tick(BTC, 10, "100"))
    b.add_kline(kline(BTC, 0, "99", "120", "98", "110", "50", closed=False))
    b.add_kline(kline(BTC, 0, "99", "121", "97", "111", "55", closed=True))
    b.add_kline(kline(BTC, 0, "1", "1", "1", "1", "1", closed=False))  # stale update after
    clock.t = T0 + 62 * S
    await b.close_due(clock.t)
    bar = events[0].bars[0]
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == tuple(
        map(D, ("99", "121", "97", "111", "55"))
    )


async def test_a_down_stream_holds_bars_then_backfills_them_in_order_before_the_next_bar():
    calls = []

    async def backfill(asset, first, last):
        calls.append((asset, first, last))
        out = []
        t = first
        while t <= last:
            out.append(
                KlineData(asset.symbol, t, t + 60 * S, D("1"), D("3"), D("1"), D("2"), D("9"), True)
            )
            t += 60 * S
        return out

    b, events, clock = builder(backfill=backfill)
    b.add_tick(tick(BTC, 10, "100"))
    b.stream_down([BTC], T0 + 10 * S)  # dropped during the first minute
    clock.t = T0 + 200 * S
    assert await b.close_due(clock.t) == 0 and b.held  # nothing from partial data
    b.stream_up([BTC], T0 + 200 * S)  # back during minute 3
    b.add_tick(tick(BTC, 201, "7"))
    clock.t = T0 + 242 * S
    assert await b.close_due(clock.t) == 4
    assert [e.dt for e in events] == [T0 + 60 * S * i for i in (1, 2, 3, 4)]
    assert all(e.bars[0].close == D("2") and e.bars[0].volume == D("9") for e in events)
    assert calls == [(BTC, T0, T0 + 180 * S)]  # one request for all four bars
    assert b.stats["backfilled_bars"] == 4 and not b.held


async def test_an_unfillable_bar_is_recorded_as_a_gap_and_not_emitted_from_partial_data():
    gaps = []

    async def backfill(asset, first, last):
        return []  # the venue has nothing for those minutes

    b, events, clock = builder(backfill=backfill, on_gap=gaps.append)
    b.add_tick(tick(BTC, 10, "100"))
    b.add_tick(tick(ETH, 10, "10"))
    b.stream_down([BTC], T0 + 10 * S)
    b.stream_up([BTC], T0 + 70 * S)
    clock.t = T0 + 122 * S
    await b.close_due(clock.t)
    assert [(e.dt, [x.asset for x in e.bars]) for e in events] == [(T0 + 60 * S, [ETH])]
    assert len(gaps) == 1  # one gap, extended over both minutes
    (gap,) = b.gaps
    assert (gap.asset, gap.start, gap.end, gap.bars_missing) == (BTC, T0 + 60 * S, T0 + 120 * S, 2)
    assert "no kline" in gap.reason


async def test_a_failing_backfill_is_retried_then_recorded_as_a_gap():
    async def backfill(asset, first, last):
        raise OSError("connection refused")

    b, events, clock = builder(backfill=backfill, backfill_attempts=2)
    b.add_tick(tick(BTC, 10, "100"))
    b.stream_down([BTC], T0 + 10 * S)
    b.stream_up([BTC], T0 + 20 * S)
    clock.t = T0 + 62 * S
    await b.close_due(clock.t)
    assert events == [] and b.stats["backfill_requests"] == 2
    assert "REST backfill failed: OSError: connection refused" in b.gaps[0].reason


def test_bad_interval_and_grace_are_refused():
    with pytest.raises(ConfigError, match="positive timedelta"):
        BarBuilder(print, interval=timedelta(0))
    with pytest.raises(ConfigError, match="grace"):
        BarBuilder(print, interval=S, grace=2 * S)
