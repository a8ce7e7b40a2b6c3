"""Shadow trading: a backtest of the same strategy running beside a live session.

The shadow engine (:mod:`~rustybt.live.shadow.kernel`) is fed the live engine's market
events and advances a simulated account with the backtest's per-bar step; the comparison
(:mod:`~rustybt.live.shadow.alignment`) checks every live signal and fill against it, and
:class:`~rustybt.live.circuit_breakers.AlignmentCircuitBreaker` halts new orders when the
two disagree too often. Configure it with
:class:`~rustybt.live.shadow.config.ShadowTradingConfig`; see ``docs/shadow-trading.md``.
"""
