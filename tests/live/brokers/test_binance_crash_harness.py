"""SIGKILL crash harness against the fake Binance: a real ``rustybt live --broker binance``
subprocess trading a fake venue *process*, killed at seeded random points.

Per trial: ``rustybt venue serve binance`` runs for the whole trial (it is "the venue");
the trading process is SIGKILLed at a seeded moment (sometimes twice), then a final run
ends by itself (``--max-bars``). Then:

* no client order id reached the venue twice;
* every intent in the journal is at the venue or was resolved as never sent/rejected, and
  the venue holds no order we did not intend;
* the final checkpoint's positions and cash equal the venue's balances, and its open
  orders are the venue's open orders;
* no reconciliation alerted (HALT_AND_ALERT is on throughout).

``make test`` runs a few trials; ``make test-slow`` runs the full count (``slow`` marker).
Every subprocess has a timeout; the venue runs on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from rustybt.live.journal import OrderJournal, journal_path
from rustybt.live.state_manager import StateManager

STRATEGY = "BinanceCrash"
RUSTYBT = str(Path(sys.executable).with_name("rustybt"))
CREDS = {"BINANCE_API_KEY": "fake-binance-key", "BINANCE_API_SECRET": "fake-binance-secret"}
PARALLEL = 2


@dataclass(frozen=True)
class HarnessVenue:
    """What differs per venue: its CLI name, credentials, and how its fake's
    ``/_fake/state`` reads as (BTC held, USDT cash, open client order ids)."""

    name: str
    creds: dict[str, str]
    books: Callable[[dict], tuple[Decimal, Decimal, set[str]]]
    serve_args: tuple[str, ...] = ()
    config_lines: str = ""  # extra lines for the [live] table
    serve: str = ""  # the fake's name for `rustybt venue serve` (default: name)
    # our client order id -> the id the venue saw (an adapter that encodes ids)
    encode: Callable[[str], str] | None = None


def _binance_books(venue: dict) -> tuple[Decimal, Decimal, set[str]]:
    held = Decimal(venue["balances"].get("BTC", "0")) + Decimal(venue["locked"].get("BTC", "0"))
    cash = Decimal(venue["balances"]["USDT"]) + Decimal(venue["locked"].get("USDT", "0"))
    opens = {
        o["clientOrderId"] for o in venue["orders"] if o["status"] in ("NEW", "PARTIALLY_FILLED")
    }
    return held, cash, opens


BINANCE = HarnessVenue("binance", CREDS, _binance_books)

ALGO = '''
from decimal import Decimal

from rustybt.algorithm import TradingAlgorithm


class BinanceCrash(TradingAlgorithm):
    """Flips 0.01 BTC with market orders every 3 bars; rests a far limit buy every 5 bars
    (it stays open across restarts) and cancels the resting ones every 11."""

    def initialize(self):
        self.btc = self.symbol("BTCUSDT")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars % 3 == 0:
            self.order_target(self.btc, Decimal("0.01") if (self.bars // 3) % 2 else 0)
        if self.bars % 5 == 0:
            price = Decimal(str(data.current(self.btc, "price")))
            limit = self.btc.round_price(price * Decimal("0.95"))
            self.order(self.btc, Decimal("0.001"), limit_price=limit)
        if self.bars % 11 == 0:
            for order in self.get_open_orders(self.btc):
                if order.limit_price is not None:
                    self.cancel_order(order)
'''

CONFIG = """
[live]
algofile = "{algo}"
broker = "{broker}"
venue_url = "http://127.0.0.1:{port}"
state_dir = "{state}"
checkpoint_interval = 0.2
reconcile_interval = 0.3
reconciliation = "halt_and_alert"
poll_interval = 0.1
{extra}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_venue(port: int, seed: int, log: Path, hv: HarnessVenue) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            RUSTYBT,
            "venue",
            "serve",
            hv.serve or hv.name,
            *hv.serve_args,
            "--port",
            str(port),
            "--interval",
            "0.05",
            "--seed",
            str(seed),
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"fake venue did not start: {log.read_text(errors='replace')[-2000:]}")


def _start(config: Path, log: Path, hv: HarnessVenue, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [RUSTYBT, "live", "--config", str(config), "--no-progress", *extra],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **hv.creds},
        start_new_session=True,
    )


