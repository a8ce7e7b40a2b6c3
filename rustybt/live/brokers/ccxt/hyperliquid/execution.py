"""Hyperliquid orders: the ccxt class, request arguments, raw parsing, errors, REST calls.

Everything goes through two endpoints: ``POST /info`` (queries, unsigned, by ``user``
address) and ``POST /exchange`` (actions signed with EIP-712 by the wallet's key; ccxt
builds and signs them). Answers are HTTP 200 with ``{"status": "ok", "response": ...}``
or ``{"status": "err", "response": "<message>"}``; an order or cancel can also fail
alone inside an ok answer (``statuses: [{"error": "..."}]``). Hyperliquid's errors are
text without a code; :func:`map_error` reads them:

* ``Insufficient margin ...`` -> ``InsufficientFundsError``;
* ``Order was never placed, already canceled, or filled`` -> ``OrderNotFound``;
* ``User or API Wallet ... does not exist`` (wrong key or account) -> ``OrderRejected``
  on a submit (nothing was placed), else ``BrokerError``;
* any other refusal of an order (tick, minimum value, duplicate cloid, no liquidity for
  an Ioc order...) -> ``OrderRejected`` with the venue's message;
* HTTP 429 -> ``RateLimited``; 5xx, timeouts, dropped connections on a submit ->
  ``OrderStatusUnknown`` (resolved by cloid).

Numbers are strings on the wire and become ``Decimal`` here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt

from rustybt.exceptions import (
    BrokerError,
    InsufficientFundsError,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
    OrderStatusUnknown,
)
from rustybt.live.brokers.ccxt.errors import VenueHTTPError, network_error
from rustybt.live.brokers.ccxt.hyperliquid.signing import sign_l1
from rustybt.live.brokers.ccxt.venue import AccountView, FillView, OrderView

_ZERO = Decimal(0)
_NO_CODE = "(Hyperliquid's errors carry no code)"


def exchange_class(base: type) -> type:
    """ccxt's Hyperliquid class without its unasked actions, with market-order prices."""

    class _Hyperliquid(base):  # type: ignore[misc, valid-type]
        async def handle_builder_fee_approval(self) -> bool:  # noqa: D401
            # ccxt would sign approveBuilderFee here; the user never asked for it.
            return True

        async def set_ref(self) -> bool:
            # ccxt would sign setReferrer here (refSet=True already skips it).
            return True

        def sign_l1_action(  # noqa: ANN201
            self,
            action,
            nonce,
            vaultAdress=None,
            expiresAfter=None,  # noqa: ANN001, N803
        ):
            # the same signature as ccxt's, with a C Keccak (see .signing)
            return sign_l1(
                self.privateKey,
                action,
                nonce,
                testnet=bool(self.options.get("sandboxMode")),
                vault=vaultAdress,
                expires_after=expiresAfter,
            )

        def handle_my_trades(self, client: Any, message: dict) -> None:  # noqa: ANN001
            # The first userFills message is a snapshot of the account's recent history.
            # What is ours and new since the last look is recovered by the resync (by
            # order), so the snapshot is not replayed as fresh fills.
            data = message.get("data") if isinstance(message, dict) else None
            if isinstance(data, dict) and data.get("isSnapshot"):
                return None
            return super().handle_my_trades(client, message)

        async def create_order(  # noqa: ANN201
            self,
            symbol,
            type,
            side,
            amount,
            price=None,
            params=None,  # noqa: A002, ANN001
        ):
            if type == "market" and price is None:
                # Hyperliquid has no market order: ccxt sends an Ioc limit order at a
                # reference price +/- its slippage bound; the reference is the mid now.
                coin = self.market(symbol)["baseName"]
                mids = await self.publicPostInfo({"type": "allMids"})
                price = mids.get(coin) if isinstance(mids, dict) else None
                if price is None:
                    raise ccxt.InvalidOrder(f"hyperliquid has no mid price for {coin}")
            return await super().create_order(symbol, type, side, amount, price, params or {})

    return _Hyperliquid


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
    """A refusal in any of Hyperliquid's forms, as ``(None, message)``; None if not one."""
    if status >= 400:
        return None, response if isinstance(response, str) else ""
    if not isinstance(response, dict):
        return None
    if response.get("status") == "err":
        return None, str(response.get("response") or "")
    payload = response.get("response")
    if response.get("status") == "ok" and isinstance(payload, dict):
        data = payload.get("data")
        statuses = data.get("statuses") if isinstance(data, dict) else None
        for st in statuses or []:
            if isinstance(st, dict) and "error" in st:
                return None, str(st["error"])
    return None


