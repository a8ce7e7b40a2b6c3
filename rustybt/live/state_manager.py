"""Crash-safe checkpoints of a strategy's state (the spec's ``StateManager``).

One file per checkpoint, ``<checkpoint_dir>/<strategy>/<UTC time>-<seq>.ckpt``; names
sort in save order, the last ``keep`` are kept. A file is a msgspec JSON envelope::

    {"schema_version": 1, "strategy_name": "...", "checksum": "sha256:<hex>",
     "payload": {...}}

where the checksum covers the payload's exact bytes, so a truncated or bit-flipped
file is detected rather than half-loaded. Writes are atomic (temp file in the same
folder, write, fsync, ``os.replace``, fsync the folder): a crash leaves either the old
checkpoint or the new one, never a mix. Loading falls back from a bad file to the one
before it, loudly.

The payload is encoded by msgspec from tuples of Decimals with a de-duplicated asset
table, so the per-position Python work is one tuple; 1,000 positions + 1,000 orders
save in a few milliseconds (``benchmarks/bench_checkpoint.py``). The engine calls the
``*_async`` variants, which do all file work in a worker thread.

Also here: :func:`capture_strategy_state` / :func:`restore_strategy_state`, which pick
a strategy's checkpointable attributes.
"""

from __future__ import annotations

import asyncio
import errno as _errno
import hashlib
import os
import re
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import structlog

from rustybt.assets import Asset, asset_from_dict
from rustybt.exceptions import (
    CheckpointCorrupted,
    CheckpointError,
    CheckpointMismatch,
    CheckpointWriteError,
    ConfigError,
)
from rustybt.live.audit import redact_secrets
from rustybt.live.models import (
    OrderSnapshot,
    PositionSnapshot,
    StateCheckpoint,
    decode_state_value,
    encode_state_value,
    to_utc,
)

__all__ = [
    "SCHEMA_VERSION",
    "StateManager",
    "capture_strategy_state",
    "default_checkpoint_dir",
    "restore_strategy_state",
    "write_file_atomic",
]

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 1
_SUFFIX = ".ckpt"
_TMP_PREFIX = ".tmp-"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")
_FILE_RE = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-(\d{6,})\.ckpt$")
_STALE_TMP_SECONDS = 60.0


# --- file format ---------------------------------------------------------------------
class _Payload(msgspec.Struct, forbid_unknown_fields=False):
    timestamp: datetime
    portfolio_value: Decimal
    cash: Decimal
    assets: list[dict[str, Any]]
    # (asset index, amount, cost_basis, last_price)
    positions: list[tuple[int, Decimal, Decimal, Decimal | None]]
    # (order_id, asset index, amount, status, client_order_id, filled, order_type,
    #  limit_price, stop_price)
    pending_orders: list[
        tuple[str, int, Decimal, str, str | None, Decimal, str, Decimal | None, Decimal | None]
    ]
    strategy_name: str | None = None
    strategy_state: Any = None
    breaker_state: Any = None
    session_id: str | None = None
    order_sequence: int = 0
    ledger_state: Any = None
    extra: Any = None


class _Envelope(msgspec.Struct):
    schema_version: int
    strategy_name: str
    checksum: str
    payload: msgspec.Raw


class _VersionProbe(msgspec.Struct, forbid_unknown_fields=False):
    schema_version: int


# deterministic: dict keys sorted, so the same state always gives the same bytes.
_ENCODER = msgspec.json.Encoder(order="deterministic")
_ENVELOPE_DECODER = msgspec.json.Decoder(_Envelope)
_PROBE_DECODER = msgspec.json.Decoder(_VersionProbe)
_PAYLOAD_DECODER = msgspec.json.Decoder(_Payload)


