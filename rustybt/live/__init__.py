"""Live trading: the engine, brokers, safety (breakers, limits), durability, scheduling.

``from rustybt.live import LiveTradingEngine`` is the entry point. Every public name below
is importable from here and loads on first use, so importing ``rustybt.live`` (or one of
its light modules, such as ``rustybt.live.audit``) does not pay for the engine's imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rustybt.live.engine import LiveTradingEngine as LiveTradingEngine

# public name -> module that defines it
_LAZY = {
    "LiveTradingEngine": "rustybt.live.engine",
    "BrokerAdapter": "rustybt.live.brokers.base",
    "PaperBroker": "rustybt.live.brokers.paper_broker",
    "CircuitBreakerManager": "rustybt.live.circuit_breakers",
    "CircuitBreakerState": "rustybt.live.circuit_breakers",
    "CircuitBreakerType": "rustybt.live.circuit_breakers",
    "DailyLossCircuitBreaker": "rustybt.live.circuit_breakers",
    "DrawdownCircuitBreaker": "rustybt.live.circuit_breakers",
    "ErrorRateCircuitBreaker": "rustybt.live.circuit_breakers",
    "ManualCircuitBreaker": "rustybt.live.circuit_breakers",
    "OrderRateCircuitBreaker": "rustybt.live.circuit_breakers",
    "default_breakers": "rustybt.live.circuit_breakers",
    "RiskLimits": "rustybt.live.risk_limits",
    "OrderJournal": "rustybt.live.journal",
    "StateManager": "rustybt.live.state_manager",
    "StateCheckpoint": "rustybt.live.models",
    "PositionSnapshot": "rustybt.live.models",
    "OrderSnapshot": "rustybt.live.models",
    "ReconciliationStrategy": "rustybt.live.models",
    "ReconciliationReport": "rustybt.live.models",
    "PositionReconciler": "rustybt.live.reconciler",
    "TradingScheduler": "rustybt.live.scheduler",
    "SimulatedClock": "rustybt.live.scheduler",
    "Retention": "rustybt.live.retention",
    "prune_state": "rustybt.live.retention",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rustybt.live' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
