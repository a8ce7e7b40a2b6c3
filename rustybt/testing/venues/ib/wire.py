"""The TWS API wire format, server side: framing and the messages a fake TWS sends.

TWS speaks length-prefixed frames over TCP: a 4-byte big-endian length, then the
message's fields as text, each terminated by a NUL byte. A connection opens with
``API\\0`` plus a frame ``v<min>..<max>`` from the client; the server answers with a
frame of two fields, its server version and the connection time. Every later frame
starts with the message id.

The field layouts below are those TWS uses at server version 178 (the highest that
``ib_async`` 2.1 negotiates): no version field on ``openOrder``, ``orderStatus``,
``execDetails`` and ``contractDetails`` (dropped by earlier server versions),
``advancedOrderRejectJson`` on errors (≥ 166), no ``faProfile`` (≥ 177) and
``pendingPriceRevision`` on executions (= 178). Only what a trading session needs is
here; :mod:`rustybt.testing.venues.ib.server` decides *when* to send what.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

SERVER_VERSION = 178
MIN_CLIENT_VERSION = 157

# Incoming (client → TWS) message ids.
REQ_MKT_DATA = 1
CANCEL_MKT_DATA = 2
PLACE_ORDER = 3
CANCEL_ORDER = 4
REQ_OPEN_ORDERS = 5
REQ_ACCOUNT_DATA = 6
REQ_EXECUTIONS = 7
REQ_IDS = 8
REQ_CONTRACT_DATA = 9
REQ_AUTO_OPEN_ORDERS = 15
REQ_ALL_OPEN_ORDERS = 16
REQ_CURRENT_TIME = 49
REQ_REAL_TIME_BARS = 50
CANCEL_REAL_TIME_BARS = 51
REQ_POSITIONS = 61
REQ_ACCOUNT_SUMMARY = 62
START_API = 71
REQ_ACCOUNT_UPDATES_MULTI = 76
REQ_COMPLETED_ORDERS = 99

# Outgoing (TWS → client) message ids.
ORDER_STATUS = 3
ERR_MSG = 4
OPEN_ORDER = 5
ACCT_VALUE = 6
PORTFOLIO_VALUE = 7
ACCT_UPDATE_TIME = 8
NEXT_VALID_ID = 9
CONTRACT_DATA = 10
EXECUTION_DATA = 11
MANAGED_ACCTS = 15
CURRENT_TIME = 49
REAL_TIME_BARS = 50
CONTRACT_DATA_END = 52
OPEN_ORDER_END = 53
ACCT_DOWNLOAD_END = 54
EXECUTION_DATA_END = 55
COMMISSION_REPORT = 59
POSITION_DATA = 61
POSITION_END = 62
ACCOUNT_SUMMARY = 63
ACCOUNT_SUMMARY_END = 64
ACCOUNT_UPDATE_MULTI = 73
ACCOUNT_UPDATE_MULTI_END = 74
COMPLETED_ORDER = 101
COMPLETED_ORDERS_END = 102

#: TWS's "no value" for doubles (``Double.MAX_VALUE``), e.g. realizedPNL of an opening trade.
UNSET_DOUBLE = "1.7976931348623157E308"


def field(value: Any) -> str:
    """One field as TWS writes it: bools as 1/0, None as empty, Decimals in plain notation."""
    if value is None:
        return ""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def frame(*fields: Any) -> bytes:
    """Encode one message: 4-byte big-endian length, then NUL-terminated fields."""
    payload = "".join(field(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def split_fields(payload: bytes) -> list[str]:
    """The fields of one frame's payload (the trailing NUL ends the last field)."""
    parts = payload.decode(errors="replace").split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


