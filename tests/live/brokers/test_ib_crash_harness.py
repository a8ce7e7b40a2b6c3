"""Crash harness against Interactive Brokers: SIGKILL a real `rustybt live --broker ib`.

The venue is a fake TWS (``rustybt.testing.venues.ib``) running in this test process on
its own thread and loop, trading a seeded random walk every 50 ms; it outlives every
trading process as TWS does. Each trial starts the CLI against it, SIGKILLs it at a
seeded moment (a wall-clock offset, or once the order journal holds a seeded number of
records), sometimes kills the recovery too, then lets a final run finish and checks:

* no client order id (IB ``orderRef``) reached TWS twice;
* TWS holds no order the journal did not intend, and every intent reached TWS or was
  resolved as never sent;
* after recovery, local positions and cash equal TWS's, and the local open orders are
  TWS's working orders;
* reconciliation (HALT_AND_ALERT, the CLI's default for a real broker) never alerted.

``make test`` runs a few trials (``RUSTYBT_IB_CRASH_TRIALS``, default 3), ``make
test-slow`` runs 20.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from rustybt.live.journal import OrderJournal, journal_path
from rustybt.live.state_manager import StateManager
from rustybt.testing.venues.ib.server import FakeTWS

TRIALS = int(os.environ.get("RUSTYBT_IB_CRASH_TRIALS", "3"))
STRATEGY = "IBFlip"
RUSTYBT = str(Path(sys.executable).with_name("rustybt"))

ALGO = '''
from rustybt.algorithm import TradingAlgorithm


class IBFlip(TradingAlgorithm):
    """Flips between 0 and 7 AAPL every 3 bars, then rests so the session can settle.

    The last bars of each session send nothing, so the final checkpoint is taken with no
    order in flight and can be compared with TWS exactly.
    """

    def initialize(self):
        self.aapl = self.symbol("AAPL")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars > 30:
            return
        target = 7 if (self.bars // 3) % 2 else 0
        self.order_target(self.aapl, target)
'''

CONFIG = """
[live]
algofile = "{algo}"
broker = "ib"
bundle = "demo"
port = {port}
client_id = 7
state_dir = "{state}"
checkpoint_interval = 0.2
reconcile_interval = 0.5
max_bars = {bars}
"""


class _TWSThread:
    """A fake TWS on its own event loop thread, so it outlives the processes we kill."""

    def __init__(self, seed: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.fake = FakeTWS(cash="1000000")
        self.seed = seed
        self._market: asyncio.Future | None = None

    def __enter__(self) -> _TWSThread:
        self.thread.start()
        self.call(self.fake.start())
        self._market = asyncio.run_coroutine_threadsafe(
            self.fake.run_market(interval=0.05, seed=self.seed), self.loop
        )
        return self

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def snapshot(self) -> dict:
        async def read() -> dict:
            f = self.fake
            aapl = f.instrument("AAPL").con_id
            return {
                "refs": [o.order_ref for o in f.orders.values()],
                "open": {o.order_ref for o in f.orders.values() if o.status == "Submitted"},
                "aapl": f.positions.get(aapl, (Decimal(0), Decimal(0)))[0],
                "cash": f.cash,
            }

        return self.call(read())

    def __exit__(self, *exc: object) -> None:
        if self._market is not None:
            self._market.cancel()
        self.call(self.fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def _start(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [RUSTYBT, "live", "--config", str(config), "--no-progress"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _records(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_at_random_point(proc: subprocess.Popen, rng: random.Random, journal: Path) -> str:
    deadline = time.monotonic() + 30
    # Start-up (imports, connecting, reconciling) takes seconds on a busy machine: time
    # the kill from the journal's first record on, so it lands while trading.
    while proc.poll() is None and _records(journal) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    if rng.random() < 0.5:
        delay = rng.uniform(0.0, 1.5)
        how = f"after {delay:.2f}s"
        end = time.monotonic() + delay
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(0.005)
    else:
        want = _records(journal) + rng.randint(1, 12)
        how = f"at journal record {want}"
        while proc.poll() is None and _records(journal) < want and time.monotonic() < deadline:
            time.sleep(0.002)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    else:
        how += " (had already finished)"
    proc.wait(timeout=10)
    return how


def _run_trial(i: int, base: Path, algo: Path) -> tuple[list[str], int]:
    rng = random.Random(9_000 + i)
    root = base / f"trial{i:02d}"
    root.mkdir()
    state = root / "state"
    log = root / "output.log"
    jpath = journal_path(state / "journal", STRATEGY)
    with _TWSThread(seed=i) as tws:
        config = root / "live.toml"
        config.write_text(CONFIG.format(algo=algo, port=tws.fake.port, state=state, bars=40))
        kills = [_kill_at_random_point(_start(config, log), rng, jpath)]
        if rng.random() < 0.3:
            kills.append(_kill_at_random_point(_start(config, log), rng, jpath))
        final = _start(config, log)
        try:
            code = final.wait(timeout=90)
        except subprocess.TimeoutExpired:
            final.kill()
            final.wait(timeout=10)
            code = "timeout"
        venue = tws.snapshot()
    where = f"trial {i} (killed {kills}; files in {root})"
    output = log.read_text(errors="replace")
    assert code == 0, f"{where}: final run exited {code}:\n{output[-3000:]}"

    refs = venue["refs"]
    dupes = {r for r in refs if refs.count(r) > 1}
    assert not dupes, f"{where}: client order ids sent to TWS twice: {dupes}"

    cp = StateManager(state).load_checkpoint(STRATEGY)
    assert cp is not None, f"{where}: no checkpoint"
    ours = {p["asset"]["symbol"]: Decimal(p["amount"]) for p in cp.ledger_state["positions"]}
    assert ours.get("AAPL", Decimal(0)) == venue["aapl"], f"{where}: {ours} != TWS {venue}"
    assert Decimal(cp.ledger_state["cash"]) == venue["cash"], f"{where}: cash differs"
    local_open = {o.client_order_id for o in cp.pending_orders}
    assert local_open == venue["open"], f"{where}: open {local_open} != TWS {venue['open']}"

    journals = [jpath, *sorted((state / "journal").glob(f"{STRATEGY}.journal.*.old"))]
    intents: dict[str, str] = {}
    for path in journals:
        for coid, jo in OrderJournal.replay(path).orders.items():
            if jo.has_intent:
                intents[coid] = jo.status
    sent = set(refs)
    unaccounted = {c: s for c, s in intents.items() if c not in sent and s != "rejected"}
    assert not unaccounted, f"{where}: intents neither sent nor resolved: {unaccounted}"
    strangers = sent - set(intents)
    assert not strangers, f"{where}: TWS has orders we never intended: {strangers}"

    for audit in (state / "logs").glob("*.jsonl"):
        for line in audit.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line torn by the kill
            assert rec.get("event") != "alert", f"{where}: {audit.name}: {rec}"
    restores = sum(
        audit.read_text().count('"checkpoint_restored"')
        for audit in (state / "logs").glob("*.jsonl")
    )
    return kills, restores


def test_sigkill_of_an_ib_session_loses_nothing_and_sends_nothing_twice(tmp_path):
    _harness(tmp_path, TRIALS)


@pytest.mark.slow
def test_twenty_sigkill_trials_against_the_fake_tws(tmp_path):
    _harness(tmp_path, max(20, TRIALS))


def _harness(tmp_path: Path, trials: int) -> None:
    algo = tmp_path / "ib_flip.py"
    algo.write_text(ALGO)
    results = [_run_trial(i, tmp_path, algo) for i in range(trials)]
    # The harness must really interrupt sessions and recover them from a checkpoint plus
    # the journal, not watch runs finish or start afresh.
    killed = [k for k, _ in results if any("already finished" not in x for x in k)]
    assert len(killed) >= max(1, trials * 3 // 4), results
    restored = [r for _, r in results if r]
    assert len(restored) >= max(1, trials // 2), f"only {len(restored)} trials restored: {results}"
