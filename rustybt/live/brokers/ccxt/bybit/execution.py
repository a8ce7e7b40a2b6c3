"""Bybit v5 orders: request arguments, raw order/execution parsing, retCodes, REST calls.

Bybit answers errors with HTTP 200 and ``{"retCode", "retMsg", "result", "retExtInfo",
"time"}``; :func:`error_fields` hands them to the framework as venue errors and
:func:`map_error` maps the codes Bybit documents:

* ``110001`` (order not exists or too late to cancel), ``170213`` (spot: order does not
  exist) -> not found;
* ``110004`` / ``110007`` / ``110012`` / ``170131`` insufficient balance ->
  ``InsufficientFundsError``;
* ``10003`` / ``10004`` / ``10005`` / ``10010`` (key, signature, permission, IP) and
  ``10002`` (timestamp / recv_window) -> ``BrokerError`` saying what to fix;
* ``10006`` / ``10018`` (too many visits) and HTTP 403 -> ``RateLimited``;
* ``10001`` (params), ``110072`` (duplicate orderLinkId), ``170130`` and any other code on
  a submit -> ``OrderRejected`` carrying the code and message;
* 5xx, timeouts, dropped connections -> ``OrderStatusUnknown`` on a submit.

Numbers arrive as strings and become ``Decimal``; nothing passes through a float.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rustybt.exceptions import (
    BrokerError,
    InsufficientFundsError,
    OrderNotFound,
    OrderRejected,
    OrderStatusUnknown,
    RateLimited,
)
from rustybt.live.brokers.ccxt.errors import VenueHTTPError, network_error
from rustybt.live.brokers.ccxt.venue import AccountView, FillView, OrderView

_ZERO = Decimal(0)
UNKNOWN_ORDER = frozenset({110001, 170213})
INSUFFICIENT = frozenset({110004, 110007, 110012, 170131})
AUTH = frozenset({10003, 10004, 10005, 10010})
RATE_LIMIT = frozenset({10006, 10018})
STATUS = {
    "Created": "submitted",
    "New": "submitted",
    "Untriggered": "submitted",
    "Triggered": "submitted",
    "PartiallyFilled": "partially_filled",
    "Filled": "filled",
    "Cancelled": "cancelled",
    "PartiallyFilledCanceled": "cancelled",
    "Deactivated": "cancelled",
    "Rejected": "rejected",
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


def error_fields(status: int, response: Any) -> tuple[int | None, str] | None:
    if isinstance(response, dict) and "retCode" in response:
        try:
            code = int(response["retCode"])
        except (TypeError, ValueError):
            code = None
        if code == 0 and status < 400:
            return None
        return code, str(response.get("retMsg") or "")
    if status >= 400:
        return None, ""
    return None


def retry_after(headers: dict[str, str]) -> float | None:
    """Whole seconds until ``X-Bapi-Limit-Reset-Timestamp`` (ms), rounded up; None if absent."""
    raw = next((v for k, v in headers.items() if k.lower() == "x-bapi-limit-reset-timestamp"), None)
    try:
        reset_ms = int(raw) if raw is not None else None
    except ValueError:
        reset_ms = None
    if reset_ms is None:
        return None
    wait_ms = max(0, reset_ms - int(time.time() * 1000))
    return float(max(1, math.ceil(wait_ms / 1000)))


def order_args(
    market: dict[str, Any],
    amount: Decimal,
    order_type: str,
    limit_price: Decimal | None,
    client_id: str,
    time_in_force: str,
) -> tuple[str, str, str, str | None, dict[str, Any]]:
    side = "buy" if amount > 0 else "sell"
    qty = str(abs(amount))
    params: dict[str, Any] = {"orderLinkId": client_id}
    if order_type == "market":
        if market.get("spot"):
            # Bybit reads a spot market Buy's qty in the quote coin unless told otherwise.
            params["marketUnit"] = "baseCoin"
        return "market", side, qty, None, params
    params["timeInForce"] = time_in_force.upper()
    return "limit", side, qty, str(limit_price), params


def parse_order(raw: dict[str, Any]) -> OrderView:
    """A v5 order row (REST list or the ``order`` topic). A create/cancel answer carries
    only ``orderId`` and ``orderLinkId``; it reads as a submitted order of amount 0."""
    sign = 1 if str(raw.get("side", "Buy")) == "Buy" else -1
    qty = _d(raw.get("qty"))
    executed = _d(raw.get("cumExecQty"))
    price = _d(raw.get("price"))
    trigger = _d(raw.get("triggerPrice"))
    avg = _d(raw.get("avgPrice"))
    otype = "market" if raw.get("orderType") == "Market" else "limit"
    if trigger > 0:
        otype = "stop" if otype == "market" else "stop_limit"
    status = STATUS.get(str(raw.get("orderStatus")), "submitted")
    return OrderView(
        order_id=str(raw["orderId"]),
        client_id=str(raw.get("orderLinkId") or ""),
        symbol=str(raw.get("symbol") or ""),
        amount=qty * sign,
        filled=executed * sign,
        order_type=otype,
        limit_price=price if price > 0 and otype in ("limit", "stop_limit") else None,
        stop_price=trigger if trigger > 0 else None,
        status=status,
        avg_price=avg if avg > 0 else None,
        reject_reason=str(raw.get("rejectReason") or "") if status == "rejected" else "",
    )


def parse_trade(raw: dict[str, Any], settle: str) -> FillView:
    """A v5 execution row (``/v5/execution/list`` or the ``execution`` topic)."""
    sign = 1 if str(raw.get("side")) == "Buy" else -1
    return FillView(
        fill_id=str(raw["execId"]),
        order_id=str(raw["orderId"]),
        client_id=str(raw.get("orderLinkId") or "") or None,
        symbol=str(raw["symbol"]),
        amount=_d(raw["execQty"]) * sign,
        price=_d(raw["execPrice"]),
        fee=_d(raw.get("execFee")),
        fee_asset=str(raw.get("feeCurrency") or settle),
        dt=_dt(raw.get("execTime")),
        final=_d(raw.get("leavesQty")) == 0,
    )


def map_error(exc: BaseException, *, during: str) -> BaseException:
    if isinstance(exc, VenueHTTPError) and (exc.code in RATE_LIMIT or exc.status == 403):
        return RateLimited(
            f"Bybit rate limit ({exc.method} {exc.path}: code {exc.code}: {exc.msg}); the "
            "request was not processed",
            retry_after=exc.retry_after or 1.0,
        )
    net = network_error(exc, during=during, venue="bybit")
    if net is not None:
        return net
    if isinstance(exc, VenueHTTPError):
        where = f"Bybit {exc.method} {exc.path}: code {exc.code}: {exc.msg}"
        if exc.code in UNKNOWN_ORDER:
            return OrderNotFound(where)
        if exc.code in INSUFFICIENT:
            return InsufficientFundsError(f"{where} (reduce the amount or add funds)")
        if exc.code in AUTH or exc.status == 401:
            return BrokerError(f"{where} (check the API key, its permissions and IP whitelist)")
        if exc.code == 10002:
            return BrokerError(f"{where} (the machine clock is off; sync it with NTP)")
        if during == "submit":
            return OrderRejected(where)
        return BrokerError(where)
    if during == "submit":
        return OrderStatusUnknown(f"bybit submit failed with {type(exc).__name__}; outcome unknown")
    return BrokerError(f"bybit {during} failed: {type(exc).__name__}: {str(exc)[:200]}")


def _result(resp: dict[str, Any]) -> dict[str, Any]:
    return resp.get("result") or {}


# --- raw REST calls (ccxt's implicit API: signed, strings kept) ---
async def fetch_order(
    ex: Any, category: str, symbol: str, *, order_id: str | None, client_id: str | None
) -> dict[str, Any] | None:
    """Open orders from ``/v5/order/realtime``, closed ones from ``/v5/order/history``."""
    req: dict[str, Any] = {"category": category, "symbol": symbol}
    if order_id:
        req["orderId"] = order_id
    else:
        req["orderLinkId"] = client_id
    for call in (ex.private_get_v5_order_realtime, ex.private_get_v5_order_history):
        rows = _result(await call(dict(req))).get("list") or []
        if rows:
            return rows[0]
    return None


async def cancel(
    ex: Any, category: str, symbol: str, *, order_id: str | None, client_id: str | None
) -> dict[str, Any]:
    req: dict[str, Any] = {"category": category, "symbol": symbol}
    if order_id:
        req["orderId"] = order_id
    else:
        req["orderLinkId"] = client_id
    return _result(await ex.private_post_v5_order_cancel(req))


async def fetch_open_orders(ex: Any, category: str, settle: str) -> list[dict[str, Any]]:
    req: dict[str, Any] = {"category": category, "openOnly": 0, "limit": 50}
    if category == "linear":
        req["settleCoin"] = settle
    out: list[dict[str, Any]] = []
    for _ in range(20):  # bounded paging (50 per page)
        result = _result(await ex.private_get_v5_order_realtime(dict(req)))
        out += result.get("list") or []
        cursor = result.get("nextPageCursor")
        if not cursor:
            break
        req["cursor"] = cursor
    return out


async def fetch_order_trades(
    ex: Any, category: str, symbol: str, order_id: str
) -> list[dict[str, Any]]:
    req = {"category": category, "symbol": symbol, "orderId": order_id, "limit": 100}
    return _result(await ex.private_get_v5_execution_list(req)).get("list") or []


async def fetch_account(ex: Any, category: str, currency: str) -> AccountView:
    wallet = _result(await ex.private_get_v5_account_wallet_balance({"accountType": "UNIFIED"}))
    acct = (wallet.get("list") or [{}])[0]
    coins = {str(c.get("coin")).upper(): c for c in acct.get("coin") or []}
    balances = {c: _d(row.get("walletBalance")) for c, row in coins.items()}
    cash_row = coins.get(currency, {})
    cash = _d(cash_row.get("walletBalance"))
    if category == "spot":
        locked = _d(cash_row.get("locked"))
        return AccountView(cash=cash, buying_power=cash - locked, balances=balances)
    rows = (
        _result(
            await ex.private_get_v5_position_list({"category": "linear", "settleCoin": currency})
        ).get("list")
        or []
    )
    positions: dict[str, tuple[Decimal, Decimal]] = {}
    for r in rows:
        size = _d(r.get("size"))
        if size == 0:
            continue
        signed = size if r.get("side") == "Buy" else -size
        positions[str(r["symbol"])] = (signed, _d(r.get("avgPrice")))
    return AccountView(
        cash=cash,
        equity=_d(acct.get("totalEquity")) if acct.get("totalEquity") else None,
        buying_power=_d(acct.get("totalAvailableBalance")),
        balances=balances,
        positions=positions,
    )


async def fetch_klines(ex: Any, category: str, symbol: str, limit: int) -> list[list[Any]]:
    """1-minute klines, oldest first, as ``[open ms, o, h, l, c, volume, close ms]``."""
    req = {"category": category, "symbol": symbol, "interval": "1", "limit": limit}
    rows = _result(await ex.public_get_v5_market_kline(req)).get("list") or []
    return [[int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[0]) + 59_999] for r in reversed(rows)]
