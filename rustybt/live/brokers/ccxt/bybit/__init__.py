"""Bybit (v5, unified account) on the ccxt framework: ``linear`` perpetuals and ``spot``.

Same shape as every venue folder: ``config`` (credentials, capabilities, ccxt options,
client-id rule), ``instruments`` (instruments-info filters -> ``Asset``), ``execution``
(order arguments, raw order/execution parsing, retCodes, REST calls) and ``user_stream``
(the private websocket). :class:`BybitVenue` binds them to the
:class:`~rustybt.live.brokers.ccxt.venue.Venue` interface.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.exceptions import ConfigError
from rustybt.live.brokers.ccxt.bybit import config, execution, instruments, user_stream
from rustybt.live.brokers.ccxt.venue import (
    AccountView,
    Capabilities,
    FillView,
    OrderView,
    Venue,
    replace_hosts,
)


class BybitVenue(Venue):
    name = "bybit"
    ccxt_id = "bybit"
    key_env = config.KEY_ENV
    secret_env = config.SECRET_ENV
    account_currency = "USDT"
    market_types = ("linear", "spot")

    def __init__(self, category: str = "linear") -> None:
        if category not in self.market_types:
            raise ConfigError(
                f"category={category!r} is not a Bybit category this adapter trades; use "
                "'linear' (USDT perpetuals) or 'spot'"
            )
        super().__init__(category)

    def capabilities(self) -> Capabilities:
        return config.SPOT if self.market_type == "spot" else config.LINEAR

    def ccxt_options(self) -> dict[str, Any]:
        return config.ccxt_options(self.market_type)

    def rewrite_urls(self, urls: dict[str, Any], base_url: str | None, ws_url: str | None) -> None:
        replace_hosts(urls, base_url, ws_url)

    def error_fields(self, status: int, response: Any) -> tuple[int | None, str] | None:
        return execution.error_fields(status, response)

    def is_rate_limited(self, status: int, fields: tuple[int | None, str] | None) -> bool:
        return status == 403 or (fields is not None and fields[0] in execution.RATE_LIMIT)

    def retry_after(self, headers: dict[str, str]) -> float | None:
        return execution.retry_after(headers)

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
            market, amount, order_type, limit_price, client_id, time_in_force
        )

    def parse_order(self, raw: dict[str, Any]) -> OrderView:
        return execution.parse_order(raw)

    def parse_rest_fills(self, raw_order: dict[str, Any]) -> list[FillView]:
        return []  # Bybit's create answer carries ids only; fills come on the stream

    def parse_trade(self, raw: dict[str, Any]) -> FillView:
        return execution.parse_trade(raw, self.account_currency)

    def parse_stream_event(self, raw: dict[str, Any]) -> tuple[OrderView | None, FillView | None]:
        return user_stream.parse_stream_event(raw, self.account_currency)

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
        return await execution.fetch_open_orders(ex, self.market_type, self.account_currency)

    async def fetch_order_trades(self, ex: Any, symbol: str, order_id: str) -> list[dict[str, Any]]:
        return await execution.fetch_order_trades(ex, self.market_type, symbol, order_id)

    async def fetch_account(self, ex: Any) -> AccountView:
        return await execution.fetch_account(ex, self.market_type, self.account_currency)

    async def fetch_klines(self, ex: Any, symbol: str, limit: int) -> list[list[Any]]:
        return await execution.fetch_klines(ex, self.market_type, symbol, limit)

    async def open_user_stream(self, ex: Any) -> None:
        await user_stream.open_user_stream(ex)

    def map_error(self, exc: BaseException, *, during: str) -> BaseException:
        return execution.map_error(exc, during=during)
