"""Fault injection for the fake Binance, set from tests (Python) or over HTTP (admin route).

Each fault is what really happens on the wire:

* ``latency_ms``: every REST response is delayed.
* ``fail_next(n, status)``: the next ``n`` matching requests get a 5xx before they are
  processed (Binance: "Unknown error, please check your request or try again later.").
* ``rate_limit_next(n, retry_after, status)``: 429 (or 418) with ``Retry-After`` and
  Binance's ``-1003`` body; nothing is processed.
* ``accept_then_timeout(n, seconds)``: the request **is processed** (the order exists at
  the venue) and then the response is held for ``seconds`` — the client times out
  without knowing the outcome.
* ``drop_streams()``: every user-data websocket is closed abruptly.
* ``stall_streams(seconds)``: events are held back (the socket stays open) and
  delivered late, in order.
* ``garbage_frames(n)``: ``n`` non-JSON frames are sent on every user-data stream.

Matching is by HTTP method and path prefix (``"POST /api/v3/order"``), or all requests
when no ``match`` is given. Every counter is bounded; nothing runs forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Rule:
    kind: str  # "5xx" | "429" | "timeout"
    remaining: int
    match: str
    status: int
    seconds: float


@dataclass
class Faults:
    """The fake's fault switches (all off by default)."""

    latency_ms: float = 0.0
    _rules: list[_Rule] = field(default_factory=list)
    #: set by the server: callables that act on live streams
    _drop: object = None
    _stall: object = None
    _garbage: object = None

    def fail_next(self, n: int = 1, status: int = 503, match: str = "") -> None:
        self._rules.append(_Rule("5xx", int(n), match, int(status), 0.0))

    def rate_limit_next(
        self, n: int = 1, retry_after: float = 1.0, status: int = 429, match: str = ""
    ) -> None:
        self._rules.append(_Rule("429", int(n), match, int(status), float(retry_after)))

    def accept_then_timeout(self, n: int = 1, seconds: float = 5.0, match: str = "") -> None:
        self._rules.append(_Rule("timeout", int(n), match, 200, float(seconds)))

    def drop_streams(self) -> int:
        return self._drop() if callable(self._drop) else 0

    def stall_streams(self, seconds: float) -> None:
        if callable(self._stall):
            self._stall(float(seconds))

    def garbage_frames(self, n: int = 1) -> None:
        if callable(self._garbage):
            self._garbage(int(n))

    def clear(self) -> None:
        self.latency_ms = 0.0
        self._rules.clear()

    def take(self, method: str, path: str) -> _Rule | None:
        """The first armed rule matching this request, consumed by one."""
        key = f"{method} {path}"
        for rule in self._rules:
            if rule.remaining > 0 and key.startswith(rule.match):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                return rule
        return None

    def apply(self, spec: dict) -> None:
        """Arm faults from a JSON object (the admin route)."""
        if "latency_ms" in spec:
            self.latency_ms = float(spec["latency_ms"])
        kind = spec.get("kind")
        n = int(spec.get("n", 1))
        match = str(spec.get("match", ""))
        if kind == "5xx":
            self.fail_next(n, int(spec.get("status", 503)), match)
        elif kind in ("429", "418"):
            self.rate_limit_next(n, float(spec.get("retry_after", 1)), int(kind), match)
        elif kind == "timeout":
            self.accept_then_timeout(n, float(spec.get("seconds", 5)), match)
        elif kind == "drop":
            self.drop_streams()
        elif kind == "stall":
            self.stall_streams(float(spec.get("seconds", 1)))
        elif kind == "garbage":
            self.garbage_frames(n)
        elif kind == "clear":
            self.clear()
        elif kind is not None:
            raise ValueError(
                f"unknown fault kind {kind!r}; use 5xx, 429, 418, timeout, drop, stall, "
                "garbage or clear"
            )
