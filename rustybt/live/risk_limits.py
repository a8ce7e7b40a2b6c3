"""Position and portfolio limits checked on every order before it can reach a broker.

:class:`RiskLimits` is an immutable set of optional limits (None = no limit) and one hot-path
method, :meth:`RiskLimits.check_order`, which raises :class:`RiskLimitExceeded` naming the
limit and the numbers. It is pure and duck-typed: positions and open orders are whatever the
ledger and blotter hold, as long as they carry the attributes documented on ``check_order``.

Rules, in brief (the user guide is ``docs/circuit-breakers.md``):

- Projections are worst case per side: a buy is checked against position + open buys on the
  asset + this order (open sells are not netted; they may never fill), a sell against
  position + open sells + this order.
- An order that does not increase the worst-case |position| on its asset is risk-reducing:
  only ``max_order_value``, ``max_open_orders`` and ``long_only`` apply to it, so a position
  can always be cut, even in an asset no longer in ``allowed_assets``.
- A limit is breached when the projection is strictly above it; exactly at the limit passes.
- Values are ``|amount| × price × asset.multiplier`` in the quote currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from rustybt.assets import Asset
from rustybt.exceptions import ConfigError, RiskLimitExceeded
from rustybt.finance.risk_gate import order_reference_price

__all__ = ["RiskLimits"]

_ZERO = Decimal(0)
_DECIMAL_FIELDS = (
    "max_position_amount",
    "max_position_value",
    "max_position_pct",
    "max_gross_exposure",
    "max_leverage",
    "max_order_value",
)


def _positive(name: str, value: Any, *, allow_float: bool = False) -> Decimal:
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be a number > 0")
    if isinstance(value, float):
        if not allow_float:
            raise ConfigError(
                f"{name}={value!r}: pass a Decimal, e.g. Decimal('{value}'), not a float"
            )
        value = repr(value)  # config files: the float's shortest repr, never its binary value
    try:
        out = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ConfigError(f"{name}={value!r} is not a number; pass a Decimal") from exc
    if not out.is_finite() or out <= 0:
        raise ConfigError(f"{name}={value!r} must be a finite number > 0 (use None for no limit)")
    return out


def _fmt_projection(held: Decimal, pending: Decimal, amount: Decimal, projected: Decimal) -> str:
    side = "buy" if amount > 0 else "sell"
    out = f"position {held} + open {side} orders {pending} + this order {amount} = {projected}"
    return out if projected >= 0 else f"{out} (|{projected}| = {-projected})"


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Optional per-asset and portfolio limits; ``None`` (the default) means no limit.

    Amounts are in units of the asset, values in its quote currency, percentages are
    fractions (``Decimal("0.25")`` = 25 %). ``per_asset`` maps a symbol to its own
    ``max_position_amount``, overriding the global one. ``allowed_assets`` holds symbols.
    """

    max_position_amount: Decimal | None = None
    max_position_value: Decimal | None = None
    max_position_pct: Decimal | None = None
    max_gross_exposure: Decimal | None = None
    max_leverage: Decimal | None = None
    max_open_orders: int | None = None
    max_order_value: Decimal | None = None
    allowed_assets: frozenset[str] | None = None
    long_only: bool = False
    per_asset: dict[str, Decimal] | None = field(default=None, hash=False)
    _active: bool = field(init=False, repr=False, compare=False, hash=False, default=False)
    _scan: bool = field(init=False, repr=False, compare=False, hash=False, default=False)
    _exposure: bool = field(init=False, repr=False, compare=False, hash=False, default=False)

    def __post_init__(self) -> None:
        self._validate(allow_float=False)

    def _validate(self, *, allow_float: bool) -> None:
        put = object.__setattr__
        for name in _DECIMAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                put(self, name, _positive(name, value, allow_float=allow_float))
        if self.max_position_pct is not None and self.max_position_pct > 1:
            raise ConfigError(
                f"max_position_pct={self.max_position_pct} is a fraction (Decimal('0.25') = 25 %)"
                " and must be ≤ 1; use max_leverage to allow leverage"
            )
        n = self.max_open_orders
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
            raise ConfigError(f"max_open_orders={n!r} must be a whole number > 0")
        if not isinstance(self.long_only, bool):
            raise ConfigError(f"long_only={self.long_only!r} must be True or False")
        allowed = self.allowed_assets
        if allowed is not None:
            if isinstance(allowed, str) or not isinstance(allowed, Iterable):
                raise ConfigError(
                    f"allowed_assets={allowed!r} must be a set of symbols, e.g. {{'AAPL', 'MSFT'}}"
                )
            symbols = []
            for s in allowed:
                if not isinstance(s, str) or not s.strip():
                    raise ConfigError(f"allowed_assets entry {s!r} must be a non-empty symbol")
                symbols.append(s.strip().upper())
            if not symbols:
                raise ConfigError(
                    "allowed_assets is empty, which would block every order; "
                    "use None for no restriction"
                )
            put(self, "allowed_assets", frozenset(symbols))
        per = self.per_asset
        if per is not None:
            if not isinstance(per, Mapping):
                raise ConfigError(
                    f"per_asset={per!r} must map symbols to a max_position_amount, "
                    "e.g. {'AAPL': Decimal('500')}"
                )
            norm: dict[str, Decimal] = {}
            for sym, limit in per.items():
                if not isinstance(sym, str) or not sym.strip():
                    raise ConfigError(f"per_asset key {sym!r} must be a non-empty symbol")
                norm[sym.strip().upper()] = _positive(
                    f"per_asset[{sym!r}]", limit, allow_float=allow_float
                )
            put(self, "per_asset", norm or None)
        position = (
            self.max_position_amount is not None
            or self.max_position_value is not None
            or self.max_position_pct is not None
            or self.per_asset is not None
        )
        exposure = self.max_gross_exposure is not None or self.max_leverage is not None
        put(self, "_exposure", exposure)
        put(
            self,
            "_scan",
            position
            or exposure
            or self.long_only
            or self.max_open_orders is not None
            or self.allowed_assets is not None,
        )
        put(self, "_active", self._scan or self.max_order_value is not None)

    # --- config ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RiskLimits:
        """Build from a TOML/JSON mapping. Numbers may be strings, ints or floats (a float
        is read through its shortest repr, so ``0.1`` is exactly ``Decimal("0.1")``)."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"risk limits must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown risk limit(s) {unknown}; valid keys: {sorted(known)}")
        kwargs = dict(d)
        for name in _DECIMAL_FIELDS:
            if isinstance(kwargs.get(name), float):
                kwargs[name] = _positive(name, kwargs[name], allow_float=True)
        per = kwargs.get("per_asset")
        if isinstance(per, Mapping):
            kwargs["per_asset"] = {
                k: _positive(f"per_asset[{k!r}]", v, allow_float=True) for k, v in per.items()
            }
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The limits as a JSON/TOML-friendly dict (Decimals as strings, unset limits left out)."""
        out: dict[str, Any] = {}
        for name in _DECIMAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        if self.max_open_orders is not None:
            out["max_open_orders"] = self.max_open_orders
        if self.allowed_assets is not None:
            out["allowed_assets"] = sorted(self.allowed_assets)
        if self.long_only:
            out["long_only"] = True
        if self.per_asset is not None:
            out["per_asset"] = {k: str(v) for k, v in self.per_asset.items()}
        return out

    def position_amount_limit(self, symbol: str) -> Decimal | None:
        """The max |position| in units for ``symbol`` (its override, else the global one)."""
        per = self.per_asset
        if per is not None:
            limit = per.get(symbol)
            if limit is not None:
                return limit
        return self.max_position_amount

    # --- the check --------------------------------------------------------------------
    def check_order(
        self,
        asset: Asset,
        amount: Decimal,
        price: Decimal,
        positions: Mapping[Asset, Any],
        open_orders: Iterable[Any],
        portfolio_value: Decimal,
        *,
        open_book: Mapping[Asset, Any] | None = None,
        open_count: int | None = None,
        exposure: ExposureCache | None = None,
    ) -> None:
        """Raise :class:`RiskLimitExceeded` if this order would breach a limit.

        ``amount`` is signed (sell < 0); ``price`` is the order's reference price (limit
        price, else last price). ``positions`` maps Asset → object with ``.amount`` and
        ``.last_price``; ``open_orders`` yields objects with ``.asset``, ``.open_amount``
        (signed, unfilled part) and ``.limit_price`` (or None). Iterated once.
        """
        if not self._active:
            return
        symbol = asset.symbol
        mult = asset.multiplier
        limit = self.max_order_value
        if limit is not None:
            value = abs(amount) * price * mult
            if value > limit:
                raise RiskLimitExceeded(
                    f"max_order_value for {symbol}: |{amount}| × {price}"
                    f"{'' if mult == 1 else f' × multiplier {mult}'} = {value} > limit {limit}; "
                    "split the order or raise the limit"
                )
        if not self._scan:
            return

        if open_book is not None and open_count is not None:
            # The caller keeps per-asset open totals current (the blotter does): no scan.
            n_open = open_count
            mine = open_book.get(asset)
            buys, sells = (mine[0], mine[1]) if mine is not None else (_ZERO, _ZERO)
            book: dict[Asset, list[Any]] | None = (
                None if not self._exposure else {} if exposure is not None else dict(open_book)
            )
            open_orders = ()
        else:
            # one pass over open orders: count, same-asset sides, and the per-asset book
            n_open = 0
            buys = sells = _ZERO
            book = {} if self._exposure else None
        for o in open_orders:
            n_open += 1
            a = o.asset
            q = o.open_amount
            if a is asset or a == asset:
                if q > 0:
                    buys += q
                else:
                    sells += q
            if book is not None:
                entry = book.get(a)
                if entry is None:
                    entry = book[a] = [_ZERO, _ZERO, None]
                entry[0 if q > 0 else 1] += q
                ref = order_reference_price(o)
                if ref is not None and (entry[2] is None or ref > entry[2]):
                    entry[2] = ref

        limit_n = self.max_open_orders
        if limit_n is not None and n_open + 1 > limit_n:
            raise RiskLimitExceeded(
                f"max_open_orders: {n_open} open + this order = {n_open + 1} > limit {limit_n}; "
                "wait for fills or cancel open orders first"
            )

        pos = positions.get(asset)
        held = pos.amount if pos is not None else _ZERO
        if self.long_only and amount < 0 and held + sells + amount < 0:
            raise RiskLimitExceeded(
                f"long_only for {symbol}: position {held} + open sell orders {sells} + this "
                f"order {amount} = {held + sells + amount} < 0; sell at most "
                f"{max(held + sells, _ZERO)}"
            )

        pending = buys if amount > 0 else sells
        base = held + pending
        projected = base + amount
        size = abs(projected)
        if size <= abs(base):
            return  # risk-reducing: never blocked by allow-lists, size or exposure limits
        allowed = self.allowed_assets
        if allowed is not None and symbol not in allowed:
            raise RiskLimitExceeded(
                f"allowed_assets: {symbol} is not allowed (allowed: {sorted(allowed)}); "
                "orders that only reduce an existing position are still accepted"
            )

        limit = self.position_amount_limit(symbol)
        if limit is not None and size > limit:
            room = max(limit - abs(base), _ZERO) if base * amount >= 0 else limit + abs(base)
            raise RiskLimitExceeded(
                f"max_position_amount for {symbol}: "
                f"{_fmt_projection(held, pending, amount, projected)} > limit {limit}; "
                f"at most {room} more can be ordered"
            )
        value = size * price * mult
        limit = self.max_position_value
        if limit is not None and value > limit:
            raise RiskLimitExceeded(
                f"max_position_value for {symbol}: "
                f"{_fmt_projection(held, pending, amount, projected)} units × {price}"
                f"{'' if mult == 1 else f' × multiplier {mult}'} = {value} > limit {limit}"
            )
        pct = self.max_position_pct
        if pct is not None:
            if portfolio_value <= 0:
                raise RiskLimitExceeded(
                    f"max_position_pct for {symbol}: portfolio value is {portfolio_value}; "
                    "no new position can be sized against it"
                )
            cap = pct * portfolio_value
            if value > cap:
                raise RiskLimitExceeded(
                    f"max_position_pct for {symbol}: position value {value} "
                    f"({_fmt_projection(held, pending, amount, projected)} units × {price}) "
                    f"is {value / portfolio_value:.2%} of portfolio value {portfolio_value} "
                    f"> limit {pct:%} ({cap})"
                )
        if book is not None:
            if exposure is not None and open_book is not None:
                self._check_exposure_cached(
                    asset, amount, price, held, mine_entry(open_book, asset), exposure,
                    positions, open_book, portfolio_value,
                )  # fmt: skip
            else:
                self._check_exposure(asset, amount, price, positions, book, portfolio_value)

    def _check_exposure_cached(
        self,
        asset: Asset,
        amount: Decimal,
        price: Decimal,
        held: Decimal,
        entry: Any,
        exposure: ExposureCache,
        positions: Mapping[Asset, Any],
        open_book: Mapping[Asset, Any],
        portfolio_value: Decimal,
    ) -> None:
        """Same rule as :meth:`_check_exposure`, from the cache's running per-asset terms."""
        exposure.refresh(positions, open_book)
        for other in exposure.unvalued:
            if not (other is asset or other == asset):
                raise _unvalued(other)
        b, s_ = (entry[0], entry[1]) if entry is not None else (_ZERO, _ZERO)
        mult = asset.multiplier
        this_before = max(abs(held + b), abs(held + s_)) * price * mult
        if amount > 0:
            b += amount
        else:
            s_ += amount
        this_after = max(abs(held + b), abs(held + s_)) * price * mult
        gross = exposure.total - exposure.terms.get(asset, _ZERO) + this_before
        self._judge_exposure(asset, gross, this_before, this_after, portfolio_value)

    def _check_exposure(
        self,
        asset: Asset,
        amount: Decimal,
        price: Decimal,
        positions: Mapping[Asset, Any],
        book: dict[Asset, list[Any]],
        portfolio_value: Decimal,
    ) -> None:
        # One pass over positions, then over assets that only have open orders. `book` is
        # this call's own scratch dict, so popping from it is safe.
        gross = _ZERO  # worst-case gross exposure, this asset included as it stands
        this_before = _ZERO
        this_after: Decimal | None = None
        for a, pos in positions.items():
            held = pos.amount
            entry = book.pop(a, None)
            mine = a is asset or a == asset
            px = price if mine else pos.last_price
            if px is None:
                px = entry[2] if entry is not None else None
                if px is None:
                    if held == 0:
                        continue
                    raise _unvalued(a)
            mult = a.multiplier
            if entry is None:
                worst = abs(held) * px * mult
                b = s_ = _ZERO
            else:
                b, s_ = entry[0], entry[1]
                worst = max(abs(held + b), abs(held + s_)) * px * mult
            gross += worst
            if mine:
                this_before = worst
                if amount > 0:
                    b += amount
                else:
                    s_ += amount
                this_after = max(abs(held + b), abs(held + s_)) * px * mult
        for a, (b, s_, limit_px) in book.items():
            mine = a is asset or a == asset
            px = price if mine else limit_px
            if px is None:
                if b == 0 and s_ == 0:
                    continue
                raise _unvalued(a)
            mult = a.multiplier
            worst = max(b, -s_) * px * mult
            gross += worst
            if mine:
                this_before = worst
                if amount > 0:
                    b += amount
                else:
                    s_ += amount
                this_after = max(b, -s_) * px * mult
        if this_after is None:
            this_after = abs(amount) * price * asset.multiplier
        self._judge_exposure(asset, gross, this_before, this_after, portfolio_value)

    def _judge_exposure(
        self,
        asset: Asset,
        gross: Decimal,
        this_before: Decimal,
        this_after: Decimal,
        portfolio_value: Decimal,
    ) -> None:
        total = gross - this_before + this_after
        added = this_after - this_before
        limit = self.max_gross_exposure
        if limit is not None and total > limit:
            raise RiskLimitExceeded(
                f"max_gross_exposure: positions and open orders {gross} + this order on "
                f"{asset.symbol} {added} = {total} > limit {limit}"
            )
        lev = self.max_leverage
        if lev is not None:
            if portfolio_value <= 0:
                raise RiskLimitExceeded(
                    f"max_leverage: portfolio value is {portfolio_value}; no new exposure "
                    "can be taken against it"
                )
            if total > lev * portfolio_value:
                raise RiskLimitExceeded(
                    f"max_leverage: gross exposure {total} (incl. this order on "
                    f"{asset.symbol}) / portfolio value {portfolio_value} = "
                    f"{total / portfolio_value:.4f} > limit {lev}"
                )


