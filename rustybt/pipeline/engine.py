"""The pipeline engine: daily matrices from the bundle (polars), one evaluation per session.

The bundle's daily bars of the pipeline's universe (its equities; every asset when it
holds none) are pivoted once with polars into ``sessions × assets`` float64 matrices per
column. For a session *D* the engine evaluates every term as of the last session strictly
before *D*, so ``pipeline_output`` in ``before_trading_start`` never sees *D*'s own bar
(no look-ahead), in backtest and live alike. Rows: the assets that traded on that
previous session and pass the screen; columns: the pipeline's terms (float factors,
bool filters), indexed by :class:`~rustybt.assets.Asset` like zipline.

Floats are fine here: pipeline values rank and filter, they are not money. Orders that
follow from them are sized in ``Decimal`` by the order API.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import structlog

from rustybt.assets import Asset, Equity
from rustybt.data.bundles import daily_from_minute
from rustybt.exceptions import ConfigError
from rustybt.pipeline.pipeline import Pipeline

_COLUMNS = ("open", "high", "low", "close", "volume")
# More calendar days than any exchange holiday run between two sessions.
_STALE_DAYS = 5
log = structlog.get_logger("rustybt.pipeline")


class EvalContext:
    """What terms read while one engine evaluates them: matrices, assets, memo."""

    def __init__(self, sessions: list[date], assets: list[Asset], matrices: dict[str, Any]):
        self.sessions = sessions
        self.assets = assets
        self.assets_index = pd.Index(assets, dtype=object)
        self.n_assets = len(assets)
        self._matrices = matrices
        self.memo: dict[tuple[int, int], tuple[Any, np.ndarray]] = {}

    def matrix(self, column: str) -> np.ndarray:
        try:
            return self._matrices[column]
        except KeyError:
            raise ConfigError(f"pipeline column {column!r} is not available") from None

    def today(self, row: int) -> pd.Timestamp:
        return pd.Timestamp(self.sessions[row], tz="UTC")


class PipelineEngine:
    """Runs pipelines over one data portal's bundle; ``run(pipeline, session)``."""

    def __init__(self, portal: Any) -> None:
        bundle = portal.bundle
        finder = portal.asset_finder
        equities = [a for a in finder.assets if isinstance(a, Equity)]
        universe = equities or list(finder.assets)
        by_symbol = {a.symbol: a for a in universe}
        if "daily" in bundle.frequencies:
            frame = bundle.frame("daily")
        else:
            frame = daily_from_minute(bundle.frame("minute"), universe)
        frame = frame.filter(pl.col("symbol").is_in(list(by_symbol)))
        frame = frame.with_columns(
            pl.col("dt").dt.date().alias("session"),
            *[pl.col(c).cast(pl.Float64) for c in _COLUMNS],
        )
        sessions = frame.select(pl.col("session").unique().sort()).to_series().to_list()
        symbols = sorted(by_symbol)
        self.sessions: list[date] = sessions
        self.assets: list[Asset] = [by_symbol[s] for s in symbols]
        matrices: dict[str, np.ndarray] = {}
        for column in _COLUMNS:
            wide = frame.pivot(
                on="symbol", index="session", values=column, aggregate_function="last"
            )
            wide = wide.sort("session")
            for s in symbols:
                if s not in wide.columns:
                    wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(s))
            matrices[column] = wide.select(symbols).to_numpy().astype(float)
        self._ctx = EvalContext(sessions, self.assets, matrices)
        self._warned: set[date] = set()

    def as_of_row(self, session: date) -> int:
        """Row of the last session strictly before ``session`` (-1: none yet)."""
        return bisect_left(self.sessions, session) - 1

    def run(self, pipeline: Pipeline, session: date) -> pd.DataFrame:
        """The pipeline's output for ``session``: computed from sessions before it."""
        ctx = self._ctx
        row = self.as_of_row(session)
        names = list(pipeline.columns)
        if row < 0:
            return pd.DataFrame(
                {n: pd.Series(dtype=_dtype(t)) for n, t in pipeline.columns.items()},
                index=pd.Index([], dtype=object),
            )
        if (session - ctx.sessions[row]).days > _STALE_DAYS and session not in self._warned:
            # Live past the bundle's end: the pipeline still answers, from old bars. Say so.
            self._warned.add(session)
            log.warning(
                "pipeline_data_stale",
                session=str(session),
                as_of=str(ctx.sessions[row]),
                hint="ingest the latest daily bars into the bundle before the session",
            )
        if len(ctx.memo) > 50_000:
            ctx.memo.clear()  # bounded: old sessions are not asked again
        alive = ~np.isnan(ctx.matrix("close")[row])
        keep = alive.copy()
        if pipeline.screen is not None:
            keep &= pipeline.screen.evaluate(ctx, row)
        data = {n: pipeline.columns[n].evaluate(ctx, row)[keep] for n in names}
        index = pd.Index([a for a, k in zip(ctx.assets, keep, strict=True) if k], dtype=object)
        return pd.DataFrame(data, index=index, columns=names)


def _dtype(term: Any) -> str:
    from rustybt.pipeline.terms import Filter

    return "bool" if isinstance(term, Filter) else "float64"
