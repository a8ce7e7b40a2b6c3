"""Pipeline terms: factors (numbers per asset), filters (booleans per asset) and columns.

A term is evaluated for one *as-of* row of the engine's daily matrices (the last completed
session) and answers a 1-D ``float64`` (factor) or ``bool`` (filter) array over the
engine's assets. Windowed terms (:class:`CustomFactor`) get their inputs as 2-D arrays,
``window_length`` rows (oldest first) by assets, exactly as zipline's ``compute(today,
assets, out, *inputs)`` does; a term used as another term's input is evaluated on each row
of that window. Results are memoised per (term, row) inside one engine.

What is supported (the zipline subset): ``CustomFactor`` (``inputs``, ``window_length``,
``mask``, ``compute``), ``.latest`` of a column, factor arithmetic (``+ - * /`` with
factors or numbers, unary ``-``), comparisons (``< <= > >= == !=``) giving filters,
``top``/``bottom``/``rank``/``zscore``/``demean``/``isnan``/``notnan``, and filters combined
with ``&``, ``|`` and ``~``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rustybt.exceptions import ConfigError

if TYPE_CHECKING:
    from rustybt.pipeline.engine import EvalContext


class Term:
    """Base of every pipeline expression."""

    window_length: int = 0
    #: May this term's values be fed, as a window, to another term?
    window_safe: bool = False

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        raise NotImplementedError

    def evaluate(self, ctx: EvalContext, row: int) -> np.ndarray:
        """Values at ``row`` of the engine's daily matrices (memoised)."""
        key = (id(self), row)
        cached = ctx.memo.get(key)
        if cached is None:
            # The entry holds the term itself, so its id cannot be reused by a new term
            # while the entry lives.
            cached = ctx.memo[key] = (self, self._compute(ctx, row))
        return cached[1]


def _check_mask(mask: Any) -> Filter | None:
    if mask is None or isinstance(mask, Filter):
        return mask
    raise ConfigError(f"mask={mask!r} must be a pipeline Filter, e.g. factor.notnan()")


def _term(value: Any) -> Term:
    if isinstance(value, Term):
        return value
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        return Constant(float(value))
    raise ConfigError(
        f"cannot combine a pipeline term with {value!r}; use a number or another factor"
    )


class Factor(Term):
    """A number per asset. Arithmetic gives factors, comparisons give filters."""

    window_safe = True

    # --- arithmetic -------------------------------------------------------------------
    def _binary(self, other: Any, op: Callable[[Any, Any], Any], swap: bool = False) -> Factor:
        other_term = _term(other)
        left, right = (other_term, self) if swap else (self, other_term)
        return BinaryFactor(left, right, op)

    def __add__(self, other: Any) -> Factor:
        return self._binary(other, operator.add)

    def __radd__(self, other: Any) -> Factor:
        return self._binary(other, operator.add, swap=True)

    def __sub__(self, other: Any) -> Factor:
        return self._binary(other, operator.sub)

    def __rsub__(self, other: Any) -> Factor:
        return self._binary(other, operator.sub, swap=True)

    def __mul__(self, other: Any) -> Factor:
        return self._binary(other, operator.mul)

    def __rmul__(self, other: Any) -> Factor:
        return self._binary(other, operator.mul, swap=True)

    def __truediv__(self, other: Any) -> Factor:
        return self._binary(other, operator.truediv)

    def __rtruediv__(self, other: Any) -> Factor:
        return self._binary(other, operator.truediv, swap=True)

    def __neg__(self) -> Factor:
        return BinaryFactor(Constant(0.0), self, operator.sub)

    # --- comparisons ------------------------------------------------------------------
    def _compare(self, other: Any, op: Callable[[Any, Any], Any]) -> Filter:
        return Comparison(self, _term(other), op)

    def __lt__(self, other: Any) -> Filter:  # type: ignore[override]
        return self._compare(other, operator.lt)

    def __le__(self, other: Any) -> Filter:  # type: ignore[override]
        return self._compare(other, operator.le)

    def __gt__(self, other: Any) -> Filter:  # type: ignore[override]
        return self._compare(other, operator.gt)

    def __ge__(self, other: Any) -> Filter:  # type: ignore[override]
        return self._compare(other, operator.ge)

    def eq(self, other: Any) -> Filter:
        """Equal to ``other`` (zipline spells it ``==``; both work)."""
        return self._compare(other, operator.eq)

    def __eq__(self, other: Any) -> Filter:  # type: ignore[override]
        return self.eq(other)

    def __ne__(self, other: Any) -> Filter:  # type: ignore[override]
        return self._compare(other, operator.ne)

    __hash__ = Term.__hash__

    # --- cross-sectional methods ------------------------------------------------------
    def top(self, N: int, mask: Filter | None = None) -> Filter:
        """True for the ``N`` largest values (NaN never counts)."""
        return _Extreme(self, _check_n(N), _check_mask(mask), largest=True)

    def bottom(self, N: int, mask: Filter | None = None) -> Filter:
        """True for the ``N`` smallest values (NaN never counts)."""
        return _Extreme(self, _check_n(N), _check_mask(mask), largest=False)

    def rank(
        self, method: str = "ordinal", ascending: bool = True, mask: Filter | None = None
    ) -> Factor:
        """1-based rank among the non-NaN values (``method='ordinal'``: ties by position)."""
        if method != "ordinal":
            raise ConfigError(f"rank(method={method!r}) is not supported; use 'ordinal'")
        return _Rank(self, ascending, _check_mask(mask))

    def zscore(self, mask: Filter | None = None) -> Factor:
        """``(x − mean) / std`` across assets (population std), NaN ignored."""
        return _Normalize(self, _check_mask(mask), scale=True)

    def demean(self, mask: Filter | None = None) -> Factor:
        """``x − mean`` across assets, NaN ignored."""
        return _Normalize(self, _check_mask(mask), scale=False)

    def __and__(self, other: Any) -> Filter:
        raise ConfigError(
            "& and | combine filters, not factors; compare first, e.g. (rsi > 50) & (rsi < 70)"
        )

    __or__ = __and__

    def isnan(self) -> Filter:
        return _Nan(self, want_nan=True)

    def notnan(self) -> Filter:
        return _Nan(self, want_nan=False)


