"""Any ccxt venue: orders through ccxt's unified API, and its unified structures read.

The venue-specific adapters (Binance, Bybit) read each venue's raw JSON; this one reads
ccxt's unified order / trade / balance / position structures, whatever the venue. With
``exchange.number = str`` every number in them is the venue's string (or ccxt's exact
``Precise`` string), made ``Decimal`` here; nothing passes through a float.

Errors: ccxt maps each venue's codes to its own classes (``InsufficientFunds``,
``OrderNotFound``, ``InvalidOrder``, ``AuthenticationError``...); :func:`map_error`
maps those to :mod:`rustybt.exceptions`, after the framework's network rules (a timeout
or 5xx on a submit is ``OrderStatusUnknown``, never resent blind).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import ccxt

from rustybt.exceptions import (
    BrokerError,
    InsufficientFundsError,
    OrderNotFound,
    OrderRejected,
    OrderStatusUnknown,
)
from rustybt.live.brokers.ccxt.errors import network_error, safe_text
from rustybt.live.brokers.ccxt.venue import AccountView, FillView, OrderView

_ZERO = Decimal(0)
# ccxt's unified order status -> OrderStatus value ("open" is refined by the filled amount)
STATUS = {"closed": "filled", "canceled": "cancelled", "expired": "expired", "rejected": "rejected"}


def d(value: Any) -> Decimal:
    if value is None or value == "":
        return _ZERO
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return _ZERO


def _dt(ms: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, UTC)
    except (TypeError, ValueError):
        return None


class Symbols:
    """ccxt unified symbols (``BTC/USDT``) <-> the venue's market ids (``BTCUSDT``)."""

    def __init__(self) -> None:
        self.by_symbol: dict[str, str] = {}
        self.by_id: dict[str, str] = {}

    def add(self, market: dict[str, Any]) -> None:
        self.by_symbol[str(market["symbol"])] = str(market["id"])
        self.by_id[str(market["id"])] = str(market["symbol"])

    def market_id(self, symbol: Any) -> str:
        return self.by_symbol.get(str(symbol), str(symbol or ""))

    def symbol(self, market_id: str) -> str:
        return self.by_id.get(market_id, market_id)


def order_args(
    market: dict[str, Any],
    amount: Decimal,
    order_type: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    client_id: str,
    time_in_force: str,
) -> tuple[str, str, str, str | None, dict[str, Any]]:
    side = "buy" if amount > 0 else "sell"
    params: dict[str, Any] = {"clientOrderId": client_id}
    if stop_price is not None and order_type in ("stop", "stop_limit"):
        params["triggerPrice"] = str(stop_price)
    if order_type in ("market", "stop"):
        return "market", side, str(abs(amount)), None, params
    if time_in_force != "gtc":
        params["timeInForce"] = time_in_force.upper()
    return "limit", side, str(abs(amount)), str(limit_price), params


def parse_order(raw: dict[str, Any], symbols: Symbols) -> OrderView:
    """A unified order (create / fetch / cancel answer, or a ``watchOrders`` update)."""
    sign = -1 if raw.get("side") == "sell" else 1
    amount = d(raw.get("amount"))
    filled = d(raw.get("filled"))
    trigger = d(raw.get("triggerPrice") or raw.get("stopPrice"))
    price = d(raw.get("price"))
    otype = "market" if raw.get("type") == "market" else "limit"
    if trigger > 0:
        otype = "stop" if otype == "market" else "stop_limit"
    status = STATUS.get(str(raw.get("status")), "submitted")
    if status == "submitted" and filled > 0:
        status = "partially_filled"
    avg = d(raw.get("average"))
    return OrderView(
        order_id=str(raw["id"]),
        client_id=str(raw.get("clientOrderId") or ""),
        symbol=symbols.market_id(raw.get("symbol")),
        amount=amount * sign,
        filled=filled * sign,
        order_type=otype,
        limit_price=price if price > 0 and otype in ("limit", "stop_limit") else None,
        stop_price=trigger if trigger > 0 else None,
        status=status,
        avg_price=avg if avg > 0 else None,
        reject_reason="rejected by the venue" if status == "rejected" else "",
    )


def parse_trade(raw: dict[str, Any], symbols: Symbols) -> FillView:
    """A unified trade (``fetchMyTrades``, ``watchMyTrades``, an order's ``trades``)."""
    sign = -1 if raw.get("side") == "sell" else 1
    fee = raw.get("fee") or {}
    return FillView(
        fill_id=str(raw["id"]),
        order_id=str(raw.get("order") or ""),
        client_id=None,
        symbol=symbols.market_id(raw.get("symbol")),
        amount=d(raw.get("amount")) * sign,
        price=d(raw.get("price")),
        fee=d(fee.get("cost")),
        fee_asset=str(fee.get("currency") or ""),
        dt=_dt(raw.get("timestamp")),
    )