def _records(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill(proc: subprocess.Popen, rng: random.Random, journal: Path) -> str:
    """SIGKILL ``proc`` at a seeded point once it trades; returns how."""
    deadline = time.monotonic() + 45
    start = _records(journal)
    # wait until this run has started trading (start-up takes a few seconds)
    while proc.poll() is None and _records(journal) <= start and time.monotonic() < deadline:
        time.sleep(0.01)
    if rng.random() < 0.5:
        delay = rng.uniform(0.0, 2.5)
        how = f"{delay:.2f}s after its first journal record"
        end = time.monotonic() + delay
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(0.005)
    else:
        want = _records(journal) + rng.randint(1, 30)
        how = f"at journal record {want}"
        while proc.poll() is None and _records(journal) < want and time.monotonic() < deadline:
            time.sleep(0.002)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    else:
        how += " (had already finished)"
    proc.wait(timeout=10)
    return how


def _venue_state(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/state", timeout=5) as r:
        return json.loads(r.read())


def _run_trial(i: int, base: Path, algo: Path, hv: HarnessVenue) -> dict:
    rng = random.Random(9_100 + i)
    root = base / f"trial{i:02d}"
    root.mkdir()
    port = _free_port()
    state = root / "state"
    config = root / "live.toml"
    config.write_text(
        CONFIG.format(algo=algo, port=port, state=state, broker=hv.name, extra=hv.config_lines)
    )
    log = root / "output.log"
    venue = _start_venue(port, i, root / "venue.log", hv)
    try:
        jpath = journal_path(state / "journal", STRATEGY)
        kills = [_kill(_start(config, log, hv), rng, jpath)]
        if rng.random() < 0.3:
            kills.append(_kill(_start(config, log, hv), rng, jpath))
        final = _start(config, log, hv, "--max-bars", "30")
        try:
            code = final.wait(timeout=90)
        except subprocess.TimeoutExpired:
            final.kill()
            final.wait(timeout=10)
            code = "timeout"
        venue_state = _venue_state(port)
        # kept next to the trial's files: a failing trial is diagnosed from them
        (root / "venue_state.json").write_text(json.dumps(venue_state, indent=1))
    finally:
        venue.send_signal(signal.SIGTERM)
        try:
            venue.wait(timeout=10)
        except subprocess.TimeoutExpired:
            venue.kill()
    return {"trial": i, "root": root, "kills": kills, "code": code, "venue": venue_state}


def _check(result: dict, hv: HarnessVenue) -> None:
    root: Path = result["root"]
    where = f"trial {result['trial']} (killed {result['kills']}; files in {root})"
    output = (root / "output.log").read_text(errors="replace")
    assert result["code"] == 0, f"{where}: final run exited {result['code']}:\n{output[-3000:]}"
    state = root / "state"
    journals = [journal_path(state / "journal", STRATEGY)]
    journals += sorted((state / "journal").glob(f"{STRATEGY}.journal.*.old"))
    intents: dict[str, str] = {}
    for path in journals:
        for coid, jo in OrderJournal.replay(path).orders.items():
            if jo.has_intent:
                intents[coid] = jo.status
    ours_of = {hv.encode(c): c for c in intents} if hv.encode else {}

    venue = result["venue"]
    received = [ours_of.get(c, c) for c in venue["received"]]
    dupes = {c for c in received if received.count(c) > 1}
    assert not dupes, f"{where}: client order ids sent twice: {dupes}"

    cp = StateManager(state).load_checkpoint(STRATEGY)
    assert cp is not None, f"{where}: no checkpoint"
    local = cp.ledger_state
    ours = {p["asset"]["symbol"]: Decimal(p["amount"]) for p in local["positions"]}
    ours = {k: v for k, v in ours.items() if v != 0}
    held, cash, venue_open = hv.books(venue)
    venue_open = {ours_of.get(c, c) for c in venue_open}
    theirs = {"BTCUSDT": held} if held != 0 else {}
    assert ours == theirs, f"{where}: positions {ours} != venue {theirs}"
    assert Decimal(local["cash"]) == cash, f"{where}: cash {local['cash']} != venue {cash}"
    local_open = {o.client_order_id for o in cp.pending_orders}
    assert local_open == venue_open, f"{where}: open orders {local_open} != venue {venue_open}"

    sent = set(received)
    unaccounted = {c: s for c, s in intents.items() if c not in sent and s != "rejected"}
    assert not unaccounted, f"{where}: intents neither sent nor resolved: {unaccounted}"
    strangers = sent - set(intents)
    assert not strangers, f"{where}: venue has orders we never intended: {strangers}"

    for audit in (state / "logs").glob("*.jsonl"):
        for line in audit.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line torn by the kill
            assert rec.get("event") != "alert", f"{where}: {audit.name}: {rec}"


def _harness(tmp_path: Path, trials: int, hv: HarnessVenue = BINANCE) -> None:
    algo = tmp_path / "binance_crash.py"
    algo.write_text(ALGO)
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(lambda i: _run_trial(i, tmp_path, algo, hv), range(trials)))
    for result in results:
        _check(result, hv)
    killed = [r for r in results if any("already finished" not in k for k in r["kills"])]
    assert len(killed) >= max(1, trials * 3 // 4)
    traded = [r for r in results if r["venue"]["received"]]
    assert len(traded) == trials, "every trial must have traded"
    # Sessions really were interrupted mid-trading and recovered from checkpoint + journal.
    restored = [r for r in results if _restores(r["root"])]
    assert len(restored) >= max(1, trials // 2), f"only {len(restored)} trials restored"


def _restores(root: Path) -> int:
    return sum(
        audit.read_text(errors="replace").count('"checkpoint_restored"')
        for audit in (root / "state" / "logs").glob("*.jsonl")
    )


def test_sigkill_of_a_live_binance_session_loses_and_duplicates_nothing(tmp_path):
    _harness(tmp_path, int(os.environ.get("RUSTYBT_BINANCE_CRASH_TRIALS", "3")))


@pytest.mark.slow
def test_sigkill_harness_full_count(tmp_path):
    _harness(tmp_path, 20)
