"""The built-in ``demo`` bundle: synthetic but realistic bars, generated offline in seconds.

It exists so every example, test and tutorial runs with no download: 10 US equities on the
NYSE calendar (390 minute bars per regular session, fewer on early closes) and two crypto
pairs trading every minute, over the 20 NYSE sessions 2024-01-02 .. 2024-01-30.

Prices are a seeded log-normal random walk (per-symbol drift and volatility, overnight gaps
for equities, U-shaped intraday volatility and volume). Generation is vectorised with
numpy; stored values go float -> integer cents (np.rint) -> Decimal, so they are exact and
the same on every run. Minute bars are stamped at the END of their minute (zipline's
convention: the first NYSE bar of a session is 09:31 New York time, the last 16:00), so a
bar is fully known at its timestamp. Daily bars are derived from the minute bars and
stamped midnight UTC of the session date.
"""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

from rustybt.assets import Asset, Crypto, Equity
from rustybt.data.bundles import DECIMAL_DTYPE, daily_from_minute, write_bundle

DEMO_VERSION = 1
DEMO_SEED = 20240102
FIRST_SESSION = "2024-01-02"
LAST_SESSION = "2024-01-30"

_MINUTES_PER_YEAR_EQUITY = 252 * 390
_MINUTES_PER_YEAR_CRYPTO = 365 * 1440
_NS_PER_MIN = 60_000_000_000

# symbol, sid, start price, annual drift, annual volatility, mean volume per minute
_EQUITIES: list[tuple[str, int, float, float, float, float]] = [
    ("AAPL", 1, 185.0, 0.10, 0.22, 140_000),
    ("MSFT", 2, 375.0, 0.12, 0.24, 60_000),
    ("SPY", 3, 470.0, 0.08, 0.13, 190_000),
    ("GOOG", 4, 139.0, 0.10, 0.28, 60_000),
    ("AMZN", 5, 150.0, 0.12, 0.30, 110_000),
    ("NVDA", 6, 490.0, 0.30, 0.50, 110_000),
    ("META", 7, 345.0, 0.20, 0.35, 45_000),
    ("TSLA", 8, 245.0, -0.05, 0.55, 280_000),
    ("JPM", 9, 170.0, 0.06, 0.20, 25_000),
    ("QQQ", 10, 405.0, 0.10, 0.18, 110_000),
]
# volume in lots of 0.00001 (the pair's lot size)
_CRYPTO: list[tuple[str, int, float, float, float, float]] = [
    ("BTCUSDT", 11, 42_000.0, 0.20, 0.55, 1_700_000),
    ("ETHUSDT", 12, 2_300.0, 0.15, 0.65, 20_000_000),
]


def demo_assets() -> list[Asset]:
    """The demo bundle's 12 assets (sids 1..12), with their venue defaults."""
    equities: list[Asset] = [Equity(sym, sid=sid) for sym, sid, *_ in _EQUITIES]
    cryptos: list[Asset] = [
        Crypto(
            sym,
            sid=sid,
            exchange="BINANCE",
            quote_currency="USDT",
            tick_size="0.01",
            lot_size="0.00001",
            min_notional="5",
            calendar="24/7",
        )
        for sym, sid, *_ in _CRYPTO
    ]
    return equities + cryptos


def _equity_minutes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NYSE minute stamps (UTC ns, end of minute), position in session, session length."""
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        # exchange_calendars trips pandas' own deprecation warnings; they are not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        cal = xcals.get_calendar("XNYS", side="right", start="2023-12-01", end="2024-03-01")
        sessions = cal.sessions_in_range(FIRST_SESSION, LAST_SESSION)
        minutes = cal.sessions_minutes(sessions[0], sessions[-1])
    stamps = minutes.asi8.astype(np.int64)
    # a session starts wherever consecutive stamps are more than one minute apart
    starts = np.flatnonzero(np.diff(stamps, prepend=stamps[0] - 2 * _NS_PER_MIN) > _NS_PER_MIN)
    counts = np.diff(np.append(starts, stamps.size))
    position = np.arange(stamps.size, dtype=np.int64) - np.repeat(starts, counts)
    return stamps, position, np.repeat(counts, counts)


def _crypto_minutes() -> np.ndarray:
    """Every minute of the calendar days FIRST_SESSION .. LAST_SESSION (UTC), end-stamped."""
    first = np.datetime64(FIRST_SESSION, "ns").astype(np.int64) + _NS_PER_MIN
    days = int((np.datetime64(LAST_SESSION, "D") - np.datetime64(FIRST_SESSION, "D")).item().days)
    return first + _NS_PER_MIN * np.arange((days + 1) * 1440, dtype=np.int64)


def _walk(
    rng: np.random.Generator,
    n: int,
    start_price: float,
    drift: float,
    vol: float,
    minutes_per_year: int,
    intraday_shape: np.ndarray,
    session_start: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OHLC in integer cents; open = previous close (times an overnight gap at a session start)."""
    sigma = vol / np.sqrt(minutes_per_year) * intraday_shape
    mu = drift / minutes_per_year
    r = mu - 0.5 * sigma**2 + sigma * rng.standard_normal(n)
    g = np.zeros(n)
    if session_start is not None:
        # overnight gap: about one hour's worth of volatility
        g[session_start] = vol / np.sqrt(252) * 0.3 * rng.standard_normal(int(session_start.sum()))
    log_close = np.log(start_price) + np.cumsum(g + r)
    log_open = log_close - r
    wick_hi = np.abs(rng.standard_normal(n)) * sigma * 0.6
    wick_lo = np.abs(rng.standard_normal(n)) * sigma * 0.6
    o = np.rint(np.exp(log_open) * 100).astype(np.int64)
    c = np.rint(np.exp(log_close) * 100).astype(np.int64)
    h = np.rint(np.exp(np.maximum(log_open, log_close) + wick_hi) * 100).astype(np.int64)
    lo = np.rint(np.exp(np.minimum(log_open, log_close) - wick_lo) * 100).astype(np.int64)
    # rounding is monotonic, but enforce the OHLC invariant on the integers regardless
    h = np.maximum(h, np.maximum(o, c))
    lo = np.maximum(np.minimum(lo, np.minimum(o, c)), 1)
    return o, h, lo, c