def parse_rest_fills(raw: dict[str, Any], symbols: Symbols) -> list[FillView]:
    """Fills a create answer carries (``trades``; some venues send them, most do not)."""
    out = []
    sign_side = raw.get("side")
    for t in raw.get("trades") or []:
        if not isinstance(t, dict) or t.get("id") is None:
            continue  # a fill without the venue's trade id cannot be deduplicated
        t = {**t, "side": t.get("side") or sign_side, "symbol": t.get("symbol") or raw["symbol"]}
        out.append(parse_trade(t, symbols))
    return out


def map_error(exc: BaseException, *, during: str, venue: str) -> BaseException:
    net = network_error(exc, during=during, venue=venue)
    if net is not None:
        return net
    text = safe_text(exc)
    answered = getattr(exc, "venue_response", "")
    where = f"{venue} {during}: {type(exc).__name__}: {text}" + (
        f" (venue answered {answered})" if answered else ""
    )
    if isinstance(exc, ccxt.InsufficientFunds):
        return InsufficientFundsError(f"{where} (reduce the amount or add funds)")
    if isinstance(exc, ccxt.OrderNotFound):
        return OrderNotFound(where)
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended):
        return BrokerError(f"{where} (check the API key, its permissions and IP whitelist)")
    if isinstance(exc, ccxt.InvalidNonce):
        return BrokerError(f"{where} (the machine clock is off; sync it with NTP)")
    if during == "submit":
        if isinstance(exc, ccxt.ExchangeError):
            return OrderRejected(where)  # the venue answered and refused
        return OrderStatusUnknown(
            f"{venue} submit failed with {type(exc).__name__}; outcome unknown"
        )
    return BrokerError(where)


# --- unified calls ---
async def fetch_order(
    ex: Any,
    symbol: str,
    *,
    order_id: str | None,
    client_id: str | None,
    closed_lookup: str | None,
) -> dict[str, Any] | None:
    """By the venue's id (``fetchOrder``), or by our client id: open orders first, then
    the recent closed ones (``fetchOrders`` / ``fetchClosedOrders``)."""
    if order_id:
        if ex.has.get("fetchOrder"):
            try:
                return await ex.fetch_order(order_id, symbol)
            except ccxt.OrderNotFound:
                return None
        client_id = None
    for o in await ex.fetch_open_orders(symbol):
        if (order_id and str(o.get("id")) == order_id) or (
            client_id and o.get("clientOrderId") == client_id
        ):
            return o
    if closed_lookup is None:
        return None
    method = {
        "fetchOrders": ex.fetch_orders,
        "fetchClosedOrders": ex.fetch_closed_orders,
        "fetchCanceledAndClosedOrders": ex.fetch_canceled_and_closed_orders,
    }[closed_lookup]
    for o in reversed(await method(symbol, None, 100)):
        if (order_id and str(o.get("id")) == order_id) or (
            client_id and o.get("clientOrderId") == client_id
        ):
            return o
    return None


async def fetch_order_trades(ex: Any, symbol: str, order_id: str, how: str) -> list[dict[str, Any]]:
    if how == "fetchOrderTrades":
        try:
            return list(await ex.fetch_order_trades(order_id, symbol))
        except ccxt.NotSupported:
            pass  # has['fetchOrderTrades'] may hold for one market type only (Binance: spot)
    trades = await ex.fetch_my_trades(symbol, None, 100)
    return [t for t in trades if str(t.get("order")) == order_id]


async def fetch_account(ex: Any, market_type: str, currency: str, symbols: Symbols) -> AccountView:
    bal = await ex.fetch_balance()
    total = bal.get("total") or {}
    free = bal.get("free") or {}
    balances = {str(k).upper(): d(v) for k, v in total.items() if v not in (None, "")}
    cash = balances.get(currency, _ZERO)
    if market_type == "spot":
        return AccountView(cash=cash, buying_power=d(free.get(currency)), balances=balances)
    positions: dict[str, tuple[Decimal, Decimal]] = {}
    unrealized = _ZERO
    for p in await ex.fetch_positions():
        size = d(p.get("contracts")) * (d(p.get("contractSize")) or Decimal(1))
        if size == 0:
            continue
        signed = -size if p.get("side") == "short" else size
        positions[symbols.market_id(p.get("symbol"))] = (signed, d(p.get("entryPrice")))
        unrealized += d(p.get("unrealizedPnl"))
    # a derivatives account is worth its wallet plus the positions' unrealized PnL (not
    # their notional, which the generic spot rule would add)
    return AccountView(
        cash=cash,
        equity=cash + unrealized,
        buying_power=d(free.get(currency)),
        balances=balances,
        positions=positions,
    )


async def fetch_klines(ex: Any, symbol: str, limit: int) -> list[list[Any]]:
    """1-minute candles, oldest first, as ``[open ms, o, h, l, c, volume, close ms]``."""
    rows = await ex.fetch_ohlcv(symbol, "1m", None, limit)
    return [[int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[0]) + 59_999] for r in rows]
