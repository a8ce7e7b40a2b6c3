"""Which calendar a run's clock follows, and so which assets' bars make its timestamps.

Shared by the backtest runner and the live engine's bundle replay, so both wake the
strategy at the same instants (DESIGN.md invariant 1). The rule:

- ``calendar=`` / ``--calendar`` given: that calendar. ``"24/7"`` means every bar of the
  bundle; an exchange calendar (``"XNYS"``) means the bars of the bundle's assets on it.
- Otherwise the assets the strategy looked up in ``initialize``: their bars (a 24/7 asset
  among them makes the calendar 24/7).
- Nothing looked up (zipline's ``buy_and_hold`` looks its symbols up in ``handle_data``,
  a pipeline strategy looks up none): the bundle's equities' exchange calendar when the
  bundle holds any asset on one, else 24/7. So an equity script on a bundle that also
  holds crypto starts at the equity open, not at the first crypto minute (zipline's own
  default calendar is the NYSE's).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rustybt.assets import Asset, Equity
from rustybt.exceptions import ConfigError

ALWAYS_OPEN = frozenset({"24/7", "always_open"})


def clock_assets(
    finder: Any, used: Iterable[Asset], calendar: str | None = None
) -> tuple[str, list[Asset] | None]:
    """``(calendar name, assets whose bars form the clock)``; ``None`` means every asset."""
    everything = list(finder.assets)
    if calendar is not None:
        if not isinstance(calendar, str) or not calendar.strip():
            raise ConfigError(f"calendar={calendar!r}: pass a calendar name such as XNYS or 24/7")
        calendar = calendar.strip()
        if calendar in ALWAYS_OPEN:
            return "24/7", None
        on = [a for a in everything if a.calendar == calendar]
        if not on:
            known = sorted({a.calendar for a in everything})
            raise ConfigError(
                f"calendar={calendar!r}: the bundle holds no asset on that calendar (its "
                f"calendars: {', '.join(known) or 'none'}); pick one of those or 24/7"
            )
        return calendar, on
    used = list(used)
    if used:
        if any(a.calendar in ALWAYS_OPEN for a in used):
            return "24/7", used
        return used[0].calendar, used
    exchange = [a for a in everything if a.calendar not in ALWAYS_OPEN]
    if not exchange:
        return "24/7", None
    equities = [a for a in exchange if isinstance(a, Equity)] or exchange
    primary = equities[0].calendar
    return primary, [a for a in exchange if a.calendar == primary]
