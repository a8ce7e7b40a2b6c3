"""The audit trail: one structlog JSON-lines file per session, carrying the session id.

Records every order intent, risk decision, submission, ack, fill, cancel and reject,
every breaker trip and reset, every checkpoint and reconciliation. Secrets are redacted
twice: by key (anything named like a key, secret, token, password or private key) and
by value (every registered secret string is masked wherever it appears), so an API key
that leaks into a message is still never written. Key redaction reaches nested
dicts too (``{"venue": {"api_secret": ...}}``): :func:`redact_secrets` is also what the
checkpoint writer applies to strategy state, and :func:`merge_redacted` puts the live
values back on restore.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import structlog

_SECRET_KEY = re.compile(r"(api_?key|secret|token|password|passphrase|private_?key)", re.I)
REDACTED = "***"


class SecretRegistry:
    """Secret values to mask in logs, reprs and messages; filled from credentials."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str | None) -> None:
        if value and len(value) >= 4:
            self._values.add(value)

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


SECRETS = SecretRegistry()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "symbol"):
        return value.symbol
    if hasattr(value, "value") and not isinstance(value, int | float | str):
        return value.value
    return value


def is_secret_key(key: Any) -> bool:
    """True for a key named like a credential (api_key, secret, token, password...)."""
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def redact_secrets(value: Any) -> Any:
    """A copy of ``value`` with every value under a secret-named key, at any depth of
    dicts, lists, tuples and sets, replaced by ``"***"``; registered secret strings are
    masked wherever they appear. Other values are returned as they are (same types)."""
    if isinstance(value, dict):
        return {k: REDACTED if is_secret_key(k) else redact_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_secrets(v) for v in value)
    if isinstance(value, set | frozenset):
        return type(value)(redact_secrets(v) for v in value)
    if isinstance(value, str):
        return SECRETS.redact(value)
    return value


def merge_redacted(saved: Any, current: Any) -> Any:
    """Undo :func:`redact_secrets` on restore: where ``saved`` holds ``"***"`` under a
    secret-named key, take the value at the same place in ``current`` (what the
    strategy's ``initialize`` set), or leave the key out when there is none."""
    if isinstance(saved, list | tuple):
        cur_seq = current if isinstance(current, list | tuple) else ()
        merged = [
            merge_redacted(v, cur_seq[i] if i < len(cur_seq) else None) for i, v in enumerate(saved)
        ]
        return merged if isinstance(saved, list) else tuple(merged)
    if not isinstance(saved, dict):
        return saved
    cur = current if isinstance(current, dict) else {}
    out: dict[Any, Any] = {}
    for k, v in saved.items():
        if is_secret_key(k) and v == REDACTED:
            if k in cur:
                out[k] = cur[k]
            continue
        out[k] = merge_redacted(v, cur.get(k))
    return out


def redact_event(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask secret keys (at any depth) and secret values."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        if _SECRET_KEY.search(key):
            out[key] = REDACTED
            continue
        out[key] = redact_secrets(_jsonable(value))
    return out


class AuditLog:
    """Append-only JSON lines for one session. Cheap when disabled (``path=None``)."""

    def __init__(self, path: str | Path | None, session_id: str, strategy: str) -> None:
        self.path = Path(path) if path is not None else None
        self.session_id = session_id
        self._fh: TextIO | None = None
        self._log: Any = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
            self._log = structlog.wrap_logger(
                structlog.WriteLogger(self._fh),
                processors=[
                    structlog.processors.add_log_level,
                    redact_event,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer(),
                ],
            ).bind(session_id=session_id, strategy=strategy)

    @property
    def enabled(self) -> bool:
        return self._log is not None

    def record(self, event: str, **fields: Any) -> None:
        if self._log is not None:
            self._log.info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        if self._log is not None:
            self._log.warning(event, **fields)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self._log = None


_last_session_ms = 0


def new_session_id(now: datetime | None = None) -> str:
    """Short, sortable, unique-per-start id (base36 of epoch milliseconds).

    Client order ids embed it, so two engines started in the same millisecond in one
    process (tests, a fast restart loop) must still differ: the value is strictly
    increasing within a process.
    """
    global _last_session_ms
    ms = int((now or datetime.now(UTC)).timestamp() * 1000)
    if now is None:
        ms = max(ms, _last_session_ms + 1)
        _last_session_ms = ms
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while ms:
        ms, r = divmod(ms, 36)
        out = digits[r] + out
    return out or "0"
