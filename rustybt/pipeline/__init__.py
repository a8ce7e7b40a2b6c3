"""A zipline-compatible Pipeline subset, computed on polars-built daily matrices.

``Pipeline(columns=..., screen=...)``, ``attach_pipeline``/``pipeline_output`` (on the
algorithm and in :mod:`rustybt.api`), ``CustomFactor``, the built-in factors of
:mod:`rustybt.pipeline.factors`, ``USEquityPricing`` columns (:mod:`rustybt.pipeline.data`)
and the factor/filter algebra of :mod:`rustybt.pipeline.terms`. Outputs are computed once
per session, before ``before_trading_start``, from sessions strictly before it; the same in
backtest and live. See docs/zipline.md for what is and is not supported.
"""

from rustybt.pipeline.engine import PipelineEngine
from rustybt.pipeline.pipeline import Pipeline
from rustybt.pipeline.terms import CustomFactor, CustomFilter, Factor, Filter, Term

__all__ = [
    "CustomFactor",
    "CustomFilter",
    "Factor",
    "Filter",
    "Pipeline",
    "PipelineEngine",
    "Term",
]
