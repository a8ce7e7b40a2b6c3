"""Prometheus metrics of a running engine, read from the engine at scrape time.

Nothing here runs per event: :class:`EngineCollector` reads the engine's own counters
and state when Prometheus scrapes ``/metrics``. The one exception is the tick→submit
latency, which needs every sample: :class:`LatencyHistogram` is installed as the order
manager's latency sink and folds each sample into fixed buckets (a bisect and two
additions), so memory stays constant however long the session runs.

Names follow Prometheus conventions: ``rustybt_`` prefix, base units (seconds), counters
ending in ``_total``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

#: Upper bounds in seconds: 10 µs to 1 s, then +Inf.
LATENCY_BUCKETS_S = (
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    1e-2,
    2.5e-2,
    5e-2,
    0.1,
    0.25,
    0.5,
    1.0,
)
_BOUNDS_NS = tuple(int(b * 1e9) for b in LATENCY_BUCKETS_S)


class LatencyHistogram:
    """A list-like sink (``append(ns)``) that keeps bucket counts instead of samples."""

    __slots__ = ("counts", "count", "sum_ns")

    def __init__(self) -> None:
        self.counts = [0] * (len(_BOUNDS_NS) + 1)
        self.count = 0
        self.sum_ns = 0

    def append(self, ns: int) -> None:
        self.counts[bisect_left(_BOUNDS_NS, ns)] += 1
        self.count += 1
        self.sum_ns += ns

    def __len__(self) -> int:
        return self.count

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, n in zip((*map(str, LATENCY_BUCKETS_S), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


def _f(value: Any) -> float:
    """A metric sample (Prometheus speaks float; money is exact everywhere else)."""
    return float(value) if value is not None else float("nan")


class EngineCollector:
    """Reads a :class:`~rustybt.live.engine.LiveTradingEngine` when scraped."""

    def __init__(self, engine: Any, latency: LatencyHistogram) -> None:
        self.engine = engine
        self.latency = latency

    def collect(self) -> Iterator[Metric]:
        e = self.engine
        st = e.get_status()
        om = e.order_manager
        yield _counter(
            "orders_submitted", "Orders that passed the risk gate", st["orders_submitted"]
        )
        yield _counter("fills", "Fill events applied to the ledger", st["fills"])
        rejects = CounterMetricFamily(
            "rustybt_order_rejects", "Rejected orders, by reason", labels=["reason"]
        )
        reasons = dict(getattr(om, "reject_reasons", {}) or {})
        if not reasons and st["rejects"]:
            reasons = {"other": st["rejects"]}
        for reason, n in sorted(reasons.items()):
            rejects.add_metric([reason], n)
        yield rejects
        yield _counter("events_processed", "Events the engine handled", st["events_processed"])
        yield _counter("market_events", "Market data events handled", st["market_events"])
        yield _counter(
            "strategy_errors", "Exceptions raised by strategy code", st["strategy_errors"]
        )
        yield _counter("broker_errors", "Broker errors", st["broker_errors"])
        yield _gauge(
            "event_queue_depth", "Events waiting in the engine queue", e.event_queue.qsize()
        )
        hist = HistogramMetricFamily(
            "rustybt_tick_to_submit_seconds",
            "From a market event's arrival to the order's submission to the broker",
        )
        hist.add_metric([], self.latency.cumulative(), self.latency.sum_ns / 1e9)
        yield hist
        yield _gauge("can_trade", "1 when new risk may be taken", int(bool(st["can_trade"])))
        yield _gauge("paused", "1 when the strategy is paused", int(bool(st["paused"])))
        breakers = GaugeMetricFamily(
            "rustybt_circuit_breaker_tripped", "1 when a breaker is tripped", labels=["breaker"]
        )
        for name, info in (st.get("circuit_breakers") or {}).items():
            breakers.add_metric([str(name)], int(info.get("state") == "tripped"))
        yield breakers
        led = e.ledger
        yield _gauge("portfolio_value", "Portfolio value in account currency", led.portfolio_value)
        yield _gauge("cash", "Cash in account currency", led.cash)
        yield _gauge(
            "pnl", "Portfolio value minus starting value", led.portfolio_value - led.starting_cash
        )
        yield _gauge("fees_paid", "Commissions and fees paid", led.fees_paid)
        yield _gauge("gross_exposure", "Sum of absolute position values", led.gross_exposure)
        yield _gauge(
            "drawdown_ratio", "Largest drawdown from peak so far (0.1 = 10%)", e.max_drawdown
        )
        yield _gauge("open_orders", "Orders open at the broker", st["open_orders"])
        unknown = st.get("unknown_orders") or []
        yield _gauge(
            "unknown_outcome_orders", "Orders whose submit outcome is unknown", len(unknown)
        )
        report = e.last_reconciliation
        discrepancies = 0
        if report is not None:
            discrepancies = len(report.position_discrepancies) + len(report.order_discrepancies)
            discrepancies += report.cash_discrepancy is not None
        yield _gauge(
            "reconciliation_discrepancies",
            "Differences found by the last reconciliation",
            discrepancies,
        )
        yield _gauge(
            "reconciliation_ok",
            "1 when the last reconciliation agreed",
            int(st["reconciliation"] in ("ok", "adjusted")),
        )
        yield _gauge(
            "broker_connected",
            "1 while the broker connection is up",
            int(bool(st.get("broker_connected", True))),
        )
        streams = GaugeMetricFamily(
            "rustybt_stream_connected",
            "1 while a market data stream is connected",
            labels=["stream"],
        )
        for name, state in _stream_states(st.get("streams")):
            streams.add_metric([name], int(state))
        yield streams
        journal = e.journal
        if journal is not None:
            yield _gauge(
                "journal_unsynced_records",
                "Journal records written but not yet fsynced (group commit lag)",
                journal.last_seq - journal.synced_seq,
            )


def _stream_states(streams: Any) -> Iterator[tuple[str, bool]]:
    if not streams:
        return
    items = streams.items() if isinstance(streams, dict) else enumerate(streams)
    for key, info in items:
        if isinstance(info, dict):
            name = str(info.get("name") or info.get("venue") or key)
            state = str(info.get("state") or info.get("connection_state") or "").lower()
            yield name, state == "connected"


def _counter(name: str, doc: str, value: Any) -> CounterMetricFamily:
    return CounterMetricFamily(f"rustybt_{name}", doc, value=_f(value))


def _gauge(name: str, doc: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"rustybt_{name}", doc, value=_f(value))


def registry_for(engine: Any) -> tuple[CollectorRegistry, LatencyHistogram]:
    """A registry exposing ``engine``; installs the latency sink on its order manager."""
    latency = LatencyHistogram()
    engine.order_manager.submit_latencies_ns = latency
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine, latency))
    return registry, latency


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
