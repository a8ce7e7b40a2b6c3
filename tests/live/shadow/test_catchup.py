"""Recovering the live side of the bars a crash left between checkpoint and resume point."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rustybt.assets import Equity
from rustybt.live.journal import JournalFill, JournalOrder
from rustybt.live.shadow.catchup import journal_signals

D = Decimal
T0 = datetime(2024, 1, 3, 15, 0, tzinfo=UTC)
AAPL = Equity("AAPL", 1)


def _order(coid, amount, minute, first_seq, last_seq, status="filled", filled=None, fill_at=None):
    o = JournalOrder(coid, asset=AAPL, amount=D(amount), order_type="market", first_seq=first_seq)
    o.has_intent = True
    o.dt = (T0 + timedelta(minutes=minute)).isoformat()
    o.last_seq = last_seq
    o.status = status
    o.filled = D(amount) if filled is None else D(filled)
    if fill_at is not None:
        at = (T0 + timedelta(minutes=fill_at)).isoformat()
        o.fills["f-" + coid] = JournalFill("f-" + coid, o.filled, D("100"), D(0), last_seq, at)
    return o


def test_exposure_before_each_order_is_rebuilt_backwards_from_the_restored_account():
    orders = [
        _order("old", "4", -5, first_seq=2, last_seq=3, fill_at=-4),  # before the checkpoint
        _order("a", "10", 1, first_seq=11, last_seq=13, fill_at=2),
        # placed, then cancelled with 6 of 8 unfilled: held + open loses 6 at its cancel
        _order("b", "8", 3, first_seq=14, last_seq=18, status="cancelled", filled="2"),
        _order("c", "-5", 5, first_seq=20, last_seq=21, fill_at=6),
    ]
    # Now: 4 (old) + 10 + 2 - 5 = 11 held, nothing open.
    got = journal_signals(orders, after_seq=10, exposure_now=lambda s: D(11))
    assert [j.signal.order_id for j in got] == ["a", "b", "c"]
    assert [j.signal.exposure_before for j in got] == [D(4), D(14), D(16)]
    assert [j.dt for j in got] == [T0 + timedelta(minutes=m) for m in (1, 3, 5)]
    assert got[0].first_fill == T0 + timedelta(minutes=2) and got[1].first_fill is None


def test_orders_up_to_the_checkpoint_or_without_an_intent_are_not_signals():
    seen = _order("seen", "1", 0, first_seq=5, last_seq=6)
    no_intent = _order("x", "1", 1, first_seq=12, last_seq=12)
    no_intent.has_intent = False
    assert journal_signals([seen, no_intent], after_seq=10, exposure_now=lambda s: D(0)) == []


async def test_without_stored_bars_the_gaps_live_orders_are_reported_not_compared(tmp_path):
    from rustybt.live.brokers.paper_broker import PaperBroker
    from tests.live.shadow.test_engine_shadow import Flipper, make_engine

    engine = make_engine(Flipper(), PaperBroker(starting_cash=D("100000")), tmp_path)
    shadow = engine.shadow
    shadow.last_dt = T0
    orders = [_order("a", "10", 1, 11, 12, fill_at=2), _order("b", "-10", 9, 13, 14)]
    shadow.recover_live_signals(orders, after_seq=10)
    gap = await shadow.catch_up(None, T0 + timedelta(minutes=9))
    assert gap["live_orders"] == 2 and gap["live_orders_not_compared"] == 2
    assert gap["bars_replayed"] == gap["bars_compared"] == 0
    assert "live data" in gap["reason"]
    # Nothing waits to be compared with a later bar (it would show as misaligned there).
    assert not shadow.tracker.has_pending()
    rep = shadow.report()
    assert rep.restarts == [gap]
    assert "2 of 2 live orders not compared" in rep.summary_lines()[-1]
    assert shadow.to_dict()["restarts"] == [gap]
