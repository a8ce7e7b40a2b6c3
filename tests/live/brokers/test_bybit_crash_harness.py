"""The SIGKILL crash harness (test_binance_crash_harness.py) against the fake Bybit (spot):
a real ``rustybt live --broker bybit`` subprocess trading a ``rustybt venue serve bybit``
process, killed at seeded points; 0 duplicate, 0 lost, books equal to the venue's.
``make test`` runs 3 trials, ``make test-slow`` 20.

Bybit answers an order with its ids only and sends the fill on the private stream, so a
session ending (``--max-bars``) between the two must settle the order with the venue
before its final checkpoint (``LiveTradingEngine._settle_open_orders_at_venue``; the
focused test is ``test_bybit_engine.py``)."""

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


def test_sigkill_of_a_live_bybit_session_loses_and_duplicates_nothing(tmp_path):
    _harness(tmp_path, int(os.environ.get("RUSTYBT_BYBIT_CRASH_TRIALS", "3")), BYBIT)


@pytest.mark.slow
def test_bybit_sigkill_harness_full_count(tmp_path):
    _harness(tmp_path, 20, BYBIT)
