"""Live trading: the engine, brokers, safety (breakers, limits), durability, scheduling.

``from rustybt.live import LiveTradingEngine`` is the entry point (spec).
"""

from rustybt.live.engine import LiveTradingEngine

__all__ = ["LiveTradingEngine"]
