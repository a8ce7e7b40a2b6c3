"""Checkpoint files: atomic writes, fallback past corrupt files, staleness, async use."""

from __future__ import annotations

import errno
import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rustybt.assets import Crypto, Equity
from rustybt.exceptions import (
    CheckpointCorrupted,
    CheckpointError,
    CheckpointMismatch,
    CheckpointWriteError,
    ConfigError,
)
from rustybt.live import state_manager as sm_module
from rustybt.live.models import OrderSnapshot, PositionSnapshot, StateCheckpoint
from rustybt.live.state_manager import (
    StateManager,
    capture_strategy_state,
    default_checkpoint_dir,
    restore_strategy_state,
)

AAPL = Equity("AAPL", sid=1)
BTC = Crypto("BTCUSDT")
T0 = datetime(2024, 1, 2, 15, 30, tzinfo=UTC)


def _cp(cash: str = "5000", **kw) -> StateCheckpoint:
    base = dict(
        timestamp=T0,
        portfolio_value=Decimal("105000"),
        cash=Decimal(cash),
        positions=[
            PositionSnapshot(AAPL, Decimal("100"), Decimal("5000"), Decimal("50.5")),
            PositionSnapshot(BTC, Decimal("-0.25"), Decimal("-16000.25")),
        ],
        pending_orders=[
            OrderSnapshot("order1", AAPL, Decimal("50"), "pending", "s1-1"),
            OrderSnapshot(
                "order2",
                BTC,
                Decimal("-0.1"),
                "open",
                None,
                Decimal("0.02"),
                "limit",
                Decimal("64000.1"),
            ),
        ],
    )
    base.update(kw)
    return StateCheckpoint(**base)


@pytest.fixture
def manager(tmp_path: Path) -> StateManager:
    return StateManager(checkpoint_dir=tmp_path, keep=3)


def test_save_then_load_returns_an_equal_checkpoint(manager: StateManager):
    cp = _cp(
        strategy_state={"lookback": 20, "weights": {AAPL: Decimal("0.6")}},
        breaker_state={"daily_loss": {"tripped": True}},
        session_id="s1",
        order_sequence=42,
        ledger_state={"fees": Decimal("1.25")},
    )
    path = manager.save_checkpoint("my_strategy", cp)
    assert path.parent == manager.checkpoint_dir / "my_strategy"
    assert path.name.endswith(".ckpt")
    loaded = manager.load_checkpoint("my_strategy")
    assert loaded is not None
    expected = _cp(
        strategy_state=cp.strategy_state,
        breaker_state=cp.breaker_state,
        session_id="s1",
        order_sequence=42,
        ledger_state=cp.ledger_state,
        strategy_name="my_strategy",
    )
    assert loaded == expected
    assert isinstance(loaded.cash, Decimal)


def test_file_is_an_envelope_with_version_name_and_payload_checksum(manager: StateManager):
    path = manager.save_checkpoint("s", _cp())
    env = json.loads(path.read_bytes())
    assert env["schema_version"] == 1
    assert env["strategy_name"] == "s"
    assert env["checksum"].startswith("sha256:")
    assert env["payload"]["cash"] == "5000"  # Decimal written as a string


def test_load_without_any_checkpoint_returns_none(manager: StateManager):
    assert manager.load_checkpoint("never_saved") is None


