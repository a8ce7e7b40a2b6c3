"""Strategy variables in a replay's ``bar`` progress records, written as changes.

A paper replay journals a ``bar`` record after every bar, so a restart resumes after the
last bar the strategy processed with the variables it had then: no bar is traded twice,
and no fill the venue already made is shown to bars that came before it. Encoding every
variable on every bar was most of that record's cost, while most bars change one counter.
So the first record after start (and after each checkpoint) carries the full ``state``;
later ones carry only ``delta`` (changed variables, encoded) and ``removed`` (names that
disappeared). Reading the journal folds them back (:func:`fold_bar_record`); a chain always
starts with a full record in the same file, because a new engine writes one first.

Values are compared, not re-encoded: plain scalars by type and value (``Decimal`` also by
its text, so ``1.0`` and ``1.00`` stay distinct), assets by identity; containers by their
encoding, since a list changed in place is still the same object.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.live.audit import redact_secrets
from rustybt.live.models import encode_state_value

_MISSING = object()
_SCALARS = (type(None), bool, int, str)


class StateDeltaEncoder:
    """Turns successive ``get_state()`` dicts into full or delta ``bar`` record fields."""

    def __init__(self) -> None:
        self._prev: dict[str, Any] | None = None

    def reset(self) -> None:
        """Make the next record a full one (called at each checkpoint)."""
        self._prev = None

    def fields(self, state: dict[str, Any]) -> dict[str, Any]:
        """``{"state": ...}`` for a full record, else ``{"delta": ..., "removed": [...]}``
        with empty parts left out (``{}`` when nothing changed)."""
        prev = self._prev
        seen: dict[str, Any] = {}
        changed: dict[str, Any] = {}
        for key, value in state.items():
            cmp = _comparable(value)
            seen[key] = cmp
            if prev is not None and not _same(prev.get(key, _MISSING), cmp):
                changed[key] = value
        if prev is None:
            out = {"state": encode_state_value(redact_secrets(state), "strategy")}
        else:
            out = {}
            if changed:
                out["delta"] = encode_state_value(redact_secrets(changed), "strategy")
            removed = [k for k in prev if k not in seen]
            if removed:
                out["removed"] = removed
        self._prev = seen  # only once encoding succeeded: a failure leaves a full record due
        return out


def _comparable(value: Any) -> Any:
    """What to compare with next bar: the value itself when it cannot change in place."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is Decimal:
        return ("$d", str(value))
    if isinstance(value, Asset):
        return value
    return ("$enc", encode_state_value(value, "strategy"))


def _same(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and a == b)


def fold_bar_record(acc: dict[str, Any] | None, rec: dict[str, Any]) -> dict[str, Any] | None:
    """The encoded variables after ``rec``, given those after the previous ``bar`` record.

    None when unknown (a delta with no full record before it); the checkpoint's variables
    are used then."""
    full = rec.get("state")
    if full is not None:
        return dict(full)
    if acc is None:
        return None
    delta = rec.get("delta")
    if delta:
        acc.update(delta)  # acc is owned by the caller's chain (a fresh dict per full record)
    for key in rec.get("removed") or ():
        acc.pop(key, None)
    return acc