@dataclass
class Instrument:
    """A contract the fake knows: its definition and its current price."""

    con_id: int
    symbol: str
    sec_type: str  # STK, FUT, CASH
    exchange: str  # routing exchange: SMART, CME, IDEALPRO
    primary_exchange: str
    currency: str
    min_tick: Decimal
    multiplier: str = ""
    last_trade_date: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    long_name: str = ""
    price: Decimal = Decimal("100")
    size_increment: Decimal = Decimal("1")

    def contract_fields(self, *, primary: bool = False) -> list[Any]:
        """conId … tradingClass as execDetails/position/openOrder carry them.

        ``primary=True`` puts the primary exchange where ``updatePortfolio`` expects it.
        """
        return [
            self.con_id,
            self.symbol,
            self.sec_type,
            self.last_trade_date,
            "0",  # strike
            "",  # right
            self.multiplier,
            self.primary_exchange if primary else self.exchange,
            self.currency,
            self.local_symbol or self.symbol,
            self.trading_class or self.symbol,
        ]


# --- messages ------------------------------------------------------------------------
def handshake_reply(conn_time: str) -> bytes:
    return frame(SERVER_VERSION, conn_time)


def next_valid_id(order_id: int) -> bytes:
    return frame(NEXT_VALID_ID, 1, order_id)


def managed_accounts(accounts: Iterable[str]) -> bytes:
    return frame(MANAGED_ACCTS, 1, ",".join(accounts))


def error(req_id: int, code: int, message: str, advanced_json: str = "") -> bytes:
    return frame(ERR_MSG, 2, req_id, code, message, advanced_json)


def current_time(epoch: int) -> bytes:
    return frame(CURRENT_TIME, 1, epoch)


def contract_details(req_id: int, ins: Instrument) -> bytes:
    valid = "SMART,NASDAQ,NYSE,ARCA" if ins.sec_type == "STK" else ins.exchange
    order_types = "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,LMT,MKT,STP,STPLMT,TRAIL"
    return frame(
        CONTRACT_DATA,
        req_id,
        ins.symbol,
        ins.sec_type,
        ins.last_trade_date,
        "0",
        "",
        ins.exchange,
        ins.currency,
        ins.local_symbol or ins.symbol,
        ins.trading_class or ins.symbol,  # marketName
        ins.trading_class or ins.symbol,
        ins.con_id,
        ins.min_tick,
        ins.multiplier,
        order_types,
        valid,
        1,  # priceMagnifier
        0,  # underConId
        ins.long_name or ins.symbol,
        ins.primary_exchange,
        ins.last_trade_date[:6],  # contractMonth
        "",
        "",
        "",
        "US/Eastern",
        "",
        "",
        "",
        "",
        0,  # numSecIds
        1,  # aggGroup
        "",
        "",
        "26",  # marketRuleIds
        "",
        "COMMON" if ins.sec_type == "STK" else "",
        ins.size_increment,  # minSize
        ins.size_increment,  # sizeIncrement
        ins.size_increment,  # suggestedSizeIncrement
    )


def contract_details_end(req_id: int) -> bytes:
    return frame(CONTRACT_DATA_END, 1, req_id)


@dataclass
class WireOrder:
    """What the fake remembers of a placed order, in TWS terms."""

    order_id: int
    client_id: int
    perm_id: int
    instrument: Instrument
    action: str  # BUY / SELL
    total_quantity: Decimal
    order_type: str  # MKT LMT STP "STP LMT"
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    account: str
    order_ref: str
    status: str = "PreSubmitted"
    filled: Decimal = Decimal(0)
    avg_fill_price: Decimal = Decimal(0)
    last_fill_price: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        return self.total_quantity - self.filled


def order_status(o: WireOrder) -> bytes:
    return frame(
        ORDER_STATUS,
        o.order_id,
        o.status,
        o.filled,
        o.remaining,
        o.avg_fill_price,
        o.perm_id,
        0,  # parentId
        o.last_fill_price,
        o.client_id,
        "",  # whyHeld
        "",  # mktCapPrice
    )


