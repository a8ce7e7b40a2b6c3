"""Pieces every benchmark job shares: CSV loading, the SMA-cross rule, and the JSON report line.

Peer jobs run inside their own virtualenvs (``.bench/venv-<peer>``) that do not have RustyBT
installed, so this module is standard library only and is imported by path, not as a package.

The rule, per symbol: SMA(10) and SMA(30) of the close; fast > slow while flat -> buy 100;
fast < slow while long -> sell to 0. The comparison is made on running sums
(``3 * sum10 > sum30`` is ``sum10 / 10 > sum30 / 30``) of exact cents (or Decimals), so every
framework, float-based or not, takes exactly the same decisions on the same data.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import deque
from pathlib import Path

FAST = 10
SLOW = 30
ORDER_QTY = 100

# How a job computes the two averages (``--style``):
#   sums               running sums of exact cents/Decimals (the ``Cross`` below)
#   history            the framework's idiomatic way: one ``data.history`` call per minute for
#                      all assets (zipline, RustyBT), built-in SMA indicators (backtrader,
#                      NautilusTrader), then ``window.iloc[-10:].mean()`` vs ``window.mean()``
#   history-per-asset  one ``data.history`` call per asset per minute (zipline, RustyBT)
STYLES = ("sums", "history", "history-per-asset")


def sign(fast, slow) -> int:
    """+1 when fast > slow, -1 when below, 0 when equal (a tie never trades)."""
    return 1 if fast > slow else (-1 if fast < slow else 0)


def cents(price) -> int:
    """A fill price (float or Decimal) as integer cents, for comparing fills across peers."""
    return int(round(float(price) * 100)) if isinstance(price, float) else int(price * 100)


class Cross:
    """Running SMA(10)/SMA(30) of one symbol's closes; ``update`` returns the sign of fast-slow."""

    __slots__ = ("_fast", "_slow", "_sum_fast", "_sum_slow")

    def __init__(self, zero=0) -> None:
        self._fast: deque = deque()
        self._slow: deque = deque()
        self._sum_fast = zero
        self._sum_slow = zero

    def update(self, close) -> int:
        """Feed one close (int cents or Decimal); +1 fast above, -1 below, 0 equal/warming up."""
        self._fast.append(close)
        self._sum_fast += close
        if len(self._fast) > FAST:
            self._sum_fast -= self._fast.popleft()
        self._slow.append(close)
        self._sum_slow += close
        if len(self._slow) > SLOW:
            self._sum_slow -= self._slow.popleft()
        elif len(self._slow) < SLOW:
            return 0
        diff = 3 * self._sum_fast - self._sum_slow
        return 1 if diff > 0 else (-1 if diff < 0 else 0)


def to_cents(price: float) -> int:
    """A float price from a framework's feed back to exact integer cents."""
    return int(round(price * 100))


def csv_files(data_dir: str | Path) -> list[Path]:
    """The per-symbol CSV files of a generated data set, in symbol order."""
    files = sorted(Path(data_dir).glob("*.csv"))
    if not files:
        raise SystemExit(f"no CSV files in {data_dir}: generate the data set first")
    return files


def read_rows(path: Path) -> list[list[str]]:
    """Rows ``[dt, open, high, low, close, volume]`` as strings, header dropped."""
    with Path(path).open() as fh:
        next(fh)
        return [line.rstrip("\n").split(",") for line in fh if line.strip()]


def trades_digest(trades: list[list]) -> str:
    """Order-independent SHA-256 of the trade list, to compare peers at a glance."""
    lines = sorted(json.dumps(t, separators=(",", ":")) for t in trades)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def peak_rss_mb() -> float | None:
    """This process's own resident-set high-water mark (Linux ``VmHWM``), in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def emit(
    peer: str, bars: int, orders: int, wall_s: float, trades: list[list], **extra: object
) -> None:
    """Print the one JSON line the harness reads (it takes the last line starting with '{')."""
    report = {
        "peer": peer,
        "vmhwm_mb": peak_rss_mb(),
        "bars": bars,
        "orders": orders,
        "wall_s": wall_s,
        "trades_count": len(trades),
        "trades_sha": trades_digest(trades),
        "trades": trades,
        **extra,
    }
    sys.stdout.write("\n" + json.dumps(report, separators=(",", ":")) + "\n")
    sys.stdout.flush()
