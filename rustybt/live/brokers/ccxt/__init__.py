"""The one ccxt wrapper every crypto venue adapter is built on.

:class:`~rustybt.live.brokers.ccxt.adapter.CcxtBrokerAdapter` does what every ccxt venue
needs (ccxt ``async_support`` REST + ``ccxt.pro`` user stream, exact money, instruments,
client ids, error mapping, connection state, resync); a venue plugs in a small
:class:`~rustybt.live.brokers.ccxt.venue.Venue` subclass living in its own folder with
the same shape (``config``, ``execution``, ``instruments``, ``user_stream``), as
``binance/`` does.
"""

from rustybt.live.brokers.ccxt.adapter import CcxtBrokerAdapter
from rustybt.live.brokers.ccxt.venue import Capabilities, Venue

__all__ = ["Capabilities", "CcxtBrokerAdapter", "Venue"]
