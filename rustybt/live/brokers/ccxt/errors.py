"""Errors at the ccxt boundary: what the venue answered, and the request-weight budget.

ccxt picks its error tables by URL, so once a host is overridden (a testnet proxy, the
local fake) a venue's error code may surface as a plain ``ExchangeError``. The framework
therefore captures every error response itself (:class:`VenueHTTPError`: HTTP status,
the venue's code and message, ``Retry-After``) and each venue maps codes to
:mod:`rustybt.exceptions` in its own ``execution`` module. Network failures map the same
way for every venue (:func:`network_error`).
"""

from __future__ import annotations

import re
import time

import ccxt

from rustybt.exceptions import BrokerConnectionError, OrderStatusUnknown, RateLimited


class VenueHTTPError(ccxt.ExchangeError):
    """An error response from the venue, as received (secrets are never in it)."""

    def __init__(
        self,
        status: int,
        code: int | None,
        msg: str,
        method: str,
        path: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"HTTP {status} {method} {path}: code {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.method = method
        self.path = path
        self.retry_after = retry_after


def network_error(exc: BaseException, *, during: str, venue: str) -> BaseException | None:
    """The typed error for a transport failure, or None if ``exc`` is not one.

    A submit whose request may have reached the venue has an unknown outcome; anything
    else is a connection error.
    """
    if isinstance(exc, VenueHTTPError):
        if exc.status in (429, 418):
            return RateLimited(
                f"{venue} rate limit (HTTP {exc.status}, code {exc.code}): {exc.msg}; "
                f"retry after {exc.retry_after or 'an unknown delay'} s",
                retry_after=exc.retry_after,
            )
        if exc.status >= 500:
            if during == "submit":
                return OrderStatusUnknown(
                    f"{venue} answered HTTP {exc.status} to an order: it may or may not have "
                    "been accepted; it will be resolved by client order id"
                )
            return BrokerConnectionError(f"{venue} HTTP {exc.status} during {during}: {exc.msg}")
        return None
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return RateLimited(f"{venue} rate limit: {exc}", retry_after=None)
    if isinstance(exc, ccxt.NetworkError | TimeoutError | ConnectionError | OSError):
        if during == "submit":
            return OrderStatusUnknown(
                f"{venue}: {type(exc).__name__} after the order was sent ({_short(exc)}); it "
                "may or may not have been accepted and will be resolved by client order id"
            )
        return BrokerConnectionError(f"{venue} unreachable during {during}: {_short(exc)}")
    return None


def _short(exc: BaseException) -> str:
    return safe_text(exc, 200)


_QUERY = re.compile(r"((?:https?|wss?)://[^\s?]+)\?\S*")


def safe_text(exc: BaseException, limit: int = 300) -> str:
    """``exc``'s message with every URL's query string removed (ccxt puts the signed
    query, signature included, in its messages), cut to ``limit`` characters."""
    return _QUERY.sub(r"\1", str(exc))[:limit]


class RequestBudget:
    """Honours ``Retry-After`` and tracks the venue's reported request weight.

    After a 429/418 no request is sent until the venue's ``Retry-After`` has passed:
    :meth:`check` raises :class:`RateLimited` at once (the request was not processed).
    ``used_weight`` is the venue's own count (e.g. ``X-MBX-USED-WEIGHT-1M``); above
    ``soft_fraction`` of ``limit`` only order traffic goes out.
    """

    def __init__(self, limit: int = 6000, soft_fraction: float = 0.9) -> None:
        self.limit = limit
        self.soft_fraction = soft_fraction
        self.used_weight = 0
        self._blocked_until = 0.0

    def check(self, venue: str, *, essential: bool) -> None:
        now = time.monotonic()
        if now < self._blocked_until:
            wait = self._blocked_until - now
            raise RateLimited(
                f"{venue} asked us to back off; {wait:.1f} s left of its Retry-After "
                "(request not sent)",
                retry_after=wait,
            )
        if not essential and self.used_weight >= self.limit * self.soft_fraction:
            raise RateLimited(
                f"{venue} request weight {self.used_weight}/{self.limit} is near the limit; "
                "non-order request not sent",
                retry_after=1.0,
            )

    def on_response(
        self,
        headers: dict[str, str],
        status: int,
        weight_header: str,
        *,
        limited: bool | None = None,
        retry_after: float | None = None,
    ) -> float | None:
        """Record one response; returns the back-off in seconds when it was a rate limit.

        ``limited`` (default: HTTP 429/418) and ``retry_after`` (default: the
        ``Retry-After`` header, else 1 s) let a venue that signals limits differently
        (Bybit: retCode 10006 with ``X-Bapi-Limit-Reset-Timestamp``) say so.
        """
        raw = _header(headers, weight_header) if weight_header else None
        if raw is not None:
            try:
                self.used_weight = int(raw)
            except ValueError:
                pass
        if limited is None:
            limited = status in (429, 418)
        if limited:
            seconds = retry_after
            if seconds is None:
                retry = _header(headers, "Retry-After")
                try:
                    seconds = float(retry) if retry is not None else 1.0
                except ValueError:
                    seconds = 1.0
            self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)
            return seconds
        return None

    @property
    def blocked_for(self) -> float:
        return max(0.0, self._blocked_until - time.monotonic())


def _header(headers: dict[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    lower = name.lower()
    for k, v in headers.items():
        if k.lower() == lower:
            return v
    return None
