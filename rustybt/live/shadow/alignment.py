"""The live-vs-shadow comparison: signals per bar, fills per order pair, returns.

Pure bookkeeping, no engine imports: the shadow engine records each side's orders as they
are placed (:meth:`AlignmentTracker.record`), compares a bar once both sides have run it
(:meth:`AlignmentTracker.compare_bar`), and reports fills as they happen. Everything it
keeps is JSON-friendly (:meth:`AlignmentTracker.to_dict`) so it rides in the live
engine's checkpoint.

Rules (``docs/shadow-trading.md`` states them for users):

* **Signals.** Per bar and asset, each side's orders are summed into one signed intent.
  The bar is aligned for that asset when the sides agree on the direction and the sizes
  differ by at most ``signal_tolerance_pct`` of the larger one.
* **Size drift.** ``order_target*`` sizes an order from what is held and open. Live fills
  lag (venue latency, partial fills), so a live order can be smaller or larger than the
  shadow's while aiming at the same position. Each signal therefore also records the
  side's exposure before it (held + open orders on that asset); when the raw sizes
  disagree but the *intended exposures* (exposure before + new orders) agree within the
  tolerance, the bar counts as aligned and as ``drift_adjusted``. An asset with orders on
  one side only is compared the same way, using the other side's exposure then.
* **Fills.** The i-th live order of a bar/asset/direction is paired with the i-th shadow
  order. Once both are final (filled, cancelled, rejected), the pair counts: fill rate is
  live filled quantity / shadow filled quantity (execution quality is the quantity-weighted
  rate, capped at 1 per pair), slippage is ``(live avg price - shadow avg price) /
  shadow avg price`` in bps, signed so that positive means the live fill was worse for
  the order's direction, and latency is the live order's first fill time minus its
  signal time in ms (on the engine's clock: bar time in a replay).
* **Returns.** Both accounts start from the same value; ``returns_deviation`` is the live
  return minus the shadow return since the start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from rustybt.exceptions import CheckpointCorrupted

__all__ = ["AlignmentTracker", "BarComparison", "ShadowReport", "Signal"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_BPS = Decimal(10_000)
LIVE, SHADOW = "live", "shadow"


@dataclass
class Signal:
    """One order a side intended: what the comparison needs of it."""

    order_id: str
    symbol: str
    amount: Decimal
    exposure_before: Decimal
    order_type: str = "market"
    limit_price: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "symbol": self.symbol,
            "amount": str(self.amount),
            "exposure_before": str(self.exposure_before),
            "order_type": self.order_type,
            "limit_price": None if self.limit_price is None else str(self.limit_price),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signal:
        lp = d.get("limit_price")
        return cls(
            d["order_id"],
            d["symbol"],
            Decimal(d["amount"]),
            Decimal(d["exposure_before"]),
            d.get("order_type", "market"),
            None if lp is None else Decimal(lp),
        )


@dataclass
class BarComparison:
    """The outcome of comparing one bar."""

    dt: datetime
    aligned: bool
    drift_adjusted: bool
    reasons: list[str]
    live: list[Signal]
    shadow: list[Signal]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dt": self.dt.isoformat(),
            "aligned": self.aligned,
            "drift_adjusted": self.drift_adjusted,
            "reasons": list(self.reasons),
            "live": [s.to_dict() for s in self.live],
            "shadow": [s.to_dict() for s in self.shadow],
        }


@dataclass
class ShadowReport:
    """What shadow trading found (``engine.get_shadow_report()``).

    Rates are Decimal fractions (``1`` = 100 %); ``None`` when nothing was measured yet.
    """

    bars_compared: int
    signal_bars: int
    aligned_bars: int
    drift_adjusted_bars: int
    alignment_rate: Decimal
    execution_quality: Decimal | None
    avg_slippage_bps: Decimal | None
    avg_latency_ms: Decimal | None
    pairs_compared: int
    live_return: Decimal | None
    shadow_return: Decimal | None
    returns_deviation: Decimal | None
    max_abs_returns_deviation: Decimal
    misaligned: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    #: Each restart's gap (bars between the checkpoint and the resumed bar): how many
    #: bars were replayed and compared, and live orders that could not be compared.
    restarts: list[dict[str, Any]] = field(default_factory=list)
    drift_note: str = (
        "order_target* sizes are compared by intended exposure (held + open + new) when "
        "the raw order sizes differ, so lagging live fills do not count as misalignment"
    )

    def to_dict(self) -> dict[str, Any]:
        def s(v: Any) -> Any:
            return str(v) if isinstance(v, Decimal) else v

        return {k: s(v) for k, v in self.__dict__.items()}

    def summary_lines(self) -> list[str]:
        """Human-readable lines for ``rustybt live`` output."""

        def pct(v: Decimal | None) -> str:
            return "n/a" if v is None else f"{v * 100:.2f}%"

        def num(v: Decimal | None, unit: str) -> str:
            return "n/a" if v is None else f"{v:.2f} {unit}"

        return [
            f"Shadow alignment: {pct(self.alignment_rate)} of {self.signal_bars} signal bars "
            f"({self.bars_compared} bars compared, {self.drift_adjusted_bars} drift-adjusted, "
            f"{len(self.misaligned)} misaligned)",
            f"Shadow execution quality: {pct(self.execution_quality)} over "
            f"{self.pairs_compared} order pairs; avg slippage {num(self.avg_slippage_bps, 'bps')}; "
            f"avg latency {num(self.avg_latency_ms, 'ms')}",
            f"Shadow returns: live {pct(self.live_return)} vs shadow {pct(self.shadow_return)} "
            f"(deviation {pct(self.returns_deviation)})",
        ] + [
            f"Shadow after restart: {g['bars_compared']} of {g['bars_replayed']} missed bars "
            f"compared, {g['live_orders_not_compared']} of {g['live_orders']} live orders "
            "not compared" + (f" ({g['reason']})" if g.get("reason") else "")
            for g in self.restarts
        ]


def _within(a: Decimal, b: Decimal, tol: Decimal) -> bool:
    if a == b:
        return True
    if (a > 0) != (b > 0) or a == 0 or b == 0:
        return False
    return abs(a - b) <= tol * max(abs(a), abs(b))


class AlignmentTracker:
    """Records both sides' signals and fills and compares them (see the module docstring)."""

    def __init__(self, signal_tolerance_pct: Decimal, *, keep_misaligned: int = 1000) -> None:
        self.tol = signal_tolerance_pct
        self.keep_misaligned = keep_misaligned
        self._pending: dict[str, dict[str, list[Signal]]] = {LIVE: {}, SHADOW: {}}
        self.bars_compared = 0
        self.signal_bars = 0
        self.aligned_bars = 0
        self.drift_adjusted_bars = 0
        self.misaligned: list[dict[str, Any]] = []
        # open pairs: live order id -> [shadow order id, signal dt iso, direction]
        self.pairs: dict[str, list[str]] = {}
        self._live_first_fill: dict[str, datetime] = {}
        self.pairs_compared = 0
        self.live_filled = _ZERO
        self.shadow_filled = _ZERO
        self.slippage_sum = _ZERO
        self.slippage_n = 0
        self.latency_sum = _ZERO
        self.latency_n = 0
        self.start_values: dict[str, Decimal] = {}
        self.returns: dict[str, Decimal] = {}
        self.max_abs_dev = _ZERO

    # --- signals ---------------------------------------------------------------------
    def record(self, side: str, dt: datetime, signal: Signal) -> None:
        """``side`` (``"live"``/``"shadow"``) placed ``signal`` while running bar ``dt``."""
        self._pending[side].setdefault(dt.isoformat(), []).append(signal)

    def has_pending(self) -> bool:
        """True when either side has signals not yet compared."""
        return bool(self._pending[LIVE] or self._pending[SHADOW])

    def drop_bar(self, dt: datetime) -> None:
        """Forget bar ``dt``'s signals without comparing them (the live side did not run)."""
        key = dt.isoformat()
        self._pending[LIVE].pop(key, None)
        self._pending[SHADOW].pop(key, None)

    def live_pending(self, dt: datetime) -> list[Signal]:
        return list(self._pending[LIVE].get(dt.isoformat(), ()))

    def compare_bar(
        self,
        dt: datetime,
        live_exposure: Any,
        shadow_exposure: Any,
    ) -> BarComparison:
        """Compare the signals both sides placed on bar ``dt`` (and forget them).

        ``*_exposure(symbol) -> Decimal`` is a side's held + open amount on an asset *now*,
        used for an asset that side did not order on this bar.
        """
        key = dt.isoformat()
        live = self._pending[LIVE].pop(key, [])
        shadow = self._pending[SHADOW].pop(key, [])
        # Live signals of bars the shadow has passed without comparing them (it skips no
        # bar, but a restart can leave one behind) are compared here as this bar's.
        for old in [k for k in self._pending[LIVE] if k < key]:
            live = self._pending[LIVE].pop(old) + live
        self.bars_compared += 1
        reasons: list[str] = []
        drift = False
        if live or shadow:
            self.signal_bars += 1
            by_asset: dict[str, tuple[list[Signal], list[Signal]]] = {}
            for s in live:
                by_asset.setdefault(s.symbol, ([], []))[0].append(s)
            for s in shadow:
                by_asset.setdefault(s.symbol, ([], []))[1].append(s)
            for symbol, (ls, ss) in by_asset.items():
                lsum = sum((s.amount for s in ls), _ZERO)
                ssum = sum((s.amount for s in ss), _ZERO)
                if _within(lsum, ssum, self.tol):
                    continue
                lbefore = ls[0].exposure_before if ls else Decimal(live_exposure(symbol))
                sbefore = ss[0].exposure_before if ss else Decimal(shadow_exposure(symbol))
                if _within(lbefore + lsum, sbefore + ssum, self.tol) and (
                    lbefore + lsum != 0 or sbefore + ssum == 0
                ):
                    drift = True
                    continue
                reasons.append(
                    f"{symbol}: live ordered {lsum} (exposure {lbefore} -> {lbefore + lsum}), "
                    f"shadow ordered {ssum} (exposure {sbefore} -> {sbefore + ssum})"
                )
            self._pair(key, live, shadow)
        aligned = not reasons
        if aligned and (live or shadow):
            self.aligned_bars += 1
            if drift:
                self.drift_adjusted_bars += 1
        out = BarComparison(dt, aligned, drift and aligned, reasons, live, shadow)
        if not aligned and len(self.misaligned) < self.keep_misaligned:
            self.misaligned.append(out.to_dict())
        return out

    def _pair(self, key: str, live: list[Signal], shadow: list[Signal]) -> None:
        groups: dict[tuple[str, bool], list[list[Signal]]] = {}
        for i, side in enumerate((live, shadow)):
            for s in side:
                groups.setdefault((s.symbol, s.amount > 0), [[], []])[i].append(s)
        for ls, ss in groups.values():
            for lsig, ssig in zip(ls, ss, strict=False):
                self.pairs[lsig.order_id] = [ssig.order_id, key]

    # --- fills -------------------------------------------------------------------------
    def on_live_fill(self, order_id: str, dt: datetime) -> None:
        """A fill of live order ``order_id`` was applied at ``dt`` (the first one counts)."""
        if order_id in self.pairs and order_id not in self._live_first_fill:
            self._live_first_fill[order_id] = dt

    def on_live_fill_pending(self, order_id: str, dt: datetime) -> None:
        """Live order ``order_id`` (not yet paired: its bar is still to be compared, after a
        restart) was first filled at ``dt``; :meth:`forget_unpaired_fills` drops it if it
        never pairs."""
        if order_id not in self._live_first_fill:
            self._live_first_fill[order_id] = dt

    def forget_unpaired_fills(self) -> None:
        first = self._live_first_fill
        for order_id in [k for k in first if k not in self.pairs]:
            del first[order_id]

    def settle_pairs(self, live_order: Any, shadow_order: Any) -> list[str]:
        """Score every pair whose two orders are final; returns the live ids scored.

        ``live_order(id)`` / ``shadow_order(id)`` return the :class:`Order` (or None).
        """
        done: list[str] = []
        for lid, (sid, key) in list(self.pairs.items()):
            lo, so = live_order(lid), shadow_order(sid)
            if lo is None or so is None:
                if lo is None and so is None:
                    del self.pairs[lid]
                continue
            if lo.is_open or so.is_open:
                continue
            del self.pairs[lid]
            first = self._live_first_fill.pop(lid, None)
            self.score_pair(lo, so, datetime.fromisoformat(key), first)
            done.append(lid)
        return done

    def score_pair(
        self, live: Any, shadow: Any, signal_dt: datetime, first_fill: datetime | None
    ) -> None:
        """Add one final pair to fill rate, slippage and latency."""
        sf, lf = abs(shadow.filled), abs(live.filled)
        self.pairs_compared += 1
        if sf > 0:
            self.shadow_filled += sf
            self.live_filled += min(lf, sf)
        lp, sp = live.avg_fill_price, shadow.avg_fill_price
        if lp is not None and sp is not None and sp > 0:
            sign = 1 if live.amount > 0 else -1
            self.slippage_sum += (lp - sp) / sp * _BPS * sign
            self.slippage_n += 1
        if first_fill is not None:
            created = live.created_dt or signal_dt
            ms = Decimal((first_fill - created).total_seconds() * 1000).quantize(Decimal("0.001"))
            self.latency_sum += ms
            self.latency_n += 1

    @property
    def execution_quality(self) -> Decimal | None:
        if self.shadow_filled == 0:
            return None
        return self.live_filled / self.shadow_filled

    # --- returns -----------------------------------------------------------------------
    def on_values(self, live_value: Decimal, shadow_value: Decimal) -> None:
        starts = self.start_values
        if not starts:
            starts[LIVE], starts[SHADOW] = live_value, shadow_value
        for side, v in ((LIVE, live_value), (SHADOW, shadow_value)):
            start = starts[side]
            self.returns[side] = (v - start) / start if start else _ZERO
        dev = abs(self.returns[LIVE] - self.returns[SHADOW])
        if dev > self.max_abs_dev:
            self.max_abs_dev = dev

    # --- report ------------------------------------------------------------------------
    def report(self, config: dict[str, Any] | None = None) -> ShadowReport:
        def avg(total: Decimal, n: int) -> Decimal | None:
            return (total / n).quantize(Decimal("0.0001")) if n else None

        rate = Decimal(self.aligned_bars) / self.signal_bars if self.signal_bars else _ONE
        lr, sr = self.returns.get(LIVE), self.returns.get(SHADOW)
        return ShadowReport(
            bars_compared=self.bars_compared,
            signal_bars=self.signal_bars,
            aligned_bars=self.aligned_bars,
            drift_adjusted_bars=self.drift_adjusted_bars,
            alignment_rate=rate,
            execution_quality=self.execution_quality,
            avg_slippage_bps=avg(self.slippage_sum, self.slippage_n),
            avg_latency_ms=avg(self.latency_sum, self.latency_n),
            pairs_compared=self.pairs_compared,
            live_return=lr,
            shadow_return=sr,
            returns_deviation=None if lr is None or sr is None else lr - sr,
            max_abs_returns_deviation=self.max_abs_dev,
            misaligned=list(self.misaligned),
            config=dict(config or {}),
        )

    # --- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "pending": {
                side: {k: [s.to_dict() for s in v] for k, v in by.items()}
                for side, by in self._pending.items()
            },
            "counts": [
                self.bars_compared,
                self.signal_bars,
                self.aligned_bars,
                self.drift_adjusted_bars,
                self.pairs_compared,
                self.slippage_n,
                self.latency_n,
            ],
            "sums": [
                str(x)
                for x in (
                    self.live_filled,
                    self.shadow_filled,
                    self.slippage_sum,
                    self.latency_sum,
                    self.max_abs_dev,
                )
            ],
            "misaligned": list(self.misaligned),
            "pairs": {k: list(v) for k, v in self.pairs.items()},
            "first_fill": {k: v.isoformat() for k, v in self._live_first_fill.items()},
            "start_values": {k: str(v) for k, v in self.start_values.items()},
            "returns": {k: str(v) for k, v in self.returns.items()},
        }

    def load(self, d: dict[str, Any]) -> None:
        """Restore :meth:`to_dict` output; all-or-nothing, typed error when malformed."""
        try:
            pending = {
                side: {k: [Signal.from_dict(s) for s in v] for k, v in d["pending"][side].items()}
                for side in (LIVE, SHADOW)
            }
            counts = [int(x) for x in d["counts"]]
            sums = [Decimal(x) for x in d["sums"]]
            misaligned = list(d["misaligned"])
            pairs = {str(k): [str(v[0]), str(v[1])] for k, v in d["pairs"].items()}
            first = {k: datetime.fromisoformat(v) for k, v in d["first_fill"].items()}
            starts = {k: Decimal(v) for k, v in d["start_values"].items()}
            returns = {k: Decimal(v) for k, v in d["returns"].items()}
            if len(counts) != 7 or len(sums) != 5:
                raise ValueError("counts/sums have the wrong length")
        except (KeyError, TypeError, ValueError, ArithmeticError, IndexError) as exc:
            raise CheckpointCorrupted(
                f"shadow alignment state in the checkpoint is malformed ({exc!r}); delete "
                "the checkpoint's 'shadow' entry to start the comparison afresh"
            ) from exc
        self._pending = pending
        (
            self.bars_compared,
            self.signal_bars,
            self.aligned_bars,
            self.drift_adjusted_bars,
            self.pairs_compared,
            self.slippage_n,
            self.latency_n,
        ) = counts
        (
            self.live_filled,
            self.shadow_filled,
            self.slippage_sum,
            self.latency_sum,
            self.max_abs_dev,
        ) = sums
        self.misaligned = misaligned
        self.pairs = pairs
        self._live_first_fill = first
        self.start_values = starts
        self.returns = returns
