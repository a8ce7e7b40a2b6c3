"""Every ``rustybt`` option and config value is checked here, before any work starts.

Each command has a table of :class:`Option` (``RUN_OPTIONS``, ``LIVE_OPTIONS``,
``INGEST_OPTIONS``): the key, the command-line flag, and a parser that turns the raw value
(a string from the command line, or any TOML value) into its typed value or raises
:class:`~rustybt.exceptions.ConfigError` naming the flag or ``file: key`` and the fix.
Adding an option is one entry in a table; :func:`check` applies the table.

Checks that need more than one value (start before end, the bundle has the dates) live in
:func:`check_dates_in_bundle` and the commands.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rustybt.exceptions import ConfigError

Parser = Callable[[Any, str], Any]
"""``parse(raw, label) -> value``; ``label`` is ``--flag`` or ``file.toml: key``."""


@dataclass(frozen=True)
class Option:
    """One option: its parser, its command-line flag (None: config file only)."""

    parse: Parser
    flag: str | None = None
    secret: bool = False


# --- parsers ------------------------------------------------------------------------------
def text(raw: Any, label: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{label} must be a non-empty string, got {raw!r}")
    return raw.strip()


def choice(*values: str) -> Parser:
    """One of ``values`` (case-insensitive)."""

    def parse(raw: Any, label: str) -> str:
        value = str(raw).strip().lower()
        if value not in values:
            raise ConfigError(f"{label} {raw!r} is not one of {', '.join(values)}")
        return value

    return parse


def _whole(raw: Any, label: str, example: str) -> int:
    if isinstance(raw, bool):
        raise ConfigError(f"{label} {raw!r} is not a whole number; give e.g. {example}")
    if isinstance(raw, int):
        return raw
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{label} {raw!r} is not a whole number; give e.g. {example}") from None


def count(minimum: int, example: str, meaning: str = "") -> Parser:
    """A whole number ``>= minimum``."""

    def parse(raw: Any, label: str) -> int:
        value = _whole(raw, label, f"{label.split(': ')[-1]} {example}")
        if value < minimum:
            why = f" ({meaning})" if meaning else ""
            raise ConfigError(f"{label} {value} must be {minimum} or more{why}")
        return value

    return parse


def seconds(raw: Any, label: str) -> float:
    """A positive, finite number of seconds."""
    if isinstance(raw, bool):
        raise ConfigError(f"{label} {raw!r} is not a number of seconds")
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{label} {raw!r} is not a number of seconds, e.g. 60") from None
    if not 0 < value < float("inf"):
        raise ConfigError(f"{label} {raw!r} must be a positive number of seconds")
    return value


def non_negative_number(raw: Any, label: str) -> float:
    if isinstance(raw, bool):
        raise ConfigError(f"{label} {raw!r} is not a number")
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{label} {raw!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise ConfigError(f"{label} {raw!r} must be 0 or more")
    return value


def decimal(
    minimum: Decimal | None = None,
    maximum: Decimal | None = None,
    *,
    exclusive_min: bool = False,
    meaning: str = "",
) -> Parser:
    """A finite :class:`Decimal` in ``[minimum, maximum]`` (``(minimum`` if exclusive)."""

    def parse(raw: Any, label: str) -> Decimal:
        if isinstance(raw, bool):
            raise ConfigError(f"{label} {raw!r} is not a number")
        try:
            value = Decimal(str(raw).strip())
        except InvalidOperation:
            raise ConfigError(f"{label} {raw!r} is not a number") from None
        if not value.is_finite():
            raise ConfigError(f"{label} must be a finite number, got {raw!r}")
        low_bad = minimum is not None and (value <= minimum if exclusive_min else value < minimum)
        if low_bad or (maximum is not None and value > maximum):
            lo = "" if minimum is None else (f"> {minimum}" if exclusive_min else f">= {minimum}")
            hi = "" if maximum is None else f"<= {maximum}"
            bounds = " and ".join(b for b in (lo, hi) if b)
            why = f" ({meaning})" if meaning else ""
            raise ConfigError(f"{label} {raw!r} must be {bounds}{why}")
        return value

    return parse


def boolean(raw: Any, label: str) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise ConfigError(f"{label} {raw!r} is not true or false")


def date(raw: Any, label: str) -> str:
    """A date or timestamp pandas understands; returned as given (the engine parses it)."""
    import pandas as pd  # slow to import: only when a date is given

    value = str(raw).strip()
    try:
        pd.Timestamp(value)
    except Exception:
        raise ConfigError(f"{label} {raw!r} is not a date; use YYYY-MM-DD") from None
    return value


def speed(raw: Any, label: str) -> str | float:
    from rustybt.live.data_feed import parse_speed

    try:
        parse_speed(raw)
    except (ConfigError, ValueError, TypeError):
        raise ConfigError(
            f"{label} speed={raw!r} is not valid; use 'max', 'realtime' or a multiple like '60x'"
        ) from None
    return raw


def existing_file(raw: Any, label: str) -> Path:
    path = Path(str(raw)).expanduser()
    if not path.is_file():
        raise ConfigError(f"{label} {path} does not exist or is not a file; check the path")
    return path


def writable_dir(raw: Any, label: str) -> Path:
    """A folder that is, or can be created, writable: proven by writing a probe file.

    Folders created for the probe are removed again, so checking has no side effect.
    """
    path = Path(str(raw)).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{label} {path} is a file, not a folder; give a folder path")
    created: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    try:
        for folder in reversed(created):
            folder.mkdir()
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{label} {path} is not writable ({reason}); pick a folder you can write to"
        ) from None
    finally:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
    return path


def output_dir(raw: Any, label: str) -> Path:
    """A results folder: like :func:`writable_dir`, and never an existing file."""
    path = Path(str(raw)).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{label} {path} is an existing file; results are a folder of Parquet files, "
            "give a new or existing folder"
        )
    return writable_dir(path, label)


def writable_file(raw: Any, label: str) -> Path:
    """A file that is, or can be, written (its folder is checked)."""
    path = Path(str(raw)).expanduser()
    if path.is_dir():
        raise ConfigError(f"{label} {path} is a folder; give a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{label} {path} is not writable")
    writable_dir(path.parent, label)
    return path


def secret(raw: Any, label: str) -> str:
    if not isinstance(raw, str):
        raise ConfigError(f"{label} must be a string")
    return raw


def table(raw: Any, label: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{label} must be a table ([live.{label.split(': ')[-1]}])")
    return dict(raw)


def risk_limits(raw: Any, label: str) -> Any:
    from rustybt.live.risk_limits import RiskLimits

    data = table(raw, label)
    try:
        return RiskLimits.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{label}: {exc}") from None


def symbol_list(raw: Any, label: str) -> list[str]:
    items = raw if isinstance(raw, list) else str(raw).split(",")
    symbols = [str(x).strip().upper() for x in items if str(x).strip()]
    if not symbols:
        raise ConfigError(f"{label} needs at least one symbol, e.g. BTCUSDT,ETHUSDT")
    return symbols


STREAM_VENUES = ("binance", "bybit", "hyperliquid")


# --- the tables ---------------------------------------------------------------------------
BROKERS: tuple[str, ...] = ("paper", "ib", "binance", "bybit", "hyperliquid")
"""Brokers ``rustybt live --broker`` builds; a new one adds its name here and a builder."""
VENUE_BROKERS = frozenset({"binance", "bybit", "hyperliquid"})
"""Crypto venues built by :func:`rustybt.cli.venue_brokers.venue_broker` (no bundle)."""
SIMULATED_BROKERS = frozenset({"paper"})
"""Brokers that trade against a simulation; the others reconcile with halt_and_alert by
default (DESIGN.md: fail closed wherever real money is at stake)."""


def broker(raw: Any, label: str) -> str:
    value = str(raw).strip().lower()
    if value.startswith("ccxt:"):
        from rustybt.live.brokers.ccxt.generic.config import check_exchange_id

        return "ccxt:" + check_exchange_id(value.split(":", 1)[1])
    if value not in BROKERS:
        raise ConfigError(
            f"unknown broker {value!r}; available: {', '.join(BROKERS)}, or ccxt:<id> for any "
            "other ccxt exchange (e.g. ccxt:okx; docs/venues/ccxt.md)"
        )
    return value


def is_venue_broker(name: str) -> bool:
    """A crypto venue (no bundle; built by :mod:`rustybt.cli.venue_brokers`)."""
    return name in VENUE_BROKERS or name.startswith("ccxt:")


def venue_url(raw: Any, label: str) -> str:
    """``http(s)://host:port`` (scheme and host only: the venue's paths are kept)."""
    value = text(raw, label).rstrip("/")
    if not value.startswith(("http://", "https://")) or "/" in value.split("://", 1)[1]:
        raise ConfigError(
            f"{label} {raw!r} must be http://host:port (scheme and host only), "
            "e.g. http://127.0.0.1:8080"
        )
    return value


def port(raw: Any, label: str) -> int:
    value = _whole(raw, label, f"{label.split(': ')[-1]} 7497")
    if not 0 < value < 65536:
        raise ConfigError(f"{label} {value} is not a TCP port (1-65535); TWS paper uses 7497")
    return value


RECONCILIATION = ("warn_only", "trust_broker", "halt_and_alert")


def reconciliation(raw: Any, label: str) -> str:
    value = str(raw).strip().lower()
    if value not in RECONCILIATION:
        raise ConfigError(f"reconciliation {value!r} is not one of {', '.join(RECONCILIATION)}")
    return value


_MONEY = decimal(Decimal(0), exclusive_min=True, meaning="an amount of money")
_COST = decimal(Decimal(0), meaning="a cost; 0 for none")
_FRACTION = decimal(Decimal(0), Decimal(1), exclusive_min=True, meaning="a fraction of volume")

COMMON_COST_OPTIONS: dict[str, Option] = {
    "commission_per_share": Option(_COST, "--commission-per-share"),
    "slippage_bps": Option(_COST, "--slippage-bps"),
    "volume_limit_pct": Option(_FRACTION, "--volume-limit-pct"),
}

RUN_OPTIONS: dict[str, Option] = {
    "algofile": Option(existing_file, "--algofile"),
    "bundle": Option(text, "--bundle"),
    "start": Option(date, "--start"),
    "end": Option(date, "--end"),
    "capital_base": Option(_MONEY, "--capital-base"),
    "data_frequency": Option(choice("minute", "daily"), "--data-frequency"),
    "output": Option(output_dir, "--output"),
    "strategy_name": Option(text, "--strategy-name"),
    "calendar": Option(lambda raw, label: _calendar(raw, label), "--calendar"),
    **COMMON_COST_OPTIONS,
}

LIVE_OPTIONS: dict[str, Option] = {
    "algofile": Option(existing_file, "--algofile"),
    "broker": Option(broker, "--broker"),
    "bundle": Option(text, "--bundle"),
    "speed": Option(speed, "--speed"),
    "start": Option(date, "--start"),
    "end": Option(date, "--end"),
    "starting_cash": Option(_MONEY, "--starting-cash"),
    "paper_state": Option(writable_file, "--paper-state"),
    "state_dir": Option(writable_dir, "--state-dir"),
    "strategy_name": Option(text, "--strategy-name"),
    "reconciliation": Option(reconciliation, "--reconciliation"),
    "checkpoint_interval": Option(seconds, "--checkpoint-interval"),
    "reconcile_interval": Option(seconds),
    "max_bars": Option(
        count(1, "100", "it counts market data events; omit it to run to the end of the data"),
        "--max-bars",
    ),
    "seed": Option(count(0, "42"), "--seed"),
    "calendar": Option(lambda raw, label: _calendar(raw, label), "--calendar"),
    "latency_ms": Option(non_negative_number),
    "latency_jitter_pct": Option(decimal(Decimal(0), Decimal(1), meaning="a fraction")),
    "allow_short": Option(boolean),
    "shadow": Option(boolean, "--shadow"),
    "risk_limits": Option(risk_limits),
    # Interactive Brokers: where TWS / IB Gateway listens, and the real-money switch.
    "host": Option(text, "--host"),
    "port": Option(port, "--port"),
    "client_id": Option(count(0, "1"), "--client-id"),
    "live_money": Option(boolean, "--live-money"),
    "keep_checkpoints": Option(count(1, "5", "checkpoint files kept per strategy")),
    "keep_old_journals": Option(count(1, "5", "set-aside journals kept per strategy")),
    "keep_audit_logs": Option(count(1, "20", "audit logs kept per strategy")),
    # Market data: replay the bundle (paper default) or stream it from a venue.
    "data": Option(choice("replay", "stream"), "--data"),
    "venue": Option(choice(*STREAM_VENUES), "--venue"),
    "symbols": Option(symbol_list, "--symbols"),
    "bar_seconds": Option(seconds, "--bar-seconds"),
    # The operator console (HTTP API, dashboard, /metrics) and alert channels.
    "dashboard": Option(boolean, "--dashboard"),
    "dashboard_host": Option(text, "--dashboard-host"),
    "dashboard_port": Option(lambda raw, label: _dashboard_port(raw, label), "--dashboard-port"),
    "dashboard_allow_remote": Option(boolean, "--dashboard-allow-remote"),
    "alerts": Option(lambda raw, label: _alerts(raw, label)),
    # Credentials: accepted (the paper broker ignores them), registered as secrets so
    # they are masked in every log line, message and audit record, and never printed.
    "api_key": Option(secret, secret=True),
    "api_secret": Option(secret, secret=True),
    # Hyperliquid: the wallet's private key (or HYPERLIQUID_PRIVATE_KEY) and, for an API
    # wallet, the account it trades for (or HYPERLIQUID_WALLET_ADDRESS).
    "private_key": Option(secret, secret=True),
    "wallet_address": Option(text),
    # Binance (rustybt.cli.venue_brokers); live_money above is shared.
    "testnet": Option(boolean, "--testnet"),
    "venue_url": Option(venue_url, "--venue-url"),
    "market_type": Option(choice("spot", "futures", "linear"), "--market-type"),
    "poll_interval": Option(seconds),
    **COMMON_COST_OPTIONS,
}

INGEST_OPTIONS: dict[str, Option] = {
    "bundle": Option(text, "--bundle"),
    "frequency": Option(choice("minute", "daily"), "--frequency"),
    "asset_class": Option(choice("equity", "crypto", "future"), "--asset-class"),
    "exchange": Option(text, "--exchange"),
    "calendar": Option(lambda raw, label: _calendar(raw, label), "--calendar"),
    "timezone": Option(lambda raw, label: _timezone(raw, label), "--timezone"),
}


def _dashboard_port(raw: Any, label: str) -> int:
    value = _whole(raw, label, f"{label.split(': ')[-1]} 8787")
    if not 0 <= value < 65536:
        raise ConfigError(f"{label} {value} is not a TCP port (0-65535; 0 picks a free one)")
    return value


def _alerts(raw: Any, label: str) -> Any:
    from rustybt.live.console.alerts import AlertConfig

    return AlertConfig.from_dict(raw, label)


def _calendar(raw: Any, label: str) -> str:
    from rustybt.calendars import check_calendar_name

    return check_calendar_name(text(raw, label), label)


def _timezone(raw: Any, label: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = text(raw, label)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{label} {value!r} is not a time zone; use an IANA name like UTC or America/New_York"
        ) from None
    return value


# --- applying a table ---------------------------------------------------------------------
def check(
    table_: Mapping[str, Option], values: Mapping[str, Any], source: str | None = None
) -> dict[str, Any]:
    """Typed values of ``values`` (``None`` = not given, skipped); the first bad one raises.

    ``source`` is the config file the values came from (``None``: the command line), used
    in messages; a key the table does not know is refused with the known keys.
    """
    unknown = sorted(set(values) - set(table_))
    if unknown:
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}unknown keys {unknown}; known keys: {sorted(table_)}")
    out: dict[str, Any] = {}
    for key, raw in values.items():
        if raw is None:
            continue
        opt = table_[key]
        label = f"{source}: {key}" if source else (opt.flag or key)
        out[key] = opt.parse(raw, label)
    return out


