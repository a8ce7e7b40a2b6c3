"""Hyperliquid (decentralized perpetuals, USDC) — the spec's module path.

A thin layer over the ccxt framework (:mod:`rustybt.live.brokers.ccxt`) and the
Hyperliquid venue folder (:mod:`rustybt.live.brokers.ccxt.hyperliquid`). See
``docs/venues/hyperliquid.md``.
"""

from __future__ import annotations

from typing import Any

from rustybt.live.audit import SECRETS
from rustybt.live.brokers.ccxt.adapter import CcxtBrokerAdapter
from rustybt.live.brokers.ccxt.hyperliquid import HyperliquidVenue

__all__ = ["HyperliquidBrokerAdapter"]


class HyperliquidBrokerAdapter(CcxtBrokerAdapter):
    """Hyperliquid perpetuals through ccxt, orders signed with the wallet's private key.

    ``private_key`` (or ``HYPERLIQUID_PRIVATE_KEY``) signs every action (EIP-712);
    ``wallet_address`` (or ``HYPERLIQUID_WALLET_ADDRESS``) is the account traded when the
    key is an API wallet's, else the key's own address. ``testnet=True`` (the default)
    uses Hyperliquid's testnet; mainnet needs ``live_money=True``. ``base_url=`` /
    ``ws_url=`` replace scheme and host of the REST / websocket endpoints (a proxy, the
    local fake). Symbols are coins (``BTC``); client order ids are sent as cloids (a
    SHA-256 prefix); fills arrive on ``userFills``, order states on ``orderUpdates``.
    Nothing is sent that the user did not ask for (no builder fee, no referrer), and
    the key never appears in a repr, a log line, an exception or a checkpoint.

    ``options`` tune the framework (see :class:`CcxtBrokerAdapter`).
    """

    def __init__(
        self,
        private_key: str | None = None,
        testnet: bool = True,
        *,
        wallet_address: str | None = None,
        base_url: str | None = None,
        ws_url: str | None = None,
        live_money: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(
            HyperliquidVenue(),
            wallet_address,
            private_key,
            testnet,
            base_url=base_url,
            ws_url=ws_url,
            live_money=live_money,
            **options,
        )
        # masked wherever the audit log and the CLI print (it is never logged anyway)
        key = self._credentials[1]
        SECRETS.add(key)
        SECRETS.add(key.removeprefix("0x"))

    @property
    def wallet_address(self) -> str:
        """The account this adapter trades (public)."""
        return self._credentials[0]
