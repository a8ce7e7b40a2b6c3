"""Any ccxt venue (``--broker ccxt:<id>``) — the generic adapter on the ccxt framework.

A thin layer over :class:`~rustybt.live.brokers.ccxt.adapter.CcxtBrokerAdapter` and the
generic venue folder (:mod:`rustybt.live.brokers.ccxt.generic`), which reads the venue
through ccxt's unified API. What the exchange class cannot do is detected from ccxt's
``has`` / ``features`` and refused with a typed error; see ``docs/venues/ccxt.md``.
"""

from __future__ import annotations

from typing import Any

from rustybt.exceptions import ConfigError
from rustybt.live.brokers.ccxt.adapter import CcxtBrokerAdapter
from rustybt.live.brokers.ccxt.generic import GenericVenue

__all__ = ["CCXTBrokerAdapter"]


class CCXTBrokerAdapter(CcxtBrokerAdapter):
    """Trade any ccxt exchange id, e.g. ``CCXTBrokerAdapter("okx", testnet=True)``.

    * ``market_type``: ``"spot"`` (the default) or ``"swap"`` (linear perpetuals).
    * Credentials: ``api_key``/``api_secret`` or ``CCXT_<ID>_API_KEY`` /
      ``CCXT_<ID>_API_SECRET`` (e.g. ``CCXT_OKX_API_KEY``); ``password=`` (or
      ``CCXT_<ID>_PASSWORD``) for venues that need a passphrase.
    * ``testnet=True`` (the default) is ccxt's sandbox; a venue without one is refused
      (use ``testnet=False`` with ``base_url`` for a local fake, or ``live_money=True``).
      Mainnet needs ``live_money=True``.
    * ``user_stream``: ``"auto"`` (ccxt.pro ``watchOrders``/``watchMyTrades`` when the
      venue has them, else polling), ``"poll"`` or ``"stream"``. Polling asks every
      ``poll_interval`` seconds (default 1.0).
    * ``account_currency``: the cash currency (default ``"USDT"``).
    * ``ccxt_options``: extra ccxt ``options`` for the exchange (merged over ours).

    Refused with :class:`~rustybt.exceptions.ConfigError` at construction: an unknown
    id (the message says how to list the valid ones), a venue whose ccxt class cannot
    tag orders with our client order id (crash-safe deduplication would be impossible),
    a venue lacking the methods trading needs. Refused at submit with
    :class:`~rustybt.exceptions.InvalidOrder`: order types and time in force the venue
    lacks (a stop order is never turned into a market order).
    """

    def __init__(
        self,
        exchange_id: str,
        api_key: str | None = None,
        api_secret: str | None = None,
        testnet: bool = True,
        *,
        base_url: str | None = None,
        ws_url: str | None = None,
        live_money: bool = False,
        market_type: str = "spot",
        password: str | None = None,
        account_currency: str = "USDT",
        user_stream: str = "auto",
        ccxt_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        venue = GenericVenue(
            exchange_id,
            market_type,
            account_currency=account_currency,
            options=ccxt_options,
            user_stream=user_stream,
            password=password,
        )
        support = venue.support
        if not support.client_ids:
            raise ConfigError(
                f"{venue.name}: ccxt's {venue.ccxt_id} class does not send a client order id "
                "(params['clientOrderId'] is not read by its order code), so an order could "
                "not be found again by our id after a crash and might be sent twice or "
                "missed; this adapter refuses such venues (docs/venues/ccxt.md, 'Client "
                "order ids'). Use a venue that supports client order ids"
            )
        if testnet and not support.sandbox:
            raise ConfigError(
                f"{venue.name} has no sandbox/testnet in ccxt (urls['test'] is not set): pass "
                "testnet=False with base_url= for a local fake (CLI: --venue-url), or "
                "testnet=False and live_money=True to trade real money (CLI: --live-money)"
            )
        super().__init__(
            venue,
            api_key,
            api_secret,
            testnet,
            base_url=base_url,
            ws_url=ws_url,
            live_money=live_money,
            **options,
        )
        self.exchange_id = venue.ccxt_id
        self.streaming = venue.streaming

    def status(self) -> dict[str, Any]:
        out = super().status()
        out["mode"] = "stream" if self.streaming else f"poll every {self.poll_interval} s"
        return out
