"""What the live strategy did between the shadow's checkpoint and a crash, from the journal.

The shadow's state rides in the live checkpoint, so after a crash it resumes from the
checkpoint's bar while the live engine resumes later: after the last bar its journal
recorded (a paper replay writes a ``bar`` record per bar). The live strategy's orders on
the bars in between are in the journal as ``intent`` records; :func:`journal_signals`
turns them back into the :class:`~rustybt.live.shadow.alignment.Signal` s the live side
would have recorded, so the shadow can replay those bars and compare them
(:meth:`~rustybt.live.shadow.kernel.ShadowEngine.catch_up`).

A signal's ``exposure_before`` (held + open on the asset before the order, used for the
``order_target*`` drift rule) is rebuilt backwards from the live account as restored:
held + open changes only when an order is placed (+ its amount) and when one ends
cancelled or rejected (− what it left unfilled), and the journal orders those events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from rustybt.live.shadow.alignment import Signal

__all__ = ["JournalSignal", "journal_signals"]

_ZERO = Decimal(0)
_ENDED = frozenset({"cancelled", "rejected"})


@dataclass(frozen=True)
class JournalSignal:
    """One live order recovered from the journal: its bar, signal and first fill time."""

    dt: datetime
    signal: Signal
    first_fill: datetime | None


def journal_signals(
    orders: Iterable[Any], after_seq: int, exposure_now: Callable[[str], Decimal]
) -> list[JournalSignal]:
    """The live signals of every order whose intent the journal wrote after ``after_seq``
    (the checkpoint's journal position), oldest first.

    ``orders`` are :class:`~rustybt.live.journal.JournalOrder` s; ``exposure_now(symbol)``
    is the restored live account's held + open amount on that asset (after the journal's
    records were applied). Orders without an asset, amount or bar time are skipped.
    """
    orders = list(orders)
    new = sorted(
        (
            o
            for o in orders
            if o.has_intent
            and o.first_seq > after_seq
            and o.asset is not None
            and o.amount
            and o.dt
        ),
        key=lambda o: o.first_seq,
    )
    if not new:
        return []
    # held + open changes after the checkpoint, per symbol: (journal seq, delta)
    changes: dict[str, list[tuple[int, Decimal]]] = {}
    for o in new:
        changes.setdefault(o.asset.symbol, []).append((o.first_seq, o.amount))
    for o in orders:
        if o.status in _ENDED and o.last_seq > after_seq and o.asset is not None and o.amount:
            left = o.amount - o.filled
            if left:
                changes.setdefault(o.asset.symbol, []).append((o.last_seq, -left))
    now: dict[str, Decimal] = {}
    out: list[JournalSignal] = []
    for o in new:
        symbol = o.asset.symbol
        if symbol not in now:
            now[symbol] = Decimal(exposure_now(symbol))
        later = sum((d for seq, d in changes[symbol] if seq >= o.first_seq), _ZERO)
        fills = [f.dt for f in o.fills.values() if f.dt]
        out.append(
            JournalSignal(
                datetime.fromisoformat(o.dt),
                Signal(
                    o.client_order_id,
                    symbol,
                    o.amount,
                    now[symbol] - later,
                    o.order_type or "market",
                    o.limit_price,
                ),
                min(datetime.fromisoformat(d) for d in fills) if fills else None,
            )
        )
    return out
