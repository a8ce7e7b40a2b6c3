"""One engine per (state dir, strategy): the exclusive lock, with real processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rustybt.exceptions import StateDirLocked
from rustybt.live.state_lock import StateDirLock, lock_path
from tests.live.live_proc import RUSTYBT, STRATEGY, Session, kill


def test_a_second_lock_on_the_same_strategy_and_dir_is_refused_naming_the_holder(tmp_path):
    first = StateDirLock(tmp_path, "s1")
    first.acquire()
    with pytest.raises(StateDirLocked, match=f"PID {os.getpid()}"):
        StateDirLock(tmp_path, "s1").acquire()
    # Another strategy, or another state dir, is independent.
    other = StateDirLock(tmp_path, "s2")
    other.acquire()
    elsewhere = StateDirLock(tmp_path / "b", "s1")
    elsewhere.acquire()
    for lock in (first, other, elsewhere):
        lock.release()
    again = StateDirLock(tmp_path, "s1")
    again.acquire()
    again.release()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    code = (
        "import sys, time; from rustybt.live.state_lock import StateDirLock; "
        f"StateDirLock({str(tmp_path)!r}, 's1').acquire(); print('locked', flush=True); "
        "time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StateDirLocked, match=f"PID {holder.pid}"):
            StateDirLock(tmp_path, "s1").acquire()
    finally:
        kill(holder)
    assert lock_path(tmp_path, "s1").read_text().strip() == str(holder.pid)  # stale
    lock = StateDirLock(tmp_path, "s1")
    lock.acquire()
    assert lock_path(tmp_path, "s1").read_text().strip() == str(os.getpid())
    lock.release()


def test_a_second_rustybt_live_refuses_in_one_line_and_leaves_the_first_alone(tmp_path):
    session = Session(tmp_path / "acct", speed="60x")
    first = session.start()
    try:
        session.wait_for_socket(first)
        journal_before = session.journal.stat().st_ino
        second = subprocess.run(
            [RUSTYBT, "live", "--config", str(session.config), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "400"},  # the console would wrap a long line
        )
        assert second.returncode != 0
        lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, second.stderr
        assert f"PID {first.pid}" in lines[0] and STRATEGY in lines[0]
        # The first engine still owns its journal and its control socket.
        assert first.poll() is None
        assert session.journal.stat().st_ino == journal_before
        status = session.control("status", "--json")
        assert status.returncode == 0, status.stderr
    finally:
        kill(first)
    # The lock of the killed engine is stale: the next start takes it over and runs.
    assert session.run("--max-bars", "5") == 0, session.output()[-3000:]