class Filter(Term):
    """A boolean per asset; combine with ``&``, ``|`` and ``~``."""

    window_safe = True

    def __and__(self, other: Any) -> Filter:
        return _Logic(self, _filter(other), operator.and_)

    def __or__(self, other: Any) -> Filter:
        return _Logic(self, _filter(other), operator.or_)

    def __invert__(self) -> Filter:
        return _Not(self)


def _filter(value: Any) -> Filter:
    if isinstance(value, Filter):
        return value
    raise ConfigError(f"{value!r} is not a pipeline Filter; combine filters with & | ~")


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise ConfigError(f"top/bottom need a positive int N, got {n!r}")
    return int(n)


# --- leaves -------------------------------------------------------------------------
class Constant(Factor):
    def __init__(self, value: float) -> None:
        self.value = value

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        return np.full(ctx.n_assets, self.value)


class BoundColumn:
    """A column of a dataset (``USEquityPricing.close``): usable as an input and ``.latest``."""

    window_safe = True

    def __init__(self, dataset: str, name: str) -> None:
        self.dataset = dataset
        self.name = name

    @property
    def latest(self) -> Factor:
        """The column's value on the last completed session."""
        return Latest(inputs=[self])

    def window(self, ctx: EvalContext, row: int, length: int) -> np.ndarray | None:
        if row - length + 1 < 0:
            return None
        return ctx.matrix(self.name)[row - length + 1 : row + 1]

    def __repr__(self) -> str:
        return f"{self.dataset}.{self.name}"


