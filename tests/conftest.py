"""Shared fixtures: every test gets its own RUSTYBT_ROOT so nothing touches the real home.

The demo bundle is built once per test session and copied into each test's root, so a
test that uses it does not pay for regenerating it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rustybt.data.demo import build_demo_bundle


@pytest.fixture(scope="session")
def _demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo_template")
    build_demo_bundle(root)
    return root


@pytest.fixture(autouse=True)
def _isolated_root(tmp_path_factory, monkeypatch, _demo_template):
    root = tmp_path_factory.mktemp("rustybt_root")
    src = _demo_template / "data" / "bundles" / "demo"
    shutil.copytree(src, root / "data" / "bundles" / "demo")
    monkeypatch.setenv("RUSTYBT_ROOT", str(root))
    return root
