"""Backtest breakers see the portfolio value on every bar, flat or not (issue #10 item 3)."""

from __future__ import annotations

from decimal import Decimal

from rustybt import TradingAlgorithm, run_algorithm
from rustybt.finance.decimal.commission import PerTradeCommission
from rustybt.live.circuit_breakers import CircuitBreakerManager, DrawdownCircuitBreaker

D = Decimal


class RoundTrip(TradingAlgorithm):
    """Buys on bar 0, sells on bar 2 (flat from bar 3), tries to buy again on bar 5."""

    def initialize(self):
        self.asset = self.symbol("AAPL")
        self.n = 0
        self.late_order = "not tried"

    def handle_data(self, context, data):
        if self.n == 0:
            self.order(self.asset, 10)
        elif self.n == 2:
            self.order(self.asset, -10)
        elif self.n == 5:
            self.late_order = self.order(self.asset, 10)
        self.n += 1


def test_a_loss_realised_into_cash_trips_the_drawdown_breaker_and_refuses_the_next_order():
    # 9,000 per order: 100,000 -> ~82,000 once the round trip is closed into cash.
    breakers = CircuitBreakerManager()
    drawdown = DrawdownCircuitBreaker(D("0.10"))
    breakers.add_breaker(drawdown)
    algo = RoundTrip()
    result = run_algorithm(
        algo,
        start="2024-01-03",
        end="2024-01-03",
        commission_model=PerTradeCommission(D("9000")),
        circuit_breakers=breakers,
    )
    assert result.daily[-1]["portfolio_value"] < D("83000")
    assert drawdown.peak == D("100000")  # seen while flat, before the first fill
    assert drawdown.is_tripped
    # A tripped breaker halts the strategy, as live: it is not called, so it never even
    # tries the late order.
    assert algo.late_order == "not tried"
    assert len(result.orders) == 2
