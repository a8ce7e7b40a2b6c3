"""A fake Interactive Brokers TWS for offline tests and rehearsals.

``rustybt venue serve ib --port 7497`` starts one; ``IBBrokerAdapter(port=7497)`` and any
other ``ib_async`` client connect to it as to TWS's paper port.
"""

from rustybt.testing.venues.ib.server import FakeTWS, serve

__all__ = ["FakeTWS", "serve"]
