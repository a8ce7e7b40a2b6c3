"""Alert delivery to local webhook, Telegram-style and SMTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from rustybt.exceptions import ConfigError
from rustybt.live.console.alerts import AlertConfig, AlertRouter
from rustybt.live.events import AlertEvent


class Receiver:
    """An HTTP server recording JSON posts; ``hang=True`` never answers."""

    def __init__(self, hang: bool = False) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.hang = hang
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._post)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def _post(self, request: web.Request) -> web.Response:
        if self.hang:
            await asyncio.sleep(3600)
        self.posts.append((request.path, await request.json()))
        return web.json_response({"ok": True})

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


class SMTPServer:
    """Just enough SMTP (RFC 5321) to receive messages: EHLO, MAIL, RCPT, DATA, QUIT."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> SMTPServer:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 localhost ESMTP test\r\n")
        mail: dict = {"rcpt": []}
        while line := await reader.readline():
            cmd = line.decode().strip()
            verb = cmd.split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                writer.write(b"250-localhost\r\n250 8BITMIME\r\n")
            elif verb == "MAIL":
                mail["from"] = cmd
                writer.write(b"250 OK\r\n")
            elif verb == "RCPT":
                mail["rcpt"].append(cmd)
                writer.write(b"250 OK\r\n")
            elif verb == "DATA":
                writer.write(b"354 end with .\r\n")
                await writer.drain()
                body = []
                while (data := await reader.readline()) not in (b".\r\n", b""):
                    body.append(data.decode())
                mail["body"] = "".join(body)
                self.messages.append(mail)
                mail = {"rcpt": []}
                writer.write(b"250 queued\r\n")
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
        writer.close()

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def wait_for(predicate, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_alerts_reach_webhook_telegram_and_email_even_with_a_hanging_channel():
    async with (
        Receiver() as hook,
        Receiver() as tg,
        Receiver(hang=True) as stuck,
        SMTPServer() as smtp,
    ):
        config = AlertConfig.from_dict(
            {
                "webhook_urls": [f"{hook.url}/slack", f"{stuck.url}/hangs"],
                "telegram_bot_token": "123:secret",
                "telegram_chat_id": "42",
                "telegram_api_url": tg.url,
                "email_to": "ops@example.test",
                "email_from": "bot@example.test",
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "timeout_seconds": 0.5,
            }
        )
        router = AlertRouter(config, strategy="Demo")
        await router.start()
        t0 = time.perf_counter()
        router.on_engine_alert(AlertEvent("breaker_tripped", "drawdown: 10% from peak"))
        assert time.perf_counter() - t0 < 0.01  # notify only queues
        await wait_for(lambda: hook.posts and tg.posts and smtp.messages, 15)
        path, payload = hook.posts[0]
        assert path == "/slack"
        assert payload["text"] == payload["content"]
        assert "breaker_tripped" in payload["text"] and "[Demo]" in payload["text"]
        assert tg.posts[0][0] == "/bot123:secret/sendMessage"
        assert tg.posts[0][1]["chat_id"] == "42"
        assert "drawdown" in smtp.messages[0]["body"]
        await wait_for(lambda: router.failures.get("webhook1") == 1, 10)
        await router.stop()
        assert "secret" not in repr(router) and "secret" not in repr(config)


async def test_duplicates_are_sent_once_and_bursts_are_rate_limited():
    async with Receiver() as hook:
        router = AlertRouter(
            AlertConfig.from_dict({"webhook_urls": [hook.url], "max_per_minute": 3})
        )
        await router.start()
        for _ in range(5):
            router.notify("stream_down", "binance stream down")
        for i in range(5):
            router.notify("reconciliation", f"discrepancy {i}")
        await router.stop()
        assert len(hook.posts) == 3
        assert router.stats["deduplicated"] == 4 and router.stats["suppressed"] == 3


async def test_info_alerts_below_the_threshold_are_not_sent():
    async with Receiver() as hook:
        router = AlertRouter(AlertConfig.from_dict({"webhook_urls": [hook.url]}))
        await router.start()
        router.notify("note", "fyi", severity="info")
        await router.stop()
        assert hook.posts == []


@pytest.mark.parametrize(
    "raw, fix",
    [
        ({"webhook_urls": ["ftp://x"]}, "http"),
        ({"telegram_bot_token": "1:a"}, "telegram_chat_id"),
        ({"email_to": "a@b"}, "smtp_host"),
        ({"nope": 1}, "unknown keys"),
        ({"max_per_minute": 0}, "max_per_minute"),
        ({"min_severity": "loud"}, "min_severity"),
    ],
)
def test_bad_alert_config_is_refused_with_the_fix(raw, fix):
    with pytest.raises(ConfigError, match=fix):
        AlertConfig.from_dict(raw)


async def test_a_breaker_trip_in_a_session_alerts_while_a_hanging_channel_never_stalls_trading(
    tmp_path,
):
    from rustybt.live.control import ControlServer
    from tests.live.console.conftest import EveryTenBars, _breakers
    from tests.live.test_engine import make_engine, wait_until

    async with Receiver() as hook, Receiver(hang=True) as stuck:
        router = AlertRouter(
            AlertConfig.from_dict({"webhook_urls": [stuck.url, hook.url], "timeout_seconds": 30}),
            strategy="EveryTenBars",
        )
        await router.start()
        engine = make_engine(
            EveryTenBars(),
            circuit_breakers=_breakers(),
            state_dir=tmp_path,
            speed="3000x",
            start="2024-01-03",
            end="2024-01-03 23:59",
        )
        engine.alert_listeners.append(router.on_engine_alert)
        task = asyncio.create_task(engine.run())
        try:
            await wait_until(lambda: engine.get_status()["fills"] >= 1, "a fill", 30)
            control = ControlServer(engine, tmp_path / "control")
            await control.execute({"cmd": "halt", "reason": "drill", "operator": "ops"})
            await wait_until(lambda: hook.posts, "the alert", 10)
            assert "breaker_tripped" in hook.posts[0][1]["text"]
            await control.execute({"cmd": "resume", "reason": "drill over", "operator": "ops"})
            fills = engine.get_status()["fills"]
            # The first channel hangs (30 s timeout) and trading goes on regardless.
            await wait_until(lambda: engine.get_status()["fills"] > fills + 2, "more fills", 30)
        finally:
            await engine.shutdown()
            await asyncio.wait_for(task, 20)
            await router.stop(drain_seconds=0.1)
