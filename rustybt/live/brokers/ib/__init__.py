"""Interactive Brokers on ``ib_async``: config, contracts, error codes, the adapter.

Users import :class:`IBBrokerAdapter` from the spec's path,
:mod:`rustybt.live.brokers.ib_adapter`.
"""
