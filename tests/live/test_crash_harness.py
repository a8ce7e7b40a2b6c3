"""Crash-test harness: SIGKILL a real `rustybt live` paper session at seeded random points.

Each trial runs the CLI in a subprocess against a persistent paper venue
(``paper_state``, which stands for the remote broker and outlives the trading process),
kills it with SIGKILL at a seeded random moment, sometimes restarts and kills it again,
then lets a final restart run to completion and checks the durability invariants. The
kill points are:

* a wall-clock offset, or the moment the order journal holds a seeded number of records;
* between the journal write of an intent and the broker call (``after_intent``), and
  between the broker's acceptance and the journal record of it (``after_submit``): the
  process SIGKILLs itself there (``rustybt.live.crashpoints``), a timer from outside
  cannot aim at those microseconds;
* during the restore of a restart (``restore``: journal re-applied, broker not asked);
* right after an operator's halt was acknowledged on the control socket.

Checked after every trial:

* the newest checkpoint loads;
* no client order id reached the broker twice (the venue keeps every id it received);
* local positions and cash equal the broker's (final checkpoint ledger against the
  venue's ledger), and the local open orders are the venue's open orders;
* every order the strategy made is accounted for: each journal intent is at the broker,
  or was resolved as never sent / rejected; the broker has no order we did not intend;
* no reconciliation ever found a discrepancy (HALT_AND_ALERT raised no alert);
* the venue received exactly the orders (bar, asset, amount) of an uninterrupted run:
  a restart neither loses an order nor trades a bar again;
* a halt acknowledged before the kill is still in force after every restart, and no
  order reached the venue after it.

``make test`` runs a few trials (``RUSTYBT_CRASH_TRIALS``, default 6); ``make test-slow``
runs the full count (24). Trials run a few at a time in threads; every subprocess has a
timeout.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from rustybt.live.journal import OrderJournal, journal_path
from rustybt.live.recovery import halt_path
from rustybt.live.state_manager import StateManager
from tests.live.live_proc import STRATEGY, Session, audit_events, kill

PARALLEL = 3
_OPEN = ("new", "submitted", "partially_filled")


def _kill_at_random_point(session: Session, rng: random.Random, how: str) -> str:
    """Start ``session`` and SIGKILL it at a seeded point; returns what happened."""
    env = {}
    if how == "crashpoint":
        point = rng.choice(["after_intent", "after_submit"])
        env["RUSTYBT_CRASH_AT"] = f"{point}:{rng.randint(1, 6)}"
        how = env["RUSTYBT_CRASH_AT"]
    elif how == "restore":
        env["RUSTYBT_CRASH_AT"] = "restore:1"
        how = "during restore"
    proc = session.start(env=env)
    if env:
        try:
            code = proc.wait(timeout=60)
        except Exception:
            kill(proc)
            return how + " (timed out, killed)"
        return how if code == -9 else how + f" (not reached, exited {code})"
    if how == "time":
        delay = rng.uniform(0.6, 3.0)
        how = f"after {delay:.2f}s"
        end = time.monotonic() + delay
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(0.005)
    else:
        want = session.journal_records() + rng.randint(1, 60)
        how = f"at journal record {want}"
        session.wait_for_records(proc, want)
    if not kill(proc):
        how += " (had already finished)"
    return how


def _halt_then_kill(session: Session) -> str:
    proc = session.start()
    try:
        session.wait_for_socket(proc)
        reply = session.control("halt", "--reason", "crash test", "--operator", "harness")
        assert reply.returncode == 0, reply.stderr
        session.halted_submissions = len(session.venue().submissions)
    finally:
        kill(proc)
    return "right after an acknowledged halt"


def _run_trial(i: int, base: Path) -> dict:
    rng = random.Random(7_000 + i)
    # Every kind of kill point appears in any run of 6 or more trials.
    kind = ("time", "journal", "crashpoint", "crashpoint", "halt", "journal")[i % 6]
    # A halt needs a session that is still running when the operator's command arrives.
    session = Session(base / f"trial{i:02d}", seed=i, speed="3000x" if kind == "halt" else "15000x")
    session.halted_submissions = None
    if kind == "halt":
        kills = [_halt_then_kill(session)]
    else:
        kills = [_kill_at_random_point(session, rng, kind)]
    if i % 3 == 1:  # crash the recovery too
        kills.append(_kill_at_random_point(session, rng, "restore"))
    elif rng.random() < 0.3:
        kills.append(_kill_at_random_point(session, rng, "journal"))
    try:
        code = session.run(timeout=90)
    except AssertionError:
        code = "timeout"
    return {"trial": i, "session": session, "kills": kills, "code": code}


def _reference_orders(base: Path) -> list:
    session = Session(base / "reference", seed=0)
    assert session.run(timeout=90) == 0, session.output()[-3000:]
    return session.venue_orders()


def _check_trial(result: dict, reference: list) -> None:
    session: Session = result["session"]
    root = session.root
    where = f"trial {result['trial']} (killed {result['kills']}; files in {root})"
    output = session.output()
    assert result["code"] == 0, f"{where}: final run exited {result['code']}:\n{output[-3000:]}"
    state = session.state

    cp = StateManager(state).load_checkpoint(STRATEGY)
    assert cp is not None, f"{where}: no checkpoint"

    venue = session.venue()
    submissions = venue.submissions
    dupes = {c for c in submissions if submissions.count(c) > 1}
    assert not dupes, f"{where}: client order ids sent twice: {dupes}"

    # Local state after recovery == the broker's, exactly.
    local = cp.ledger_state
    assert Decimal(local["cash"]) == venue.ledger.cash, where
    ours = {p["asset"]["symbol"]: Decimal(p["amount"]) for p in local["positions"]}
    theirs = {a.symbol: p.amount for a, p in venue.ledger.positions.items()}
    assert ours == theirs, f"{where}: positions {ours} != broker {theirs}"
    venue_open = {venue._client_ids[o.id] for o in venue._orders.values() if o.is_open}
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
    assert not audit_events(state, "alert"), f"{where}: {audit_events(state, 'alert')}"
    for rec in audit_events(state, "reconciliation"):
        assert rec["max_severity"] == "info", f"{where}: {rec}"

    if session.halted_submissions is not None:
        # The halt outlived the kill and every restart; nothing was sent after it.
        assert len(submissions) == session.halted_submissions, f"{where}: traded while halted"
        breakers = cp.breaker_state["breakers"]
        assert any(
            b["state"] != "normal" and "crash test" in (b["reason"] or "") for b in breakers
        ), f"{where}: halt lost: {breakers}"
        assert halt_path(state, STRATEGY).exists()
        assert audit_events(state, "halt_restored"), f"{where}: restart was not halted"
    else:
        # Same orders as an uninterrupted run: no bar traded twice, none lost.
        got = session.venue_orders()
        diff = [k for k, (a, b) in enumerate(zip(got, reference, strict=False)) if a != b]
        assert got == reference, (
            f"{where}: the venue received {len(got)} orders, an uninterrupted run "
            f"{len(reference)}; first difference at {diff[:1]}"
        )


def _restores(session: Session) -> int:
    return len(audit_events(session.state, "checkpoint_restored"))


def _harness(tmp_path: Path, trials: int) -> None:
    with ThreadPoolExecutor(PARALLEL) as pool:
        ref = pool.submit(_reference_orders, tmp_path)
        results = list(pool.map(lambda i: _run_trial(i, tmp_path), range(trials)))
        reference = ref.result()
    assert reference, "the uninterrupted run sent no orders"
    for result in results:
        _check_trial(result, reference)
    # The harness must really have interrupted sessions and recovered them from a
    # checkpoint plus journal, not just watched runs finish or start from scratch.
    killed = [
        r
        for r in results
        if any("already finished" not in k and "not reached" not in k for k in r["kills"])
    ]
    assert len(killed) >= trials * 3 // 4
    restored = [r for r in results if _restores(r["session"])]
    assert len(restored) >= trials // 2, f"only {len(restored)} trials restored a checkpoint"


def test_sigkill_at_random_points_loses_nothing_and_sends_nothing_twice(tmp_path):
    _harness(tmp_path, int(os.environ.get("RUSTYBT_CRASH_TRIALS", "6")))


@pytest.mark.slow
def test_sigkill_harness_full_count(tmp_path):
    _harness(tmp_path, int(os.environ.get("RUSTYBT_CRASH_TRIALS_SLOW", "24")))
