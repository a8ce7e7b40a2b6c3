"""Any other ccxt venue on the ccxt framework, through ccxt's unified API.

Same shape as every venue folder: ``config`` (capabilities read from ccxt's ``has`` /
``features``, client-id rule, credentials' variables), ``instruments`` (unified markets ->
``Asset``), ``execution`` (unified orders, trades, balances, errors) and ``user_stream``
(ccxt.pro watchers, or polling). :class:`GenericVenue` binds them to the
:class:`~rustybt.live.brokers.ccxt.venue.Venue` interface; the public class is
:class:`rustybt.live.brokers.ccxt_adapter.CCXTBrokerAdapter`.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.live.brokers.ccxt.generic import config, execution, instruments, user_stream
from rustybt.live.brokers.ccxt.venue import (
    AccountView,
    Capabilities,
    FillView,
    OrderView,
    Venue,
    replace_hosts,
)


class GenericVenue(Venue):
    """One ccxt exchange id and market type (``spot`` or ``swap``)."""

    market_types = config.MARKET_TYPES
    reversible_client_ids = 32
    stream_resync = (1.0, 30.0)  # see user_stream's docstring

    def __init__(
        self,
        exchange_id: str,
        market_type: str = "spot",
        *,
        account_currency: str = "USDT",
        options: dict[str, Any] | None = None,
        user_stream: str = "auto",
        password: str | None = None,
    ) -> None:
        eid = config.check_exchange_id(exchange_id)
        self.support = config.detect(eid, market_type)
        super().__init__(market_type)
        self.name = f"ccxt:{eid}"
        self.ccxt_id = eid
        self.key_env, self.secret_env, _ = config.env_names(eid)
        self.account_currency = account_currency.upper()
        self._options = dict(options or {})
        if user_stream not in ("auto", "stream", "poll"):
            from rustybt.exceptions import ConfigError

            raise ConfigError(
                f"user_stream={user_stream!r}: use 'auto' (stream when ccxt.pro can), "
                "'stream' or 'poll'"
            )
        if user_stream == "stream" and not self.support.streaming:
            from rustybt.exceptions import ConfigError

            raise ConfigError(
                f"{self.name} has no ccxt.pro watchOrders/watchMyTrades: it can only be "
                "polled; use user_stream='poll' (or 'auto')"
            )
        self.streaming = self.support.streaming and user_stream != "poll"
        self.symbols = execution.Symbols()
        self._precision_mode = 4
        self._traded: set[str] = set()  # unified symbols this process sent orders for
        self._password = password or os.environ.get(config.env_names(eid)[2])

    def capabilities(self) -> Capabilities:
        return self.support.capabilities

    def ccxt_credentials(self, key: str, secret: str) -> dict[str, Any]:
        creds = super().ccxt_credentials(key, secret)
        if self._password:  # the venue's API passphrase (OKX, KuCoin...)
            creds["password"] = self._password
        return creds

    def symbol_key(self, symbol: str) -> str:
        # ccxt's unified symbol (BTC/USDT, BTC/USDT:USDT) or the venue's own id
        if symbol in self.symbols.by_symbol:
            return self.symbols.by_symbol[symbol]
        if symbol in self.symbols.by_id:
            return symbol
        return super().symbol_key(symbol)

    def refusal_hint(self, order_type: str) -> str:
        if order_type in ("stop", "stop_limit") and self.support.missing_stops:
            return (
                f"{self.support.missing_stops}; place a limit order instead, or watch the "
                "price in the strategy and send a market order"
            )
        return ""

    def ccxt_options(self) -> dict[str, Any]:
        return config.ccxt_options(self.ccxt_id, self.market_type, self._options)

    def rewrite_urls(self, urls: dict[str, Any], base_url: str | None, ws_url: str | None) -> None:
        replace_hosts(urls, base_url, ws_url)

    def error_fields(self, status: int, response: Any) -> tuple[int | None, str] | None:
        return None  # ccxt's own tables map the venue's codes (see execution.map_error)

    def prepare(self, ex: Any) -> None:
        self._precision_mode = int(getattr(ex, "precisionMode", 4))

    def create_payload(self, resp: dict[str, Any]) -> dict[str, Any]:
        return resp

    def stream_payload(self, item: Any) -> dict[str, Any] | None:
        return item if isinstance(item, dict) else None

    def instrument(self, market: dict[str, Any]) -> Asset | None:
        self.symbols.add(market)
        return instruments.instrument(market, self.market_type, self._precision_mode, self.ccxt_id)

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
        self._traded.add(str(market["symbol"]))
        return execution.order_args(
            market, amount, order_type, limit_price, stop_price, client_id, time_in_force
        )

    def parse_order(self, raw: dict[str, Any]) -> OrderView:
        return execution.parse_order(raw, self.symbols)

    def parse_rest_fills(self, raw_order: dict[str, Any]) -> list[FillView]:
        return execution.parse_rest_fills(raw_order, self.symbols)

    def parse_trade(self, raw: dict[str, Any]) -> FillView:
        return execution.parse_trade(raw, self.symbols)

    def parse_stream_event(self, raw: dict[str, Any]) -> tuple[OrderView | None, FillView | None]:
        return user_stream.parse_stream_event(raw, self.symbols)

    async def fetch_order(
        self, ex: Any, symbol: str, *, order_id: str | None, client_id: str | None
    ) -> dict[str, Any] | None:
        return await execution.fetch_order(
            ex,
            self.symbols.symbol(symbol),
            order_id=order_id,
            client_id=client_id,
            closed_lookup=self.support.closed_lookup,
        )

    async def cancel(
        self, ex: Any, symbol: str, *, order_id: str | None, client_id: str | None
    ) -> dict[str, Any]:
        sym = self.symbols.symbol(symbol)
        if not order_id:
            found = await self.fetch_order(ex, symbol, order_id=None, client_id=client_id)
            if found is None:
                import ccxt

                raise ccxt.OrderNotFound(f"{self.name}: no order with client id {client_id}")
            order_id = str(found["id"])
        return await ex.cancel_order(order_id, sym)

    async def fetch_open_orders(self, ex: Any) -> list[dict[str, Any]]:
        if not self.support.open_orders_need_symbol:
            return list(await ex.fetch_open_orders())
        out: list[dict[str, Any]] = []
        for sym in sorted(self._traded):  # the venue lists open orders per symbol only
            out += await ex.fetch_open_orders(sym)
        return out

    async def fetch_order_trades(self, ex: Any, symbol: str, order_id: str) -> list[dict[str, Any]]:
        return await execution.fetch_order_trades(
            ex, self.symbols.symbol(symbol), order_id, self.support.order_trades
        )

    async def fetch_account(self, ex: Any) -> AccountView:
        return await execution.fetch_account(
            ex, self.market_type, self.account_currency, self.symbols
        )

    async def fetch_klines(self, ex: Any, symbol: str, limit: int) -> list[list[Any]]:
        return await execution.fetch_klines(ex, self.symbols.symbol(symbol), limit)

    async def open_user_stream(self, ex: Any) -> None:
        return None  # ccxt.pro connects and authenticates on the first watch

    def map_error(self, exc: BaseException, *, during: str) -> BaseException:
        return execution.map_error(exc, during=during, venue=self.name)
