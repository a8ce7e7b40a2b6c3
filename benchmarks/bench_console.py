"""What the operator console costs a live session: events/s and tick→submit p99.

The same paper replay (``bench_live``'s strategy on the demo bundle's BTCUSDT minute bars at
``speed="max"``) runs without the console and with it — the console serving on 127.0.0.1,
and in another process (as Prometheus and a browser are) a client doing what an open
dashboard does (the event stream, and the page's polls plus ``/metrics`` every 2 s), and
a stress client polling 4× a second — alternating, ``runs`` times each. Tick→submit samples are
taken exactly (a list) in both configurations; with the console they also feed its
histogram, as in production.

``python -m benchmarks.bench_console`` prints the table; ``make bench`` includes it.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_live import EveryN, Timer, demo_root, percentile, quiet_logs
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import default_breakers
from rustybt.live.console.server import ConsoleServer
from rustybt.live.engine import LiveTradingEngine


class _Tee(list):
    """Keeps every latency sample and also feeds the console's histogram."""

    def __init__(self, histogram: Any) -> None:
        super().__init__()
        self.histogram = histogram

    def append(self, ns: int) -> None:  # type: ignore[override]
        super().append(ns)
        self.histogram.append(ns)


# Runs in its own process (as Prometheus and a browser would), importing only the
# standard library so that its start-up does not compete with the engine for the CPU.
_SCRAPER = """
import os, signal, sys, threading, time, urllib.request
url, token, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
count = [0]
def stream_events():
    with urllib.request.urlopen(url + "api/events?token=" + token) as resp:
        for _ in resp:
            pass
def stop(*_):
    print(count[0], flush=True)
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
threading.Thread(target=stream_events, daemon=True).start()
headers = {"Authorization": "Bearer " + token}
while True:
    # what the dashboard page polls, plus Prometheus' scrape
    for path in ("metrics", "api/positions", "api/orders", "api/fills", "api/equity"):
        with urllib.request.urlopen(urllib.request.Request(url + path, headers=headers)) as r:
            r.read()
    count[0] += 1
    time.sleep(interval)
"""


async def _once(
    portal: PolarsDataPortal, with_console: bool, max_events: int, interval: float = 2.0
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        engine = LiveTradingEngine(
            EveryN(),
            PaperBroker(starting_cash="1000000"),
            portal,
            circuit_breakers=default_breakers(),
            state_dir=Path(tmp),
            control_socket=False,
            speed="max",
        )
        engine.stop_after_market_events = max_events
        latencies: list[int] = []
        engine.order_manager.submit_latencies_ns = latencies
        console = scraper = None
        if with_console:
            console = ConsoleServer(engine, port=0)
            await console.start()
            latencies = _Tee(console.latency)
            engine.order_manager.submit_latencies_ns = latencies
            scraper = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _SCRAPER,
                console.url,
                console.token,
                str(interval),
                stdout=asyncio.subprocess.PIPE,
            )
        timer = Timer(engine)
        await engine.run()
        scrapes = 0
        if scraper is not None:
            scraper.terminate()
            out, _ = await scraper.communicate()
            scrapes = int(out.strip() or 0)
        if console is not None:
            await console.stop()
        events = engine.get_status()["market_events"]
        return {
            "eps": (events - 1) / timer.seconds,
            "latencies": list(latencies),
            "scrapes": scrapes,
        }


def run(quick: bool = False, runs: int = 5) -> dict:
    max_events = 3_000 if quick else 30_000
    runs = 1 if quick else runs
    load = os.getloadavg()[0]
    with quiet_logs():
        root = demo_root(None)
        os.environ["RUSTYBT_ROOT"] = str(root)
        portal = PolarsDataPortal(bundle_name="demo", data_frequency="minute")
        configs = {
            "no console": (False, 0.0),
            "console, dashboard open (SSE + polls every 2 s, /metrics)": (True, 2.0),
            "console, scraped 4× a second (stress)": (True, 0.25),
        }
        results: dict[str, list[dict]] = {name: [] for name in configs}
        for _ in range(runs):
            for name, (with_console, interval) in configs.items():
                results[name].append(
                    asyncio.run(_once(portal, with_console, max_events, interval or 2.0))
                )
    rows = []
    for name in configs:
        eps = [r["eps"] for r in results[name]]
        lat = sorted(ns for r in results[name] for ns in r["latencies"])
        rows.append(
            {
                "configuration": name,
                "events/s median": round(statistics.median(eps)),
                "events/s min–max": f"{min(eps):,.0f}–{max(eps):,.0f}",
                "tick→submit p50 µs": round(percentile(lat, 50) / 1e3, 1),
                "tick→submit p99 µs": round(percentile(lat, 99) / 1e3, 1),
                "poll rounds": sum(r["scrapes"] for r in results[name]),
            }
        )
    ratio = rows[1]["events/s median"] / rows[0]["events/s median"]
    stress = rows[2]["events/s median"] / rows[0]["events/s median"]
    notes = (
        f"{runs} alternating run(s) of {max_events:,} replayed events each; load average "
        f"{load:.2f} at start (2 cores: the client process competes with the engine for "
        f"them). With a dashboard open, events/s is {ratio:.1%} of without the console; "
        f"scraped 4× a second, {stress:.1%}."
    )
    return {"rows": rows, "raw": {"rows": rows, "ratio": ratio, "load": load}, "notes": notes}


if __name__ == "__main__":
    started = time.perf_counter()
    out = run()
    for row in out["rows"]:
        print(row)
    print(out["notes"], f"({time.perf_counter() - started:.0f} s)")
