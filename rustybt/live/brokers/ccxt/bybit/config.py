"""Bybit configuration: credentials' variables, capabilities, ccxt options, client ids.

Bybit v5, unified trading account (UTA): ``category`` ``linear`` (USDT perpetuals) or
``spot``. ``base_url`` / ``ws_url`` replace the scheme and host of every URL ccxt knows
for Bybit (REST ``https://api.{hostname}``, private stream ``wss://stream.{hostname}/v5/private``),
paths unchanged; ``testnet=True`` is ccxt's sandbox mode (Bybit's testnet), applied first.
"""

from __future__ import annotations

import re
from typing import Any

from rustybt.live.brokers.ccxt.venue import Capabilities

KEY_ENV = "BYBIT_API_KEY"
SECRET_ENV = "BYBIT_API_SECRET"

# Conditional orders (triggerPrice/triggerDirection) are separate order types at Bybit
# (stopOrderType, Untriggered status); this release trades market and limit orders.
LINEAR = Capabilities(
    order_types=frozenset({"market", "limit"}),
    time_in_force=frozenset({"gtc", "ioc", "fok"}),
    positions_from="positions",
    shorting=True,
)
SPOT = Capabilities(
    order_types=frozenset({"market", "limit"}),
    time_in_force=frozenset({"gtc", "ioc", "fok"}),
    positions_from="balances",
)

# Bybit: orderLinkId, at most 36 characters of letters, digits, "-" and "_".
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


def legal_client_id(client_id: str) -> bool:
    return bool(_CLIENT_ID.match(client_id))


def ccxt_options(category: str) -> dict[str, Any]:
    return {
        "defaultType": "spot" if category == "spot" else "swap",
        "defaultSubType": "linear",
        "defaultSettle": "USDT",
        "fetchMarkets": {"types": [category]},
        # A unified trading account is assumed (what Bybit opens today); without these
        # ccxt asks /v5/user/query-api and /v5/account/info before every private call.
        "enableUnifiedMargin": False,
        "enableUnifiedAccount": True,
        "recvWindow": 10000,
    }
