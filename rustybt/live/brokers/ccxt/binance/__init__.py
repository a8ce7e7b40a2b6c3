"""Binance on the ccxt framework: spot and USDⓈ-M futures.

Same shape as every venue folder: ``config`` (hosts, credentials, capabilities, ccxt
options), ``instruments`` (exchangeInfo filters → ``Asset``), ``execution`` (order
arguments, raw order/trade parsing, error codes, REST calls) and ``user_stream``
(subscription and event parsing). :class:`BinanceVenue` binds them to the
:class:`~rustybt.live.brokers.ccxt.venue.Venue` interface.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.exceptions import ConfigError
from rustybt.live.brokers.ccxt.binance import config, execution, instruments, user_stream
from rustybt.live.brokers.ccxt.venue import AccountView, Capabilities, FillView, OrderView, Venue


class BinanceVenue(Venue):
    name = "binance"
    ccxt_id = "binance"
    key_env = config.KEY_ENV
    secret_env = config.SECRET_ENV
    account_currency = "USDT"
    weight_header = config.WEIGHT_HEADER
    market_types = ("spot", "futures")

    def __init__(self, market_type: str = "spot") -> None:
        if market_type not in self.market_types:
            raise ConfigError(
                f"market_type={market_type!r} is not a Binance market type; use 'spot' or "
                "'futures' (USDⓈ-M perpetuals)"
            )
        super().__init__(market_type)

    def capabilities(self) -> Capabilities:
        return config.SPOT if self.market_type == "spot" else config.FUTURES

    def ccxt_options(self) -> dict[str, Any]:
        return config.ccxt_options(self.market_type)

    def rewrite_urls(self, urls: dict[str, Any], base_url: str | None, ws_url: str | None) -> None:
        config.rewrite_urls(urls, base_url, ws_url)

    def instrument(self, market: dict[str, Any]) -> Asset | None:
        return instruments.instrument(market, self.market_type)

    def legal_client_id(self, client_id: str) -> bool:
        return config.legal_client_id(client_id)

    def order_args(
        self,
        market: dict[str, Any],
        asset: Asset,
        amount: Decimal,
        order_type: str,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        client_id: str,
        time_in_force: str,
    ) -> tuple[str, str, str, str | None, dict[str, Any]]:
        return execution.order_args(
            market, asset, amount, order_type, limit_price, stop_price, client_id, time_in_force
        )

    def parse_order(self, raw: dict[str, Any]) -> OrderView:
        return execution.parse_order(raw)

    def parse_rest_fills(self, raw_order: dict[str, Any]) -> list[FillView]:
        return execution.parse_rest_fills(raw_order)

    def parse_trade(self, raw: dict[str, Any]) -> FillView:
        return execution.parse_trade(raw)

    def parse_stream_event(self, raw: dict[str, Any]) -> tuple[OrderView | None, FillView | None]:
        return user_stream.parse_stream_event(raw)

    async def fetch_order(
        self, ex: Any, symbol: str, *, order_id: str | None, client_id: str | None
    ) -> dict[str, Any] | None:
        return await execution.fetch_order(
            ex, self.market_type, symbol, order_id=order_id, client_id=client_id
        )

    async def cancel(
        self, ex: Any, symbol: str, *, order_id: str | None, client_id: str | None
    ) -> dict[str, Any]:
        return await execution.cancel(
            ex, self.market_type, symbol, order_id=order_id, client_id=client_id
        )

    async def fetch_open_orders(self, ex: Any) -> list[dict[str, Any]]:
        return await execution.fetch_open_orders(ex, self.market_type)

    async def fetch_order_trades(self, ex: Any, symbol: str, order_id: str) -> list[dict[str, Any]]:
        return await execution.fetch_order_trades(ex, self.market_type, symbol, order_id)

    async def fetch_account(self, ex: Any) -> AccountView:
        return await execution.fetch_account(ex, self.market_type, self.account_currency)

    async def fetch_klines(self, ex: Any, symbol: str, limit: int) -> list[list[Any]]:
        return await execution.fetch_klines(ex, self.market_type, symbol, limit)

    async def open_user_stream(self, ex: Any) -> None:
        await user_stream.open_user_stream(ex, self.market_type)

    def map_error(self, exc: BaseException, *, during: str) -> BaseException:
        return execution.map_error(exc, during=during)
