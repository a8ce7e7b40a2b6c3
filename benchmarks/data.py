"""Deterministic minute-bar data for the benchmark job, shared by RustyBT and every peer.

All frameworks must chew on byte-identical input, so the data is generated once per size tag
as plain CSV (``dt,open,high,low,close,volume``, one file per symbol) and each peer converts
it to its own input format outside the timed region. Prices are a seeded random walk in whole
cents, written as exact two-decimal strings, so Decimal readers and float readers agree on
every price (a float reader rounds back to the same cent).

Timestamps follow the zipline/NautilusTrader convention: a minute bar is labelled with the
*end* of its minute, so an NYSE session runs 14:31 ... 21:00 UTC in winter (390 bars). Only
full 390-minute sessions are used: early-close days are skipped so every session has exactly
390 bars and the bar count is ``symbols × sessions × 390``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import exchange_calendars as xcals
import pandas as pd

MINUTES_PER_SESSION = 390
DEFAULT_START = "2024-01-02"
DEFAULT_SEED = 20240102
START_PRICE_CENTS = 10_000  # $100.00


@dataclass(frozen=True)
class Dataset:
    """Where a generated data set lives and what it holds."""

    tag: str
    directory: Path
    symbols: tuple[str, ...]
    sessions: tuple[str, ...]  # ISO dates, e.g. "2024-01-02"

    @property
    def bars(self) -> int:
        return len(self.symbols) * len(self.sessions) * MINUTES_PER_SESSION

    @property
    def paths(self) -> list[Path]:
        return [self.directory / f"{s}.csv" for s in self.symbols]

    @property
    def start(self) -> str:
        return self.sessions[0]

    @property
    def end(self) -> str:
        return self.sessions[-1]


def symbol_names(n_symbols: int) -> tuple[str, ...]:
    """``SYM00``, ``SYM01``... : fixed-width so lexical order is numeric order."""
    if n_symbols < 1:
        raise ValueError(f"n_symbols must be >= 1, got {n_symbols}")
    return tuple(f"SYM{i:02d}" for i in range(n_symbols))


def full_sessions(n_sessions: int, start: str = DEFAULT_START) -> list[pd.Timestamp]:
    """The first ``n_sessions`` XNYS sessions on or after ``start`` that have 390 minutes."""
    if n_sessions < 1:
        raise ValueError(f"n_sessions must be >= 1, got {n_sessions}")
    cal = xcals.get_calendar("XNYS", side="right")
    # Generous window: a year of calendar days always holds far more sessions than needed.
    end = pd.Timestamp(start) + pd.Timedelta(days=max(30, n_sessions * 2 + 30))
    out: list[pd.Timestamp] = []
    for session in cal.sessions_in_range(start, end):
        if len(cal.session_minutes(session)) == MINUTES_PER_SESSION:
            out.append(session)
            if len(out) == n_sessions:
                return out
    raise ValueError(f"only {len(out)} full sessions between {start} and {end.date()}")


def _cents(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


def generate(
    out_root: Path,
    n_symbols: int = 10,
    n_sessions: int = 20,
    *,
    seed: int = DEFAULT_SEED,
    start: str = DEFAULT_START,
    tag: str | None = None,
) -> Dataset:
    """Write the data set under ``out_root/<tag>/`` (skipped if already complete) and return it.

    The tag defaults to ``<symbols>x<sessions>-s<seed>`` so different sizes never collide.
    """
    tag = tag or f"{n_symbols}x{n_sessions}-s{seed}"
    directory = Path(out_root) / tag
    symbols = symbol_names(n_symbols)
    sessions = full_sessions(n_sessions, start)
    session_ids = tuple(s.strftime("%Y-%m-%d") for s in sessions)
    dataset = Dataset(tag, directory, symbols, session_ids)
    manifest = directory / "manifest.json"
    expected = {"symbols": list(symbols), "sessions": list(session_ids), "seed": seed}
    if manifest.exists() and json.loads(manifest.read_text()) == expected:
        if all(p.exists() for p in dataset.paths):
            return dataset

    directory.mkdir(parents=True, exist_ok=True)
    cal = xcals.get_calendar("XNYS", side="right")
    minutes: list[str] = []
    for session in sessions:
        for m in cal.session_minutes(session):
            minutes.append(m.strftime("%Y-%m-%dT%H:%M:%SZ"))

    for index, symbol in enumerate(symbols):
        # One independent stream per symbol: adding symbols never changes existing ones.
        rng = random.Random(seed * 1_000 + index)
        close = START_PRICE_CENTS
        lines = ["dt,open,high,low,close,volume"]
        for dt in minutes:
            open_ = close
            close = max(100, open_ + rng.randint(-10, 10))  # floor at $1.00
            high = max(open_, close) + rng.randint(0, 5)
            low = max(1, min(open_, close) - rng.randint(0, 5))
            volume = rng.randint(1_000, 10_000)
            lines.append(
                f"{dt},{_cents(open_)},{_cents(high)},{_cents(low)},{_cents(close)},{volume}"
            )
        (directory / f"{symbol}.csv").write_text("\n".join(lines) + "\n")
    manifest.write_text(json.dumps(expected))
    return dataset
