"""Client order ids the venue accepts, recomputable in both directions after a restart.

The engine's ids (``<strategy>-<session>-<seq>``) go to the venue unchanged when they are
legal there (Binance: ``^[.A-Z:/a-z0-9_-]{1,36}$``). An id that is not is sent as
``h`` + 31 hex digits of its SHA-256: deterministic, so after a crash the engine's id
is encoded again and the venue asked for it; the reverse map is kept for every id this
process encoded or looked up (an unknown hashed id decodes to itself).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable


class ClientIdCodec:
    """Our client order id <-> the venue's, for one venue's legality rule."""

    def __init__(self, legal: Callable[[str], bool]) -> None:
        self._legal = legal
        self._reverse: dict[str, str] = {}

    def encode(self, client_id: str) -> str:
        if self._legal(client_id) and not _looks_hashed(client_id):
            return client_id
        out = "h" + hashlib.sha256(client_id.encode()).hexdigest()[:31]
        self._reverse[out] = client_id
        return out

    def decode(self, venue_id: str) -> str:
        return self._reverse.get(venue_id, venue_id)


def _looks_hashed(client_id: str) -> bool:
    # An id of the hashed form is itself hashed, so decode() can never confuse the two.
    return (
        len(client_id) == 32
        and client_id[0] == "h"
        and all(c in "0123456789abcdef" for c in client_id[1:])
    )
