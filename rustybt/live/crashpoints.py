"""Fault injection for crash tests: SIGKILL this process at a named point of the order path.

A crash test cannot aim a SIGKILL from outside at the microseconds between the journal
write and the broker's answer, so the process kills itself there, exactly as the kernel
would kill it: ``RUSTYBT_CRASH_AT="after_intent:3"`` makes the third order's intent reach
the journal and then the process die before ``submit_order`` is called. Points:

* ``after_intent`` — the intent is journalled, the broker has not been asked;
* ``after_submit`` — the broker accepted the order, the journal does not know yet;
* ``restore`` — a restart has re-applied the journal and not yet asked the broker.

Unset (always, outside tests) it costs one attribute test per order: :data:`ARMED` is
False and callers check it before calling :func:`reached`.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ARMED", "POINTS", "reached"]

POINTS = frozenset({"after_intent", "after_submit", "restore"})


def _parse(spec: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, _, count = part.strip().partition(":")
        if name not in POINTS or not (count or "1").isdigit():
            raise ValueError(
                f"RUSTYBT_CRASH_AT={spec!r}: use point[:n] with a point in {sorted(POINTS)}"
            )
        out[name] = int(count or "1")
    return out


_remaining = _parse(os.environ.get("RUSTYBT_CRASH_AT"))
#: True only when RUSTYBT_CRASH_AT names a point (crash tests).
ARMED = bool(_remaining)


def reached(point: str) -> None:
    """Count one pass through ``point``; SIGKILL this process on the n-th."""
    left = _remaining.get(point)
    if left is None:
        return
    if left <= 1:
        os.kill(os.getpid(), signal.SIGKILL)
    _remaining[point] = left - 1