def check_date_order(opts: Mapping[str, Any]) -> None:
    start, end = opts.get("start"), opts.get("end")
    if start is None or end is None:
        return
    import pandas as pd

    if pd.Timestamp(start) > pd.Timestamp(end):
        raise ConfigError(f"start {start} is after end {end}; swap them")


def check_bundle(name: str, frequency: str, opts: Mapping[str, Any], command: str) -> None:
    """The bundle exists, has ``frequency`` bars, and holds the ``start``/``end`` dates.

    A date outside the bundle quotes each asset class's own range (an equity strategy
    should not be told the crypto range).
    """
    import pandas as pd

    from rustybt.data.bundles import load_bundle

    bundle = load_bundle(name)
    if frequency not in bundle.frequencies:
        has = ", ".join(bundle.frequencies) or "no"
        ingest_hint = f"rustybt ingest --bundle {name} --frequency {frequency} FILES"
        if command == "live":
            raise ConfigError(
                f"bundle {name!r} has {has} bars only; `rustybt live` replays minute bars: "
                f"ingest minute data into it ({ingest_hint}), or backtest it with "
                f"`rustybt run --bundle {name} --data-frequency {bundle.frequencies[0]}`"
            )
        other = next((f for f in bundle.frequencies if f != frequency), None)
        use = f"pass --data-frequency {other}, or " if other else ""
        raise ConfigError(f"bundle {name!r} has {has} bars only; {use}ingest them ({ingest_hint})")
    rng = bundle.range(frequency)
    if rng is None or rng[0] is None or rng[1] is None:
        raise ConfigError(f"bundle {name!r} has no {frequency} bars; re-ingest it")
    day = pd.Timedelta(days=1)
    lo = pd.Timestamp(rng[0]).tz_convert("UTC").floor("D")
    hi = pd.Timestamp(rng[1]).tz_convert("UTC").floor("D") + day
    for key in ("start", "end"):
        raw = opts.get(key)
        if raw is None:
            continue
        ts = pd.Timestamp(raw)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        if not lo <= ts < hi:
            raise ConfigError(
                f"--{key} {raw} is outside bundle {name!r}, whose {frequency} bars run "
                f"{class_ranges(bundle, frequency)}; pick dates in that range or ingest more data"
            )


def class_ranges(bundle: Any, frequency: str) -> str:
    """``equity 2024-01-02 14:31 → 2024-01-30 21:00 UTC, crypto ...`` for a message."""
    import polars as pl

    frame = bundle.frame(frequency)
    spans = frame.group_by("symbol").agg(pl.col("dt").min().alias("lo"), pl.col("dt").max())
    by_class: dict[str, list[Any]] = {}
    for symbol, first, last in spans.iter_rows():
        try:
            cls = bundle.asset_finder.lookup_symbol(symbol).asset_class
        except Exception:
            cls = "other"
        span = by_class.setdefault(cls, [first, last])
        span[0], span[1] = min(span[0], first), max(span[1], last)
    fmt = "%Y-%m-%d" if frequency == "daily" else "%Y-%m-%d %H:%M"
    return ", ".join(
        f"{cls} {lo:{fmt}} → {hi:{fmt}}{'' if frequency == 'daily' else ' UTC'}"
        for cls, (lo, hi) in sorted(by_class.items())
    )
