"""The console's access token: one per state directory, kept in an owner-only file.

The token is generated once (``secrets.token_urlsafe``), written with mode 0600 next to
the engine's other files, and never printed or logged — only the path of its file is.
``rustybt live token`` prints it on request. Requests carry it as
``Authorization: Bearer <token>`` (or ``?token=`` for the dashboard's first page load and
its event stream, which browsers cannot give headers); it is compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from rustybt.exceptions import ConfigError

TOKEN_FILE = "console.token"


def token_path(state_dir: Path) -> Path:
    return Path(state_dir) / TOKEN_FILE


def load_or_create_token(state_dir: Path) -> str:
    """The state directory's token, created (0600) on first use."""
    path = token_path(state_dir)
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(
                f"{path} is readable by others (mode {mode:o}); run `chmod 600 {path}` "
                "or delete it to make a new token"
            )
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 32:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison (no early exit that would leak the token's prefix)."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
