"""Any ccxt venue: what it can do, read from ccxt's own description of it, and the ids.

Nothing here talks to the network: a ccxt exchange class describes its venue in
``has`` (which unified methods exist: ``createStopOrder``, ``watchOrders``,
``fetchPositions``...), ``features`` (per market type: ``createOrder.triggerPrice``,
``createOrder.timeInForce``...) and ``urls['test']`` (a sandbox). :func:`detect` turns
that into :class:`Support`; the adapter refuses what is missing, with the capability's
name and what to do, before anything is sent.

Client order ids: ccxt passes ``params={"clientOrderId": ...}`` on to the venue's own
field in the exchange's order-building code; an exchange class whose code never reads
``clientOrderId`` there cannot tag orders, so crash-safe deduplication (finding an
order again by our id after a restart) is impossible on it. That is refused (see
``docs/venues/ccxt.md``), never guessed from amounts and times.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

from rustybt.exceptions import ConfigError
from rustybt.live.brokers.base import Capabilities

MARKET_TYPES = ("spot", "swap")

# The strictest rule among the major venues (OKX ``clOrdId``: 1-32 letters and digits);
# anything else is sent as the codec's deterministic 32-character hash.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


def legal_client_id(client_id: str) -> bool:
    return bool(_CLIENT_ID.match(client_id))


def env_names(exchange_id: str) -> tuple[str, str, str]:
    """``CCXT_<ID>_API_KEY`` / ``_API_SECRET`` / ``_PASSWORD`` (id upper-cased)."""
    up = exchange_id.upper()
    return f"CCXT_{up}_API_KEY", f"CCXT_{up}_API_SECRET", f"CCXT_{up}_PASSWORD"


def check_exchange_id(exchange_id: Any) -> str:
    """The ccxt id, or :class:`ConfigError` saying how to list the valid ones."""
    import ccxt

    eid = str(exchange_id or "").strip().lower()
    if eid not in ccxt.exchanges:
        near = [e for e in ccxt.exchanges if eid and (eid in e or e in eid)][:5]
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise ConfigError(
            f"{exchange_id!r} is not a ccxt exchange id{hint}; ccxt {ccxt.__version__} knows "
            f'{len(ccxt.exchanges)}: list them with `python -c "import ccxt; '
            'print(ccxt.exchanges)"`'
        )
    return eid


@dataclass(frozen=True)
class Support:
    """What one ccxt exchange class offers for one market type."""

    exchange_id: str
    market_type: str
    capabilities: Capabilities
    streaming: bool  # ccxt.pro watchOrders and watchMyTrades
    client_ids: bool
    closed_lookup: str | None  # the unified method listing closed orders, if any
    order_trades: str  # fetchOrderTrades, or fetchMyTrades filtered by order id
    sandbox: bool
    missing_stops: str
    open_orders_need_symbol: bool  # why there are no stop orders ("" when there are)


def _flag(value: Any) -> bool:
    # ccxt marks a method True, "emulated" (built from others) or False/None
    return value is True or value == "emulated"


def _reads_client_id(cls: type) -> bool:
    # create_order itself and the helpers building its request (create_order_request,
    # create_spot_order_request, order_request...)
    names = [n for n in dir(cls) if n == "create_order" or n.endswith("order_request")]
    for name in names:
        fn = getattr(cls, name, None)
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if owner is None or owner.__module__.startswith("ccxt.base"):
            continue  # the base class's generic code, not the venue's
        try:
            src = inspect.getsource(fn)
        except (OSError, TypeError):
            continue
        if "clientOrderId" in src:
            return True
    return False


def detect(exchange_id: str, market_type: str) -> Support:
    """Read a ccxt exchange class (no network) into :class:`Support`."""
    import ccxt
    import ccxt.pro as ccxtpro

    if market_type not in MARKET_TYPES:
        raise ConfigError(
            f"market_type={market_type!r}: the generic ccxt adapter trades 'spot' or 'swap' "
            "(linear perpetuals)"
        )
    cls = getattr(ccxt, exchange_id)
    probe = cls()
    has = probe.has
    pro_has = getattr(ccxtpro, exchange_id)().has if exchange_id in ccxtpro.exchanges else {}
    feats = (probe.features or {}).get(market_type) or {}
    if market_type == "swap":
        feats = feats.get("linear") or feats
    create = feats.get("createOrder") or {}

    needs = ["createOrder", "cancelOrder", "fetchOpenOrders", "fetchBalance", "fetchOHLCV"]
    if market_type == "swap":
        needs.append("fetchPositions")
    lacking = [n for n in needs if not _flag(has.get(n))]
    if not _flag(has.get("fetchOrderTrades")) and not _flag(has.get("fetchMyTrades")):
        lacking.append("fetchOrderTrades or fetchMyTrades")
    if lacking:
        raise ConfigError(
            f"ccxt:{exchange_id} ({market_type}) lacks {', '.join(lacking)} in ccxt "
            f"{ccxt.__version__} (exchange.has); the adapter needs them to trade and to find "
            "its fills; use another venue or market type"
        )
    stops = bool(create.get("triggerPrice")) and _flag(has.get("createStopOrder"))
    missing_stops = ""
    if not stops:
        missing_stops = (
            f"ccxt:{exchange_id} has no stop orders in ccxt (has['createStopOrder'] / "
            f"features['{market_type}']['createOrder']['triggerPrice'] not set)"
        )
    elif market_type == "swap":
        # Derivatives venues keep conditional orders in separate services (Binance's algo
        # orders, Bybit's untriggered orders) with their own ids and events, which the
        # unified order structure does not tie back to ours reliably.
        stops = False
        missing_stops = (
            f"the generic ccxt adapter does not send stop orders on swaps (ccxt:{exchange_id} "
            "keeps conditional derivatives orders apart from regular ones)"
        )
    tif = {"gtc"}
    tif_feats = create.get("timeInForce") or {}
    for name in ("IOC", "FOK"):
        if tif_feats.get(name):
            tif.add(name.lower())
    closed = next(
        (
            m
            for m in ("fetchOrders", "fetchClosedOrders", "fetchCanceledAndClosedOrders")
            if _flag(has.get(m))
        ),
        None,
    )
    caps = Capabilities(
        order_types=frozenset({"market", "limit"} | ({"stop", "stop_limit"} if stops else set())),
        time_in_force=frozenset(tif),
        positions_from="positions" if market_type == "swap" else "balances",
        cancel_by_client_id=True,  # by looking the order up first (see execution.cancel)
        lookup_closed_by_client_id=closed is not None,
        shorting=market_type == "swap",
    )
    return Support(
        exchange_id=exchange_id,
        market_type=market_type,
        capabilities=caps,
        streaming=_flag(pro_has.get("watchOrders")) and _flag(pro_has.get("watchMyTrades")),
        client_ids=_reads_client_id(cls),
        closed_lookup=closed,
        order_trades=(
            "fetchOrderTrades" if _flag(has.get("fetchOrderTrades")) else "fetchMyTrades"
        ),
        sandbox=bool(probe.urls.get("test")),
        missing_stops=missing_stops,
        open_orders_need_symbol=bool((feats.get("fetchOpenOrders") or {}).get("symbolRequired")),
    )


def ccxt_options(exchange_id: str, market_type: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Our ccxt options for the exchange, ``extra`` (the user's) merged over them.

    Where the exchange class lists the market types ``load_markets`` fetches as
    ``options['fetchMarkets']['types']`` (a list), only the adapter's type is loaded:
    fewer requests, and no endpoint of a market type we do not trade is needed.
    """
    import ccxt

    opts: dict[str, Any] = {
        "defaultType": market_type,
        # every symbol's open orders in one call where the venue allows it
        "warnOnFetchOpenOrdersWithoutSymbol": False,
        # currencies (networks, deposit rules) and margin pairs are not needed to trade
        # spot or swaps; markets are (exchanges that do not know these options ignore them)
        "fetchCurrencies": False,
        "fetchMargins": False,
    }
    if market_type == "swap":
        opts["defaultSubType"] = "linear"
    fetch_markets = getattr(ccxt, exchange_id)().options.get("fetchMarkets")
    if isinstance(fetch_markets, dict) and isinstance(fetch_markets.get("types"), list):
        listed = fetch_markets["types"]
        wanted = (
            ["spot"] if market_type == "spot" else [t for t in ("linear", "swap") if t in listed]
        )
        if wanted and all(t in listed for t in wanted):
            opts["fetchMarkets"] = {**fetch_markets, "types": wanted[:1]}
    opts.update(extra)
    return opts
