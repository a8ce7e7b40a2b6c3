"""The spec's LiveTradingEngine "Example - Basic Usage", run as written (bundle 'demo').

The example uses names it does not define — ``MyStrategy``, ``data_portal``, ``logger``
and ``Decimal`` — so, as a user's script would, the namespace supplies them: the Quick
Start's ``MyStrategy``, a demo-bundle ``PolarsDataPortal``, a structlog logger, and
``decimal.Decimal``. Its ``main()`` is awaited with a timeout.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import structlog

from rustybt.algorithm import TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal

SPEC_BASIC_USAGE = """
import asyncio
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker

async def main():
    engine = LiveTradingEngine(
        strategy=MyStrategy(),
        broker_adapter=PaperBroker(starting_cash=Decimal("100000")),
        data_portal=data_portal
    )

    try:
        await engine.run()
    except KeyboardInterrupt:
        print("Shutting down...")
        await engine.shutdown()
    except Exception as e:
        logger.error("engine_error", error=str(e))
        await engine.shutdown()
        raise

if __name__ == "__main__":
    asyncio.run(main())
"""


class MyStrategy(TradingAlgorithm):  # the Quick Start's strategy
    instances: list = []

    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.rebalance_interval = 60  # minutes
        MyStrategy.instances.append(self)

    def handle_data(self, context, data):
        current_price = data.current(self.asset, "price")  # noqa: F841
        self.order_target_percent(self.asset, 0.95)


def test_basic_usage_runs_as_written():
    MyStrategy.instances.clear()
    ns: dict = {
        "__name__": "spec_basic_usage",
        "MyStrategy": MyStrategy,
        "data_portal": PolarsDataPortal(bundle_name="demo", data_frequency="minute"),
        "logger": structlog.get_logger(),
        "Decimal": Decimal,
    }
    exec(compile(SPEC_BASIC_USAGE, "spec-basic-usage", "exec"), ns)
    asyncio.run(asyncio.wait_for(ns["main"](), timeout=120))

    (strategy,) = MyStrategy.instances
    ledger = strategy._rt.ledger
    pos = ledger.positions[strategy.asset]
    assert pos.amount > 0
    # No cost models given: the paper broker fills without commission.
    assert ledger.fees_paid == 0
    assert Decimal("0.90") < pos.amount * pos.last_price / ledger.portfolio_value < 1
    assert strategy.portfolio.portfolio_value == ledger.portfolio_value
