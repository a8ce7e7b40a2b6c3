"""Live breakers see the portfolio value once per bar whether flat or not, and after every
fill (issue #10 item 3): a loss realised into cash must trip the drawdown breaker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rustybt import TradingAlgorithm
from rustybt.data.bar import Bar
from rustybt.finance.order import OrderStatus
from rustybt.live.circuit_breakers import (
    CircuitBreakerManager,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
)
from tests.live.test_engine import make_engine, wait_until

D = Decimal
T0 = datetime(2024, 1, 31, 14, 31, tzinfo=UTC)


class StopLossTrader(TradingAlgorithm):
    """Buys 900 on the first bar, puts a stop-loss sell on the second."""

    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.n = 0

    def handle_data(self, context, data):
        self.n += 1
        if self.n == 1:
            self.order(self.asset, 900)
        elif self.n == 2:
            self.order(self.asset, -900, stop_price=D("99"))


def bar(asset, i, price):
    p = D(price)
    return Bar(asset, T0 + timedelta(minutes=i), p, p, p, p, D("1e6"))


async def test_a_gap_through_a_stop_realised_into_cash_trips_drawdown_and_refuses_new_orders():
    breakers = CircuitBreakerManager()
    drawdown = DrawdownCircuitBreaker(D("0.10"))
    daily = DailyLossCircuitBreaker(max_daily_loss_pct=D("0.15"))
    breakers.add_breaker(drawdown)
    breakers.add_breaker(daily)
    strategy = StopLossTrader()
    engine = make_engine(
        strategy, circuit_breakers=breakers, replay=False, stop_when_data_ends=False
    )
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: engine.get_status()["reconciliation"] == "ok", "startup")
        a = strategy.asset
        engine.push_market_data(bar(a, 0, "100"))  # buy 900 (flat: 100,000 seen)
        engine.push_market_data(bar(a, 1, "100"))  # filled; stop-loss placed
        await wait_until(lambda: strategy.n == 2, "the stop order")
        # The market gaps down: the stop fills at 80 and the loss is in cash, flat.
        engine.push_market_data(bar(a, 2, "80"))
        await wait_until(lambda: not engine.ledger.positions, "the stop fill")
        assert engine.ledger.cash == D("82000")
        engine.push_market_data(bar(a, 3, "80"))
        await wait_until(lambda: engine.get_status()["market_events"] == 4, "the next bar")
        assert drawdown.is_tripped and daily.is_tripped
        assert engine.get_status()["can_trade"] is False
        # A halted engine runs no strategy code; any new order is refused at the gate.
        assert strategy.n == 2  # not called on the gap bar (the fill tripped first) nor after
        refused = engine.order_manager.place(a, D("1"), reference_price=D("80"))
        assert refused.status is OrderStatus.REJECTED
        assert "circuit breakers tripped" in refused.reason
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)


class Idle(TradingAlgorithm):
    def initialize(self):
        self.asset = self.symbol("AAPL")

    def handle_data(self, context, data):
        pass


async def test_breakers_are_fed_once_per_bar_not_on_every_tick():
    seen = []

    class Recording(DrawdownCircuitBreaker):
        def on_portfolio_value(self, value, dt):
            seen.append(dt)
            return super().on_portfolio_value(value, dt)

    breakers = CircuitBreakerManager()
    breakers.add_breaker(Recording(D("0.5")))
    strategy = Idle()
    engine = make_engine(
        strategy, circuit_breakers=breakers, replay=False, stop_when_data_ends=False
    )
    task = asyncio.create_task(engine.run())
    try:
        await wait_until(lambda: engine.get_status()["reconciliation"] == "ok", "startup")
        a = strategy.asset
        # 30 ticks over two minute bars: the breakers see one value per bar.
        for i in range(30):
            t = T0 + timedelta(seconds=4 * i)
            engine.push_market_data(Bar(a, t, *[D("100")] * 4, D("10")))
        await wait_until(lambda: engine.get_status()["market_events"] == 30, "the ticks")
        assert [dt.minute for dt in seen] == [31, 32]
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 10)
