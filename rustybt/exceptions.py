"""Every error RustyBT raises, in one hierarchy rooted at :class:`RustyBTError`.

One file so users can catch precisely (``except InsufficientFundsError``) or broadly
(``except RustyBTError``). Messages say what was wrong and how to fix it; they never
carry credentials.
"""

from __future__ import annotations


class RustyBTError(Exception):
    """Base class of every RustyBT error."""


# --- configuration and input -------------------------------------------------------
class ConfigError(RustyBTError, ValueError):
    """A configuration value is missing, malformed or out of range."""


class MissingCredentialsError(ConfigError):
    """A broker needs credentials that were not supplied (the secret itself is never shown)."""


class StrategyLoadError(RustyBTError):
    """A strategy file could not be loaded (missing, syntax error, no strategy in it)."""


# --- assets ------------------------------------------------------------------------
class SymbolNotFound(RustyBTError, KeyError):
    """No asset with this symbol is known."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


# --- orders ------------------------------------------------------------------------
class InvalidOrder(RustyBTError, ValueError):
    """An order's parameters are invalid (NaN amount, non-positive price, off tick...)."""


class IllegalOrderTransition(RustyBTError):
    """An order was asked to move to a state its state machine does not allow."""


class OrderNotFound(RustyBTError, KeyError):
    """No order with this id is known."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class OrderRejected(RustyBTError):
    """An order was refused before reaching the broker or by the broker."""


class RiskLimitExceeded(OrderRejected):
    """An order would breach a position or portfolio limit."""


class TradingHalted(OrderRejected):
    """An order was refused because circuit breakers have halted trading."""


class NoMarketData(OrderRejected):
    """An order was placed on an asset for which no price has been seen yet."""


# --- data --------------------------------------------------------------------------
class DataError(RustyBTError):
    """Market data is missing or malformed."""


class DataNotFound(DataError, LookupError):
    """The requested data (dates, fields, assets) is not in the data source."""


class BundleNotFound(DataError, LookupError):
    """No bundle with this name has been ingested."""


class MalformedData(DataError, ValueError):
    """An input file has a malformed row; the message names file, line and column."""


# --- brokers -----------------------------------------------------------------------
class BrokerError(RustyBTError):
    """The broker refused or failed a request."""


class BrokerConnectionError(BrokerError):
    """The broker cannot be reached or the connection dropped."""


class InsufficientFundsError(BrokerError):
    """The account does not have the cash or margin this order needs."""


class MalformedVenueMessage(BrokerError, ValueError):
    """A venue sent a message that does not match its documented format."""


class OrderStatusUnknown(BrokerError):
    """A submit's outcome is unknown: timeout, dropped connection or 5xx after sending.

    The venue may or may not have accepted the order. The engine keeps it open in the
    UNKNOWN state (counted at full size everywhere) and resolves it by client order id;
    it is never resubmitted blind.
    """


class RateLimited(BrokerError):
    """The venue refused a request for exceeding its rate limit: it was not processed.

    ``retry_after`` is the venue's ``Retry-After`` in seconds when it sent one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- durability --------------------------------------------------------------------
class CheckpointError(RustyBTError):
    """A checkpoint could not be written or read."""


class CheckpointCorrupted(CheckpointError):
    """A checkpoint file is truncated, fails its checksum, or has an unknown version."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint belongs to a different strategy than the one asking for it."""


class CheckpointWriteError(CheckpointError, OSError):
    """The checkpoint folder is unwritable or the disk is full; the previous one is kept."""


class JournalError(RustyBTError):
    """The order journal could not be written or read."""


class StateDirLocked(RustyBTError):
    """Another live engine already owns this strategy's state directory (exclusive lock)."""


class ReconciliationError(RustyBTError):
    """Local and broker state could not be compared or do not agree."""


# --- scheduling --------------------------------------------------------------------
class SchedulerError(RustyBTError, ValueError):
    """A schedule is malformed: bad cron string, unknown exchange, unknown time zone..."""


class JobNotFound(SchedulerError, LookupError):
    """No scheduled job has this id."""
