"""Interactive Brokers (spec path): ``IBBrokerAdapter(host='127.0.0.1', port=7497, client_id=1)``.

The implementation lives in :mod:`rustybt.live.brokers.ib`; see ``docs/venues/ib.md``.
"""

from rustybt.live.brokers.ib.config import LIVE_PORTS, PAPER_PORTS
from rustybt.live.brokers.ib.execution import IBBrokerAdapter

__all__ = ["IBBrokerAdapter", "LIVE_PORTS", "PAPER_PORTS"]
