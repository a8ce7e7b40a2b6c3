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

A venue whose rule is letters and digits only (the generic ccxt adapter's rule) gets a
*reversible* form first when it fits (``reversible_max``): ``r`` + the id's UTF-8 bytes
in base 62, so an id read back from the venue (e.g. its open orders after a restart)
decodes without any map; longer ids fall back to the hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_KEEP = 100_000  # mappings kept (and rewritten to) when the file grows past twice that
_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


class ClientIdCodec:
    """Our client order id <-> the venue's, for one venue's legality rule.

    ``reversible_max``: the venue's maximum id length for the reversible ``r`` + base-62
    form (0: hash only). Use it only where such ids are legal (letters and digits).
    """

    def __init__(
        self,
        legal: Callable[[str], bool],
        hasher: Callable[[str], str] | None = None,
        path: str | os.PathLike[str] | None = None,
        *,
        reversible_max: int = 0,
    ) -> None:
        self._legal = legal
        self._hash = hasher or default_hash
        self._reversible_max = reversible_max
        self._reverse: dict[str, str] = {}
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self._load(self.path)

    def encode(self, client_id: str) -> str:
        if self._legal(client_id) and not self._looks_encoded(client_id):
            return client_id
        if self._reversible_max:
            reversible = "r" + _b62(client_id.encode())
            if len(reversible) <= self._reversible_max:
                return reversible
        out = self._hash(client_id)
        if self._reverse.get(out) != client_id:
            self._reverse[out] = client_id
            self._persist(out, client_id)
        return out

    def decode(self, venue_id: str) -> str:
        known = self._reverse.get(venue_id)
        if known is not None:
            return known
        if self._reversible_max:
            original = _from_r(venue_id)
            if original and self.encode(original) == venue_id:
                return original
        return venue_id

    def _looks_encoded(self, client_id: str) -> bool:
        # An id of an encoded form is itself encoded, so decode() never confuses the two.
        if _looks_hashed(client_id):
            return True
        return bool(self._reversible_max) and _from_r(client_id) is not None

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


def _b62(data: bytes) -> str:
    n = int.from_bytes(b"\x01" + data, "big")  # the leading 1 keeps leading zero bytes
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out))


def _from_r(venue_id: str) -> str | None:
    if len(venue_id) < 2 or venue_id[0] != "r" or any(c not in _B62 for c in venue_id[1:]):
        return None
    n = 0
    for c in venue_id[1:]:
        n = n * 62 + _B62.index(c)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if not raw or raw[0] != 1:
        return None
    try:
        return raw[1:].decode()
    except UnicodeDecodeError:
        return None


def _looks_hashed(client_id: str) -> bool:
    # An id of the hashed form is itself hashed, so decode() can never confuse the two.
    return (
        len(client_id) == 32
        and client_id[0] == "h"
        and all(c in "0123456789abcdef" for c in client_id[1:])
    )
