"""``Pipeline``: named terms computed per asset once per session, with an optional screen."""

from __future__ import annotations

from typing import Any

from rustybt.exceptions import ConfigError
from rustybt.pipeline.terms import BoundColumn, Factor, Filter, Term


class Pipeline:
    """zipline's ``Pipeline(columns={name: term}, screen=filter)``.

    ``columns`` maps output names to factors or filters (a dataset column is taken as its
    ``.latest``); ``screen`` keeps only the assets for which it is True. ``domain`` is
    accepted for zipline's signature; the universe is the bundle's equities.
    """

    def __init__(
        self,
        columns: dict[str, Any] | None = None,
        screen: Filter | None = None,
        domain: Any = None,
    ) -> None:
        self.columns: dict[str, Term] = {}
        self.screen: Filter | None = None
        for name, term in (columns or {}).items():
            self.add(term, name)
        if screen is not None:
            self.set_screen(screen)

    def add(self, term: Any, name: str, overwrite: bool = False) -> None:
        """Add ``term`` as column ``name`` (``overwrite=True`` to replace one)."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"pipeline column names are non-empty strings, got {name!r}")
        if name in self.columns and not overwrite:
            raise ConfigError(f"pipeline already has a column {name!r}; pass overwrite=True")
        if isinstance(term, BoundColumn):
            term = term.latest
        if not isinstance(term, Factor | Filter):
            raise ConfigError(
                f"pipeline column {name!r}: {term!r} is not a factor or filter; use e.g. "
                "RSI() or USEquityPricing.close.latest"
            )
        self.columns[name] = term

    def remove(self, name: str) -> Term:
        """Remove and return column ``name``."""
        try:
            return self.columns.pop(name)
        except KeyError:
            raise ConfigError(f"pipeline has no column {name!r}") from None

    def set_screen(self, screen: Filter, overwrite: bool = False) -> None:
        """Keep only the assets for which ``screen`` is True."""
        if not isinstance(screen, Filter):
            raise ConfigError(f"screen={screen!r} must be a Filter, e.g. factor.top(100)")
        if self.screen is not None and not overwrite:
            raise ConfigError("pipeline already has a screen; pass overwrite=True to replace it")
        self.screen = screen

    def __repr__(self) -> str:
        return f"Pipeline(columns={list(self.columns)}, screen={self.screen is not None})"
