"""Cost of the risk gate per order: ``RiskGate.check`` with no limits vs every limit set.

Run: ``.venv/bin/python -m benchmarks.bench_risk_gate``; ``make bench`` runs it as the
``risk_gate`` section. Not part of the test run.

Every order passes ``RiskGate.check`` before any broker call (DESIGN.md invariant 3), so its
cost is on the tick-to-submit path. Measured here directly, with a real :class:`Ledger`
holding 10 or 100 positions and a real :class:`Blotter` holding 50 open orders (the engine
passes ``blotter.iter_open_orders()`` plus the blotter's running per-asset open totals
``open_book``/``open_count``, exactly like this, so no limit scans the open orders):

* **empty**: ``RiskGate(None, CircuitBreakerManager())`` — no limits, no breakers;
* **full**: :class:`RiskLimits` with every limit set (generous enough that the order passes,
  so every check runs to the end, gross exposure included) + ``default_breakers()``.

The order checked is a buy that increases a held position (the most expensive case: a
risk-reducing order skips the size and exposure limits). Its ``dt`` advances 2 s per check
so the default ``order_rate`` breaker (60/min) never trips. Target: ≤ 10 µs added per order.
"""

from __future__ import annotations

import gc
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from rustybt.assets import Equity
from rustybt.finance.blotter import Blotter
from rustybt.finance.ledger import Ledger, Position
from rustybt.finance.order import OrderType
from rustybt.finance.risk_gate import RiskGate
from rustybt.live.circuit_breakers import CircuitBreakerManager, default_breakers
from rustybt.live.risk_limits import RiskLimits

TARGET_US = 10.0
OPEN_ORDERS = 50
_next_dt: dict[int, datetime] = {}


def _setup(n_positions: int) -> tuple[Ledger, Blotter, list[Equity]]:
    assets = [Equity(f"S{i:05d}", sid=i + 1) for i in range(max(n_positions, OPEN_ORDERS))]
    ledger = Ledger(Decimal("10000000"))
    ledger.set_state(
        Decimal("5000000"),
        [
            Position(a, Decimal(100), Decimal("50.00"), Decimal("51.25"))
            for a in assets[:n_positions]
        ],
    )
    blotter = Blotter(ledger, RiskGate())  # an empty gate: only to hold open orders
    for i in range(OPEN_ORDERS):
        a = assets[i % len(assets)]
        amount = Decimal(10) if i % 2 == 0 else Decimal(-10)
        blotter.place(a, amount, OrderType.LIMIT, Decimal("50.00"), reference_price=Decimal("50"))
    assert len(blotter.open_orders()) == OPEN_ORDERS
    return ledger, blotter, assets


def _full_limits(assets: list[Equity]) -> RiskLimits:
    return RiskLimits(
        max_position_amount=Decimal("1000000"),
        max_position_value=Decimal("100000000"),
        max_position_pct=Decimal("1"),
        max_gross_exposure=Decimal("1000000000"),
        max_leverage=Decimal("100"),
        max_open_orders=10_000,
        max_order_value=Decimal("100000000"),
        allowed_assets=frozenset(a.symbol for a in assets),
        long_only=True,
        per_asset={assets[0].symbol: Decimal("1000000")},
    )


def _per_asset_limits(assets: list[Equity]) -> RiskLimits:
    """Every limit except the portfolio-wide ones (gross exposure, leverage)."""
    return RiskLimits(
        max_position_amount=Decimal("1000000"),
        max_position_value=Decimal("100000000"),
        max_position_pct=Decimal("1"),
        max_open_orders=10_000,
        max_order_value=Decimal("100000000"),
        allowed_assets=frozenset(a.symbol for a in assets),
        long_only=True,
    )


