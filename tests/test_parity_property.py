"""One kernel, one answer — as a property: random strategies on random bundles.

For any strategy built from market/limit/stop/stop-limit orders, ``order_target*``,
``order_value``/``order_percent`` (also before an asset's first bar), cancels, time in
force, a scheduled function and ``before_trading_start``, over any bundle with gaps,
halts, zero-volume bars and price gaps (equities on real NYSE sessions, one of them an
early close, or 24/7 crypto across midnight), with or without a drawdown or error-rate
breaker, ``run_algorithm`` and ``LiveTradingEngine`` + ``PaperBroker`` at zero latency
place the same orders, in the same order, with the same fills and reject reasons, trip
the same breakers at the same time, and end with the same cash and portfolio value.

``make test`` runs a bounded number of examples; the long profile is
``RUSTYBT_PARITY_EXAMPLES=500 .venv/bin/python -m pytest tests/test_parity_property.py``
(documented in docs/backtesting.md).
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from rustybt import run_algorithm
from rustybt.algorithm import TradingAlgorithm
from rustybt.assets import Crypto, Equity
from rustybt.data.bundles import write_bundle
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.finance.decimal.commission import PerShareCommission
from rustybt.finance.decimal.slippage import FixedBasisPointsSlippage
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import (
    CircuitBreakerManager,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
)
from rustybt.scheduling import date_rules, time_rules

D = Decimal
EXAMPLES = int(os.environ.get("RUSTYBT_PARITY_EXAMPLES", "12"))

# Real NYSE sessions (UTC): two ordinary days, then the day after Thanksgiving, which
# closes early at 13:00 New York (18:00 UTC). Bars cover part of each session.
_EQUITY_SESSIONS = [
    (datetime(2023, 11, 21, 14, 31, tzinfo=UTC), 40),
    (datetime(2023, 11, 22, 14, 31, tzinfo=UTC), 40),
    (datetime(2023, 11, 24, 17, 21, tzinfo=UTC), 40),  # early close: last bar 18:00
]
# 24/7 crypto: one block of minutes across midnight UTC (two sessions).
_CRYPTO_START = datetime(2024, 3, 1, 23, 21, tzinfo=UTC)


# --- random bundles ------------------------------------------------------------------------
@st.composite
def bundles(draw):
    crypto = draw(st.booleans())
    n_assets = draw(st.integers(1, 2))
    if crypto:
        stamps = [_CRYPTO_START + timedelta(minutes=i) for i in range(80)]
    else:
        stamps = [s + timedelta(minutes=i) for s, n in _EQUITY_SESSIONS for i in range(n)]
    rows = []
    for k in range(n_assets):
        symbol = f"{'C' if crypto else 'E'}{k}"
        price = D(draw(st.integers(20, 200)))
        halt_at = draw(st.integers(0, len(stamps)))
        halt_len = draw(st.integers(0, 12))
        for i, dt in enumerate(stamps):
            if halt_at <= i < halt_at + halt_len:
                continue  # a trading halt: no bars at all
            if draw(st.integers(0, 9)) == 9:
                continue  # a missing minute
            gap = draw(st.sampled_from([0, 0, 0, 0, 0, 0, 5, -5]))  # price gap, in %
            step = D(draw(st.integers(-30, 30))) / D(1000)  # up to ±3 %
            opened = (price * (1 + D(gap) / 100)).quantize(D("0.01"))
            close = max((opened * (1 + step)).quantize(D("0.01")), D("1"))
            high = max(opened, close) + D(draw(st.integers(0, 150))) / 100
            low = max(min(opened, close) - D(draw(st.integers(0, 150))) / 100, D("0.5"))
            volume = D(draw(st.sampled_from([0, 50, 500, 5_000, 100_000])))
            rows.append((dt, symbol, opened, high, low, close, volume))
            price = close
    assets = [
        (Crypto if crypto else Equity)(f"{'C' if crypto else 'E'}{k}", sid=k + 1)
        for k in range(n_assets)
    ]
    return crypto, assets, rows


def _write(root: Path, assets, rows) -> PolarsDataPortal:
    frame = pl.DataFrame(
        {
            "dt": [r[0] for r in rows],
            "symbol": [r[1] for r in rows],
            "open": [r[2] for r in rows],
            "high": [r[3] for r in rows],
            "low": [r[4] for r in rows],
            "close": [r[5] for r in rows],
            "volume": [r[6] for r in rows],
        },
        schema={
            "dt": pl.Datetime("us", "UTC"),
            "symbol": pl.Utf8,
            "open": pl.Decimal(38, 8),
            "high": pl.Decimal(38, 8),
            "low": pl.Decimal(38, 8),
            "close": pl.Decimal(38, 8),
            "volume": pl.Decimal(38, 8),
        },
    )
    write_bundle("prop", assets, {"minute": frame}, root=root)
    return PolarsDataPortal(bundle_name="prop", data_frequency="minute", root=root)


# --- random strategies -----------------------------------------------------------------------
_OPS = [
    "market",
    "limit",
    "stop",
    "stop_limit",
    "target",
    "target_pct",
    "target_value",
    "value",
    "percent",
    "cancel",
]
actions = st.tuples(
    st.sampled_from(_OPS),
    st.integers(0, 1),  # asset index (modulo the bundle's assets)
    st.integers(-40, 40),  # size: units (or % for target_pct)
    st.integers(-60, 60),  # price offset, in tenths of a percent
    st.integers(-60, 60),  # second offset (stop-limit's limit)
    st.sampled_from(["gtc", "gtc", "gtc", "day", "ioc", "fok"]),
)


@st.composite
def programs(draw):
    return {
        "bar": draw(st.dictionaries(st.integers(0, 130), st.lists(actions, max_size=3))),
        "bts": draw(st.dictionaries(st.integers(0, 3), st.lists(actions, max_size=2))),
        "sched": draw(st.dictionaries(st.integers(0, 3), st.lists(actions, max_size=2))),
        "sched_minutes": draw(st.one_of(st.none(), st.integers(1, 30))),
    }


class RandomStrategy(TradingAlgorithm):
    """Plays a drawn program: actions keyed by bar, session and scheduled-call number."""

    def __init__(self, program, symbols, crypto):
        super().__init__()
        self._program = program
        self._symbols = symbols
        self._crypto = crypto

    def initialize(self):
        self.assets = [self.symbol(s) for s in self._symbols]
        self.n = self.sessions = self.calls = 0
        minutes = self._program["sched_minutes"]
        if minutes is not None:
            self.schedule_function(
                self._scheduled, date_rules.every_day(), time_rules.market_open(minutes=minutes)
            )

    def before_trading_start(self, context, data):
        self._act(self._program["bts"].get(self.sessions, ()), data)
        self.sessions += 1

    def _scheduled(self, context, data):
        self._act(self._program["sched"].get(self.calls, ()), data)
        self.calls += 1

    def handle_data(self, context, data):
        self._act(self._program["bar"].get(self.n, ()), data)
        self.n += 1

    def _act(self, todo, data):
        for op, k, size, off1, off2, tif in todo:
            asset = self.assets[k % len(self.assets)]
            amount = D(size) / (4 if self._crypto else 1)
            if op == "cancel":
                opens = self.get_open_orders(asset)
                if opens:
                    self.cancel_order(opens[0])
                continue
            if op == "target":
                self.order_target(asset, amount)
                continue
            if op == "target_pct":
                self.order_target_percent(asset, D(size) / 100)
                continue
            if op == "target_value":
                self.order_target_value(asset, amount * 50)
                continue
            # Value-based orders on an asset with no price yet are rejected orders in both.
            if op == "value":
                self.order_value(asset, amount * 50)
                continue
            if op == "percent":
                self.order_percent(asset, D(size) / 200)
                continue
            if amount == 0:
                continue
            price = data.current(asset, "price")
            if price is None:
                if op == "market":
                    self.order(asset, amount, tif=tif)  # rejected: no price yet
                continue

            def at(offset, base=price, a=asset):
                return max(a.round_price(base * (1 + D(offset) / 1000)), a.tick_size)

            if op == "market":
                self.order(asset, amount, tif=tif)
            elif op == "limit":
                self.order(asset, amount, limit_price=at(off1), tif=tif)
            elif op == "stop":
                self.order(asset, amount, stop_price=at(off1), tif=tif)
            else:
                self.order(asset, amount, limit_price=at(off2), stop_price=at(off1), tif=tif)


@st.composite
def setups(draw):
    costs = draw(st.booleans())
    return {
        "capital": D(draw(st.sampled_from([2_000, 20_000, 1_000_000]))),
        "allow_short": draw(st.booleans()),
        "volume_limit_pct": draw(st.sampled_from([None, D("0.5"), D("0.025")])),
        "costs": costs,
        # Breakers: none, a tight drawdown limit (trips on a fill or a bar close), or an
        # error-rate limit that a few refusals in a row trip.
        "breakers": draw(st.sampled_from([None, "drawdown", "errors"])),
        "drawdown": D(draw(st.sampled_from(["0.002", "0.01", "0.03"]))),
    }


def _breakers(setup):
    manager = CircuitBreakerManager()
    if setup["breakers"] == "drawdown":
        manager.add_breaker(DrawdownCircuitBreaker(setup["drawdown"]))
    elif setup["breakers"] == "errors":
        manager.add_breaker(ErrorRateCircuitBreaker(max_errors=1000, max_consecutive=3))
    return manager


def _models(costs):
    if not costs:
        return None, None
    return FixedBasisPointsSlippage(D("5")), PerShareCommission(D("0.005"))


def _order_rows(orders):
    return [
        (
            o.asset.symbol,
            o.amount,
            o.order_type.value,
            o.limit_price,
            o.stop_price,
            o.tif.value,
            o.created_dt,
            o.filled,
            o.avg_fill_price,
            o.commission,
            o.status.value,
            _reason(o.reason) if o.status.value == "rejected" else None,
        )
        for o in orders
    ]


def _reason(reason):
    # Why an order was refused must agree: the shared rule's text. (A venue refusal
    # reaches a live order as "<exception type>: <message>"; cancels are worded by who
    # cancelled, so only rejects are compared.)
    return _VENUE_PREFIX.sub("", reason) if reason else reason


_VENUE_PREFIX = re.compile(r"^\w+(?:Error|Rejected): ")


def run_both(crypto, assets, rows, program, setup):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        portal = _write(root, assets, rows)
        symbols = [a.symbol for a in assets]
        slippage, commission = _models(setup["costs"])
        bt_breakers = _breakers(setup)
        backtest = run_algorithm(
            RandomStrategy(program, symbols, crypto),
            data_portal=portal,
            capital_base=setup["capital"],
            slippage_model=slippage,
            commission_model=commission,
            volume_limit_pct=setup["volume_limit_pct"],
            allow_short=setup["allow_short"],
            circuit_breakers=bt_breakers,
        )
        backtest.breakers = bt_breakers
        slippage, commission = _models(setup["costs"])
        broker = PaperBroker(
            starting_cash=setup["capital"],
            slippage_model=slippage,
            commission_model=commission,
            volume_limit_pct=setup["volume_limit_pct"],
            allow_short=setup["allow_short"],
        )
        engine = LiveTradingEngine(
            strategy=RandomStrategy(program, symbols, crypto),
            broker_adapter=broker,
            data_portal=PolarsDataPortal(bundle_name="prop", data_frequency="minute", root=root),
            circuit_breakers=_breakers(setup),
            control_socket=False,
            audit_log=False,
            state_dir=root / "state",
        )
        asyncio.run(asyncio.wait_for(engine.run(), timeout=60))
    return backtest, engine


def assert_same(backtest, engine):
    assert engine.stats["strategy_errors"] == 0
    live = _order_rows(engine.order_manager.orders.values())
    bt = _order_rows(backtest.orders)
    assert live == bt
    assert engine.ledger.cash == backtest.daily[-1]["cash"]
    assert engine.ledger.portfolio_value == backtest.daily[-1]["portfolio_value"]
    assert engine.ledger.fees_paid == backtest.daily[-1]["fees_total"]
    # A breaker trips at the same time in both (or in neither).
    trips = [(b.name, b.tripped_at) for b in backtest.breakers.breakers]
    assert [(b.name, b.tripped_at) for b in engine.circuit_breakers.breakers] == trips
    event("breaker tripped" if any(t for _, t in trips) else "no trip")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 50,
    phases=[Phase.explicit, Phase.reuse, Phase.generate]
    if os.environ.get("RUSTYBT_PARITY_NO_SHRINK")
    else list(Phase),
)
@given(bundle=bundles(), program=programs(), setup=setups())
def test_random_strategies_on_random_bundles_agree_in_backtest_and_paper(bundle, program, setup):
    crypto, assets, rows = bundle
    backtest, engine = run_both(crypto, assets, rows, program, setup)
    assert_same(backtest, engine)
