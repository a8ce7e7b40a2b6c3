"""Crash-test harness: SIGKILL a real `rustybt live` paper session at seeded random points.

Each trial runs the CLI in a subprocess against a persistent paper venue
(``--paper-state``, which stands for the remote broker and outlives the trading process),
kills it with SIGKILL at a seeded random moment (a wall-clock offset, or once the order
journal holds a seeded number of records), sometimes restarts and kills it again, then
lets a final restart run to completion and checks the durability invariants:

* the newest checkpoint loads;
* no client order id reached the broker twice (the venue keeps every id it received);
* after recovery, local positions and cash equal the broker's (final checkpoint ledger
  against the venue's ledger), and the local open orders are the venue's open orders;
* every order the strategy made is accounted for: each journal intent is at the broker,
  or was resolved as never sent / rejected; the broker has no order we did not intend;
* no reconciliation ever found a discrepancy (HALT_AND_ALERT raised no alert).

Trials run a few at a time in threads; every subprocess has a timeout.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

from rustybt.live.journal import OrderJournal, journal_path
from rustybt.live.state_manager import StateManager

TRIALS = int(os.environ.get("RUSTYBT_CRASH_TRIALS", "20"))
PARALLEL = 3
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
speed = "15000x"
paper_state = "{paper}"
state_dir = "{state}"
checkpoint_interval = 0.2
reconcile_interval = 0.3
reconciliation = "halt_and_alert"
volume_limit_pct = "0.002"
latency_ms = 100
seed = {seed}
"""


def _start(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [RUSTYBT, "live", "--config", str(config), "--no-progress"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
        start_new_session=True,
    )


def _journal_records(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_at_random_point(proc: subprocess.Popen, rng: random.Random, journal: Path) -> str:
    """SIGKILL ``proc`` at a seeded point; returns how (for failure messages)."""
    deadline = time.monotonic() + 20
    if rng.random() < 0.5:
        delay = rng.uniform(0.6, 3.0)
        how = f"after {delay:.2f}s"
        end = time.monotonic() + delay
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(0.005)
    else:
        want = _journal_records(journal) + rng.randint(1, 60)
        how = f"at journal record {want}"
        while (
            proc.poll() is None and _journal_records(journal) < want and time.monotonic() < deadline
        ):
            time.sleep(0.002)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    else:
        how += " (had already finished)"
    proc.wait(timeout=10)
    return how


def _run_trial(i: int, base: Path, algo: Path) -> dict:
    rng = random.Random(7_000 + i)
    root = base / f"trial{i:02d}"
    root.mkdir()
    state = root / "state"
    paper = root / "paper.json"
    config = root / "live.toml"
    config.write_text(CONFIG.format(algo=algo, paper=paper, state=state, seed=i))
    log = root / "output.log"
    jpath = journal_path(state / "journal", STRATEGY)
    kills = [_kill_at_random_point(_start(config, log), rng, jpath)]
    if rng.random() < 0.3:  # crash the recovery too
        kills.append(_kill_at_random_point(_start(config, log), rng, jpath))
    final = _start(config, log)
    try:
        code = final.wait(timeout=60)
    except subprocess.TimeoutExpired:
        final.kill()
        final.wait(timeout=10)
        code = "timeout"
    return {"trial": i, "root": root, "kills": kills, "code": code}


def _check_trial(result: dict) -> None:
    root: Path = result["root"]
    where = f"trial {result['trial']} (killed {result['kills']}; files in {root})"
    output = (root / "output.log").read_text(errors="replace")
    assert result["code"] == 0, f"{where}: final run exited {result['code']}:\n{output[-3000:]}"
    state = root / "state"

    cp = StateManager(state).load_checkpoint(STRATEGY)
    assert cp is not None, f"{where}: no checkpoint"

    venue = json.loads((root / "paper.json").read_text())
    submissions = venue["submissions"]
    dupes = {c for c in submissions if submissions.count(c) > 1}
    assert not dupes, f"{where}: client order ids sent twice: {dupes}"

    # Local state after recovery == the broker's, exactly.
    local = cp.ledger_state
    assert Decimal(local["cash"]) == Decimal(venue["ledger"]["cash"]), where
    ours = {p["asset"]["symbol"]: Decimal(p["amount"]) for p in local["positions"]}
    theirs = {p["asset"]["symbol"]: Decimal(p["amount"]) for p in venue["ledger"]["positions"]}
    assert ours == theirs, f"{where}: positions {ours} != broker {theirs}"
    client_ids = venue["client_ids"]
    venue_open = {client_ids[o["id"]] for o in venue["orders"] if o["status"] in _OPEN}
    local_open = {o.client_order_id for o in cp.pending_orders}
    assert local_open == venue_open, f"{where}: open orders {local_open} != {venue_open}"

    # Every intent is at the broker or was resolved as never sent / rejected, and the
    # broker holds nothing we did not intend.
    journals = [journal_path(state / "journal", STRATEGY)]
    journals += sorted((state / "journal").glob(f"{STRATEGY}.journal.*.old"))
    intents: dict[str, str] = {}
    for path in journals:
        for coid, jo in OrderJournal.replay(path).orders.items():
            if jo.has_intent:
                intents[coid] = jo.status
    sent = set(submissions)
    unaccounted = {c: s for c, s in intents.items() if c not in sent and s != "rejected"}
    assert not unaccounted, f"{where}: intents neither sent nor resolved: {unaccounted}"
    strangers = sent - set(intents)
    assert not strangers, f"{where}: broker has orders we never intended: {strangers}"
    waiting = ("intent_only", "submitted")
    in_flight = {c: s for c, s in intents.items() if s in waiting and c not in venue_open}
    assert not in_flight, f"{where}: orders left unresolved: {in_flight}"

    # HALT_AND_ALERT was on throughout: a discrepancy after any restart would have alerted.
    for audit in (state / "logs").glob("*.jsonl"):
        for line in audit.read_text().splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line torn by the kill
            assert rec.get("event") != "alert", f"{where}: {audit.name}: {rec}"
            if rec.get("event") == "reconciliation":
                assert rec["max_severity"] == "info", f"{where}: {audit.name}: {rec}"


_OPEN = ("new", "submitted", "partially_filled")


def test_sigkill_at_random_points_loses_nothing_and_sends_nothing_twice(tmp_path):
    algo = tmp_path / "crash_flip.py"
    algo.write_text(ALGO)
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(lambda i: _run_trial(i, tmp_path, algo), range(TRIALS)))
    for result in results:
        _check_trial(result)
    # The harness must really have interrupted sessions and recovered them from a
    # checkpoint plus journal, not just watched runs finish or start from scratch.
    killed = [r for r in results if any("already finished" not in k for k in r["kills"])]
    assert len(killed) >= TRIALS * 3 // 4
    restored = [r for r in results if _restores(r["root"])]
    assert len(restored) >= TRIALS // 2, f"only {len(restored)} trials restored a checkpoint"


def _restores(root: Path) -> int:
    return sum(
        audit.read_text().count('"checkpoint_restored"')
        for audit in (root / "state" / "logs").glob("*.jsonl")
    )