def order_args(
    market: dict[str, Any],
    amount: Decimal,
    order_type: str,
    limit_price: Decimal | None,
    cloid: str,
    time_in_force: str,
) -> tuple[str, str, str, str | None, dict[str, Any]]:
    side = "buy" if amount > 0 else "sell"
    qty = str(abs(amount))
    params: dict[str, Any] = {"clientOrderId": cloid}
    if order_type == "market":
        return "market", side, qty, None, params
    params["timeInForce"] = "Ioc" if time_in_force == "ioc" else "Gtc"
    return "limit", side, qty, str(limit_price), params


def status_of(raw_status: str, remaining: Decimal, original: Decimal) -> str:
    """An ``OrderStatus`` value for one of Hyperliquid's order statuses."""
    if raw_status == "open" or raw_status == "triggered":
        return "partially_filled" if 0 < remaining < original else "submitted"
    if raw_status == "filled":
        return "filled"
    if raw_status.endswith("Rejected") or raw_status == "rejected":
        return "rejected"
    if raw_status.endswith("Canceled") or raw_status in ("canceled", "scheduledCancel"):
        return "cancelled"
    return "submitted"


def parse_order(raw: dict[str, Any]) -> OrderView:
    """An order from any of Hyperliquid's shapes: an ``orderStatus`` / ``orderUpdates``
    entry (``{"order": {...}, "status", "statusTimestamp"}``), an open-orders row, or an
    order action's status (``{"resting": {"oid"}}`` / ``{"filled": {"totalSz", "avgPx",
    "oid"}}``, which carry ids only)."""
    if "resting" in raw or "filled" in raw:
        body = raw.get("resting") or raw.get("filled") or {}
        filled = "filled" in raw
        total = _d(body.get("totalSz"))
        return OrderView(
            order_id=str(body["oid"]),
            client_id=str(body.get("cloid") or ""),
            symbol="",
            amount=total,
            filled=_ZERO,  # the fills themselves arrive on userFills
            order_type="limit",
            limit_price=None,
            stop_price=None,
            status="submitted" if not filled else "partially_filled",
            avg_price=_d(body.get("avgPx")) if filled else None,
        )
    order = raw.get("order") if isinstance(raw.get("order"), dict) else raw
    raw_status = str(raw.get("status") or "open") if order is not raw else "open"
    sign = 1 if str(order.get("side")) == "B" else -1
    original = _d(order.get("origSz") or order.get("sz"))
    remaining = _d(order.get("sz"))
    if raw_status == "filled":
        remaining = _ZERO
    trigger = _d(order.get("triggerPx"))
    is_trigger = bool(order.get("isTrigger")) and trigger > 0
    limit = _d(order.get("limitPx"))
    status = status_of(raw_status, remaining, original)
    return OrderView(
        order_id=str(order["oid"]),
        client_id=str(order.get("cloid") or ""),
        symbol=str(order.get("coin") or ""),
        amount=original * sign,
        filled=(original - remaining) * sign,
        order_type="stop_limit" if is_trigger else "limit",
        limit_price=limit if limit > 0 else None,
        stop_price=trigger if is_trigger else None,
        status=status,
        reject_reason=raw_status if status == "rejected" else "",
    )


def parse_trade(raw: dict[str, Any]) -> FillView:
    """A ``userFills`` row (REST or websocket)."""
    sign = 1 if str(raw.get("side")) == "B" else -1
    return FillView(
        fill_id=str(raw["tid"]),
        order_id=str(raw["oid"]),
        client_id=str(raw.get("cloid") or "") or None,
        symbol=str(raw["coin"]),
        amount=_d(raw["sz"]) * sign,
        price=_d(raw["px"]),
        fee=_d(raw.get("fee")),
        fee_asset=str(raw.get("feeToken") or "USDC"),
        dt=_dt(raw.get("time")),
    )