def _encode_checkpoint(strategy_name: str, cp: StateCheckpoint) -> bytes:
    index: dict[Asset, int] = {}
    assets: list[dict[str, Any]] = []

    def idx(asset: Asset) -> int:
        i = index.get(asset)
        if i is None:
            i = index[asset] = len(assets)
            assets.append(asset.to_dict())
        return i

    positions = [(idx(p.asset), p.amount, p.cost_basis, p.last_price) for p in cp.positions]
    orders = [
        (
            o.order_id,
            idx(o.asset),
            o.amount,
            o.status,
            o.client_order_id,
            o.filled,
            o.order_type,
            o.limit_price,
            o.stop_price,
        )
        for o in cp.pending_orders
    ]
    payload = _Payload(
        timestamp=cp.timestamp,
        portfolio_value=cp.portfolio_value,
        cash=cp.cash,
        assets=assets,
        positions=positions,
        pending_orders=orders,
        strategy_name=strategy_name,
        # Credentials never reach the disk, however deep in the strategy's state.
        strategy_state=encode_state_value(redact_secrets(cp.strategy_state), "strategy_state"),
        breaker_state=encode_state_value(cp.breaker_state, "breaker_state"),
        session_id=cp.session_id,
        order_sequence=cp.order_sequence,
        ledger_state=None
        if cp.ledger_state is None
        else encode_state_value(cp.ledger_state, "ledger_state"),
        extra=encode_state_value(cp.extra, "extra"),
    )
    body = _ENCODER.encode(payload)
    checksum = "sha256:" + hashlib.sha256(body).hexdigest()
    return _ENCODER.encode(_Envelope(SCHEMA_VERSION, strategy_name, checksum, msgspec.Raw(body)))


class _BadFile(Exception):
    """Internal: why one checkpoint file cannot be used."""


