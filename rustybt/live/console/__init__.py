"""The operator console: HTTP control API, dashboard, Prometheus metrics and alerts.

:class:`~rustybt.live.console.server.ConsoleServer` serves a running engine on its own
event loop (127.0.0.1 by default, every request token-authenticated);
:class:`~rustybt.live.console.alerts.AlertRouter` delivers the engine's alerts to
webhooks, email and Telegram without ever blocking trading.
"""

from rustybt.live.console.alerts import AlertRouter
from rustybt.live.console.server import ConsoleServer

__all__ = ["AlertRouter", "ConsoleServer"]
