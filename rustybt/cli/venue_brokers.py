"""The crypto venue brokers for ``rustybt live --broker binance|bybit|hyperliquid|ccxt:<id>``.

Real money is refused unless asked for twice over: a mainnet connection (no
``--testnet``, no ``--venue-url``) needs ``--live-money`` on the command line or
``live_money = true`` in the config; without it the command stops with one line saying
so. Credentials come from the config (``api_key``/``api_secret``, Hyperliquid's
``private_key``; registered as secrets) or the venue's environment variables.
"""

from __future__ import annotations

from typing import Any

from rustybt.exceptions import ConfigError


def venue_url_pair(url: str) -> tuple[str, str]:
    """``--venue-url http://host:port`` → (base_url, the matching ws://host:port)."""
    url = url.strip().rstrip("/")
    if url.startswith("https://"):
        return url, "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return url, "ws://" + url[len("http://") :]
    raise ConfigError(
        f"--venue-url {url!r} must be http://host:port (or https://), e.g. http://127.0.0.1:8080"
    )


def venue_broker(name: str, opts: dict[str, Any]) -> Any:
    """The adapter for ``--broker <name>`` (a name in ``options.VENUE_BROKERS``)."""
    if name == "binance":
        return binance_broker(opts)
    if name == "bybit":
        return bybit_broker(opts)
    if name == "hyperliquid":
        return hyperliquid_broker(opts)
    if name.startswith("ccxt:"):
        return ccxt_broker(name.split(":", 1)[1], opts)
    raise ConfigError(
        f"no venue broker {name!r}; available: binance, bybit, hyperliquid, ccxt:<id>"
    )


def _endpoints(opts: dict[str, Any], venue: str) -> tuple[str | None, str | None, bool, bool]:
    base_url = ws_url = None
    if opts.get("venue_url"):
        base_url, ws_url = venue_url_pair(str(opts["venue_url"]))
    testnet = bool(opts.get("testnet", False))
    live_money = bool(opts.get("live_money", False))
    if not testnet and base_url is None and not live_money:
        raise ConfigError(
            f"refusing to trade real money on {venue} mainnet: add --testnet (or --venue-url "
            "for a local fake), or confirm with --live-money / live_money = true"
        )
    return base_url, ws_url, testnet, live_money


def binance_broker(opts: dict[str, Any]) -> Any:
    """A :class:`BinanceBrokerAdapter` from the CLI/config options."""
    from rustybt.live.brokers.binance_adapter import BinanceBrokerAdapter

    base_url, ws_url, testnet, live_money = _endpoints(opts, "Binance")
    return BinanceBrokerAdapter(
        opts.get("api_key"),
        opts.get("api_secret"),
        testnet=testnet,
        market_type=str(opts.get("market_type", "spot")),
        base_url=base_url,
        ws_url=ws_url,
        live_money=live_money,
        market_data_interval=float(opts.get("poll_interval", 1.0)),
    )


def bybit_broker(opts: dict[str, Any]) -> Any:
    """A :class:`BybitBrokerAdapter` from the CLI/config options; ``--market-type``
    ``linear`` (or ``futures``: USDT perpetuals, the default) or ``spot``."""
    from rustybt.live.brokers.bybit_adapter import BybitBrokerAdapter

    base_url, ws_url, testnet, live_money = _endpoints(opts, "Bybit")
    category = str(opts.get("market_type", "linear"))
    return BybitBrokerAdapter(
        opts.get("api_key"),
        opts.get("api_secret"),
        testnet=testnet,
        category="linear" if category == "futures" else category,
        base_url=base_url,
        ws_url=ws_url,
        live_money=live_money,
        market_data_interval=float(opts.get("poll_interval", 1.0)),
    )


def hyperliquid_broker(opts: dict[str, Any]) -> Any:
    """A :class:`HyperliquidBrokerAdapter` from the CLI/config options (perpetuals).

    Its cloids are hashes of our client ids; the map back is kept in
    ``<state dir>/hyperliquid-client-ids.jsonl`` so a restarted session names the
    orders it left open by our ids (start-up adoption)."""
    from pathlib import Path

    from rustybt.live.brokers.hyperliquid_adapter import HyperliquidBrokerAdapter

    base_url, ws_url, testnet, live_money = _endpoints(opts, "Hyperliquid")
    if opts.get("state_dir"):
        state_dir = Path(str(opts["state_dir"]))
    else:
        from rustybt.data.bundles import rustybt_root

        state_dir = rustybt_root() / "state"
    return HyperliquidBrokerAdapter(
        opts.get("private_key"),
        testnet=testnet,
        wallet_address=opts.get("wallet_address"),
        base_url=base_url,
        ws_url=ws_url,
        live_money=live_money,
        market_data_interval=float(opts.get("poll_interval", 1.0)),
        client_id_map=state_dir / "hyperliquid-client-ids.jsonl",
    )


def _state_dir(opts: dict[str, Any]) -> Any:
    from pathlib import Path

    if opts.get("state_dir"):
        return Path(str(opts["state_dir"]))
    from rustybt.data.bundles import rustybt_root

    return rustybt_root() / "state"


def ccxt_broker(exchange_id: str, opts: dict[str, Any]) -> Any:
    """A :class:`CCXTBrokerAdapter` for ``--broker ccxt:<id>``; ``--market-type`` ``spot``
    (the default) or ``futures`` / ``linear`` (linear perpetual swaps). Credentials from
    the config or ``CCXT_<ID>_API_KEY`` / ``CCXT_<ID>_API_SECRET`` (``CCXT_<ID>_PASSWORD``
    for venues with a passphrase). Client ids too long for the reversible form are hashed;
    the map back is kept in ``<state dir>/ccxt-<id>-client-ids.jsonl`` (start-up adoption)."""
    from rustybt.live.brokers.ccxt_adapter import CCXTBrokerAdapter

    base_url, ws_url, testnet, live_money = _endpoints(opts, f"ccxt:{exchange_id}")
    market_type = str(opts.get("market_type", "spot"))
    return CCXTBrokerAdapter(
        exchange_id,
        opts.get("api_key"),
        opts.get("api_secret"),
        testnet=testnet,
        market_type="spot" if market_type == "spot" else "swap",
        base_url=base_url,
        ws_url=ws_url,
        live_money=live_money,
        market_data_interval=float(opts.get("poll_interval", 1.0)),
        client_id_map=_state_dir(opts) / f"ccxt-{exchange_id}-client-ids.jsonl",
    )