def _unvalued(asset: Asset) -> RiskLimitExceeded:
    return RiskLimitExceeded(
        f"max_gross_exposure/max_leverage: cannot value {asset.symbol} (no last price and no "
        "limit price on its open orders); order refused until a price is known"
    )


def mine_entry(open_book: Mapping[Asset, Any], asset: Asset) -> Any:
    return open_book.get(asset)


def worst_case_term(asset: Asset, pos: Any, entry: Any) -> Decimal | None:
    """``max(|held + open buys|, |held + open sells|) × price × multiplier`` for one asset.

    Valued at the position's last price, else at a limit/stop price of its open orders;
    ``None`` when it has exposure but no price at all (the caller refuses then).
    """
    held = pos.amount if pos is not None else _ZERO
    if entry is not None:
        b, s_ = entry[0], entry[1]
    else:
        b = s_ = _ZERO
    if held == 0 and b == 0 and s_ == 0:
        return _ZERO
    px = pos.last_price if pos is not None else None
    if px is None and entry is not None:
        px = entry[2]
    if px is None:
        return None
    return max(abs(held + b), abs(held + s_)) * px * asset.multiplier


class ExposureCache:
    """Running worst-case gross exposure, kept current as things change.

    * A new mark of a held asset (every bar) adjusts that asset's term and the total by
      ``worst quantity × multiplier × price change``: :meth:`on_mark`, installed as the
      ledger's ``mark_listener``, two Decimal operations.
    * A fill, a position replaced, or an open order placed/filled/closed adds the asset
      to :attr:`dirty` (the ledger's and the blotter's ``touched`` set); :meth:`refresh`
      recomputes just those terms before the next check.

    So an order's exposure check costs O(assets whose position or orders changed since
    the last order), not O(everything held or ordered).
    """

    __slots__ = ("terms", "total", "dirty", "unvalued", "_all_dirty", "_qty_mult")

    def __init__(self) -> None:
        self.terms: dict[Asset, Decimal] = {}
        self.total = _ZERO
        self.dirty: set[Asset] = set()
        self.unvalued: set[Asset] = set()
        self._all_dirty = True
        # worst-case quantity × multiplier of assets valued at their position's mark
        self._qty_mult: dict[Asset, Decimal] = {}

    def invalidate(self) -> None:
        self._all_dirty = True

    def on_mark(self, asset: Asset, old: Decimal, new: Decimal) -> None:
        if self._all_dirty or asset in self.dirty:
            return  # recomputed from scratch at the next refresh anyway
        qm = self._qty_mult.get(asset)
        if qm is None:
            self.dirty.add(asset)
            return
        delta = qm * (new - old)
        self.terms[asset] += delta
        self.total += delta

    def refresh(self, positions: Mapping[Asset, Any], open_book: Mapping[Asset, Any]) -> None:
        dirty = self.dirty
        if self._all_dirty:
            self._all_dirty = False
            self.terms.clear()
            self.unvalued.clear()
            self._qty_mult.clear()
            self.total = _ZERO
            dirty.update(positions)
            dirty.update(open_book)
        elif not dirty:
            return
        terms, unvalued, qty_mult = self.terms, self.unvalued, self._qty_mult
        total = self.total
        zero = _ZERO
        for a in dirty:
            pos = positions.get(a)
            entry = open_book.get(a)
            old = terms.get(a, zero)
            qty_mult.pop(a, None)
            held = pos.amount if pos is not None else zero
            if entry is None:
                b = s_ = zero
            else:
                b, s_ = entry[0], entry[1]
            if not held and not b and not s_:
                new = zero
            elif pos is not None:  # a held asset is valued at its mark
                qm = max(abs(held + b), abs(held + s_)) * a.multiplier
                qty_mult[a] = qm
                new = qm * pos.last_price
            elif entry[2] is not None:  # only open orders: at their limit/stop price
                new = max(abs(b), abs(s_)) * entry[2] * a.multiplier
            else:
                new = None
            if new is None:
                unvalued.add(a)
                new = zero
            elif a in unvalued:
                unvalued.discard(a)
            if new:
                terms[a] = new
            elif old:
                del terms[a]
            total += new - old
        dirty.clear()
        self.total = total
