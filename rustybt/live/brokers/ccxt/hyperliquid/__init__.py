"""Hyperliquid (perpetuals) on the ccxt framework.

Same shape as every venue folder: ``config`` (credentials, capabilities, ccxt options,
cloid rule), ``instruments`` (szDecimals -> ``Asset``; the significant-figures rule),
``execution`` (the ccxt class without unasked actions, order arguments, raw parsing,
errors, REST calls), ``user_stream`` (the ``userFills`` / ``orderUpdates``
subscriptions) and ``wallet`` (keys and addresses). :class:`HyperliquidVenue` binds
them to the :class:`~rustybt.live.brokers.ccxt.venue.Venue` interface.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.exceptions import MissingCredentialsError
from rustybt.live.brokers.ccxt.hyperliquid import (
    config,
    execution,
    instruments,
    user_stream,
    wallet,
)
from rustybt.live.brokers.ccxt.venue import (
    AccountView,
    Capabilities,
    FillView,
    OrderView,
    Venue,
    replace_hosts,
)


class HyperliquidVenue(Venue):
    name = "hyperliquid"
    ccxt_id = "hyperliquid"
    key_env = config.WALLET_ENV
    secret_env = config.KEY_ENV
    account_currency = "USDC"
    market_types = ("perps",)

    def __init__(self) -> None:
        super().__init__("perps")

    # --- configuration ---
    def capabilities(self) -> Capabilities:
        return config.PERPS

    def credentials(self, api_key: str | None, api_secret: str | None) -> tuple[str, str]:
        """``(account address, private key)``; the address defaults to the key's own."""
        key = api_secret or os.environ.get(config.KEY_ENV)
        if not key:
            raise MissingCredentialsError(
                f"hyperliquid needs a wallet private key: set {config.KEY_ENV} in the "
                "environment or pass private_key= (preferably an API wallet's key, which "
                "can trade but not withdraw)"
            )
        key = wallet.normalize_private_key(key)
        account = api_key or os.environ.get(config.WALLET_ENV)
        address = wallet.normalize_address(account) if account else wallet.address_of(key)
        return address, key

    def ccxt_credentials(self, key: str, secret: str) -> dict[str, Any]:
        return {"walletAddress": key, "privateKey": secret}

    def exchange_class(self, base: type) -> type:
        return execution.exchange_class(base)

    def ccxt_options(self) -> dict[str, Any]:
        return config.ccxt_options()

    def rewrite_urls(self, urls: dict[str, Any], base_url: str | None, ws_url: str | None) -> None:
        replace_hosts(urls, base_url, ws_url)

    def error_fields(self, status: int, response: Any) -> tuple[int | None, str] | None:
        return execution.error_fields(status, response)

    # --- instruments ---
    def instrument(self, market: dict[str, Any]) -> Asset | None:
        return instruments.instrument(market)

    def market_key(self, market: dict[str, Any]) -> str:
        return str((market.get("info") or {}).get("name") or market["baseName"])

    def symbol_key(self, symbol: str) -> str:
        # "BTC", "BTC/USDC:USDC" and "BTC-PERP" all name the BTC perpetual
        return symbol.split("/", 1)[0].split(":", 1)[0].removesuffix("-PERP").upper()

    def check_price(self, asset: Asset, name: str, price: Decimal) -> None:
        instruments.check_price(asset, name, price)

    # --- orders ---
    def legal_client_id(self, client_id: str) -> bool:
        return False  # a cloid is 16 bytes of hex: every engine id is hashed into one

    def hash_client_id(self, client_id: str) -> str:
        return config.cloid(client_id)

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
        return []  # an order action answers with ids only; fills come on userFills

    def parse_trade(self, raw: dict[str, Any]) -> FillView:
        return execution.parse_trade(raw)

    def parse_stream_event(self, raw: dict[str, Any]) -> tuple[OrderView | None, FillView | None]:
        return user_stream.parse_stream_event(raw)

    async def fetch_order(
        self, ex: Any, symbol: str, *, order_id: str | None, client_id: str | None
    ) -> dict[str, Any] | None:
        return await execution.fetch_order(ex, symbol, order_id=order_id, client_id=client_id)

    async def cancel(
        self, ex: Any, symbol: str, *, order_id: str | None, client_id: str | None
    ) -> dict[str, Any]:
        return await execution.cancel(ex, symbol, order_id=order_id, client_id=client_id)

    async def fetch_open_orders(self, ex: Any) -> list[dict[str, Any]]:
        return await execution.fetch_open_orders(ex)

    async def fetch_order_trades(self, ex: Any, symbol: str, order_id: str) -> list[dict[str, Any]]:
        return await execution.fetch_order_trades(ex, symbol, order_id)

    async def fetch_account(self, ex: Any) -> AccountView:
        return await execution.fetch_account(ex)

    async def fetch_klines(self, ex: Any, symbol: str, limit: int) -> list[list[Any]]:
        return await execution.fetch_klines(ex, symbol, limit)

    async def open_user_stream(self, ex: Any) -> None:
        await user_stream.open_user_stream(ex)

    def map_error(self, exc: BaseException, *, during: str) -> BaseException:
        return execution.map_error(exc, during=during)
