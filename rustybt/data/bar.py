"""One OHLCV bar of one asset: the unit the execution simulator fills against.

A live tick is a bar whose open, high, low and close are all the trade price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from rustybt.assets import Asset


@dataclass(slots=True)
class Bar:
    asset: Asset
    dt: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @classmethod
    def from_tick(
        cls, asset: Asset, dt: datetime, price: Decimal, volume: Decimal = Decimal(0)
    ) -> Bar:
        return cls(asset, dt, price, price, price, price, volume)
