"""Binance configuration: hosts, credentials' variables, capabilities, ccxt options.

``base_url`` replaces the scheme and host of every REST URL ccxt knows for Binance
(``https://api.binance.com/api/v3`` → ``http://127.0.0.1:8080/api/v3``, the testnet's
likewise) and ``ws_url`` those of every websocket URL (market streams, the spot
WebSocket API ``/ws-api/v3``, the futures user stream), paths unchanged. ``testnet=True``
is ccxt's sandbox mode (Binance's spot and futures testnets), applied before overrides.
"""

from __future__ import annotations

import re
from typing import Any

from rustybt.live.brokers.ccxt.venue import Capabilities, replace_hosts

KEY_ENV = "BINANCE_API_KEY"
SECRET_ENV = "BINANCE_API_SECRET"
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"

SPOT = Capabilities(
    order_types=frozenset({"market", "limit", "stop_limit"}),
    time_in_force=frozenset({"gtc", "ioc", "fok"}),
    positions_from="balances",
)
# Conditional futures orders moved to Binance's algo-order service (/fapi/v1/algoOrder,
# separate ids and stream events); this release trades market and limit there.
FUTURES = Capabilities(
    order_types=frozenset({"market", "limit"}),
    time_in_force=frozenset({"gtc", "ioc", "fok"}),
    positions_from="positions",
    shorting=True,
)

_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


def legal_client_id(client_id: str) -> bool:
    """Binance's rule for ``newClientOrderId``."""
    return bool(_CLIENT_ID.match(client_id))


def ccxt_options(market_type: str) -> dict[str, Any]:
    return {
        "defaultType": "spot" if market_type == "spot" else "swap",
        "fetchMarkets": {"types": ["spot"] if market_type == "spot" else ["linear"]},
        "fetchCurrencies": False,  # /sapi endpoints: not needed to trade
        "fetchMargins": False,
        "recvWindow": 10000,
        "newOrderRespType": {"market": "FULL", "limit": "FULL"},
        # ccxt's position snapshot compares string numbers with ints (number = str)
        "watchPositions": {"fetchPositionsSnapshot": False, "awaitPositionsSnapshot": False},
    }


def rewrite_urls(urls: dict[str, Any], base_url: str | None, ws_url: str | None) -> None:
    """Rewrite ccxt's ``urls['api']`` in place (scheme+host only)."""
    replace_hosts(urls, base_url, ws_url)
