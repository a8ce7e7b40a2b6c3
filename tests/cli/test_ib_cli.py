"""`rustybt live --broker ib` and `rustybt venue serve ib`: real subprocesses on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_data_stream_with_broker_ib_streams_tws_real_time_bars():
    """``--broker ib --data stream`` wires the engine to TWS's real-time bars (the bar
    builder path), not a crypto venue's stream; a crypto ``--venue`` is refused."""
    from rustybt.cli.main import _build_engine
    from rustybt.exceptions import ConfigError
    from rustybt.live.streaming.ib import IBRealTimeBarStream

    opts = {"algofile": QUICKSTART, "broker": "ib", "data": "stream", "bar_seconds": 60.0}
    engine = _build_engine(opts)
    [pending] = engine._pending_streams
    stream = pending[0]
    assert isinstance(stream, IBRealTimeBarStream) and stream.broker is engine.broker
    assert stream.url == "tws://127.0.0.1:7497"
    assert engine.streams.builder.interval.total_seconds() == 60
    with pytest.raises(ConfigError, match="TWS's own real-time bars"):
        _build_engine({**opts, "venue": "binance"})
    with pytest.raises(ConfigError, match="multiple"):
        _build_engine({**opts, "bar_seconds": 7.0, "symbols": ["AAPL"]})


@pytest.mark.slow
def test_live_ib_data_stream_trades_on_bars_from_a_served_fake_tws(tmp_path):
    """Two processes: ``venue serve ib --interval 5`` publishes 5-second real-time bars as
    TWS does; ``live --broker ib --data stream`` trades on bars closed on the timer."""
    port = _free_port()
    server = subprocess.Popen(
        [RUSTYBT, "venue", "serve", "ib", "--port", str(port), "--interval", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert f"127.0.0.1:{port}" in server.stdout.readline()
        out = _run(
            "live",
            "-f",
            QUICKSTART,
            "--broker",
            "ib",
            "--port",
            str(port),
            "--client-id",
            "5",
            "--data",
            "stream",
            "--bar-seconds",
            "5",
            "--max-bars",
            "3",
            "--state-dir",
            str(tmp_path),
            "--no-progress",
        )
        text = out.stdout + out.stderr
        assert out.returncode == 0, text
        assert "stream_connected" in text and f"tws://127.0.0.1:{port}" in text
        assert "Market events    │ 3" in text, text
    finally:
        server.terminate()
        server.wait(timeout=10)