def _order_body(o: WireOrder) -> list[Any]:
    """The part of openOrder from the contract through the order's reference."""
    ins = o.instrument
    return [
        ins.con_id,
        ins.symbol,
        ins.sec_type,
        ins.last_trade_date,
        "0",
        "",
        ins.multiplier,
        ins.exchange,
        ins.currency,
        ins.local_symbol or ins.symbol,
        ins.trading_class or ins.symbol,
        o.action,
        o.total_quantity,
        o.order_type,
        o.lmt_price if o.lmt_price is not None else "",
        o.aux_price if o.aux_price is not None else "",
        o.tif,
        "",  # ocaGroup
        o.account,
        "O",  # openClose
        0,  # origin: customer
        o.order_ref,
    ]


def open_order(o: WireOrder) -> bytes:
    """An ``openOrder`` message as TWS 178 sends it for a plain (non-combo, non-algo) order."""
    fields: list[Any] = [OPEN_ORDER, o.order_id, *_order_body(o)]
    fields += [
        o.client_id,
        o.perm_id,
        0,  # outsideRth
        0,  # hidden
        "0",  # discretionaryAmt
        "",  # goodAfterTime
        "",  # sharesAllocation (deprecated)
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
        "",  # modelCode
        "",  # goodTillDate
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        "",  # startingPrice
        "",  # stockRefPrice
        "",  # delta
        "",  # stockRangeLower
        "",  # stockRangeUpper
        "",  # displaySize
        0,  # blockOrder
        0,  # sweepToFill
        0,  # allOrNone
        "",  # minQty
        3,  # ocaType
        0,  # eTradeOnly (deprecated)
        0,  # firmQuoteOnly (deprecated)
        "",  # nbboPriceCap (deprecated)
        0,  # parentId
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        # TWS writes deltaNeutralOrderType as "None", so the eight delta-neutral
        # fields follow even for an ordinary order.
        "None",
        "",  # deltaNeutralAuxPrice
        0,
        "",
        "",
        "",
        "",
        0,
        0,
        "",
        0,  # continuousUpdate
        0,  # referencePriceType
        "",  # trailStopPrice
        "",  # trailingPercent
        "",  # basisPoints
        "",  # basisPointsType
        "",  # comboLegsDescrip
        0,  # comboLegs count
        0,  # orderComboLegs count
        0,  # smartComboRoutingParams count
        "",  # scaleInitLevelSize
        "",  # scaleSubsLevelSize
        "",  # scalePriceIncrement
        "",  # hedgeType
        0,  # optOutSmartRouting
        "",  # clearingAccount
        "",  # clearingIntent
        0,  # notHeld
        0,  # deltaNeutralContract present
        "",  # algoStrategy
        0,  # solicited
        0,  # whatIf
        o.status,
        "",  # initMarginBefore
        "",  # maintMarginBefore
        "",  # equityWithLoanBefore
        "",  # initMarginChange
        "",  # maintMarginChange
        "",  # equityWithLoanChange
        "",  # initMarginAfter
        "",  # maintMarginAfter
        "",  # equityWithLoanAfter
        o.commission if o.commission else "",
        "",  # minCommission
        "",  # maxCommission
        o.instrument.currency if o.commission else "",
        "",  # warningText
        0,  # randomizeSize
        0,  # randomizePrice
        0,  # conditions count
        "",  # adjustedOrderType
        "",  # triggerPrice
        "",  # trailStopPrice
        "",  # lmtPriceOffset
        "",  # adjustedStopPrice
        "",  # adjustedStopLimitPrice
        "",  # adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",  # softDollarTier name
        "",  # softDollarTier value
        "",  # softDollarTier displayName
        "",  # cashQty
        0,  # dontUseAutoPriceForHedge
        0,  # isOmsContainer
        0,  # discretionaryUpToLimitPrice
        0,  # usePriceMgmtAlgo
        "",  # duration
        0,  # postToAts
        0,  # autoCancelParent
        "",  # minTradeQty
        "",  # minCompeteSize
        "",  # competeAgainstBestOffset
        "",  # midOffsetAtWhole
        "",  # midOffsetAtHalf
    ]
    return frame(*fields)


