"""Bybit (v5 unified account: USDT perpetuals and spot) — the spec's module path.

A thin layer over the ccxt framework (:mod:`rustybt.live.brokers.ccxt`) and the Bybit
venue folder (:mod:`rustybt.live.brokers.ccxt.bybit`). See ``docs/venues/bybit.md``.
"""

from __future__ import annotations

from typing import Any

from rustybt.live.brokers.ccxt.adapter import CcxtBrokerAdapter
from rustybt.live.brokers.ccxt.bybit import BybitVenue

__all__ = ["BybitBrokerAdapter"]


class BybitBrokerAdapter(CcxtBrokerAdapter):
    """Bybit through ccxt: ``category="linear"`` (USDT perpetuals, the default) or ``"spot"``.

    Credentials come from ``api_key``/``api_secret`` or ``BYBIT_API_KEY`` /
    ``BYBIT_API_SECRET``. ``testnet=True`` (the default) uses Bybit's testnet; mainnet
    needs ``live_money=True``. ``base_url=``/``ws_url=`` replace the scheme and host of
    every REST / websocket endpoint (a proxy, the local fake). Our client order id is
    Bybit's ``orderLinkId``; fills arrive on the private ``execution`` topic, order
    states on ``order``; positions come from ``/v5/position/list``.

    ``options`` tune the framework (see :class:`CcxtBrokerAdapter`).
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        testnet: bool = True,
        *,
        base_url: str | None = None,
        ws_url: str | None = None,
        live_money: bool = False,
        category: str = "linear",
        **options: Any,
    ) -> None:
        super().__init__(
            BybitVenue(category),
            api_key,
            api_secret,
            testnet,
            base_url=base_url,
            ws_url=ws_url,
            live_money=live_money,
            **options,
        )
        self.category = category
