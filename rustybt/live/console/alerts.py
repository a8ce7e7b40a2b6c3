"""Alerts to where operators look: webhooks (Slack/Discord), email and Telegram.

The engine hands each alert to :meth:`AlertRouter.notify`, which only puts it on a
bounded queue and returns: delivery happens in a background task, every channel under
its own timeout, email in a worker thread. A channel that fails or hangs is logged and
counted; it never blocks or stops trading. Alerts are deduplicated (the same kind and
message within ``dedupe_seconds`` is sent once) and rate-limited (at most
``max_per_minute`` sent a minute; the rest are counted as suppressed).

Channel secrets (webhook URLs, the bot token, the SMTP password) never appear in logs,
reprs or errors.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import aiohttp

from rustybt.exceptions import ConfigError

log = logging.getLogger("rustybt.live.console.alerts")

TELEGRAM_API = "https://api.telegram.org"


@dataclass(frozen=True)
class EmailChannel:
    host: str
    to: tuple[str, ...]
    sender: str
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True


@dataclass(frozen=True)
class AlertConfig:
    """Where alerts go. Build it in Python or from the ``[live.alerts]`` TOML table."""

    webhook_urls: tuple[str, ...] = field(default=(), repr=False)
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_chat_id: str | None = None
    telegram_api_url: str = TELEGRAM_API
    email: EmailChannel | None = None
    timeout_seconds: float = 5.0
    dedupe_seconds: float = 300.0
    max_per_minute: int = 20
    min_severity: str = "warning"

    @classmethod
    def from_dict(cls, raw: dict[str, Any], label: str = "alerts") -> AlertConfig:
        if not isinstance(raw, dict):
            raise ConfigError(f"{label} must be a table of alert channels")
        known = {
            "webhook_urls",
            "telegram_bot_token",
            "telegram_chat_id",
            "telegram_api_url",
            "email_to",
            "email_from",
            "smtp_host",
            "smtp_port",
            "smtp_username",
            "smtp_password",
            "smtp_starttls",
            "timeout_seconds",
            "dedupe_seconds",
            "max_per_minute",
            "min_severity",
        }
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"{label}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        urls = raw.get("webhook_urls", [])
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls
        ):
            raise ConfigError(f"{label}.webhook_urls must be a list of http(s) URLs")
        token, chat = raw.get("telegram_bot_token"), raw.get("telegram_chat_id")
        if (token is None) != (chat is None):
            raise ConfigError(f"{label}: give both telegram_bot_token and telegram_chat_id")
        email = None
        if raw.get("email_to") or raw.get("smtp_host"):
            to = raw.get("email_to")
            if isinstance(to, str):
                to = [to]
            if not to or not raw.get("smtp_host") or not raw.get("email_from"):
                raise ConfigError(f"{label}: email needs email_to, email_from and smtp_host")
            email = EmailChannel(
                host=str(raw["smtp_host"]),
                port=int(raw.get("smtp_port", 587)),
                to=tuple(str(t) for t in to),
                sender=str(raw["email_from"]),
                username=raw.get("smtp_username"),
                password=raw.get("smtp_password"),
                starttls=bool(raw.get("smtp_starttls", True)),
            )
        severity = str(raw.get("min_severity", "warning")).lower()
        if severity not in _SEVERITY:
            raise ConfigError(f"{label}.min_severity must be one of {', '.join(_SEVERITY)}")
        cfg = cls(
            webhook_urls=tuple(urls),
            telegram_bot_token=token,
            telegram_chat_id=str(chat) if chat is not None else None,
            telegram_api_url=str(raw.get("telegram_api_url", TELEGRAM_API)).rstrip("/"),
            email=email,
            timeout_seconds=float(raw.get("timeout_seconds", 5.0)),
            dedupe_seconds=float(raw.get("dedupe_seconds", 300.0)),
            max_per_minute=int(raw.get("max_per_minute", 20)),
            min_severity=severity,
        )
        if cfg.timeout_seconds <= 0 or cfg.dedupe_seconds < 0 or cfg.max_per_minute < 1:
            raise ConfigError(
                f"{label}: timeout_seconds must be > 0, dedupe_seconds >= 0, max_per_minute >= 1"
            )
        return cfg

    def secrets(self) -> list[str]:
        out = [*self.webhook_urls]
        if self.telegram_bot_token:
            out.append(self.telegram_bot_token)
        if self.email is not None and self.email.password:
            out.append(self.email.password)
        return out


_SEVERITY = {"info": 0, "warning": 1, "critical": 2}


@dataclass
class Alert:
    kind: str
    message: str
    severity: str = "warning"
    strategy: str = ""

    def text(self) -> str:
        who = f" [{self.strategy}]" if self.strategy else ""
        return f"RustyBT{who} {self.severity.upper()} {self.kind}: {self.message}"


class AlertRouter:
    """Queue alerts; deliver them off the trading path."""

    def __init__(self, config: AlertConfig, *, strategy: str = "", queue_size: int = 1000) -> None:
        self.config = config
        self.strategy = strategy
        self._queue: asyncio.Queue[Alert] | None = None
        self._queue_size = queue_size
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._last_sent: dict[tuple[str, str], float] = {}
        self._sent_times: deque[float] = deque()
        self.stats = {"queued": 0, "sent": 0, "deduplicated": 0, "suppressed": 0, "dropped": 0}
        self.failures: dict[str, int] = {}

    def __repr__(self) -> str:
        channels = [name for name, _ in self._channels()]
        return f"AlertRouter(channels={channels})"

    async def start(self) -> None:
        self._queue = asyncio.Queue(self._queue_size)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds)
        )
        self._task = asyncio.create_task(self._deliver_loop(), name="alert-router")

    async def stop(self, drain_seconds: float = 2.0) -> None:
        """Deliver what is queued (bounded by ``drain_seconds``), then stop."""
        if self._queue is not None and self._task is not None:
            try:
                await asyncio.wait_for(self._queue.join(), drain_seconds)
            except TimeoutError:
                log.warning("alert_router_drain_timeout pending=%s", self._queue.qsize())
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._session is not None:
            await self._session.close()
        self._task = self._session = None

    def notify(self, kind: str, message: str, severity: str = "warning") -> None:
        """Queue an alert and return at once (safe to call from the engine's handlers)."""
        if _SEVERITY.get(severity, 1) < _SEVERITY[self.config.min_severity]:
            return
        q = self._queue
        if q is None:
            return
        try:
            q.put_nowait(Alert(kind, message, severity, self.strategy))
            self.stats["queued"] += 1
        except asyncio.QueueFull:
            self.stats["dropped"] += 1

    def on_engine_alert(self, event: Any) -> None:
        """Engine alert listener: an ``AlertEvent`` (kind, message, severity in details)."""
        details = getattr(event, "details", None) or {}
        self.notify(event.kind, event.message, str(details.get("severity", "critical")))

    # --- delivery ---------------------------------------------------------------------------
    def _admit(self, alert: Alert) -> bool:
        now = time.monotonic()
        key = (alert.kind, alert.message)
        last = self._last_sent.get(key)
        if last is not None and now - last < self.config.dedupe_seconds:
            self.stats["deduplicated"] += 1
            return False
        while self._sent_times and now - self._sent_times[0] > 60:
            self._sent_times.popleft()
        if len(self._sent_times) >= self.config.max_per_minute:
            self.stats["suppressed"] += 1
            return False
        self._sent_times.append(now)
        self._last_sent[key] = now
        if len(self._last_sent) > 10_000:
            cutoff = now - self.config.dedupe_seconds
            self._last_sent = {k: t for k, t in self._last_sent.items() if t >= cutoff}
        return True

    async def _deliver_loop(self) -> None:
        assert self._queue is not None
        while True:
            alert = await self._queue.get()
            try:
                if self._admit(alert):
                    await self._deliver(alert)
            finally:
                self._queue.task_done()

    def _channels(self) -> list[tuple[str, Any]]:
        c = self.config
        out: list[tuple[str, Any]] = [
            (f"webhook{i}", lambda a, u=url: self._webhook(u, a))
            for i, url in enumerate(c.webhook_urls)
        ]
        if c.telegram_bot_token and c.telegram_chat_id:
            out.append(("telegram", self._telegram))
        if c.email is not None:
            out.append(("email", self._email))
        return out

    async def _deliver(self, alert: Alert) -> None:
        channels = self._channels()

        async def one(name: str, send: Any) -> None:
            try:
                await asyncio.wait_for(send(alert), self.config.timeout_seconds)
                self.stats["sent"] += 1
            except Exception as exc:  # noqa: BLE001 - a channel must never stop trading
                self.failures[name] = self.failures.get(name, 0) + 1
                log.warning("alert_channel_failed channel=%s error=%s", name, type(exc).__name__)

        await asyncio.gather(*(one(name, send) for name, send in channels))

    async def _webhook(self, url: str, alert: Alert) -> None:
        assert self._session is not None
        text = alert.text()
        # "text" is what Slack reads, "content" what Discord reads.
        payload = {"text": text, "content": text, "username": "RustyBT"}
        async with self._session.post(url, json=payload) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"webhook answered HTTP {resp.status}")

    async def _telegram(self, alert: Alert) -> None:
        assert self._session is not None
        c = self.config
        url = f"{c.telegram_api_url}/bot{c.telegram_bot_token}/sendMessage"
        async with self._session.post(
            url, json={"chat_id": c.telegram_chat_id, "text": alert.text()}
        ) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"telegram answered HTTP {resp.status}")

    async def _email(self, alert: Alert) -> None:
        email = self.config.email
        assert email is not None
        timeout = self.config.timeout_seconds

        def send() -> None:
            msg = EmailMessage()
            msg["Subject"] = f"RustyBT {alert.severity}: {alert.kind}"
            msg["From"] = email.sender
            msg["To"] = ", ".join(email.to)
            msg.set_content(alert.text())
            with smtplib.SMTP(email.host, email.port, timeout=timeout) as smtp:
                if email.starttls and smtp.has_extn("starttls"):
                    smtp.starttls()
                if email.username:
                    smtp.login(email.username, email.password or "")
                smtp.send_message(msg)

        await asyncio.to_thread(send)