def _decode_checkpoint(data: bytes) -> tuple[str, StateCheckpoint]:
    """(strategy name in the file, checkpoint); raises _BadFile with a short reason."""
    if not data:
        raise _BadFile("empty file")
    try:
        version = _PROBE_DECODER.decode(data).schema_version
    except msgspec.DecodeError as exc:
        raise _BadFile(f"truncated or not JSON ({exc})") from None
    if version != SCHEMA_VERSION:
        raise _BadFile(
            f"unknown schema_version {version} (this RustyBT reads {SCHEMA_VERSION}); "
            "it was written by a different RustyBT version"
        )
    try:
        env = _ENVELOPE_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise _BadFile(f"malformed envelope ({exc})") from None
    body = bytes(env.payload)
    if env.checksum != "sha256:" + hashlib.sha256(body).hexdigest():
        raise _BadFile("checksum mismatch (file was altered or partly written)")
    try:
        p = _PAYLOAD_DECODER.decode(body)
        assets = [asset_from_dict(a) for a in p.assets]
        positions = [
            PositionSnapshot(assets[a], amount, cost, last) for a, amount, cost, last in p.positions
        ]
        orders = [
            OrderSnapshot(oid, assets[a], amount, status, coid, filled, otype, lim, stop)
            for oid, a, amount, status, coid, filled, otype, lim, stop in p.pending_orders
        ]
        cp = StateCheckpoint(
            timestamp=p.timestamp,
            portfolio_value=p.portfolio_value,
            cash=p.cash,
            positions=positions,
            pending_orders=orders,
            strategy_name=p.strategy_name,
            strategy_state=decode_state_value(p.strategy_state or {}),
            breaker_state=decode_state_value(p.breaker_state or {}),
            session_id=p.session_id,
            order_sequence=p.order_sequence,
            ledger_state=None if p.ledger_state is None else decode_state_value(p.ledger_state),
            extra=decode_state_value(p.extra or {}),
        )
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _BadFile(f"malformed payload ({exc})") from None
    except (IndexError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise _BadFile(f"malformed payload ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # a RustyBTError from validation: still a bad file
        raise _BadFile(f"invalid content ({exc})") from None
    return env.strategy_name, cp


def default_checkpoint_dir() -> Path:
    """``$RUSTYBT_ROOT/state``, or ``~/.rustybt/state`` when RUSTYBT_ROOT is unset."""
    root = os.environ.get("RUSTYBT_ROOT")
    base = Path(root).expanduser() if root else Path.home() / ".rustybt"
    return base / "state"


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` durably: temp file in the same folder, write, fsync,
    ``os.replace``, fsync the folder. A crash leaves the old content or the new, never a
    mix. Raises ``OSError`` (the temp file is removed)."""
    folder = path.parent
    tmp = folder / f"{_TMP_PREFIX}{path.name}.{os.getpid()}.{threading.get_ident()}"
    fd = -1
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(_errno.EIO, "write returned 0 bytes")
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except OSError:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


# --- the manager ---------------------------------------------------------------------
class StateManager:
    """Saves and restores :class:`StateCheckpoint` files, one folder per strategy.

    Args:
        checkpoint_dir: root folder; default ``$RUSTYBT_ROOT/state`` or
            ``~/.rustybt/state``. Created on first save.
        staleness_threshold_seconds: :meth:`is_stale` is True beyond this age.
        keep: how many checkpoint files to keep per strategy (older ones are deleted).

    One process should write a given strategy's folder at a time.
    """

    def __init__(
        self,
        checkpoint_dir: Path | str | None = None,
        staleness_threshold_seconds: int = 3600,
        keep: int = 5,
    ) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ConfigError(f"keep={keep!r} must be an int >= 1 (how many checkpoints to keep)")
        if (
            isinstance(staleness_threshold_seconds, bool)
            or not isinstance(staleness_threshold_seconds, int | float)
            or not staleness_threshold_seconds > 0
        ):
            raise ConfigError(
                f"staleness_threshold_seconds={staleness_threshold_seconds!r} must be a "
                "number > 0, e.g. 3600"
            )
        self.checkpoint_dir = (
            Path(checkpoint_dir).expanduser()
            if checkpoint_dir is not None
            else default_checkpoint_dir()
        )
        self.staleness_threshold_seconds = staleness_threshold_seconds
        self.keep = keep
        self._lock = threading.Lock()

    # --- paths ----------------------------------------------------------------------
    def _folder(self, strategy_name: str) -> Path:
        if not isinstance(strategy_name, str) or not _NAME_RE.match(strategy_name):
            raise ConfigError(
                f"strategy_name={strategy_name!r} cannot name a checkpoint folder; use "
                "1-128 letters, digits, '.', '_', '-' or spaces, starting with a letter or "
                "digit (e.g. 'my_strategy')"
            )
        return self.checkpoint_dir / strategy_name

    def list_checkpoints(self, strategy_name: str) -> list[Path]:
        """This strategy's checkpoint files, newest first."""
        folder = self._folder(strategy_name)
        try:
            names = [n for n in os.listdir(folder) if _FILE_RE.match(n)]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CheckpointError(
                f"cannot list checkpoints in {folder}: {exc.strerror}; check the folder's "
                "permissions"
            ) from exc
        names.sort(key=_sort_key, reverse=True)
        return [folder / n for n in names]

    # --- save -----------------------------------------------------------------------
    def save_checkpoint(self, strategy_name: str, state: StateCheckpoint) -> Path:
        """Write ``state`` atomically as the newest checkpoint of ``strategy_name``.

        Raises ``CheckpointMismatch`` if ``state.strategy_name`` names another strategy,
        ``CheckpointError`` if the state holds something that cannot be saved,
        ``CheckpointWriteError`` if the disk refuses (the previous checkpoint is kept).
        """
        folder = self._folder(strategy_name)
        if not isinstance(state, StateCheckpoint):
            raise CheckpointError(f"state must be a StateCheckpoint, got {type(state).__name__}")
        if state.strategy_name is not None and state.strategy_name != strategy_name:
            raise CheckpointMismatch(
                f"checkpoint says strategy {state.strategy_name!r} but is being saved as "
                f"{strategy_name!r}; pass the same name or leave state.strategy_name None"
            )
        data = _encode_checkpoint(strategy_name, state)  # before touching the disk
        with self._lock:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._write_error(strategy_name, folder, exc) from exc
            existing = self.list_checkpoints(strategy_name)
            path = folder / self._next_name(existing)
            self._atomic_write(strategy_name, folder, path, data)
            self._prune(folder, [path, *existing])
        return path

    def _next_name(self, existing: list[Path]) -> str:
        now = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        seq = 1
        if existing:
            m = _FILE_RE.match(existing[0].name)
            assert m is not None
            last_ts, last_seq = m.group(1), int(m.group(2))
            seq = last_seq + 1
            # A wall clock stepped back must not make the new file sort as older.
            now = max(now, last_ts)
        return f"{now}-{seq:06d}{_SUFFIX}"

    def _write_error(self, strategy_name: str, folder: Path, exc: OSError) -> CheckpointWriteError:
        reason = exc.strerror or str(exc)
        hint = (
            "free disk space"
            if exc.errno in (_errno.ENOSPC, _errno.EDQUOT)
            else "check that the folder exists and is writable"
        )
        msg = (
            f"could not write checkpoint for {strategy_name!r} in {folder}: {reason}; "
            f"the previous checkpoint is kept. Fix: {hint}."
        )
        return CheckpointWriteError(exc.errno, msg) if exc.errno else CheckpointWriteError(msg)

    def _atomic_write(self, strategy_name: str, folder: Path, path: Path, data: bytes) -> None:
        try:
            write_file_atomic(path, data)
        except OSError as exc:
            raise self._write_error(strategy_name, folder, exc) from exc

    def _prune(self, folder: Path, newest_first: list[Path]) -> None:
        for old in newest_first[self.keep :]:
            try:
                old.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("checkpoint_prune_failed", path=str(old), error=str(exc))
        # Temp files left by a process killed mid-write; old ones only, never a live write.
        cutoff = time.time() - _STALE_TMP_SECONDS
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.name.startswith(_TMP_PREFIX) and entry.stat().st_mtime < cutoff:
                        try:
                            os.unlink(entry.path)
                        except OSError:
                            pass
        except OSError:
            pass

    # --- load -----------------------------------------------------------------------
    def load_checkpoint(self, strategy_name: str) -> StateCheckpoint | None:
        """The newest readable checkpoint, or None when the strategy has none.

        A bad newest file (truncated, checksum mismatch, unknown version) is skipped with
        a warning and the previous one is used. Raises ``CheckpointCorrupted`` when every
        file is bad, ``CheckpointMismatch`` when a file belongs to another strategy.
        """
        paths = self.list_checkpoints(strategy_name)
        if not paths:
            return None
        failures: list[str] = []
        for i, path in enumerate(paths):
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # pruned between listing and reading
                continue
            except OSError as exc:
                failures.append(f"{path.name} (unreadable: {exc.strerror})")
                log.warning("checkpoint_unreadable", path=str(path), reason=str(exc))
                continue
            try:
                stored_name, cp = _decode_checkpoint(data)
            except _BadFile as bad:
                failures.append(f"{path.name} ({bad})")
                log.warning(
                    "checkpoint_corrupted_falling_back",
                    strategy=strategy_name,
                    path=str(path),
                    reason=str(bad),
                    remaining=len(paths) - i - 1,
                )
                continue
            if stored_name != strategy_name or (
                cp.strategy_name is not None and cp.strategy_name != strategy_name
            ):
                raise CheckpointMismatch(
                    f"{path} belongs to strategy {stored_name!r}, not {strategy_name!r}; it "
                    "was copied into the wrong folder. Move it to the folder of its strategy."
                )
            if failures:
                log.warning(
                    "checkpoint_restored_from_older_file",
                    strategy=strategy_name,
                    path=str(path),
                    skipped=failures,
                )
            return cp
        if not failures:
            return None  # every file vanished while we were reading
        raise CheckpointCorrupted(
            f"every checkpoint for {strategy_name!r} in {self._folder(strategy_name)} is "
            f"unusable: {'; '.join(failures)}. Move these files aside (keep them for "
            "investigation) and restart: the engine then starts from the broker's "
            "positions after reconciliation."
        )

    # --- age ------------------------------------------------------------------------
    def get_checkpoint_age(self, checkpoint: StateCheckpoint, now: datetime | None = None) -> float:
        """Seconds since ``checkpoint.timestamp`` (``now`` defaults to the current time)."""
        current = datetime.now(UTC) if now is None else to_utc(now, "now")
        return (current - checkpoint.timestamp).total_seconds()

    def is_stale(self, checkpoint: StateCheckpoint, now: datetime | None = None) -> bool:
        """True when the checkpoint is older than ``staleness_threshold_seconds``."""
        return self.get_checkpoint_age(checkpoint, now) > self.staleness_threshold_seconds

    # --- housekeeping ---------------------------------------------------------------
    def delete_checkpoints(self, strategy_name: str) -> int:
        """Delete every checkpoint of ``strategy_name``; returns how many were deleted."""
        folder = self._folder(strategy_name)
        count = 0
        with self._lock:
            for path in self.list_checkpoints(strategy_name):
                try:
                    path.unlink()
                    count += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise CheckpointError(f"cannot delete {path}: {exc.strerror}") from exc
            try:
                folder.rmdir()  # only succeeds when nothing else is in it
            except OSError:
                pass
        return count

    # --- async ----------------------------------------------------------------------
    async def save_checkpoint_async(self, strategy_name: str, state: StateCheckpoint) -> Path:
        """:meth:`save_checkpoint` in a worker thread, so the event loop never blocks."""
        return await asyncio.to_thread(self.save_checkpoint, strategy_name, state)

    async def load_checkpoint_async(self, strategy_name: str) -> StateCheckpoint | None:
        """:meth:`load_checkpoint` in a worker thread."""
        return await asyncio.to_thread(self.load_checkpoint, strategy_name)

    def __repr__(self) -> str:
        return f"StateManager(checkpoint_dir={str(self.checkpoint_dir)!r}, keep={self.keep})"


def _sort_key(name: str) -> tuple[str, int]:
    m = _FILE_RE.match(name)
    assert m is not None
    return m.group(1), int(m.group(2))


# --- strategy attributes -------------------------------------------------------------
_warned_skips: set[tuple[type, tuple[str, ...]]] = set()


def capture_strategy_state(obj: Any, exclude: Any = ()) -> dict[str, Any]:
    """The checkpointable public attributes of ``obj`` (a strategy or its ``context``).

    Captured: instance attributes (``vars(obj)``) whose name does not start with ``_``,
    is not in ``exclude``, and whose value is made only of None, bool, int, float, str,
    Decimal, datetime, date, timedelta, Asset, numpy scalars and lists/tuples/sets/dicts
    of those. Anything else (DataFrames, open files, callables...) is skipped, with one
    warning per strategy class naming the skipped attributes.
    """
    try:
        attrs = vars(obj)
    except TypeError:
        return {}
    excluded = set(exclude)
    state: dict[str, Any] = {}
    skipped: list[str] = []
    for name, value in attrs.items():
        if name.startswith("_") or name in excluded:
            continue
        if callable(value):
            continue
        try:
            encode_state_value(value, name)
        except CheckpointError:
            skipped.append(name)
            continue
        state[name] = value
    if skipped:
        key = (type(obj), tuple(sorted(skipped)))
        if key not in _warned_skips:
            _warned_skips.add(key)
            log.warning(
                "strategy_attributes_not_checkpointed",
                strategy=type(obj).__name__,
                attributes=sorted(skipped),
                hint="convert them to supported types or name them with a leading '_'",
            )
    return state


def restore_strategy_state(obj: Any, state: dict[str, Any]) -> None:
    """Set each captured attribute back on ``obj``."""
    for name, value in state.items():
        setattr(obj, name, value)
