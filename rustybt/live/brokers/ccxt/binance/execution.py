"""Binance orders: request arguments, raw order/trade parsing, error codes, REST calls.

Raw JSON is read directly (Binance sends numbers as strings → ``Decimal``), so nothing
passes through a float. Error codes are mapped here because ccxt's tables do not apply
once the host is overridden:

* ``-2013`` (order does not exist), ``-2011`` (unknown order sent) → not found;
* ``-2010`` / ``-2019`` insufficient balance / margin → ``InsufficientFundsError``
  (other ``-2010`` messages, e.g. "Duplicate order sent.", → ``OrderRejected``);
* ``-1013`` filter failures, ``-4164`` min notional, ``-1111`` precision, ``-4014`` tick,
  any other 4xx → ``OrderRejected`` carrying the code and message;
* 429 / 418 → ``RateLimited(retry_after=)``; 5xx, timeouts, dropped connections →
  ``OrderStatusUnknown`` on a submit, ``BrokerConnectionError`` otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rustybt.assets import Asset
from rustybt.exceptions import (
    BrokerError,
    InsufficientFundsError,
    OrderNotFound,
    OrderRejected,
    OrderStatusUnknown,
)
from rustybt.live.brokers.ccxt.errors import VenueHTTPError, network_error
from rustybt.live.brokers.ccxt.venue import AccountView, FillView, OrderView

_ZERO = Decimal(0)
UNKNOWN_ORDER = frozenset({-2013, -2011})
_STATUS = {
    "NEW": "submitted",
    "PENDING_NEW": "submitted",
    "PARTIALLY_FILLED": "partially_filled",
    "FILLED": "filled",
    "CANCELED": "cancelled",
    "PENDING_CANCEL": "submitted",
    "REJECTED": "rejected",
    "EXPIRED": "expired",
    "EXPIRED_IN_MATCH": "expired",
}
_TYPES = {
    "MARKET": "market",
    "LIMIT": "limit",
    "LIMIT_MAKER": "limit",
    "STOP_LOSS": "stop",
    "STOP_MARKET": "stop",
    "STOP_LOSS_LIMIT": "stop_limit",
    "STOP": "stop_limit",
}


def _d(value: Any) -> Decimal:
    if value is None or value == "":
        return _ZERO
    return Decimal(str(value))


def _dt(ms: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, UTC)
    except (TypeError, ValueError):
        return None


def order_args(
    market: dict[str, Any],
    asset: Asset,
    amount: Decimal,
    order_type: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    client_id: str,
    time_in_force: str,
) -> tuple[str, str, str, str | None, dict[str, Any]]:
    side = "buy" if amount > 0 else "sell"
    qty = str(abs(amount))
    params: dict[str, Any] = {"newClientOrderId": client_id}
    if order_type == "market":
        return "market", side, qty, None, params
    params["timeInForce"] = time_in_force.upper()
    if order_type == "stop_limit":
        # STOP_LOSS_LIMIT: a buy triggers at price >= stop, a sell at price <= stop.
        params["stopLossPrice"] = str(stop_price)
    return "limit", side, qty, str(limit_price), params


def parse_order(raw: dict[str, Any]) -> OrderView:
    qty = _d(raw.get("origQty"))
    sign = 1 if str(raw.get("side", "BUY")).upper() == "BUY" else -1
    executed = _d(raw.get("executedQty"))
    quote = _d(raw.get("cummulativeQuoteQty", raw.get("cumQuote")))
    price = _d(raw.get("price"))
    stop = _d(raw.get("stopPrice"))
    return OrderView(
        order_id=str(raw["orderId"]),
        client_id=str(raw.get("clientOrderId") or ""),
        symbol=str(raw["symbol"]),
        amount=qty * sign,
        filled=executed * sign,
        order_type=_TYPES.get(str(raw.get("type")), "limit"),
        limit_price=price if price > 0 else None,
        stop_price=stop if stop > 0 else None,
        status=_STATUS.get(str(raw.get("status")), "submitted"),
        avg_price=(quote / executed) if executed > 0 else None,
    )


def parse_rest_fills(raw: dict[str, Any]) -> list[FillView]:
    fills = raw.get("fills") or []
    sign = 1 if str(raw.get("side", "BUY")).upper() == "BUY" else -1
    final = raw.get("status") == "FILLED"
    out = []
    for i, f in enumerate(fills):
        out.append(
            FillView(
                fill_id=str(f["tradeId"]),
                order_id=str(raw.get("orderId", "")),
                client_id=str(raw.get("clientOrderId") or "") or None,
                symbol=str(raw["symbol"]),
                amount=_d(f["qty"]) * sign,
                price=_d(f["price"]),
                fee=_d(f.get("commission")),
                fee_asset=str(f.get("commissionAsset") or ""),
                dt=_dt(raw.get("transactTime")),
                final=final and i == len(fills) - 1,
            )
        )
    return out


def parse_trade(raw: dict[str, Any]) -> FillView:
    """A spot ``myTrades`` or futures ``userTrades`` row."""
    if "isBuyer" in raw:
        buy = bool(raw["isBuyer"])
    else:
        buy = str(raw.get("side", "")).upper() == "BUY" or bool(raw.get("buyer"))
    qty = _d(raw["qty"])
    return FillView(
        fill_id=str(raw["id"]),
        order_id=str(raw["orderId"]),
        client_id=None,
        symbol=str(raw["symbol"]),
        amount=qty if buy else -qty,
        price=_d(raw["price"]),
        fee=_d(raw.get("commission")),
        fee_asset=str(raw.get("commissionAsset") or ""),
        dt=_dt(raw.get("time")),
    )


def map_error(exc: BaseException, *, during: str) -> BaseException:
    net = network_error(exc, during=during, venue="binance")
    if net is not None:
        return net
    if isinstance(exc, VenueHTTPError):
        where = f"Binance {exc.method} {exc.path}: code {exc.code}: {exc.msg}"
        if exc.code in UNKNOWN_ORDER:
            return OrderNotFound(where)
        if exc.code == -2019 or (exc.code == -2010 and "insufficient" in exc.msg.lower()):
            return InsufficientFundsError(f"{where} (reduce the amount or add funds)")
        if exc.code in (-2014, -2015, -1022) or exc.status == 401:
            return BrokerError(f"{where} (check the API key, its permissions and IP whitelist)")
        if exc.code == -1021:
            return BrokerError(f"{where} (the machine clock is off; sync it with NTP)")
        if during == "submit":
            return OrderRejected(where)
        return BrokerError(where)
    if during == "submit":
        # Anything unrecognised after the request may have left: outcome unknown.
        return OrderStatusUnknown(
            f"binance submit failed with {type(exc).__name__}; outcome unknown"
        )
    return BrokerError(f"binance {during} failed: {type(exc).__name__}: {str(exc)[:200]}")


# --- raw REST calls (ccxt's implicit API: signed, weighted, strings kept) ---
async def fetch_order(
    ex: Any, market_type: str, symbol: str, *, order_id: str | None, client_id: str | None
) -> dict[str, Any] | None:
    req: dict[str, Any] = {"symbol": symbol}
    if order_id:
        req["orderId"] = order_id
    else:
        req["origClientOrderId"] = client_id
    try:
        if market_type == "spot":
            return await ex.private_get_order(req)
        return await ex.fapiprivate_get_order(req)
    except VenueHTTPError as exc:
        if exc.code in UNKNOWN_ORDER:
            return None
        raise


async def cancel(
    ex: Any, market_type: str, symbol: str, *, order_id: str | None, client_id: str | None
) -> dict[str, Any]:
    req: dict[str, Any] = {"symbol": symbol}
    if order_id:
        req["orderId"] = order_id
    else:
        req["origClientOrderId"] = client_id
    if market_type == "spot":
        return await ex.private_delete_order(req)
    return await ex.fapiprivate_delete_order(req)


async def fetch_open_orders(ex: Any, market_type: str) -> list[dict[str, Any]]:
    if market_type == "spot":
        return await ex.private_get_openorders({})
    return await ex.fapiprivate_get_openorders({})


async def fetch_order_trades(
    ex: Any, market_type: str, symbol: str, order_id: str
) -> list[dict[str, Any]]:
    req = {"symbol": symbol, "orderId": order_id}
    if market_type == "spot":
        return await ex.private_get_mytrades(req)
    return await ex.fapiprivate_get_usertrades(req)


async def fetch_account(ex: Any, market_type: str, currency: str) -> AccountView:
    if market_type == "spot":
        raw = await ex.private_get_account({})
        balances = {
            str(b["asset"]).upper(): _d(b.get("free")) + _d(b.get("locked"))
            for b in raw.get("balances", [])
        }
        free = {str(b["asset"]).upper(): _d(b.get("free")) for b in raw.get("balances", [])}
        return AccountView(
            cash=balances.get(currency, _ZERO),
            buying_power=free.get(currency, _ZERO),
            balances=balances,
        )
    raw = await ex.fapiprivatev3_get_account({})
    rows = await ex.fapiprivatev3_get_positionrisk({})
    positions = {
        str(r["symbol"]): (_d(r.get("positionAmt")), _d(r.get("entryPrice")))
        for r in rows
        if _d(r.get("positionAmt")) != 0
    }
    return AccountView(
        cash=_d(raw.get("totalWalletBalance")),
        equity=_d(raw.get("totalMarginBalance")),
        buying_power=_d(raw.get("availableBalance")),
        positions=positions,
    )


async def fetch_klines(ex: Any, market_type: str, symbol: str, limit: int) -> list[list[Any]]:
    req = {"symbol": symbol, "interval": "1m", "limit": limit}
    if market_type == "spot":
        return await ex.public_get_klines(req)
    return await ex.fapipublic_get_klines(req)