def test_default_dir_follows_rustybt_root(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("RUSTYBT_ROOT", str(tmp_path))
    assert default_checkpoint_dir() == tmp_path / "state"
    assert StateManager().checkpoint_dir == tmp_path / "state"
    monkeypatch.delenv("RUSTYBT_ROOT")
    assert default_checkpoint_dir() == Path.home() / ".rustybt" / "state"


def test_keeps_only_the_newest_files_and_lists_newest_first(manager: StateManager):
    paths = [manager.save_checkpoint("s", _cp(cash=str(i))) for i in range(5)]
    listed = manager.list_checkpoints("s")
    assert listed == paths[:1:-1]  # the last three, newest first
    assert manager.load_checkpoint("s").cash == Decimal("4")


def test_file_names_stay_ordered_when_the_wall_clock_steps_back(manager, monkeypatch):
    manager.save_checkpoint("s", _cp(cash="1"))

    class _Past(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2000, 1, 1, tzinfo=tz)

    monkeypatch.setattr(sm_module, "datetime", _Past)
    manager.save_checkpoint("s", _cp(cash="2"))
    assert manager.load_checkpoint("s").cash == Decimal("2")


@pytest.mark.parametrize(
    "damage",
    ["truncate", "flip_payload_byte", "unknown_version", "empty", "garbage"],
)
def test_corrupt_newest_file_falls_back_to_the_previous_one(manager, damage):
    manager.save_checkpoint("s", _cp(cash="1"))
    newest = manager.save_checkpoint("s", _cp(cash="2"))
    data = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "flip_payload_byte":
        newest.write_bytes(data.replace(b'"cash":"2"', b'"cash":"9"'))
    elif damage == "unknown_version":
        newest.write_bytes(data.replace(b'"schema_version":1', b'"schema_version":99'))
    elif damage == "empty":
        newest.write_bytes(b"")
    else:
        newest.write_bytes(b"\x00\xff not json")
    restored = manager.load_checkpoint("s")
    assert restored is not None and restored.cash == Decimal("1")


def test_all_files_corrupt_raises_corrupted_naming_each_file(manager: StateManager):
    a = manager.save_checkpoint("s", _cp(cash="1"))
    b = manager.save_checkpoint("s", _cp(cash="2"))
    a.write_bytes(b"{")
    b.write_bytes(b.read_bytes()[:-10])
    with pytest.raises(CheckpointCorrupted) as info:
        manager.load_checkpoint("s")
    assert a.name in str(info.value) and b.name in str(info.value)
    assert "Move these files aside" in str(info.value)


def test_checkpoint_of_another_strategy_raises_mismatch(manager: StateManager):
    path = manager.save_checkpoint("alpha", _cp())
    foreign = manager.checkpoint_dir / "beta"
    foreign.mkdir()
    os.replace(path, foreign / path.name)
    with pytest.raises(CheckpointMismatch, match="'alpha'"):
        manager.load_checkpoint("beta")


def test_saving_state_named_for_another_strategy_raises_and_writes_nothing(manager):
    with pytest.raises(CheckpointMismatch):
        manager.save_checkpoint("alpha", _cp(strategy_name="beta"))
    assert manager.list_checkpoints("alpha") == []


def test_unencodable_strategy_state_raises_before_touching_disk(manager):
    manager.save_checkpoint("s", _cp(cash="1"))
    with pytest.raises(CheckpointError, match="strategy_state"):
        manager.save_checkpoint("s", _cp(cash="2", strategy_state={"f": object()}))
    assert len(manager.list_checkpoints("s")) == 1
    assert manager.load_checkpoint("s").cash == Decimal("1")


@pytest.mark.parametrize("target", ["write", "replace"])
def test_full_disk_raises_write_error_keeps_previous_and_cleans_temp(manager, monkeypatch, target):
    manager.save_checkpoint("s", _cp(cash="1"))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, target, no_space)
    with pytest.raises(CheckpointWriteError) as info:
        manager.save_checkpoint("s", _cp(cash="2"))
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert "free disk space" in str(info.value)
    folder = manager.checkpoint_dir / "s"
    assert sorted(p.name for p in folder.iterdir()) == [
        p.name for p in manager.list_checkpoints("s")
    ]  # no temp file left behind
    assert manager.load_checkpoint("s").cash == Decimal("1")


def test_unwritable_folder_raises_write_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    manager = StateManager(checkpoint_dir=blocker)
    with pytest.raises(CheckpointWriteError, match="previous checkpoint is kept"):
        manager.save_checkpoint("s", _cp())


def test_stale_temp_files_from_a_killed_writer_are_removed(manager: StateManager):
    manager.save_checkpoint("s", _cp())
    stale = manager.checkpoint_dir / "s" / ".tmp-leftover.ckpt.1"
    stale.write_bytes(b"half")
    os.utime(stale, (0, 0))
    manager.save_checkpoint("s", _cp())
    assert not stale.exists()


