"""Hyperliquid configuration: credentials, capabilities, ccxt options, client ids.

Perpetuals only (USDC collateral). Credentials are a wallet's private key
(``HYPERLIQUID_PRIVATE_KEY``) and, when that key is an API ("agent") wallet, the
account it trades for (``HYPERLIQUID_WALLET_ADDRESS``; default: the key's own address).

ccxt's Hyperliquid class, left at its defaults, signs and sends two actions nobody
asked for on the first order: ``approveBuilderFee`` (a fee to CCXT's builder address;
``builderFee=False`` still approves it at 0 %) and ``setReferrer``. The options here
switch both off (``refSet=True``, ``approvedBuilderFee=False`` so no builder is attached
to orders) and :mod:`.execution` replaces ``handle_builder_fee_approval`` with a method
that sends nothing; ``enableUnifiedMargin=False`` skips the ``userAbstraction`` query.

Client order ids: Hyperliquid's ``cloid`` must be ``0x`` + 32 hex digits (16 bytes), so
every engine id is sent as ``0x`` + the first 32 hex digits of its SHA-256:
deterministic, so after a restart the engine's id is hashed again and the order asked
for by cloid (``orderStatus`` takes a cloid in place of an order id).
"""

from __future__ import annotations

import hashlib
from typing import Any

from rustybt.live.brokers.ccxt.venue import Capabilities

KEY_ENV = "HYPERLIQUID_PRIVATE_KEY"
WALLET_ENV = "HYPERLIQUID_WALLET_ADDRESS"

# Trigger (stop / take-profit) orders are a separate order kind at Hyperliquid; this
# release trades limit orders (Gtc, Ioc) and market orders (an Ioc limit order at the
# mid price +/- ccxt's 5 % slippage bound, as Hyperliquid's own SDKs send them).
PERPS = Capabilities(
    order_types=frozenset({"market", "limit"}),
    time_in_force=frozenset({"gtc", "ioc"}),
    positions_from="positions",
    shorting=True,
)


def cloid(client_id: str) -> str:
    """Our client id as a Hyperliquid ``cloid`` (16 bytes in hex), deterministically."""
    return "0x" + hashlib.sha256(client_id.encode()).hexdigest()[:32]


def ccxt_options() -> dict[str, Any]:
    return {
        "defaultType": "swap",
        "fetchMarkets": {"types": ["swap"]},
        "refSet": True,  # never send setReferrer
        "approvedBuilderFee": False,  # never attach CCXT's builder to an order
        "builderFee": False,
        "enableUnifiedMargin": False,  # no userAbstraction query before balances
    }