def _symbol_frame(
    symbol: str,
    stamps: np.ndarray,
    cents: tuple[np.ndarray, ...],
    volume: np.ndarray,
    volume_scale: Decimal,
) -> pl.DataFrame:
    o, h, lo, c = cents
    raw = pl.DataFrame(
        {
            "dt": stamps // 1000,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": volume,
        }
    )
    cent = pl.lit(Decimal("0.01"))
    # integer -> Decimal(38, 0) -> times an exact Decimal literal: never through a float
    return raw.select(
        pl.lit(symbol, dtype=pl.Utf8).alias("symbol"),
        pl.col("dt").cast(pl.Datetime("us", "UTC")),
        *[
            (pl.col(col).cast(pl.Decimal(38, 0)) * cent).cast(DECIMAL_DTYPE).alias(col)
            for col in ("open", "high", "low", "close")
        ],
        (pl.col("volume").cast(pl.Decimal(38, 0)) * pl.lit(volume_scale))
        .cast(DECIMAL_DTYPE)
        .alias("volume"),
    )


def generate_demo_frames() -> dict[str, pl.DataFrame]:
    """The demo bundle's minute and daily frames, in the bundle schema (no disk I/O)."""
    frames: list[pl.DataFrame] = []

    stamps, position, length = _equity_minutes()
    x = position / np.maximum(length - 1, 1)
    u_shape = 0.6 + 2.4 * (2 * x - 1) ** 2  # busiest at the open and the close
    vol_shape = np.sqrt(u_shape / u_shape.mean())
    session_start = position == 0
    for symbol, sid, price, drift, vol, mean_volume in _EQUITIES:
        rng = np.random.default_rng([DEMO_SEED, sid])
        cents = _walk(
            rng, stamps.size, price, drift, vol, _MINUTES_PER_YEAR_EQUITY, vol_shape, session_start
        )
        noise = rng.lognormal(0.0, 0.35, stamps.size)
        volume = np.maximum(np.rint(mean_volume * u_shape / u_shape.mean() * noise), 1)
        frames.append(_symbol_frame(symbol, stamps, cents, volume.astype(np.int64), Decimal(1)))

    cstamps = _crypto_minutes()
    hour = (cstamps // (60 * _NS_PER_MIN)) % 24
    day_shape = 1.0 + 0.35 * np.sin(2 * np.pi * (hour - 9) / 24)  # peaks in US hours
    for symbol, sid, price, drift, vol, mean_volume in _CRYPTO:
        rng = np.random.default_rng([DEMO_SEED, sid])
        cents = _walk(
            rng,
            cstamps.size,
            price,
            drift,
            vol,
            _MINUTES_PER_YEAR_CRYPTO,
            np.sqrt(day_shape),
            None,
        )
        noise = rng.lognormal(0.0, 0.5, cstamps.size)
        volume = np.maximum(np.rint(mean_volume * day_shape * noise), 1)
        frames.append(
            _symbol_frame(symbol, cstamps, cents, volume.astype(np.int64), Decimal("0.00001"))
        )

    minute = pl.concat(frames).sort("symbol", "dt")
    daily = daily_from_minute(minute, demo_assets())
    return {"minute": minute, "daily": daily}


def build_demo_bundle(root: Path | str | None = None) -> Path:
    """(Re)build the ``demo`` bundle under ``root`` (default: rustybt_root()); return its path."""
    frames = generate_demo_frames()
    return write_bundle(
        "demo",
        demo_assets(),
        frames,
        root=root,
        extra_meta={"demo_version": DEMO_VERSION, "kind": "demo", "seed": DEMO_SEED},
    )
