"""Binance (spot and USDⓈ-M futures) — the spec's module path.

A thin layer over the ccxt framework (:mod:`rustybt.live.brokers.ccxt`) and the Binance
venue folder (:mod:`rustybt.live.brokers.ccxt.binance`). See ``docs/venues/binance.md``.
"""

from __future__ import annotations

from typing import Any

from rustybt.live.brokers.ccxt.adapter import CcxtBrokerAdapter
from rustybt.live.brokers.ccxt.binance import BinanceVenue

__all__ = ["BinanceBrokerAdapter"]


class BinanceBrokerAdapter(CcxtBrokerAdapter):
    """Binance through ccxt: ``market_type="spot"`` or ``"futures"`` (USDⓈ-M).

    Credentials come from ``api_key``/``api_secret`` or ``BINANCE_API_KEY`` /
    ``BINANCE_API_SECRET``. ``testnet=True`` (the default) uses Binance's testnets;
    mainnet needs ``live_money=True``. ``base_url=``/``ws_url=`` replace the scheme and
    host of every REST / websocket endpoint (a proxy, the local fake).

    Spot positions are the balances of the base assets of the instruments this strategy
    trades (ordered, subscribed, or listed in ``symbols=``); other balances are not
    reported, so they never raise reconciliation alarms.

    ``options`` tune the framework (see :class:`CcxtBrokerAdapter`): ``request_timeout``,
    ``poll_interval``, ``reconnect_delay``, ``market_data_interval``, ``symbols``,
    ``throttle``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        testnet: bool = True,
        market_type: str = "spot",
        *,
        base_url: str | None = None,
        ws_url: str | None = None,
        live_money: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(
            BinanceVenue(market_type),
            api_key,
            api_secret,
            testnet,
            base_url=base_url,
            ws_url=ws_url,
            live_money=live_money,
            **options,
        )
