"""Helpers for tests that run `rustybt live` as a real subprocess and SIGKILL it.

The strategy flips two equities every 20 bars of the demo bundle; the paper account is
persistent (``paper_state``), standing in for a venue that outlives the trading process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.control import send_command
from rustybt.live.journal import journal_path

STRATEGY = "CrashFlip"
RUSTYBT = str(Path(sys.executable).with_name("rustybt"))

ALGO = '''
from rustybt.algorithm import TradingAlgorithm


class CrashFlip(TradingAlgorithm):
    """Flips two equities between 45% and 0% of the portfolio, staggered, every 20 bars."""

    def initialize(self):
        self.a = self.symbol("JPM")
        self.b = self.symbol("META")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars % 20 == 0:
            self.order_target_percent(self.a, 0.45 if (self.bars // 20) % 2 else 0)
        if self.bars % 20 == 10:
            self.order_target_percent(self.b, 0.45 if (self.bars // 20) % 2 else 0)
'''

CONFIG = """
[live]
algofile = "{algo}"
broker = "paper"
bundle = "demo"
start = "2024-01-03"
end = "2024-01-03"
speed = "{speed}"
paper_state = "{paper}"
state_dir = "{state}"
checkpoint_interval = {checkpoint_interval}
reconcile_interval = 0.3
reconciliation = "halt_and_alert"
volume_limit_pct = "0.002"
latency_ms = 100
seed = {seed}
"""


class Session:
    """One trading 'account': a folder with the strategy, config, state and venue."""

    def __init__(
        self,
        root: Path,
        *,
        seed: int = 0,
        speed: str = "15000x",
        checkpoint_interval: float = 0.2,
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.algo = root / "crash_flip.py"
        self.algo.write_text(ALGO)
        self.state = root / "state"
        self.paper = root / "paper.json"
        self.config = root / "live.toml"
        self.config.write_text(
            CONFIG.format(
                algo=self.algo,
                paper=self.paper,
                state=self.state,
                seed=seed,
                speed=speed,
                checkpoint_interval=checkpoint_interval,
            )
        )
        self.log = root / "output.log"
        self.journal = journal_path(self.state / "journal", STRATEGY)

    def start(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        full_env = os.environ.copy()
        full_env.update(env or {})
        return subprocess.Popen(
            [RUSTYBT, "live", "--config", str(self.config), "--no-progress", *extra],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )

    def run(self, *extra: str, timeout: float = 60, env: dict[str, str] | None = None) -> int:
        proc = self.start(*extra, env=env)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError(
                f"rustybt live timed out; output:\n{self.output()[-3000:]}"
            ) from None

    def control(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [RUSTYBT, "live", *args, "-s", STRATEGY, "--state-dir", str(self.state)],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def journal_records(self) -> int:
        try:
            return self.journal.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def wait_for_records(self, proc: subprocess.Popen, n: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and self.journal_records() < n and time.monotonic() < deadline:
            time.sleep(0.002)

    def wait_for_socket(self, proc: subprocess.Popen, timeout: float = 30) -> None:
        """Wait until ``proc`` serves its control socket (a killed predecessor leaves its
        socket file behind, so answer a status request, not just exist)."""
        sock = self.state / "control" / f"{STRATEGY}.sock"
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if sock.exists():
                try:
                    asyncio.run(send_command(sock, {"cmd": "status"}, timeout=5))
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"engine never served its control socket:\n{self.output()[-2000:]}")

    def venue(self) -> PaperBroker:
        """The paper account as a restarted venue would load it."""
        return PaperBroker(state_path=self.paper)

    def venue_orders(self) -> list[tuple[str, str, Decimal]]:
        """(created bar, symbol, amount) of every order the venue received, in order."""
        return [
            (o.created_dt.isoformat(), o.asset.symbol, o.amount)
            for o in self.venue()._orders.values()
        ]


def kill(proc: subprocess.Popen) -> bool:
    """SIGKILL ``proc`` (True) unless it had already exited (False)."""
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    return True


def audit_events(state: Path, event: str) -> list[dict[str, Any]]:
    out = []
    for audit in sorted((state / "logs").glob("*.jsonl")):
        for line in audit.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line torn by the kill
            if rec.get("event") == event:
                out.append(rec)
    return out