def test_staleness_and_age_use_the_checkpoint_timestamp(manager: StateManager):
    cp = _cp()
    assert manager.get_checkpoint_age(cp, now=T0 + timedelta(seconds=90)) == 90.0
    assert not manager.is_stale(cp, now=T0 + timedelta(seconds=3600))
    assert manager.is_stale(cp, now=T0 + timedelta(seconds=3601))
    assert manager.is_stale(cp)  # 2024 is long ago
    fresh = _cp(timestamp=datetime.now(UTC))
    assert not manager.is_stale(fresh)
    assert 0 <= manager.get_checkpoint_age(fresh) < 3600


def test_delete_checkpoints_removes_files_and_folder(manager: StateManager):
    manager.save_checkpoint("s", _cp())
    manager.save_checkpoint("s", _cp())
    assert manager.delete_checkpoints("s") == 2
    assert not (manager.checkpoint_dir / "s").exists()
    assert manager.load_checkpoint("s") is None


@pytest.mark.parametrize("name", ["", "../evil", "a/b", ".hidden", "x" * 200, None])
def test_unsafe_strategy_names_are_refused(manager: StateManager, name):
    with pytest.raises(ConfigError):
        manager.save_checkpoint(name, _cp())


@pytest.mark.parametrize(
    "kwargs", [{"keep": 0}, {"keep": True}, {"staleness_threshold_seconds": 0}]
)
def test_bad_constructor_arguments_raise_config_error(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        StateManager(tmp_path, **kwargs)


async def test_async_save_and_load_round_trip(manager: StateManager):
    path = await manager.save_checkpoint_async("s", _cp(cash="7"))
    assert path.exists()
    loaded = await manager.load_checkpoint_async("s")
    assert loaded.cash == Decimal("7")


def test_thousand_positions_and_orders_round_trip(manager: StateManager):
    assets = [Equity(f"S{i}", sid=i) for i in range(1000)]
    cp = _cp(
        positions=[
            PositionSnapshot(a, Decimal(i + 1), Decimal(i) * 3) for i, a in enumerate(assets)
        ],
        pending_orders=[
            OrderSnapshot(f"o{i}", a, Decimal(-1), "open", f"c{i}") for i, a in enumerate(assets)
        ],
    )
    manager.save_checkpoint("big", cp)
    loaded = manager.load_checkpoint("big")
    assert loaded.positions == cp.positions and loaded.pending_orders == cp.pending_orders


_decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=8, min_value=-(10**9), max_value=10**9
)


@settings(max_examples=50, deadline=None)
@given(cash=_decimals, amounts=st.lists(_decimals, max_size=5), seq=st.integers(0, 10**12))
def test_any_valid_checkpoint_round_trips(tmp_path_factory, cash, amounts, seq):
    manager = StateManager(tmp_path_factory.mktemp("ck"))
    cp = _cp(
        cash=str(cash),
        positions=[PositionSnapshot(Equity(f"A{i}"), a, a * 2) for i, a in enumerate(amounts)],
        order_sequence=seq,
        strategy_state={"values": list(amounts)},
    )
    manager.save_checkpoint("h", cp)
    loaded = manager.load_checkpoint("h")
    assert loaded.cash == cp.cash
    assert loaded.positions == cp.positions
    assert loaded.strategy_state == cp.strategy_state
    assert loaded.order_sequence == seq


class _Context:
    def __init__(self) -> None:
        self.window = 20
        self.target = {AAPL: Decimal("0.5")}
        self.started = T0
        self.frame = object()  # not checkpointable
        self._private = [1]
        self.callback = print


def test_capture_strategy_state_picks_public_serialisable_attributes():
    ctx = _Context()
    state = capture_strategy_state(ctx, exclude={"started"})
    assert state == {"window": 20, "target": {AAPL: Decimal("0.5")}}
    fresh = _Context()
    fresh.window = 0
    restore_strategy_state(fresh, state)
    assert fresh.window == 20 and fresh.target == {AAPL: Decimal("0.5")}


def test_captured_state_survives_a_checkpoint(manager: StateManager):
    state = capture_strategy_state(_Context())
    manager.save_checkpoint("s", _cp(strategy_state=state))
    assert manager.load_checkpoint("s").strategy_state == state
