"""IB's error codes, sorted into what they mean for an order.

TWS reports everything — rejects, cancels, lost connectivity, pacing, informational
notices — through one ``error`` message with a numeric code. The engine needs to know
which of these is a definitive refusal (the order does not exist at IB), which is a
connectivity problem (the outcome of a request in flight is unknown), and which is a
pacing violation (the request was not processed; retry later).
"""

from __future__ import annotations

from enum import Enum


class IBErrorKind(Enum):
    REJECT = "reject"  # the order was refused; nothing is working at IB
    CANCELLED = "cancelled"  # 202: a cancel took effect
    CANCEL_FAILED = "cancel_failed"  # 10147 unknown order, 10148 not cancellable
    CONNECTIVITY_LOST = "connectivity_lost"
    CONNECTIVITY_RESTORED = "connectivity_restored"
    PACING = "pacing"
    NO_CONTRACT = "no_contract"
    INFO = "info"  # notices (farm status etc.) and warnings


_REJECT = frozenset(
    {
        103,  # duplicate order id
        104,  # can't modify a filled order
        105,  # order being modified does not match original
        106,  # can't transmit order id
        107,  # cannot transmit incomplete order
        109,  # price out of the percentage range
        110,  # price does not conform to the minimum price variation
        111,  # tif and order type incompatible
        116,  # order rejected: trading hours
        135,  # can't find order with id
        161,  # cancel attempted when order is not in a cancellable state
        201,  # order rejected
        203,  # security not available for this account
        321,  # error validating request
        383,  # size exceeds the max allowed
        387,  # unsupported order type
        388,  # order size below minimum
        399,  # order message error
        435,  # account must be specified
        10006,  # missing parent order
        10147,  # order to cancel not found (also a cancel failure)
        10148,  # order cannot be cancelled (also a cancel failure)
        10268,  # the 'EtradeOnly' attribute is not supported
        10269,  # the 'FirmQuoteOnly' attribute is not supported
    }
)
_CONNECTIVITY_LOST = frozenset({502, 504, 1100, 1300, 2110})
_CONNECTIVITY_RESTORED = frozenset({1101, 1102})
_PACING = frozenset({100, 162, 420})


def classify(code: int) -> IBErrorKind:
    """What an IB error code means for the request it answers."""
    if code == 202:
        return IBErrorKind.CANCELLED
    if code in (10147, 10148):
        return IBErrorKind.CANCEL_FAILED
    if code in _CONNECTIVITY_LOST:
        return IBErrorKind.CONNECTIVITY_LOST
    if code in _CONNECTIVITY_RESTORED:
        return IBErrorKind.CONNECTIVITY_RESTORED
    if code in _PACING:
        return IBErrorKind.PACING
    if code == 200:
        return IBErrorKind.NO_CONTRACT
    if code in _REJECT:
        return IBErrorKind.REJECT
    return IBErrorKind.INFO