def open_order_end() -> bytes:
    return frame(OPEN_ORDER_END, 1)


def completed_orders_end() -> bytes:
    return frame(COMPLETED_ORDERS_END)


@dataclass
class WireExecution:
    exec_id: str
    order: WireOrder
    time: str  # "YYYYMMDD HH:MM:SS US/Eastern"
    shares: Decimal
    price: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    commission: Decimal
    realized_pnl: str = UNSET_DOUBLE


def exec_details(req_id: int, ex: WireExecution) -> bytes:
    o = ex.order
    return frame(
        EXECUTION_DATA,
        req_id,
        o.order_id,
        *o.instrument.contract_fields(),
        ex.exec_id,
        ex.time,
        o.account,
        o.instrument.primary_exchange or o.instrument.exchange,
        "BOT" if o.action == "BUY" else "SLD",
        ex.shares,
        ex.price,
        o.perm_id,
        o.client_id,
        0,  # liquidation
        ex.cum_qty,
        ex.avg_price,
        o.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        1,  # lastLiquidity: added
        0,  # pendingPriceRevision
    )


def exec_details_end(req_id: int) -> bytes:
    return frame(EXECUTION_DATA_END, 1, req_id)


def commission_report(ex: WireExecution) -> bytes:
    return frame(
        COMMISSION_REPORT,
        1,
        ex.exec_id,
        ex.commission,
        ex.order.instrument.currency,
        ex.realized_pnl,
        UNSET_DOUBLE,  # yield
        "",  # yieldRedemptionDate
    )


def position(account: str, ins: Instrument, amount: Decimal, avg_cost: Decimal) -> bytes:
    return frame(POSITION_DATA, 3, account, *ins.contract_fields(), amount, avg_cost)


def position_end() -> bytes:
    return frame(POSITION_END, 1)


def account_value(key: str, value: Decimal | str, currency: str, account: str) -> bytes:
    return frame(ACCT_VALUE, 2, key, value, currency, account)


def portfolio_value(
    ins: Instrument,
    amount: Decimal,
    market_price: Decimal,
    avg_cost: Decimal,
    account: str,
) -> bytes:
    value = amount * market_price * (Decimal(ins.multiplier) if ins.multiplier else 1)
    unrealized = value - amount * avg_cost
    return frame(
        PORTFOLIO_VALUE,
        8,
        *ins.contract_fields(primary=True),
        amount,
        market_price,
        value,
        avg_cost,
        unrealized,
        "0",
        account,
    )


def account_update_time(hhmm: str) -> bytes:
    return frame(ACCT_UPDATE_TIME, 1, hhmm)


def account_download_end(account: str) -> bytes:
    return frame(ACCT_DOWNLOAD_END, 1, account)


def account_update_multi(req_id: int, account: str, key: str, value: Any, currency: str) -> bytes:
    return frame(ACCOUNT_UPDATE_MULTI, 1, req_id, account, "", key, value, currency)


def account_update_multi_end(req_id: int) -> bytes:
    return frame(ACCOUNT_UPDATE_MULTI_END, 1, req_id)


def account_summary(req_id: int, account: str, tag: str, value: Any, currency: str) -> bytes:
    return frame(ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency)


def account_summary_end(req_id: int) -> bytes:
    return frame(ACCOUNT_SUMMARY_END, 1, req_id)


def real_time_bar(
    req_id: int,
    epoch: int,
    o: Decimal,
    h: Decimal,
    lo: Decimal,
    c: Decimal,
    volume: Decimal,
    wap: Decimal,
    count: int,
) -> bytes:
    return frame(REAL_TIME_BARS, 3, req_id, epoch, o, h, lo, c, volume, wap, count)