def map_error(exc: BaseException, *, during: str) -> BaseException:
    net = network_error(exc, during=during, venue="hyperliquid")
    if net is not None:
        return net
    if isinstance(exc, VenueHTTPError):
        where = f"Hyperliquid {exc.method} {exc.path}: {exc.msg or f'HTTP {exc.status}'} {_NO_CODE}"
        text = exc.msg.lower()
        if "insufficient margin" in text:
            return InsufficientFundsError(f"{where}; reduce the amount or add USDC margin")
        if "never placed, already canceled, or filled" in text:
            return OrderNotFound(where)
        if "does not exist" in text and "wallet" in text:
            why = (
                f"{where}; the key signs for an account Hyperliquid does not know: check "
                "HYPERLIQUID_PRIVATE_KEY and, for an API wallet, HYPERLIQUID_WALLET_ADDRESS"
            )
            # refused before anything was placed: a definite reject, not an unknown outcome
            return OrderRejected(why) if during == "submit" else BrokerError(why)
        if during == "submit":
            return OrderRejected(where)
        return BrokerError(where)
    if isinstance(exc, ccxt.InvalidOrder | ccxt.ArgumentsRequired | ccxt.NotSupported):
        # raised by ccxt before anything was sent
        return InvalidOrder(f"hyperliquid: {str(exc)[:200]}")
    if during == "submit":
        return OrderStatusUnknown(
            f"hyperliquid submit failed with {type(exc).__name__}; outcome unknown"
        )
    return BrokerError(f"hyperliquid {during} failed: {type(exc).__name__}: {str(exc)[:200]}")


# --- raw calls (ccxt's implicit API; strings kept) ---
def _user(ex: Any) -> str:
    return str(ex.walletAddress)


async def _info(ex: Any, request: dict[str, Any]) -> Any:
    return await ex.publicPostInfo(request)


async def fetch_order(
    ex: Any, coin: str, *, order_id: str | None, client_id: str | None
) -> dict[str, Any] | None:
    """``orderStatus`` by order id, else by cloid; None for ``unknownOid``."""
    oid: int | str = int(order_id) if order_id else str(client_id)
    try:
        resp = await _info(ex, {"type": "orderStatus", "user": _user(ex), "oid": oid})
    except ccxt.OrderNotFound:  # ccxt's own reading of {"status": "unknownOid"}
        return None
    if not isinstance(resp, dict) or resp.get("status") != "order":
        return None
    return resp.get("order")


async def cancel(
    ex: Any, coin: str, *, order_id: str | None, client_id: str | None
) -> dict[str, Any]:
    """``cancel`` by order id (``cancelByCloid`` without one); the answer as an
    ``orderUpdates`` entry of the cancelled order."""
    symbol = ex.coin_to_market_id(coin)
    params = {} if order_id else {"clientOrderId": client_id}
    request = ex.cancel_orders_request([order_id] if order_id else [], symbol, params)
    await ex.privatePostExchange(request)
    order: dict[str, Any] = {"coin": coin}
    if order_id:
        order["oid"] = int(order_id)
    else:
        order["oid"] = ""
        order["cloid"] = client_id
    return {"order": order, "status": "canceled"}


async def fetch_open_orders(ex: Any) -> list[dict[str, Any]]:
    rows = await _info(ex, {"type": "frontendOpenOrders", "user": _user(ex)})
    return [r for r in rows or [] if isinstance(r, dict)]


async def fetch_order_trades(ex: Any, coin: str, order_id: str) -> list[dict[str, Any]]:
    """The order's fills among the account's latest (``userFills``: up to 2000)."""
    rows = await _info(ex, {"type": "userFills", "user": _user(ex)})
    return [r for r in rows or [] if str(r.get("oid")) == str(order_id)]


async def fetch_account(ex: Any) -> AccountView:
    state = await _info(ex, {"type": "clearinghouseState", "user": _user(ex)})
    summary = state.get("marginSummary") or {}
    equity = _d(summary.get("accountValue"))
    positions: dict[str, tuple[Decimal, Decimal]] = {}
    unrealized = _ZERO
    for row in state.get("assetPositions") or []:
        pos = row.get("position") or {}
        size = _d(pos.get("szi"))
        unrealized += _d(pos.get("unrealizedPnl"))
        if size != 0:
            positions[str(pos["coin"])] = (size, _d(pos.get("entryPx")))
    return AccountView(
        cash=equity - unrealized,  # USDC deposited + realized, before open positions' P&L
        equity=equity,
        buying_power=_d(state.get("withdrawable")),
        balances={"USDC": equity - unrealized},
        positions=positions,
    )


async def fetch_klines(ex: Any, coin: str, limit: int) -> list[list[Any]]:
    """1-minute candles, oldest first, as ``[open ms, o, h, l, c, volume, close ms]``."""
    end = ex.milliseconds()
    req = {"coin": coin, "interval": "1m", "startTime": end - limit * 60_000, "endTime": end}
    rows = await _info(ex, {"type": "candleSnapshot", "req": req})
    return [
        [int(r["t"]), r["o"], r["h"], r["l"], r["c"], r["v"], int(r["T"])]
        for r in (rows or [])[-limit:]
    ]
