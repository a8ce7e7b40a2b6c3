"""Building the Binance broker for ``rustybt live --broker binance``.

Real money is refused unless asked for twice over: a mainnet connection (no
``--testnet``, no ``--venue-url``) needs ``--live-money`` on the command line or
``live_money = true`` in the config; without it the command stops with one line saying
so. Credentials come from the config (``api_key``/``api_secret``, registered as secrets)
or the venue's environment variables.
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


def binance_broker(opts: dict[str, Any]) -> Any:
    """A :class:`BinanceBrokerAdapter` from the CLI/config options."""
    from rustybt.live.brokers.binance_adapter import BinanceBrokerAdapter

    base_url = ws_url = None
    if opts.get("venue_url"):
        base_url, ws_url = venue_url_pair(str(opts["venue_url"]))
    testnet = bool(opts.get("testnet", False))
    live_money = bool(opts.get("live_money", False))
    if not testnet and base_url is None and not live_money:
        raise ConfigError(
            "refusing to trade real money on Binance mainnet: add --testnet (or --venue-url "
            "for a local fake), or confirm with --live-money / live_money = true"
        )
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
