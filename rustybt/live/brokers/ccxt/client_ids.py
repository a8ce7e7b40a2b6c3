"""Client order ids the venue accepts, recomputable in both directions after a restart.

The engine's ids (``<strategy>-<session>-<seq>``) go to the venue unchanged when they are
legal there (Binance: ``^[.A-Z:/a-z0-9_-]{1,36}$``). An id that is not is sent as a
deterministic hash (default ``h`` + 31 hex digits of its SHA-256; Hyperliquid's
``cloid`` is ``0x`` + 32 hex digits), so after a crash the engine's id is encoded
again and the venue asked for it (what recovery from the journal does).

The other direction (venue id -> ours) cannot be computed from a hash: it is kept for
every id this process encoded, and, with ``path``, in a small append-only file of
``{"venue": <venue id>, "id": <our id>}`` lines written **before** the order is sent
(flushed to the OS, so a killed process loses nothing). A restarted adapter given the
same file names the venue's open orders by our ids again, which is what start-up
adoption of orders left open at the venue needs. Without a file, an unknown hashed id
decodes to itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_KEEP = 100_000  # mappings kept (and rewritten to) when the file grows past twice that


class ClientIdCodec:
    """Our client order id <-> the venue's, for one venue's legality rule."""

    def __init__(
        self,
        legal: Callable[[str], bool],
        hasher: Callable[[str], str] | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._legal = legal
        self._hash = hasher or default_hash
        self._reverse: dict[str, str] = {}
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self._load(self.path)

    def encode(self, client_id: str) -> str:
        if self._legal(client_id) and not _looks_hashed(client_id):
            return client_id
        out = self._hash(client_id)
        if self._reverse.get(out) != client_id:
            self._reverse[out] = client_id
            self._persist(out, client_id)
        return out

    def decode(self, venue_id: str) -> str:
        return self._reverse.get(venue_id, venue_id)

    def _persist(self, venue_id: str, client_id: str) -> None:
        if self.path is None:
            return
        line = json.dumps({"venue": venue_id, "id": client_id}, separators=(",", ":"))
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()

    def _load(self, path: Path) -> None:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
                self._reverse[str(rec["venue"])] = str(rec["id"])
            except (ValueError, KeyError, TypeError):
                # a line cut short by a crash mid-write: the order it names was not sent
                log.warning("client_id_map_bad_line", path=str(path), line=n)
        if len(self._reverse) > 2 * _KEEP:
            keep = list(self._reverse.items())[-_KEEP:]
            self._reverse = dict(keep)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(
                "".join(
                    json.dumps({"venue": v, "id": c}, separators=(",", ":")) + "\n" for v, c in keep
                ),
                encoding="utf-8",
            )
            tmp.replace(path)


def default_hash(client_id: str) -> str:
    return "h" + hashlib.sha256(client_id.encode()).hexdigest()[:31]


def _looks_hashed(client_id: str) -> bool:
    # An id of the hashed form is itself hashed, so decode() can never confuse the two.
    return (
        len(client_id) == 32
        and client_id[0] == "h"
        and all(c in "0123456789abcdef" for c in client_id[1:])
    )
