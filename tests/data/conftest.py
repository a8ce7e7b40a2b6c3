"""Fixtures for data tests: a private RUSTYBT_ROOT per test, and one shared demo build."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustybt.data.demo import build_demo_bundle


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root holding a demo bundle, built once for the session (tests must not modify it)."""
    root = tmp_path_factory.mktemp("demo_root")
    build_demo_bundle(root)
    return root


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty RUSTYBT_ROOT for this test only; never the real home folder."""
    path = tmp_path / "rustybt_root"
    monkeypatch.setenv("RUSTYBT_ROOT", str(path))
    return path


@pytest.fixture
def demo_env(demo_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """RUSTYBT_ROOT pointing at the shared, already built demo bundle."""
    monkeypatch.setenv("RUSTYBT_ROOT", str(demo_root))
    return demo_root
