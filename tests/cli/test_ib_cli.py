"""`rustybt live --broker ib` and `rustybt venue serve ib`: real subprocesses on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

RUSTYBT = str(Path(sys.executable).parent / "rustybt")
QUICKSTART = str(Path("examples/quickstart.py").resolve())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([RUSTYBT, *args], capture_output=True, text=True, timeout=timeout)


def test_live_money_port_is_refused_in_one_line_without_the_flag(tmp_path):
    out = _run(
        "live", "-f", QUICKSTART, "--broker", "ib", "--port", "7496", "--state-dir", str(tmp_path)
    )
    assert out.returncode == 2
    assert "live-money port" in out.stderr and "--live-money" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_unknown_fake_venue_is_a_one_line_error():
    out = _run("venue", "serve", "nosuch")
    assert out.returncode == 2 and "no fake venue 'nosuch'" in out.stderr


def test_paper_trades_through_a_served_fake_tws(tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        [RUSTYBT, "venue", "serve", "ib", "--port", str(port), "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = server.stdout.readline()
        assert f"127.0.0.1:{port}" in banner
        out = _run(
            "live",
            "-f",
            QUICKSTART,
            "--broker",
            "ib",
            "--port",
            str(port),
            "--client-id",
            "4",
            "--max-bars",
            "4",
            "--state-dir",
            str(tmp_path),
            "--no-progress",
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Orders" in out.stdout and "Fills" in out.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)