# --- windowed factors ---------------------------------------------------------------
class CustomFactor(Factor):
    """zipline's ``CustomFactor``: override ``compute(self, today, assets, out, *inputs)``.

    ``inputs`` (columns or window-safe terms) and ``window_length`` come from the class or
    the constructor; ``mask`` limits the assets (others are NaN). Each input arrives as a
    ``window_length × assets`` float array, oldest row first; ``out`` is filled in place.
    Before ``window_length`` sessions of history exist, the factor is NaN.
    """

    inputs: Sequence[Any] = ()
    window_length: int = 0
    mask: Filter | None = None

    def __init__(
        self,
        inputs: Sequence[Any] | None = None,
        window_length: int | None = None,
        mask: Filter | None = None,
        **params: Any,
    ) -> None:
        if inputs is not None:
            self.inputs = tuple(inputs)
        if window_length is not None:
            self.window_length = window_length
        self.mask = _check_mask(mask if mask is not None else type(self).mask)
        for key, value in params.items():
            setattr(self, key, value)
        name = type(self).__name__
        if not self.inputs:
            raise ConfigError(f"{name} needs inputs=, e.g. [USEquityPricing.close]")
        wl = self.window_length
        if isinstance(wl, bool) or not isinstance(wl, int) or wl <= 0:
            raise ConfigError(f"{name} needs a positive int window_length, got {wl!r}")
        for term in self.inputs:
            if not getattr(term, "window_safe", False):
                raise ConfigError(
                    f"{name} input {term!r} is not window-safe; use a dataset column or a "
                    "factor such as Returns"
                )

    def compute(self, today: Any, assets: Any, out: np.ndarray, *inputs: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define compute()")

    def _window(self, term: Any, ctx: EvalContext, row: int) -> np.ndarray | None:
        n = self.window_length
        if isinstance(term, BoundColumn):
            return term.window(ctx, row, n)
        if row - n + 1 < 0:
            return None
        return np.vstack([term.evaluate(ctx, r) for r in range(row - n + 1, row + 1)])

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        out = np.full(ctx.n_assets, np.nan)
        windows = [self._window(term, ctx, row) for term in self.inputs]
        if any(w is None for w in windows):
            return out
        with np.errstate(divide="ignore", invalid="ignore"):
            self.compute(ctx.today(row), ctx.assets_index, out, *windows)
        if self.mask is not None:
            out[~self.mask.evaluate(ctx, row)] = np.nan
        return out


class Latest(CustomFactor):
    """The input column's last value (``column.latest``)."""

    window_length = 1

    def compute(self, today: Any, assets: Any, out: np.ndarray, data: np.ndarray) -> None:
        out[:] = data[-1]


# --- derived terms ------------------------------------------------------------------
class BinaryFactor(Factor):
    def __init__(self, left: Term, right: Term, op: Callable[[Any, Any], Any]) -> None:
        self.left, self.right, self.op = left, right, op

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.op(self.left.evaluate(ctx, row), self.right.evaluate(ctx, row))
        return np.asarray(out, dtype=float)


class Comparison(Filter):
    def __init__(self, left: Term, right: Term, op: Callable[[Any, Any], Any]) -> None:
        self.left, self.right, self.op = left, right, op

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.asarray(
                self.op(self.left.evaluate(ctx, row), self.right.evaluate(ctx, row)), dtype=bool
            )


def _usable(values: np.ndarray, mask: Filter | None, ctx: EvalContext, row: int) -> np.ndarray:
    ok = ~np.isnan(values)
    if mask is not None:
        ok &= mask.evaluate(ctx, row)
    return ok


class _Extreme(Filter):
    def __init__(self, factor: Factor, n: int, mask: Filter | None, largest: bool) -> None:
        self.factor, self.n, self.mask, self.largest = factor, n, mask, largest

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        values = self.factor.evaluate(ctx, row)
        ok = _usable(values, self.mask, ctx, row)
        idx = np.flatnonzero(ok)
        keyed = -values[idx] if self.largest else values[idx]
        chosen = idx[np.argsort(keyed, kind="stable")[: self.n]]
        out = np.zeros(ctx.n_assets, dtype=bool)
        out[chosen] = True
        return out


class _Rank(Factor):
    def __init__(self, factor: Factor, ascending: bool, mask: Filter | None) -> None:
        self.factor, self.ascending, self.mask = factor, ascending, mask

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        values = self.factor.evaluate(ctx, row)
        ok = _usable(values, self.mask, ctx, row)
        idx = np.flatnonzero(ok)
        keyed = values[idx] if self.ascending else -values[idx]
        order = idx[np.argsort(keyed, kind="stable")]
        out = np.full(ctx.n_assets, np.nan)
        out[order] = np.arange(1, len(order) + 1, dtype=float)
        return out


class _Normalize(Factor):
    def __init__(self, factor: Factor, mask: Filter | None, scale: bool) -> None:
        self.factor, self.mask, self.scale = factor, mask, scale

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        values = self.factor.evaluate(ctx, row)
        ok = _usable(values, self.mask, ctx, row)
        out = np.full(ctx.n_assets, np.nan)
        if not ok.any():
            return out
        chosen = values[ok]
        centred = chosen - chosen.mean()
        if self.scale:
            std = chosen.std()
            centred = centred / std if std > 0 else np.full_like(centred, np.nan)
        out[ok] = centred
        return out


class _Nan(Filter):
    def __init__(self, factor: Factor, want_nan: bool) -> None:
        self.factor, self.want_nan = factor, want_nan

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        nan = np.isnan(self.factor.evaluate(ctx, row))
        return nan if self.want_nan else ~nan


class _Logic(Filter):
    def __init__(self, left: Filter, right: Filter, op: Callable[[Any, Any], Any]) -> None:
        self.left, self.right, self.op = left, right, op

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        return self.op(self.left.evaluate(ctx, row), self.right.evaluate(ctx, row))


class _Not(Filter):
    def __init__(self, inner: Filter) -> None:
        self.inner = inner

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        return ~self.inner.evaluate(ctx, row)


class CustomFilter(Filter):
    """A filter from ``compute(self, today, assets, out, *inputs)`` (``out`` is bool)."""

    inputs: Sequence[Any] = ()
    window_length: int = 0

    def __init__(
        self, inputs: Sequence[Any] | None = None, window_length: int | None = None
    ) -> None:
        self._factor = _FilterAdapter(self, inputs, window_length)

    def compute(self, today: Any, assets: Any, out: np.ndarray, *inputs: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define compute()")

    def _compute(self, ctx: EvalContext, row: int) -> np.ndarray:
        values = self._factor.evaluate(ctx, row)
        return np.nan_to_num(values, nan=0.0).astype(bool)


class _FilterAdapter(CustomFactor):
    def __init__(self, owner: CustomFilter, inputs: Any, window_length: Any) -> None:
        self._owner = owner
        super().__init__(
            inputs if inputs is not None else type(owner).inputs,
            window_length if window_length is not None else type(owner).window_length,
        )

    def compute(self, today: Any, assets: Any, out: np.ndarray, *inputs: np.ndarray) -> None:
        flags = np.zeros(out.shape, dtype=bool)
        self._owner.compute(today, assets, flags, *inputs)
        out[:] = flags
