"""What a venue plugs into the ccxt framework: a small :class:`Venue` subclass.

Everything generic (the ccxt instance, exact money, pre-send checks, client ids, error
classes, the user-stream supervisor, resync, connection events) lives in
:mod:`rustybt.live.brokers.ccxt.adapter`; a venue supplies only what differs: its ccxt id,
credentials' environment variables, URL layout, capabilities, how its raw order / trade /
account messages read, and its error codes. The venue's parsers return the plain views
below, so the adapter never reads a venue's field names.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.exceptions import MissingCredentialsError
from rustybt.live.brokers.base import Capabilities
from rustybt.live.brokers.ccxt.client_ids import default_hash

__all__ = ["AccountView", "Capabilities", "FillView", "OrderView", "Venue", "replace_hosts"]


@dataclass(slots=True)
class OrderView:
    """A venue order, read from its raw message (numbers Decimal, amounts signed)."""

    order_id: str
    client_id: str
    symbol: str  # the venue's market id, e.g. BTCUSDT
    amount: Decimal
    filled: Decimal
    order_type: str  # market, limit, stop, stop_limit
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: str  # an OrderStatus value: submitted, partially_filled, filled, cancelled...
    avg_price: Decimal | None = None
    reject_reason: str = ""


@dataclass(slots=True)
class FillView:
    """One venue trade of one of our orders."""

    fill_id: str
    order_id: str
    client_id: str | None
    symbol: str
    amount: Decimal  # signed
    price: Decimal
    fee: Decimal
    fee_asset: str
    dt: datetime | None = None
    final: bool = False


@dataclass(slots=True)
class AccountView:
    """Cash in the account currency, and holdings or positions by venue market id."""

    cash: Decimal
    equity: Decimal | None = None
    buying_power: Decimal | None = None
    balances: dict[str, Decimal] = field(default_factory=dict)  # asset -> total (spot)
    positions: dict[str, tuple[Decimal, Decimal]] = field(
        default_factory=dict
    )  # sym -> (amt, entry)


class Venue(ABC):
    """One venue's specifics. Subclasses set the class attributes and the methods."""

    name: str = ""
    ccxt_id: str = ""
    key_env: str = ""
    secret_env: str = ""
    account_currency: str = "USDT"
    weight_header: str = ""  # response header with the venue's used request weight
    market_types: tuple[str, ...] = ("spot",)

    #: True: fills and order states arrive on a user stream (ccxt.pro watchers);
    #: False: the adapter polls open orders and their trades every ``poll_interval``.
    streaming: bool = True
    #: > 0: ids the venue does not accept are sent in the reversible ``r`` + base-62 form
    #: up to this length (letters-and-digits venues; see :mod:`.client_ids`), else hashed.
    reversible_client_ids: int = 0
    #: ``(first, every)`` seconds: resync open orders and fills this long after the stream
    #: opened and then periodically, for a venue whose stream cannot confirm that its
    #: subscription is active (None: the venue's ``open_user_stream`` confirms it).
    stream_resync: tuple[float, float] | None = None

    def __init__(self, market_type: str) -> None:
        self.market_type = market_type

    # --- hooks with defaults (the venue-specific adapters read the venue's raw JSON) ---
    def prepare(self, ex: Any) -> None:  # noqa: B027 - optional hook
        """Called once with the new ccxt instance, before markets are loaded."""

    def create_payload(self, resp: dict[str, Any]) -> dict[str, Any]:
        """What :meth:`parse_order` reads from a ``create_order`` answer (the raw JSON)."""
        return resp.get("info") or {}

    def stream_payload(self, item: Any) -> dict[str, Any] | None:
        """What :meth:`parse_stream_event` reads from a watched item (the raw JSON)."""
        info = item.get("info") if isinstance(item, dict) else None
        return info if isinstance(info, dict) else None

    def refusal_hint(self, order_type: str) -> str:
        """Why the venue lacks ``order_type`` and what to do instead ("" if nothing to add)."""
        return ""

    # --- configuration ---
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    def credentials(self, api_key: str | None, api_secret: str | None) -> tuple[str, str]:
        """``(key, secret)`` from the arguments or the environment; raises
        :class:`MissingCredentialsError` naming the variables when one is missing. A venue
        whose credentials are not a key pair (Hyperliquid: a wallet's private key)
        overrides this; the message must never contain a secret."""
        key = api_key or os.environ.get(self.key_env)
        secret = api_secret or os.environ.get(self.secret_env)
        missing = [n for n, v in ((self.key_env, key), (self.secret_env, secret)) if not v]
        if missing:
            raise MissingCredentialsError(
                f"{self.name} needs API credentials: set {' and '.join(missing)} in the "
                "environment or pass api_key=/api_secret= (a trade-only key, no withdrawals)"
            )
        return str(key), str(secret)

    def ccxt_credentials(self, key: str, secret: str) -> dict[str, Any]:
        """The ccxt constructor's credential entries (default ``apiKey`` / ``secret``)."""
        return {"apiKey": key, "secret": secret}

    def exchange_class(self, base: type) -> type:
        """The ccxt class to instantiate: ``base`` (ccxt.pro's class for :attr:`ccxt_id`),
        or a venue subclass of it that switches off what ccxt does unasked."""
        return base

    @abstractmethod
    def ccxt_options(self) -> dict[str, Any]:
        """Options for the ccxt instance (market types to load, default type...)."""

    @abstractmethod
    def rewrite_urls(self, urls: dict[str, Any], base_url: str | None, ws_url: str | None) -> None:
        """Replace scheme+host of every REST (``base_url``) / websocket (``ws_url``) URL."""

    def error_fields(self, status: int, response: Any) -> tuple[int | None, str] | None:
        """``(venue code, message)`` when a response is an error, else None.

        The default reads Binance-style ``{"code", "msg"}`` bodies of HTTP errors; a venue
        that answers errors with HTTP 200 and a code in the body (Bybit's ``retCode``)
        overrides this, so every venue's refusals reach :meth:`map_error` the same way.
        """
        if status < 400:
            return None
        if not isinstance(response, dict):
            return None, ""
        raw = response.get("code")
        try:
            code = int(raw) if raw is not None else None
        except (TypeError, ValueError):
            code = None
        return code, str(response.get("msg") or "")

    def is_rate_limited(self, status: int, fields: tuple[int | None, str] | None) -> bool:
        """True when a response says "too many requests" (default: HTTP 429 / 418)."""
        return status in (429, 418)

    def retry_after(self, headers: dict[str, str]) -> float | None:
        """Seconds to hold every request after a rate limit (None: ``Retry-After`` or 1 s)."""
        return None

    def is_mainnet(self, testnet: bool, base_url: str | None) -> bool:
        """True when orders would reach real money (no testnet, no override)."""
        return not testnet and base_url is None

    # --- instruments ---
    @abstractmethod
    def instrument(self, market: dict[str, Any]) -> Asset | None:
        """An :class:`Asset` (tick, lot, min notional) from a ccxt market; None to skip."""

    def market_key(self, market: dict[str, Any]) -> str:
        """The venue's own name of a market, which its orders and fills carry
        (default: ccxt's market ``id``, e.g. ``BTCUSDT``)."""
        return str(market["id"])

    def symbol_key(self, symbol: str) -> str:
        """A user's symbol (``BTCUSDT`` or ccxt's ``BTC/USDT``) as a :meth:`market_key`."""
        return symbol.replace("/", "").split(":", 1)[0].upper()

    def check_price(self, asset: Asset, name: str, price: Decimal) -> None:  # noqa: B027
        """Venue price rules beyond the tick (already checked); raise ``InvalidOrder``."""

    # --- orders ---
    @abstractmethod
    def legal_client_id(self, client_id: str) -> bool:
        """True when the venue accepts ``client_id`` as its client order id unchanged."""

    def hash_client_id(self, client_id: str) -> str:
        """The venue client id sent for an id it would refuse: deterministic, so the
        same id is found again after a restart (default ``h`` + 31 hex of SHA-256)."""
        return default_hash(client_id)

    @abstractmethod
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
        """``(ccxt type, side, amount, price, params)`` for ``create_order`` (strings)."""

    @abstractmethod
    def parse_order(self, raw: dict[str, Any]) -> OrderView:
        """An order from the venue's raw order JSON (REST)."""

    @abstractmethod
    def parse_rest_fills(self, raw_order: dict[str, Any]) -> list[FillView]:
        """Fills carried by a create-order response (empty if none)."""

    @abstractmethod
    def parse_trade(self, raw: dict[str, Any]) -> FillView:
        """A fill from the venue's raw trade JSON (REST trade history)."""

    @abstractmethod
    def parse_stream_event(self, raw: dict[str, Any]) -> tuple[OrderView | None, FillView | None]:
        """Order state and fill (if any) from one raw user-stream order event."""

    # --- raw REST calls ---
    @abstractmethod
    async def fetch_order(
        self, ex: Any, symbol: str, *, order_id: str | None, client_id: str | None
    ) -> dict[str, Any] | None:
        """The raw order, or None when the venue does not know it."""

    @abstractmethod
    async def cancel(
        self, ex: Any, symbol: str, *, order_id: str | None, client_id: str | None
    ) -> dict[str, Any]: ...

    @abstractmethod
    async def fetch_open_orders(self, ex: Any) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def fetch_order_trades(
        self, ex: Any, symbol: str, order_id: str
    ) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def fetch_account(self, ex: Any) -> AccountView: ...

    @abstractmethod
    async def fetch_klines(self, ex: Any, symbol: str, limit: int) -> list[list[Any]]: ...

    # --- user stream ---
    @abstractmethod
    async def open_user_stream(self, ex: Any) -> None:
        """Return once the user-data stream is connected and subscribed."""

    # --- errors ---
    @abstractmethod
    def map_error(self, exc: BaseException, *, during: str) -> BaseException:
        """A :mod:`rustybt.exceptions` error for a ccxt/network error (``during`` says
        what was being done: submit, cancel, query)."""


def replace_hosts(urls: dict[str, Any], base_url: str | None, ws_url: str | None) -> None:
    """Rewrite ccxt's ``urls['api']`` in place: the scheme and host of every REST URL
    become ``base_url`` and of every websocket URL ``ws_url``; paths are kept
    (``https://api.{hostname}/v5`` -> ``http://127.0.0.1:8080/v5``)."""
    api = urls.get("api")
    if isinstance(api, dict):
        urls["api"] = _replace(api, base_url, ws_url)


def _replace(node: Any, base_url: str | None, ws_url: str | None) -> Any:
    if isinstance(node, dict):
        return {k: _replace(v, base_url, ws_url) for k, v in node.items()}
    if isinstance(node, str) and "://" in node:
        scheme, rest = node.split("://", 1)
        path = "/" + rest.split("/", 1)[1] if "/" in rest else ""
        if scheme in ("http", "https") and base_url:
            return base_url + path
        if scheme in ("ws", "wss") and ws_url:
            return ws_url + path
    return node
