"""Loading a strategy from a Python file, as ``rustybt run -f`` and ``live -f`` do.

A file may define a :class:`~rustybt.algorithm.TradingAlgorithm` subclass (the one
defined in the file is used; with several, the last one, or the one named by
``--strategy-name``), or zipline-style module functions ``initialize(context)`` and
``handle_data(context, data)``.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

from rustybt.algorithm import ScriptAlgorithm, TradingAlgorithm
from rustybt.exceptions import StrategyLoadError


def load_strategy(path: str | Path, class_name: str | None = None) -> TradingAlgorithm:
    """A fresh strategy instance from ``path``; :class:`StrategyLoadError` if it can't be."""
    p = Path(path)
    if not p.is_file():
        raise StrategyLoadError(f"strategy file {p} does not exist; check the -f path")
    try:
        source = p.read_text(encoding="utf-8")
        compile(source, str(p), "exec")
    except SyntaxError as exc:
        raise StrategyLoadError(
            f"{p}:{exc.lineno}:{exc.offset or 0}: syntax error: {exc.msg}; fix the file"
        ) from None
    try:
        namespace: dict[str, Any] = runpy.run_path(str(p), run_name="__rustybt_strategy__")
    except Exception as exc:
        raise StrategyLoadError(f"{p} failed to load: {type(exc).__name__}: {exc}") from exc
    classes = [
        v
        for v in namespace.values()
        if isinstance(v, type)
        and issubclass(v, TradingAlgorithm)
        and v not in (TradingAlgorithm, ScriptAlgorithm)
        and v.__module__ == "__rustybt_strategy__"
    ]
    if class_name is not None:
        for cls in classes:
            if cls.__name__ == class_name:
                return cls()
        raise StrategyLoadError(
            f"{p} defines no TradingAlgorithm named {class_name!r}; "
            f"found: {', '.join(c.__name__ for c in classes) or 'none'}"
        )
    if classes:
        return classes[-1]()
    if callable(namespace.get("initialize")) or callable(namespace.get("handle_data")):
        algo = ScriptAlgorithm(namespace, name=p.stem)
        algo._source_path = p  # shadow trading loads the script again (its own globals)
        return algo
    raise StrategyLoadError(
        f"{p} has no strategy: define a TradingAlgorithm subclass, or module-level "
        "initialize(context) and handle_data(context, data) functions"
    )
