"""The vector field of a family: theta(x) and g(x) lambdified once from its sympy terms.

    dx_i/dt = g_i(x) * sum_k Xi[i, k] * theta_k(x)

One compiled function per family and variable count, in JAX (for the solvers) and in
numpy float64 (for regression and scores); Xi is an argument, so models of one family
share it and vmap over Xi.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import sympy
from jaxtyping import Array, Float

from .families._base import AbstractFamily, expanded_terms


def canonical_symbols(m: int) -> tuple[sympy.Symbol, ...]:
    """Positional symbols z0..z{m-1}: what the compiled functions are keyed on."""
    return tuple(sympy.Symbol(f"z{i}") for i in range(m))


class VectorField:
    """theta(x) and g(x) lambdified once from a family's sympy terms, for m variables.

    ``field(x, Xi) = g(x) * (Xi @ theta(x))`` for ``x`` of shape ``(..., m)`` and ``Xi`` of
    shape ``(m, n_terms)`` (or ``(R, m, n_terms)`` against ``x`` of shape ``(R, T, m)``). Get instances through :func:`vector_field` (cached).
    """

    def __init__(self, terms: tuple[sympy.Expr, ...], prefactors: tuple[sympy.Expr, ...], m: int):
        z = canonical_symbols(m)
        self.m = m
        self.n_terms = len(terms)
        self.terms = terms
        self.prefactors = prefactors
        self.g_is_one = all(p == 1 for p in prefactors)
        self._theta_jax = sympy.lambdify(z, list(terms), modules="jax")
        # monomial libraries (every family shipped): theta as products of gathered
        # columns, a graph of a few ops instead of one op per term, which XLA compiles in
        # a fraction of the time for wide libraries (465 quadratic terms at m = 29)
        factors = _monomial_factors(terms, z)
        self._factors = None if factors is None else np.asarray(factors, dtype=np.int32)
        self._g_jax = sympy.lambdify(z, list(prefactors), modules="jax")
        self._theta_np = sympy.lambdify(z, list(terms), modules="numpy")
        self._g_np = sympy.lambdify(z, list(prefactors), modules="numpy")

    @staticmethod
    def _stack(cols: Sequence[Any], x: Any, xp: Any) -> Any:
        shape = x.shape[:-1]
        return xp.stack([xp.broadcast_to(xp.asarray(c, dtype=x.dtype), shape) for c in cols], -1)

    def theta(self, x: Float[Array, "... m"]) -> Float[Array, "... n_terms"]:  # noqa: F722
        if self._factors is not None:
            padded = jnp.concatenate([x, jnp.ones_like(x[..., :1])], axis=-1)
            return jnp.prod(padded[..., self._factors], axis=-1)
        return self._stack(self._theta_jax(*[x[..., i] for i in range(self.m)]), x, jnp)

    def g(self, x: Float[Array, "... m"]) -> Float[Array, "... m"]:  # noqa: F722
        if self.g_is_one:
            return jnp.ones_like(x)
        return self._stack(self._g_jax(*[x[..., i] for i in range(self.m)]), x, jnp)

    def __call__(self, x: Float[Array, "... m"], xi: Float[Array, "m n_terms"]) -> Array:  # noqa: F722
        out = self.theta(x) @ jnp.swapaxes(xi, -1, -2)
        return out if self.g_is_one else self.g(x) * out

    def theta_np(self, x: np.ndarray) -> np.ndarray:
        """theta(x) in numpy float64 (for regression)."""
        x = np.asarray(x, dtype=np.float64)
        return self._stack(self._theta_np(*[x[..., i] for i in range(self.m)]), x, np)

    def g_np(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.g_is_one:
            return np.ones_like(x)
        return self._stack(self._g_np(*[x[..., i] for i in range(self.m)]), x, np)


#: above this total degree theta is lambdified term by term
MAX_GATHER_DEGREE = 4


def _monomial_factors(terms: Sequence[sympy.Expr], z: Sequence[sympy.Symbol]) -> list | None:
    """Each term as the indices of its factors (repeated by power; index ``m`` pads with
    1), or None when a term is not a monomial of unit coefficient in ``z``."""
    m = len(z)
    rows = []
    for term in terms:
        if term == 1:
            rows.append([])
            continue
        try:
            poly = sympy.Poly(term, *z)
        except sympy.PolynomialError:
            return None
        if len(poly.terms()) != 1 or poly.coeffs()[0] != 1:
            return None
        (exps,) = poly.monoms()
        rows.append([i for i, e in enumerate(exps) for _ in range(e)])
    degree = max((len(r) for r in rows), default=0)
    if degree == 0 or degree > MAX_GATHER_DEGREE:
        return None
    return [r + [m] * (degree - len(r)) for r in rows]


@functools.lru_cache(maxsize=128)
def _vector_field_cached(terms, prefactors, m) -> VectorField:
    return VectorField(terms, prefactors, m)


def vector_field(family: AbstractFamily, m: int) -> VectorField:
    """The compiled vector field of ``family`` for ``m`` variables (one per library)."""
    z = canonical_symbols(m)
    terms = expanded_terms(family, z)  # shared quantities substituted
    prefactors = tuple(sympy.sympify(e) for e in family.prefactors(z))
    if len(prefactors) != m:
        raise ValueError(
            f"family {family.name!r} gives {len(prefactors)} prefactors for {m} variables"
        )
    if not terms:
        raise ValueError(f"family {family.name!r} has an empty library")
    return _vector_field_cached(terms, prefactors, m)


class SharedField:
    """A family's vector field with its shared quantities' weights as an argument:

        dx/dt = g(x) * (Xi @ theta(x, Q)),    Q = V @ x

    ``theta`` and ``g`` lambdified (JAX) from the family's own sympy terms over the
    variables and the shared symbols (:meth:`AbstractFamily.shared`, before substitution),
    so that trajectory matching can move the weights ``V`` (K, m) together with ``Xi``.
    Get instances through :func:`shared_field` (cached).
    """

    def __init__(
        self, terms: tuple[sympy.Expr, ...], prefactors: tuple[sympy.Expr, ...], m: int, k: int
    ):
        z = canonical_symbols(m)
        q = tuple(sympy.Symbol(f"q{i}") for i in range(k))
        self.m, self.k, self.n_terms = m, k, len(terms)
        self.g_is_one = all(p == 1 for p in prefactors)
        self._theta = sympy.lambdify((*z, *q), list(terms), modules="jax")
        self._g = sympy.lambdify(z, list(prefactors), modules="jax")

    def __call__(
        self, x: Float[Array, " m"], xi: Float[Array, "m n_terms"], v: Float[Array, "k m"]
    ) -> Array:  # noqa: F722
        q = v @ x
        cols = self._theta(*[x[i] for i in range(self.m)], *[q[i] for i in range(self.k)])
        theta = VectorField._stack(cols, x, jnp)
        out = xi @ theta
        if self.g_is_one:
            return out
        return VectorField._stack(self._g(*[x[i] for i in range(self.m)]), x, jnp) * out


@functools.lru_cache(maxsize=32)
def _shared_field_cached(terms, prefactors, m, k) -> SharedField:
    return SharedField(terms, prefactors, m, k)


def shared_field(family: AbstractFamily, m: int) -> SharedField:
    """The vector field of ``family`` for ``m`` variables with its shared quantities kept
    as symbols (their weights an argument): one compiled function per library."""
    z = canonical_symbols(m)
    shared = [sym for sym, _ in family.shared(z)]
    q = tuple(sympy.Symbol(f"q{i}") for i in range(len(shared)))
    sub = dict(zip(shared, q))
    terms = tuple(sympy.sympify(e).xreplace(sub) for e in family.terms(z))
    prefactors = tuple(sympy.sympify(e) for e in family.prefactors(z))
    return _shared_field_cached(terms, prefactors, m, len(q))
