"""The Pipeline subset: factor values, algebra, once-per-session timing, no look-ahead, and
the same outputs in backtest and paper."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest

from rustybt import run_algorithm
from rustybt.algorithm import ScriptAlgorithm, TradingAlgorithm
from rustybt.data.polars.data_portal import PolarsDataPortal
from rustybt.exceptions import ConfigError
from rustybt.live import LiveTradingEngine
from rustybt.live.brokers.paper_broker import PaperBroker
from rustybt.live.circuit_breakers import CircuitBreakerManager
from rustybt.pipeline import CustomFactor, CustomFilter, Pipeline, PipelineEngine
from rustybt.pipeline.data import USEquityPricing
from rustybt.pipeline.factors import (
    RSI,
    VWAP,
    AverageDollarVolume,
    ExponentialWeightedMovingAverage,
    Returns,
    SimpleMovingAverage,
)

SESSION = date(2024, 1, 25)


@pytest.fixture(scope="module")
def portal():
    return PolarsDataPortal("demo", "minute")


@pytest.fixture(scope="module")
def engine(portal):
    return PipelineEngine(portal)


def _daily(portal, symbol: str, field: str, n: int, session: date = SESSION) -> np.ndarray:
    """The last n completed sessions before ``session``, straight from the portal."""
    end = datetime(session.year, session.month, session.day, tzinfo=UTC)
    asset = portal.asset_finder.lookup_symbol(symbol)
    window = portal.get_history_window([asset], end, n + 1, field, "1d")[asset]
    values = [float(v) for v in window.values if v is not None]
    stamps = list(window.index)
    # drop the in-progress session at `end` (midnight belongs to it), keep completed ones
    kept = [v for v, t in zip(values, stamps, strict=True) if t.date() < session]
    return np.array(kept[-n:])


def _row(frame, symbol):
    return frame.loc[[a for a in frame.index if a.symbol == symbol][0]]


def test_universe_is_the_bundle_equities(engine):
    assert {a.symbol for a in engine.assets} == {
        "AAPL", "AMZN", "GOOG", "JPM", "META", "MSFT", "NVDA", "QQQ", "SPY", "TSLA"
    }  # fmt: skip


def test_builtin_factors_match_their_formulas_on_the_portal_bars(portal, engine):
    pipe = Pipeline(
        columns={
            "sma": SimpleMovingAverage(inputs=[USEquityPricing.close], window_length=5),
            "ret": Returns(window_length=4),
            "rsi": RSI(),
            "adv": AverageDollarVolume(window_length=3),
            "vwap": VWAP(window_length=3),
            "ewma": ExponentialWeightedMovingAverage(
                inputs=[USEquityPricing.close], window_length=4, decay_rate=0.5
            ),
            "close": USEquityPricing.close,
        }
    )
    out = _row(engine.run(pipe, SESSION), "AAPL")
    close = _daily(portal, "AAPL", "close", 15)
    volume = _daily(portal, "AAPL", "volume", 3)
    assert out["close"] == pytest.approx(close[-1])
    assert out["sma"] == pytest.approx(close[-5:].mean())
    assert out["ret"] == pytest.approx(close[-1] / close[-4] - 1)
    diffs = np.diff(close)
    up, down = diffs.clip(min=0).mean(), -diffs.clip(max=0).mean()
    assert out["rsi"] == pytest.approx(100 - 100 / (1 + up / down))
    assert out["adv"] == pytest.approx((close[-3:] * volume).sum() / 3)
    assert out["vwap"] == pytest.approx((close[-3:] * volume).sum() / volume.sum())
    weights = np.array([0.125, 0.25, 0.5, 1.0])
    assert out["ewma"] == pytest.approx((close[-4:] * weights).sum() / weights.sum())


def test_top_bottom_rank_zscore_and_filters(engine):
    rsi = RSI()
    pipe = Pipeline(
        columns={
            "rsi": rsi,
            "longs": rsi.top(3),
            "shorts": rsi.bottom(3),
            "rank": rsi.rank(ascending=False),
            "z": rsi.zscore(),
            "mid": (rsi > 40) & ~(rsi >= 80) | rsi.isnan(),
            "scaled": rsi * 2 - 10,
        }
    )
    out = engine.run(pipe, SESSION)
    ordered = out.rsi.sort_values(ascending=False)
    assert set(out.index[out.longs]) == set(ordered.index[:3])
    assert set(out.index[out.shorts]) == set(ordered.index[-3:])
    assert out.longs.dtype == bool
    assert out["rank"][ordered.index[0]] == 1.0 and out["rank"][ordered.index[-1]] == len(out)
    assert out.z.mean() == pytest.approx(0, abs=1e-9)
    assert out.z.std(ddof=0) == pytest.approx(1)
    assert (out.mid == ((out.rsi > 40) & (out.rsi < 80))).all()
    assert np.allclose(out.scaled, out.rsi * 2 - 10)


def test_screen_keeps_only_matching_assets(engine):
    rsi = RSI()
    out = engine.run(Pipeline(columns={"rsi": rsi}, screen=rsi.top(4)), SESSION)
    assert len(out) == 4


def test_custom_factor_and_custom_filter(engine, portal):
    class Range(CustomFactor):
        inputs = [USEquityPricing.high, USEquityPricing.low]
        window_length = 3

        def compute(self, today, assets, out, high, low):
            assert high.shape == (3, len(assets))
            out[:] = high.max(axis=0) - low.min(axis=0)

    class Up(CustomFilter):
        inputs = [USEquityPricing.close]
        window_length = 2

        def compute(self, today, assets, out, close):
            out[:] = close[-1] > close[0]

    out = _row(engine.run(Pipeline(columns={"range": Range(), "up": Up()}), SESSION), "AAPL")
    high, low = _daily(portal, "AAPL", "high", 3), _daily(portal, "AAPL", "low", 3)
    close = _daily(portal, "AAPL", "close", 2)
    assert out["range"] == pytest.approx(high.max() - low.min())
    assert out["up"] == bool(close[-1] > close[0])


def test_factor_of_a_factor_uses_a_window_of_its_values(engine):
    class MeanOf(CustomFactor):
        window_length = 3

        def compute(self, today, assets, out, values):
            out[:] = values.mean(axis=0)

    returns = Returns(window_length=2)
    pipe = Pipeline(columns={"mean": MeanOf(inputs=[returns]), "ret": returns})
    row = engine.as_of_row(SESSION)
    expected = np.mean([returns.evaluate(engine._ctx, r) for r in (row - 2, row - 1, row)], axis=0)
    out = engine.run(pipe, SESSION)
    assert np.allclose(out["mean"].to_numpy(), expected)


def test_first_session_has_no_history_and_short_windows_are_nan(engine):
    first = engine.run(Pipeline(columns={"rsi": RSI()}), engine.sessions[0])
    assert first.empty
    early = engine.run(Pipeline(columns={"rsi": RSI()}), engine.sessions[3])
    assert early.rsi.isna().all()


@pytest.mark.parametrize(
    "make",
    [
        lambda: SimpleMovingAverage(inputs=[USEquityPricing.close]),  # no window_length
        lambda: SimpleMovingAverage(window_length=3),  # no inputs
        lambda: Returns(window_length=1),
        lambda: RSI().top(0),
        lambda: RSI().rank(method="dense"),
        lambda: RSI() & RSI(),
        lambda: RSI() + "x",
        lambda: Pipeline(columns={"x": 3}),
        lambda: Pipeline(screen=RSI()),
        lambda: ExponentialWeightedMovingAverage(
            inputs=[USEquityPricing.close], window_length=3, decay_rate=2
        ),
    ],
)
def test_bad_pipeline_input_is_a_config_error(make):
    with pytest.raises(ConfigError):
        make()


class _PipeStrategy(TradingAlgorithm):
    def initialize(self):
        rsi = RSI()
        self.attach_pipeline(Pipeline(columns={"rsi": rsi, "longs": rsi.top(2)}), "p")
        self.outputs = {}
        self.calls = 0

    def before_trading_start(self, context, data):
        out = self.pipeline_output("p")
        self.outputs[data.current_dt.date()] = out.rsi.fillna(-1).round(9).to_dict()

    def handle_data(self, context, data):
        self.calls += 1
        if self.calls == 1:
            assert self.pipeline_output("p") is not None


def test_backtest_computes_once_per_session_before_before_trading_start_without_lookahead(
    engine,
):
    algo = _PipeStrategy()
    run_algorithm(algo, start="2024-01-22", end="2024-01-26 23:59")
    assert sorted(algo.outputs) == [date(2024, 1, d) for d in (22, 23, 24, 25, 26)]
    for session, rsi in algo.outputs.items():
        # exactly what the engine computes from sessions strictly before `session`
        row = engine.as_of_row(session)
        assert engine.sessions[row] < session
        direct = engine.run(Pipeline(columns={"rsi": RSI()}), session).rsi
        assert rsi == direct.fillna(-1).round(9).to_dict()


def test_paper_trading_sees_the_same_pipeline_outputs_as_the_backtest():
    bt = _PipeStrategy()
    run_algorithm(bt, start="2024-01-24", end="2024-01-25 23:59")
    live = _PipeStrategy()
    engine = LiveTradingEngine(
        strategy=live,
        broker_adapter=PaperBroker(starting_cash=Decimal("100000")),
        data_portal=PolarsDataPortal("demo", "minute"),
        circuit_breakers=CircuitBreakerManager(),
        start="2024-01-24",
        end="2024-01-25 23:59",
        control_socket=False,
    )
    asyncio.run(asyncio.wait_for(engine.run(), timeout=120))
    assert live.outputs == bt.outputs and len(bt.outputs) == 2


def _run_init(initialize):
    run_algorithm(ScriptAlgorithm({"initialize": initialize}), start=SESSION, end=SESSION)


def test_pipeline_output_errors_say_what_to_do():
    def initialize(context):
        context.pipeline_output("nope")

    with pytest.raises(ConfigError, match="no pipeline named 'nope'"):
        _run_init(initialize)

    def initialize2(context):
        context.attach_pipeline(Pipeline(columns={"rsi": RSI()}), "p")
        context.pipeline_output("p")

    with pytest.raises(ConfigError, match="no output yet"):
        _run_init(initialize2)

    def initialize3(context):
        context.attach_pipeline("not a pipeline", "p")

    with pytest.raises(ConfigError, match="rustybt.pipeline.Pipeline"):
        _run_init(initialize3)


def _long_short_script() -> ScriptAlgorithm:
    """momentum_pipeline's shape (own code): pipeline read in before_trading_start, orders
    from a function scheduled at the open."""
    from rustybt.api import (
        attach_pipeline,
        date_rules,
        order_target_percent,
        pipeline_output,
        schedule_function,
    )

    def initialize(context):
        ret = Returns(window_length=3)
        attach_pipeline(Pipeline(columns={"longs": ret.top(2), "shorts": ret.bottom(2)}), "ls")
        schedule_function(rebalance, date_rules.every_day())

    def before_trading_start(context, data):
        context.pipeline_data = pipeline_output("ls")

    def rebalance(context, data):
        frame = context.pipeline_data
        for asset in frame.index[frame.longs]:
            order_target_percent(asset, 0.25)
        for asset in frame.index[frame.shorts]:
            order_target_percent(asset, -0.25)
        keep = set(frame.index[frame.longs | frame.shorts])
        for asset in context.portfolio.positions.keys() - keep:
            order_target_percent(asset, 0)

    return ScriptAlgorithm(
        {
            "initialize": initialize,
            "before_trading_start": before_trading_start,
            "rebalance": rebalance,
        }
    )


def test_scheduled_pipeline_strategy_orders_the_same_in_backtest_and_paper():
    start, end = "2024-01-08", "2024-01-12 23:59"
    bt = run_algorithm(
        _long_short_script(), start=start, end=end, slippage_model=None, allow_short=True
    )
    engine = LiveTradingEngine(
        strategy=_long_short_script(),
        broker_adapter=PaperBroker(starting_cash=Decimal("100000"), allow_short=True),
        data_portal=PolarsDataPortal("demo", "minute"),
        circuit_breakers=CircuitBreakerManager(),
        start=start,
        end=end,
        control_socket=False,
    )
    asyncio.run(asyncio.wait_for(engine.run(), timeout=120))

    def key(orders):
        return sorted((o.asset.symbol, o.amount, o.created_dt) for o in orders)

    assert engine.executor.errors == 0
    bt_orders = key(bt.orders)
    assert len(bt_orders) >= 8 and any(o[1] < 0 for o in bt_orders)  # longs and shorts
    assert key(engine.order_manager.orders.values()) == bt_orders


def test_a_session_far_past_the_bundle_warns_that_pipeline_data_is_stale(engine):
    import structlog

    with structlog.testing.capture_logs() as logs:
        out = engine.run(Pipeline(columns={"rsi": RSI()}), date(2024, 3, 1))
    assert len(out) == 10  # still answers, from the last session held
    (event,) = [e for e in logs if e["event"] == "pipeline_data_stale"]
    assert event["as_of"] == "2024-01-30"
