"""The spec's "Example - Shadow Trading", run as written over the demo bundle with the
paper broker (zero latency, zero costs): a deterministic strategy aligns 100 %.

As a user would, the test supplies ``MyStrategy``, ``paper_broker`` and ``data_portal``
and wraps the example's ``await`` in an ``async def``.
"""

from __future__ import annotations

import asyncio
import textwrap
from decimal import Decimal

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.live.brokers.paper_broker import PaperBroker

SPEC_EXAMPLE = """
from decimal import Decimal
from rustybt.live.shadow.config import ShadowTradingConfig
from rustybt.live import LiveTradingEngine

# Configure shadow trading
shadow_config = ShadowTradingConfig(
    enabled=True,
    signal_tolerance_pct=Decimal("0.05"),      # 5% signal tolerance
    max_misalignment_count=3,                  # Halt after 3 misalignments
    execution_quality_threshold=Decimal("0.90"), # 90% fill rate required
    track_slippage=True,
    track_latency=True
)

# Enable shadow mode in engine
engine = LiveTradingEngine(
    strategy=MyStrategy(),
    broker_adapter=paper_broker,
    data_portal=data_portal,
    shadow_mode=True,            # Enable shadow trading
    shadow_config=shadow_config  # Shadow configuration
)

# Shadow engine runs automatically
await engine.run()

# Get shadow trading report
shadow_report = engine.get_shadow_report()
print(f"Signal alignment: {shadow_report.alignment_rate:.2%}")
print(f"Execution quality: {shadow_report.execution_quality:.2%}")
print(f"Avg slippage: {shadow_report.avg_slippage_bps} bps")
print(f"Avg latency: {shadow_report.avg_latency_ms} ms")
"""


class MyStrategy(TradingAlgorithm):
    """Deterministic: every 30 bars flip between 10 and 0 shares of AAPL (order_target)."""

    def initialize(self, context):
        self.asset = self.symbol("AAPL")
        self.bars = 0

    def handle_data(self, context, data):
        self.bars += 1
        if self.bars % 30 == 0:
            target = 10 if (self.bars // 30) % 2 else 0
            self.order_target(self.asset, target)


def test_spec_shadow_example_reports_full_alignment_for_a_deterministic_strategy(capsys):
    paper_broker = PaperBroker(starting_cash=Decimal("100000"))
    data_portal = PolarsDataPortal(bundle_name="demo", data_frequency="minute")
    ns = {"MyStrategy": MyStrategy, "paper_broker": paper_broker, "data_portal": data_portal}
    body = textwrap.indent(SPEC_EXAMPLE, "    ")
    exec(compile(f"async def _example():\n{body}\n    return engine", "spec", "exec"), ns)
    engine = asyncio.run(ns["_example"]())
    out = capsys.readouterr().out
    assert "Signal alignment: 100.00%" in out
    assert "Execution quality: 100.00%" in out
    assert "Avg slippage: 0.0000 bps" in out
    rep = engine.get_shadow_report()
    assert rep.signal_bars > 5 and rep.misaligned == []
    # every order pair is scored once both sides are final; the last bar's order never fills
    assert rep.pairs_compared >= rep.signal_bars - 1
    assert rep.returns_deviation == 0
    assert engine.circuit_breakers.get("alignment").misalignments == 0
    assert engine.shadow.steps == engine.stats["market_events"]
