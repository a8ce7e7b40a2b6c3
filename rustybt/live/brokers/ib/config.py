"""Connection settings for Interactive Brokers (TWS or IB Gateway) and the live-money guard.

TWS listens on 7497 (paper) and 7496 (live); IB Gateway on 4002 (paper) and 4001 (live).
A connection to a live port is real money, so it is refused unless the caller says
``live_money=True`` (``--live-money`` on the command line).
"""

from __future__ import annotations

from dataclasses import dataclass

from rustybt.exceptions import ConfigError

#: Ports TWS and IB Gateway use for live (real-money) accounts.
LIVE_PORTS = frozenset({7496, 4001})
#: Their paper-trading counterparts.
PAPER_PORTS = frozenset({7497, 4002})


@dataclass(frozen=True, slots=True)
class IBConfig:
    """Where TWS is and how the adapter behaves when it is not there."""

    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 1
    account: str | None = None
    live_money: bool = False
    connect_timeout: float = 4.0
    request_timeout: float = 5.0
    reconnect_delay: float = 1.0
    max_reconnect_delay: float = 30.0
    max_reconnect_attempts: int | None = None
    bar_size_seconds: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ConfigError(f"port={self.port!r} is not a TCP port; TWS paper uses 7497")
        if not isinstance(self.client_id, int) or self.client_id < 0:
            raise ConfigError(
                f"client_id={self.client_id!r} must be an integer >= 0, unique per "
                "connection to the same TWS"
            )
        if self.port in LIVE_PORTS and not self.live_money:
            raise ConfigError(
                f"port {self.port} is a live-money port (TWS 7496, IB Gateway 4001); pass "
                "live_money=True (--live-money) to trade real money, or use the paper port "
                "7497 (Gateway 4002)"
            )
        for name in (
            "connect_timeout",
            "request_timeout",
            "reconnect_delay",
            "max_reconnect_delay",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0 seconds")
        if self.max_reconnect_attempts is not None and self.max_reconnect_attempts < 0:
            raise ConfigError("max_reconnect_attempts must be >= 0 (None retries forever)")
        if self.bar_size_seconds != 5:
            raise ConfigError("IB real-time bars are 5 seconds; bar_size_seconds must be 5")
