"""Write-ahead order journal: what we intended, written before the broker hears of it.

One append-only JSON-lines file per strategy (``<dir>/<strategy>.journal``). Each
:meth:`OrderJournal.record` is ONE ``os.write`` of one line on an ``O_APPEND`` file
descriptor: when it returns, the line is in the OS page cache and survives the
process being killed, so the engine records the "intent" and only then calls
``submit_order``. It is not yet on disk: a background task fsyncs every
``fsync_interval_seconds`` when something was written (group commit), in a worker
thread, so an order costs a few microseconds instead of an fsync. A machine crash
(power loss, kernel panic) can lose the last interval's lines; reconciliation by
client order id closes that window (see ``docs/durability.md``).

Why JSON lines and not SQLite in WAL mode: an append is a single syscall with no
per-insert transaction or B-tree work; recovery after a crash is "drop a torn last
line", which a reader can see and report; and the fsync policy (group commit) is ours
to batch. The file is also greppable by an operator at 3 a.m.

:meth:`OrderJournal.replay` rebuilds per-order state (:class:`JournalState`): status,
broker id, filled amount and fills by ``fill_id`` (a replayed fill is never counted
twice), and which orders were in flight when the process stopped.

**Epochs.** The first line of every journal file is a ``header`` record (``seq`` 0) with
a random ``journal_id``, written together with the first real record in one ``write``.
A checkpoint stores the id and the sequence number of the journal it saw, so recovery
can tell a journal that lost its unsynced tail in a machine crash (same id, fewer
records than the checkpoint saw: nothing of it is re-applied) from a truly new journal
(another id: everything in it came after the checkpoint). See ``rustybt.live.recovery``.

**Progress.** During a paper replay the engine appends a ``bar`` record after each bar
the strategy processed (its time and the strategy's variables), so a restart resumes
after that bar instead of trading bars again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import structlog

from rustybt.assets import Asset, asset_from_dict
from rustybt.exceptions import JournalError
from rustybt.live.state_delta import fold_bar_record

__all__ = [
    "JOURNAL_KINDS",
    "JournalFill",
    "JournalOrder",
    "JournalState",
    "OrderJournal",
    "TERMINAL_STATUSES",
    "journal_path",
]

log = structlog.get_logger(__name__)

JOURNAL_KINDS = frozenset(
    {
        "intent",
        "submitted",
        "ack",
        "fill",
        "cancel_requested",
        "cancel",
        "reject",
        "adjust",
        "resolved",
        "submit_unknown",
        "header",
        "bar",
    }
)
#: Kinds written by the engine about the journal or the replay, not about an order.
ENGINE_KINDS = frozenset({"header", "bar"})
#: Kinds that note something about an order without changing its replayed status.
#: (``submit_unknown``: the submit's outcome was unknown; the broker is asked later.)
INFORMATIONAL_KINDS = frozenset({"cancel_requested", "submit_unknown"})
STATUSES = (
    "intent_only",
    "submitted",
    "acked",
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
)
TERMINAL_STATUSES = frozenset({"filled", "cancelled", "rejected"})
_RESERVED = frozenset({"seq", "ts", "kind", "client_order_id"})
_TAIL_BYTES = 1 << 16


def journal_path(directory: Path | str, strategy_name: str) -> Path:
    """The conventional journal file of a strategy: ``<directory>/<strategy>.journal``."""
    return Path(directory) / f"{strategy_name}.journal"


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Asset):
        return obj.to_dict()
    raise TypeError(
        f"cannot journal a {type(obj).__name__}; pass Decimal, str, int, datetime, Asset, "
        "or dicts/lists of those"
    )


_DECODER = msgspec.json.Decoder()


# --- replayed state ------------------------------------------------------------------
@dataclass(slots=True)
class JournalFill:
    fill_id: str
    amount: Decimal
    price: Decimal
    commission: Decimal
    seq: int
    dt: str | None = None


@dataclass(slots=True)
class JournalOrder:
    """One order as the journal remembers it."""

    client_order_id: str
    asset: Asset | None = None
    amount: Decimal | None = None
    order_type: str | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: str | None = None
    dt: str | None = None
    strategy: str | None = None
    broker_order_id: str | None = None
    status: str = "intent_only"
    filled: Decimal = Decimal(0)
    fills: dict[str, JournalFill] = field(default_factory=dict)
    reject_reason: str | None = None
    resolution: dict[str, Any] | None = None
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    first_seq: int = 0
    last_seq: int = 0
    has_intent: bool = False
    #: A cancel was requested (``cancel_requested``) and no cancel/terminal state followed.
    cancel_requested: bool = False

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def remaining(self) -> Decimal | None:
        """Signed amount still to fill (None when the intent is unknown)."""
        return None if self.amount is None else self.amount - self.filled

    @property
    def average_fill_price(self) -> Decimal | None:
        if not self.fills:
            return None
        qty = sum((abs(f.amount) for f in self.fills.values()), Decimal(0))
        if not qty:
            return None
        return sum((abs(f.amount) * f.price for f in self.fills.values()), Decimal(0)) / qty


@dataclass(slots=True)
class JournalState:
    """Everything :meth:`OrderJournal.replay` learned from a journal file."""

    orders: dict[str, JournalOrder] = field(default_factory=dict)
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0
    record_count: int = 0
    torn_tail: bytes | None = None
    duplicate_fills: int = 0
    anomalies: list[str] = field(default_factory=list)
    #: The raw records in file order, when asked for (``replay(path, keep_records=True)``).
    records: list[dict[str, Any]] | None = None
    #: The epoch of this file (its ``header`` record); None for a file written before
    #: journals had headers, or an empty one.
    journal_id: str | None = None
    #: The newest ``bar`` progress record (a paper replay's last processed bar).
    last_bar: dict[str, Any] | None = None
    #: The strategy variables (encoded) as of ``last_bar``, folded from its chain of full
    #: and delta records (:mod:`rustybt.live.state_delta`); None when unknown.
    bar_state: dict[str, Any] | None = None

    def in_flight(self) -> list[JournalOrder]:
        """Orders not in a terminal state: ask the broker about each (by client id)."""
        return [o for o in self.orders.values() if not o.is_terminal]

    def get(self, client_order_id: str) -> JournalOrder | None:
        return self.orders.get(client_order_id)

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self.orders

    def has_fill(self, fill_id: str) -> bool:
        """True when a fill with this id was already journalled (for any order)."""
        return any(fill_id in o.fills for o in self.orders.values())

    def max_sequence_for(self, session_prefix: str) -> int:
        """Highest N among client order ids ``<session_prefix><sep>N`` (0 if none).

        ``<sep>`` is one of ``- _ : .``, and may be part of the prefix itself, so an
        order manager resuming session ``s1`` continues after ``s1-41`` with 42.
        """
        best = 0
        n = len(session_prefix)
        for coid in self.orders:
            if not coid.startswith(session_prefix):
                continue
            rest = coid[n:]
            if session_prefix and session_prefix[-1] not in "-_:.":
                if not rest or rest[0] not in "-_:.":
                    continue
                rest = rest[1:]
            if rest.isdigit():
                best = max(best, int(rest))
        return best


def _dec_field(rec: dict[str, Any], key: str, line: int) -> Decimal | None:
    raw = rec.get(key)
    if raw is None:
        return None
    try:
        out = Decimal(str(raw))
    except ArithmeticError:
        raise JournalError(f"line {line}: {key}={raw!r} is not a number") from None
    if not out.is_finite():
        raise JournalError(f"line {line}: {key}={raw!r} is not finite")
    return out


def _apply(state: JournalState, rec: dict[str, Any], line: int) -> None:
    kind = rec["kind"]
    coid = rec["client_order_id"]
    seq = rec["seq"]
    if kind == "bar":
        state.last_bar = rec
        state.bar_state = fold_bar_record(state.bar_state, rec)
        return
    if kind == "header":
        if line != 1:
            raise JournalError(
                f"line {line}: a journal header may only be the first line (two journals "
                "concatenated?); keep the file for investigation"
            )
        jid = rec.get("journal_id")
        if not isinstance(jid, str) or not jid:
            raise JournalError(f"line {line}: header without a journal_id")
        state.journal_id = jid
        return
    if kind == "adjust":
        state.adjustments.append(rec)
        order = state.orders.get(coid)
        if order is not None:
            order.adjustments.append(rec)
            order.last_seq = seq
        return
    order = state.orders.get(coid)
    if order is None:
        order = state.orders[coid] = JournalOrder(coid, first_seq=seq)
        if kind != "intent":
            state.anomalies.append(f"line {line}: {kind!r} for {coid!r} without a prior intent")
    order.last_seq = seq
    if kind == "intent":
        if order.has_intent:
            state.anomalies.append(
                f"line {line}: second intent for client order id {coid!r} (ignored); "
                "client order ids must never be reused"
            )
            return
        order.has_intent = True
        asset = rec.get("asset")
        if isinstance(asset, dict):
            try:
                order.asset = asset_from_dict(asset)
            except Exception as exc:
                raise JournalError(f"line {line}: bad asset {asset!r} ({exc})") from None
        order.amount = _dec_field(rec, "amount", line)
        order.order_type = rec.get("order_type")
        order.limit_price = _dec_field(rec, "limit_price", line)
        order.stop_price = _dec_field(rec, "stop_price", line)
        order.tif = rec.get("tif")
        order.dt = rec.get("dt")
        order.strategy = rec.get("strategy")
    elif kind == "submitted" or kind == "ack":
        if rec.get("broker_order_id") is not None:
            order.broker_order_id = str(rec["broker_order_id"])
        target = "submitted" if kind == "submitted" else "acked"
        if order.status == "intent_only" or (target == "acked" and order.status == "submitted"):
            order.status = target
    elif kind == "fill":
        fill_id = rec.get("fill_id")
        if fill_id is None:
            raise JournalError(f"line {line}: fill for {coid!r} has no fill_id")
        fill_id = str(fill_id)
        if fill_id in order.fills:
            state.duplicate_fills += 1
            return
        amount = _dec_field(rec, "amount", line)
        price = _dec_field(rec, "price", line)
        if amount is None or price is None:
            raise JournalError(f"line {line}: fill {fill_id!r} needs amount and price")
        if order.amount is not None and amount and (amount < 0) != (order.amount < 0):
            amount = abs(amount).copy_sign(order.amount)  # an unsigned sell fill
        order.fills[fill_id] = JournalFill(
            fill_id,
            amount,
            price,
            _dec_field(rec, "commission", line) or Decimal(0),
            seq,
            rec.get("dt"),
        )
        order.filled += amount
        if rec.get("broker_order_id") is not None and order.broker_order_id is None:
            order.broker_order_id = str(rec["broker_order_id"])
        if order.amount is not None and abs(order.filled) >= abs(order.amount):
            order.status = "filled"
        elif rec.get("is_final"):
            order.status = "filled"
        elif not order.is_terminal:
            order.status = "partially_filled"
    elif kind == "cancel_requested":
        # Informational: the venue decides; the status changes with its "cancel" event.
        if not order.is_terminal:
            order.cancel_requested = True
    elif kind == "cancel":
        order.cancel_requested = False
        if order.status != "filled":
            order.status = "cancelled"
    elif kind == "reject":
        if order.status != "filled":
            order.status = "rejected"
            order.reject_reason = rec.get("reason")
    elif kind == "resolved":
        order.resolution = rec
        status = rec.get("status")
        if status is not None:
            if status not in STATUSES:
                raise JournalError(
                    f"line {line}: resolved status {status!r} is not one of {STATUSES}"
                )
            order.status = status
        if rec.get("broker_order_id") is not None:
            order.broker_order_id = str(rec["broker_order_id"])


def _parse_line(raw: bytes, line: int, path: Path) -> dict[str, Any]:
    try:
        rec = _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise JournalError(
            f"{path}: line {line} is corrupt ({exc}). Damage in the middle of the journal "
            "is not something a crash causes: keep the file for investigation, reconcile "
            "with the broker, and start a new journal file."
        ) from None
    if (
        not isinstance(rec, dict)
        or not isinstance(rec.get("seq"), int)
        or rec.get("kind") not in JOURNAL_KINDS
        or not isinstance(rec.get("client_order_id"), str)
    ):
        raise JournalError(
            f"{path}: line {line} is not a journal record (needs int seq, a kind in "
            f"{sorted(JOURNAL_KINDS)} and a str client_order_id): {raw[:200]!r}"
        )
    return rec


def _replay_bytes(data: bytes, path: Path, keep_records: bool = False) -> JournalState:
    state = JournalState()
    if keep_records:
        state.records = []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail:
        # Written by a crash mid-line (the newline is written with the line, so a
        # complete record always ends with one). A complete record missing only its
        # newline is still accepted.
        try:
            _parse_line(tail, len(lines) + 1, path)
        except JournalError:
            state.torn_tail = tail
            log.warning(
                "journal_torn_final_line",
                path=str(path),
                line=len(lines) + 1,
                bytes=len(tail),
                hint="the process or machine stopped mid-write; that record is ignored",
            )
        else:
            lines.append(tail)
    last_seq = 0
    for i, raw in enumerate(lines, start=1):
        rec = _parse_line(raw, i, path)
        if i == 1 and rec["kind"] == "header" and rec["seq"] == 0:
            _apply(state, rec, i)
            continue
        if rec["seq"] <= last_seq:
            raise JournalError(
                f"{path}: line {i} has seq {rec['seq']} after seq {last_seq}; sequence "
                "numbers must increase (two writers on one journal?). Keep the file for "
                "investigation and reconcile with the broker."
            )
        last_seq = rec["seq"]
        _apply(state, rec, i)
        state.record_count += 1
        if state.records is not None:
            state.records.append(rec)
    state.last_seq = last_seq
    return state


# --- the writer ----------------------------------------------------------------------
class OrderJournal:
    """Append-only order journal with group-committed fsync.

    Args:
        path: the journal file (created if missing, parent folders included).
        fsync_interval_seconds: how often the background task (see :meth:`start`)
            fsyncs when something was written.

    ``record`` is synchronous and cheap; call ``await start()`` once on the event loop
    to get periodic fsync, and ``await close()`` (or ``flush_sync()``) on shutdown.
    """

    def __init__(self, path: Path | str, fsync_interval_seconds: float = 0.05) -> None:
        if (
            isinstance(fsync_interval_seconds, bool)
            or not isinstance(fsync_interval_seconds, int | float)
            or not 0 < fsync_interval_seconds <= 60
        ):
            raise JournalError(
                f"fsync_interval_seconds={fsync_interval_seconds!r} must be a number in "
                "(0, 60], e.g. 0.05"
            )
        self.path = Path(path).expanduser()
        self.fsync_interval_seconds = float(fsync_interval_seconds)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:
            raise JournalError(
                f"cannot open order journal {self.path}: {exc.strerror}; check that the "
                "folder exists and is writable"
            ) from exc
        try:
            self._seq, self._size = self._recover_tail()
        except BaseException:
            os.close(self._fd)
            raise
        self._encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
        #: This file's epoch: read from its header, or new (written with the first record).
        self.journal_id = self._read_journal_id() or uuid.uuid4().hex
        self._lock = threading.Lock()
        self._written_seq = self._seq
        self._synced_seq = self._seq
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._fsync_error: BaseException | None = None

    def _read_journal_id(self) -> str | None:
        if self._size == 0:
            return None
        with open(self.path, "rb") as fh:
            first = fh.readline(1 << 16)
        try:
            rec = _DECODER.decode(first)
        except msgspec.DecodeError:
            return None
        if isinstance(rec, dict) and rec.get("kind") == "header":
            jid = rec.get("journal_id")
            return jid if isinstance(jid, str) and jid else None
        return None

    def advance_seq(self, seq: int) -> None:
        """Number the next record above ``seq``.

        After a machine crash cut the journal's tail, the checkpoint may have seen
        records up to a higher sequence number than the file now holds: new records must
        not reuse those numbers, or a later restore from that checkpoint would take them
        for records it already applied.
        """
        with self._lock:
            if seq > self._seq:
                self._seq = seq
                self._written_seq = max(self._written_seq, seq)
                self._synced_seq = max(self._synced_seq, seq)

    def _recover_tail(self) -> tuple[int, int]:
        """(last seq, file size); cuts off a torn final line so appends start clean."""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return 0, 0
        with open(self.path, "rb") as fh:
            start = max(0, size - _TAIL_BYTES)
            fh.seek(start)
            tail = fh.read()
        if not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            fragment = tail[cut + 1 :]
            try:
                rec = _parse_line(fragment, -1, self.path)
            except JournalError:
                keep = start + cut + 1
                side = self.path.with_name(f"{self.path.name}.torn-{int(time.time())}")
                with contextlib.suppress(OSError):
                    side.write_bytes(fragment)
                log.warning(
                    "journal_torn_tail_truncated",
                    path=str(self.path),
                    bytes=len(fragment),
                    saved_to=str(side),
                )
                os.truncate(self.path, keep)
                size = keep
                tail = tail[: cut + 1]
            else:
                # Whole record, only its newline lost: finish it.
                os.write(self._fd, b"\n")
                size += 1
                return int(rec["seq"]), size
        lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
        last = lines[-1]
        if not last:
            return 0, size
        return int(_parse_line(last, -1, self.path)["seq"]), size

    # --- hot path -------------------------------------------------------------------
    def record(self, kind: str, client_order_id: str, **fields: Any) -> None:
        """Append one record; returns once the OS has it (not yet fsynced).

        Raises ``JournalError`` for an unknown kind, an empty client order id, an
        unencodable field, a failed write (nothing is left half-written) or after a
        failed background fsync: then the order must NOT be sent.
        """
        if kind not in JOURNAL_KINDS or kind == "header":
            raise JournalError(
                f"unknown journal kind {kind!r}; use one of {sorted(JOURNAL_KINDS - {'header'})}"
            )
        if not isinstance(client_order_id, str) or not client_order_id:
            raise JournalError(f"client_order_id={client_order_id!r} must be a non-empty str")
        if self._closed:
            raise JournalError(f"order journal {self.path} is closed")
        if self._fsync_error is not None:
            raise JournalError(
                f"order journal {self.path} failed to fsync ({self._fsync_error}); its "
                "durability is unknown, so no further orders may be journalled. Check the "
                "disk, then restart."
            )
        clash = _RESERVED.intersection(fields)
        if clash:
            raise JournalError(f"field names {sorted(clash)} are reserved in journal records")
        for name, value in fields.items():
            # A NaN written now would make every later replay fail; refuse it here.
            if type(value) is Decimal and not value.is_finite():
                raise JournalError(
                    f"cannot journal {kind} for {client_order_id!r}: {name}={value} is not finite"
                )
        with self._lock:
            seq = self._seq + 1
            rec = {"seq": seq, "ts": time.time(), "kind": kind, "client_order_id": client_order_id}
            rec.update(fields)
            try:
                line = self._encoder.encode(rec) + b"\n"
            except (TypeError, ValueError) as exc:
                raise JournalError(
                    f"cannot journal {kind} for {client_order_id!r}: {exc}"
                ) from None
            if self._size == 0:
                # A new file: its epoch goes first, in the same write as the record.
                header = {
                    "seq": 0,
                    "ts": rec["ts"],
                    "kind": "header",
                    "client_order_id": "journal",
                    "journal_id": self.journal_id,
                }
                line = self._encoder.encode(header) + b"\n" + line
            try:
                written = os.write(self._fd, line)
                if written != len(line):
                    raise OSError(0, f"short write ({written} of {len(line)} bytes)")
            except OSError as exc:
                # Cut back any partial line so the file stays a sequence of whole records.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                raise JournalError(
                    f"could not write to order journal {self.path}: {exc.strerror or exc}; "
                    "the order was not journalled and must not be sent. Free disk space or "
                    "fix permissions."
                ) from exc
            self._seq = seq
            self._size += written
            self._written_seq = seq

    @property
    def last_seq(self) -> int:
        """Sequence number of the last record written."""
        return self._seq

    @property
    def synced_seq(self) -> int:
        """Sequence number up to which records are known to be on disk."""
        return self._synced_seq

    # --- group commit ---------------------------------------------------------------
    async def start(self) -> None:
        """Start the background group-commit task on the running loop (idempotent)."""
        if self._closed:
            raise JournalError(f"order journal {self.path} is closed")
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._fsync_loop(), name="order-journal-fsync")

    async def _fsync_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.fsync_interval_seconds)
            try:
                await self.sync()
            except JournalError:
                return  # reported by sync(); record() now refuses

    async def sync(self) -> None:
        """fsync now (in a worker thread) if anything was written since the last one."""
        target = self._written_seq
        if target <= self._synced_seq or self._closed:
            return
        try:
            await asyncio.to_thread(os.fsync, self._fd)
        except OSError as exc:
            self._fsync_error = exc
            log.critical("order_journal_fsync_failed", path=str(self.path), error=str(exc))
            raise JournalError(f"fsync of order journal {self.path} failed: {exc}") from exc
        self._synced_seq = max(self._synced_seq, target)

    def flush_sync(self) -> None:
        """fsync now, blocking the caller (for shutdown paths outside the loop)."""
        if self._closed:
            return
        target = self._written_seq
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._fsync_error = exc
            raise JournalError(f"fsync of order journal {self.path} failed: {exc}") from exc
        self._synced_seq = max(self._synced_seq, target)

    async def close(self) -> None:
        """Stop the background task, fsync what is left, close the file (idempotent)."""
        if self._closed:
            return
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self.sync()
        finally:
            self._closed = True
            os.close(self._fd)

    def close_sync(self) -> None:
        """Blocking close for code without a loop (tests, CLI tools)."""
        if self._closed:
            return
        try:
            self.flush_sync()
        finally:
            self._closed = True
            if self._task is not None:
                self._task.cancel()
            os.close(self._fd)

    # --- reading --------------------------------------------------------------------
    @staticmethod
    def replay(path: Path | str, keep_records: bool = False) -> JournalState:
        """Rebuild per-order state from a journal file (an absent file is empty).

        A torn final line is reported in ``state.torn_tail`` and ignored; damage in the
        middle raises ``JournalError`` naming the line. With ``keep_records`` the raw
        records are kept in ``state.records`` (file order), e.g. to re-apply the ones
        written after a checkpoint.
        """
        p = Path(path).expanduser()
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return JournalState()
        except OSError as exc:
            raise JournalError(f"cannot read order journal {p}: {exc.strerror}") from exc
        return _replay_bytes(data, p, keep_records)

    @staticmethod
    async def replay_async(path: Path | str, keep_records: bool = False) -> JournalState:
        """:meth:`replay` in a worker thread."""
        return await asyncio.to_thread(OrderJournal.replay, path, keep_records)

    def __repr__(self) -> str:
        return f"OrderJournal({str(self.path)!r}, last_seq={self._seq})"
