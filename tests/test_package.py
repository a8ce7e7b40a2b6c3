"""The package describes what it ships: shadow trading is advertised only once it runs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import rustybt
from rustybt.algorithm import TradingAlgorithm
from rustybt.exceptions import ConfigError
from rustybt.live import LiveTradingEngine, PaperBroker


def _shadow_runs() -> bool:
    class Idle(TradingAlgorithm):
        pass

    try:
        LiveTradingEngine(Idle(), PaperBroker(), shadow_mode=True, audit_log=False)
    except ConfigError:
        return False
    except Exception:  # needs a shadow_config etc.: the mode exists
        return True
    return True


def test_package_and_pyproject_advertise_shadow_only_when_it_is_available():
    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    blurbs = (rustybt.__doc__ or "").splitlines()[0] + meta["project"]["description"]
    if _shadow_runs():
        pytest.skip("shadow trading is available; advertising it is fine")
    assert "shadow" not in blurbs.lower()
