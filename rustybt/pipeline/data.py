"""Pipeline datasets: ``USEquityPricing`` (zipline's name) and ``EquityPricing``.

Their columns (``open``, ``high``, ``low``, ``close``, ``volume``) read the bundle's daily
bars; a column is a pipeline input (``inputs=[USEquityPricing.close]``) and has
``.latest``.
"""

from __future__ import annotations

from rustybt.pipeline.terms import BoundColumn

__all__ = ["EquityPricing", "USEquityPricing"]


class _Pricing:
    def __init__(self, name: str) -> None:
        self.open = BoundColumn(name, "open")
        self.high = BoundColumn(name, "high")
        self.low = BoundColumn(name, "low")
        self.close = BoundColumn(name, "close")
        self.volume = BoundColumn(name, "volume")

    @property
    def columns(self) -> tuple[BoundColumn, ...]:
        return (self.open, self.high, self.low, self.close, self.volume)


#: Daily open/high/low/close/volume of the bundle's equities.
USEquityPricing = _Pricing("USEquityPricing")
EquityPricing = USEquityPricing
