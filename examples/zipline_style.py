"""A zipline-style script: module-level ``initialize`` / ``handle_data``, nothing else.

A zipline strategy moves over by changing its import line to ``rustybt.api``. ``context``
is the running algorithm: set attributes on it freely. Like in zipline, the script sees
floats (``data.current``, ``data.history``, ``context.portfolio``); money inside stays
``Decimal``. Buys 100 SPY when the price dips below its 30-minute average by more than
0.05 %, and goes flat once it is back above.

    rustybt run  -f examples/zipline_style.py --bundle demo --start 2024-01-02 --end 2024-01-03
    rustybt live -f examples/zipline_style.py --broker paper --bundle demo --speed max
"""

from rustybt.api import order_target, record, symbol

WINDOW = 30
BAND = 0.0005


def initialize(context):
    context.asset = symbol("SPY")
    context.shares = 100


def handle_data(context, data):
    prices = data.history(context.asset, "price", WINDOW, "1m")
    if len(prices) < WINDOW or not data.can_trade(context.asset):
        return
    price = data.current(context.asset, "price")
    mean = prices.mean()
    if price < mean * (1 - BAND):
        order_target(context.asset, context.shares)
    elif price > mean:
        order_target(context.asset, 0)
    record(price=price, mean=mean)
