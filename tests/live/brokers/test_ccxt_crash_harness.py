"""The SIGKILL crash harness (test_binance_crash_harness.py) through the generic ccxt
adapter: a real ``rustybt live --broker ccxt:binance`` subprocess (ccxt's unified API,
our ids sent in the reversible or hashed letters-and-digits form) trading a ``rustybt
venue serve binance`` process, killed at seeded points; 0 duplicate, 0 lost, books
equal to the venue's. Slow only (``make test-slow``): the Binance and Bybit harnesses
already run a few trials of the same machinery in ``make test``."""

from __future__ import annotations

import pytest

from rustybt.live.brokers.ccxt.client_ids import ClientIdCodec
from rustybt.live.brokers.ccxt.generic.config import legal_client_id
from tests.live.brokers.test_binance_crash_harness import HarnessVenue, _binance_books, _harness

CCXT_BINANCE = HarnessVenue(
    "ccxt:binance",
    {"CCXT_BINANCE_API_KEY": "fake-binance-key", "CCXT_BINANCE_API_SECRET": "fake-binance-secret"},
    _binance_books,
    serve="binance",
    encode=ClientIdCodec(legal_client_id, reversible_max=32).encode,
)


@pytest.mark.slow
def test_ccxt_sigkill_harness_full_count(tmp_path):
    _harness(tmp_path, 20, CCXT_BINANCE)
