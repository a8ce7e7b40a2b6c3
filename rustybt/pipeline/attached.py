"""Pipelines attached to a running algorithm: when they run and what they answer.

The algorithm asks :meth:`AttachedPipelines.run_all` at each session start, before its
``before_trading_start`` (the backtest runner and the live executor both call that hook,
so both modes compute pipelines at the same point). The engine is built lazily from the
runtime's data portal, once per run.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from rustybt.calendars import calendar_tz, session_day
from rustybt.exceptions import ConfigError, DataNotFound
from rustybt.pipeline.pipeline import Pipeline


class AttachedPipelines:
    """Name → pipeline, and the engine that computes them."""

    def __init__(self) -> None:
        self.pipelines: dict[str, Pipeline] = {}
        self._engine: Any = None

    def attach(self, pipeline: Any, name: str) -> None:
        if not isinstance(pipeline, Pipeline):
            raise ConfigError(
                f"attach_pipeline({pipeline!r}, ...): pass a rustybt.pipeline.Pipeline"
            )
        if not isinstance(name, str) or not name:
            raise ConfigError(f"attach_pipeline needs a non-empty name, got {name!r}")
        if name in self.pipelines:
            raise ConfigError(f"a pipeline named {name!r} is already attached; pick another")
        self.pipelines[name] = pipeline

    def run_all(self, runtime: Any, data: Any) -> dict[str, pd.DataFrame]:
        engine = self._engine
        if engine is None:
            portal = getattr(runtime, "portal", None)
            if portal is None or not hasattr(portal, "bundle"):
                raise DataNotFound(
                    "pipelines need a bundle's daily bars: run with a data portal (--bundle NAME)"
                )
            from rustybt.pipeline.engine import PipelineEngine

            engine = self._engine = PipelineEngine(portal)
        session = _session_of(data, runtime, engine)
        return {name: engine.run(p, session) for name, p in self.pipelines.items()}


def _session_of(data: Any, runtime: Any, engine: Any) -> date:
    dt = getattr(data, "current_dt", None) or runtime.current_dt()
    portal = getattr(runtime, "portal", None)
    if getattr(portal, "data_frequency", "minute") == "daily":
        return dt.date()  # daily bars carry their session date (midnight UTC)
    calendar = engine.assets[0].calendar if engine.assets else "XNYS"
    return session_day(dt, calendar_tz(calendar), True)


def output_of(algo: Any, name: str) -> pd.DataFrame:
    """What ``pipeline_output(name)`` returns, or a :class:`ConfigError` saying why not."""
    pipes = getattr(algo, "_pipelines", None)
    if pipes is None or name not in pipes.pipelines:
        attached = ", ".join(pipes.pipelines) if pipes is not None else "none"
        raise ConfigError(
            f"no pipeline named {name!r} is attached (attached: {attached}); call "
            f"attach_pipeline(pipeline, {name!r}) in initialize"
        )
    outputs = getattr(algo, "_pipeline_outputs", None)
    if outputs is None:
        raise ConfigError(
            f"pipeline {name!r} has no output yet: it is computed at each session start, "
            "so call pipeline_output from before_trading_start, handle_data or a "
            "scheduled function, not from initialize"
        )
    return outputs[name]