def _measure(
    gate: RiskGate,
    ledger: Ledger,
    blotter: Blotter,
    asset: Equity,
    n: int,
    remark: bool = False,
) -> list[int]:
    """Time ``n`` checks; with ``remark`` every position is re-marked (untimed) before
    each one, as after a new bar: the worst case for the incremental exposure cache."""
    gate.attach(ledger)  # as Blotter does: this gate now hears every position/mark change
    held = list(ledger.positions)
    marks = (Decimal("51.25"), Decimal("51.30"))
    clock = time.perf_counter_ns
    check = gate.check
    positions = ledger.positions
    amount = Decimal(10)
    price = Decimal("51.25")
    dt = _next_dt.get(id(gate), datetime(2024, 1, 2, 15, 0, tzinfo=UTC))
    step = timedelta(seconds=2)
    samples = []
    for i in range(n):
        if remark:
            mark = marks[i & 1]
            for a in held:
                ledger.update_price(a, mark)
        pv = ledger.portfolio_value  # the blotter passes it on every order
        t0 = clock()
        reason = check(
            asset,
            amount,
            price,
            positions,
            blotter.iter_open_orders(),
            pv,
            dt,
            blotter.open_book,  # as Blotter.place passes them: running per-asset totals
            blotter.open_count,
        )
        t1 = clock()
        if reason is not None:
            raise RuntimeError(f"risk gate refused the benchmark order: {reason}")
        samples.append(t1 - t0)
        dt += step
    _next_dt[id(gate)] = dt  # time only moves forward for a gate's order-rate window
    return samples


def _stats(samples: list[int]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s) / 1e3, s[min(len(s) - 1, int(len(s) * 0.99))] / 1e3


def run(quick: bool = False) -> dict[str, Any]:
    n = 100 if quick else 20_000
    rows = []
    raw: dict[str, Any] = {}
    for n_pos in (10, 100):
        ledger, blotter, assets = _setup(n_pos)
        asset = assets[0]
        empty = RiskGate(None, CircuitBreakerManager())
        full = RiskGate(_full_limits(assets), default_breakers(Decimal("10000000")))
        limits_only = RiskGate(_full_limits(assets), CircuitBreakerManager())
        breakers_only = RiskGate(None, default_breakers(Decimal("10000000")))
        gc.collect()
        results = {}
        per_asset = RiskGate(_per_asset_limits(assets), default_breakers(Decimal("10000000")))
        for name, gate in (
            ("empty", empty),
            ("limits only", limits_only),
            ("breakers only", breakers_only),
            ("per-asset limits + breakers", per_asset),
            ("full", full),
        ):
            _measure(gate, ledger, blotter, asset, min(n, 500))  # warm-up
            results[name] = _stats(_measure(gate, ledger, blotter, asset, n))
        _measure(full, ledger, blotter, asset, min(n, 500), remark=True)
        results["full, every position re-marked before each order"] = _stats(
            _measure(full, ledger, blotter, asset, n, remark=True)
        )
        base = results["empty"][0]
        for name, (med, p99) in results.items():
            rows.append(
                {
                    "positions": n_pos,
                    "open orders": OPEN_ORDERS,
                    "gate": name,
                    "median µs": round(med, 2),
                    "p99 µs": round(p99, 2),
                    "added vs empty µs (median)": round(med - base, 2),
                }
            )
        entry: dict[str, Any] = {k: {"median_us": v[0], "p99_us": v[1]} for k, v in results.items()}
        entry["added_us"] = (
            max(results["full"][0], results["full, every position re-marked before each order"][0])
            - base
        )
        raw[f"positions_{n_pos}"] = entry
    worst = max(raw[k]["added_us"] for k in raw)
    raw["risk_gate_added_us_max"] = worst
    per_asset_worst = max(
        raw[k]["per-asset limits + breakers"]["median_us"] for k in raw if isinstance(raw[k], dict)
    )
    notes = (
        f"{n:,} checks per row (after a warm-up), `perf_counter_ns` around each call. "
        f"Worst added cost of the full gate: **{worst:.2f} µs** per order "
        f"(target ≤ {TARGET_US:.0f} µs: {'met' if worst <= TARGET_US else 'missed'}); "
        f"per-asset limits + default breakers: **{per_asset_worst:.2f} µs** "
        f"({'met' if per_asset_worst <= TARGET_US else 'missed'}). The portfolio-wide limits "
        "(gross exposure, leverage) sum over every asset held or with open orders; the "
        "per-asset ones read the blotter's running open totals."
    )
    return {"rows": rows, "raw": raw, "notes": notes}


def main() -> None:
    out = run()
    for row in out["rows"]:
        print(row)
    print(out["notes"])


if __name__ == "__main__":
    main()
