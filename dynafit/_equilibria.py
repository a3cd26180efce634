"""Equilibria of a model and their stability: closed form for affine and
Lotka-Volterra right-hand sides, optimistix's Newton solver for anything else."""

from __future__ import annotations

import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import sympy

from ._field import canonical_symbols
from .families._base import expanded_terms

#: Newton steps per start, and the solver's relative and absolute tolerance
NEWTON_STEPS = 50
NEWTON_TOL = 1e-10


def fixed_points(
    model: Any,
    *,
    max_subsets: int = 4096,
    starts: Any = None,
    n_starts: int = 64,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Equilibria of ``model`` with the Jacobian's eigenvalues there and stability.

    - affine right-hand side (linear family): solve A x + b = 0 (none if A is singular);
    - Lotka-Volterra form x_i (r_i + sum_j a_ij x_j): every feasible equilibrium, interior
      and boundary (each subset of surviving variables, up to ``max_subsets`` subsets);
    - a family that knows its equilibria in closed form (``family.equilibria``, the
      budget_share family's stable state): those, marked with the family's name;
    - anything else: Newton's method from ``starts`` (``(K, m)``, or random points in
      [-1, 1]^m), deduplicated, marked ``"method": "newton"``.

    Each entry: ``x`` (numpy (m,)), ``eigenvalues`` (complex (m,)), ``stable`` (all real
    parts < 0), ``feasible`` (all x >= 0), ``method``. Sorted stable first.
    """
    points = _candidate_points(model, max_subsets, starts, n_starts, seed)
    out = [_classified(model, x, method) for x, method in points if np.all(np.isfinite(x))]
    out.sort(key=lambda d: (not d["stable"], not d["feasible"]))
    return out


def _candidate_points(
    model: Any, max_subsets: int, starts: Any, n_starts: int, seed: int
) -> list[tuple[np.ndarray, str]]:
    """The states :func:`fixed_points` examines, each with the method that found it."""
    m = model.n_vars
    z = canonical_symbols(m)
    terms = list(expanded_terms(model.family, z))
    prefs = list(model.family.prefactors(z))
    xi = model.coefficients
    closed = model.family.equilibria(xi)
    if closed is not None:
        return [(np.asarray(x, dtype=np.float64), model.family.name) for x in closed]
    if not all(e.is_polynomial(*z) and sympy.Poly(e, *z).total_degree() <= 1 for e in terms):
        return _newton_points(model, starts, n_starts, seed)
    # theta(x) = c + L x  ->  Xi theta = b + A x
    lin = np.array([[float(sympy.Poly(e, *z).coeff_monomial(s)) for s in z] for e in terms])
    const = np.array([float(sympy.Poly(e, *z).coeff_monomial(1)) for e in terms])
    A, b = xi @ lin, xi @ const
    if all(p == 1 for p in prefs):
        try:
            return [(np.linalg.solve(A, -b), "linear")]
        except np.linalg.LinAlgError:
            return []
    if all(p == s for p, s in zip(prefs, z)):
        return _lotka_volterra_points(A, b, max_subsets)
    return _newton_points(model, starts, n_starts, seed)


def _lotka_volterra_points(
    A: np.ndarray, b: np.ndarray, max_subsets: int
) -> list[tuple[np.ndarray, str]]:
    """Every equilibrium of x_i (b_i + (A x)_i): for each subset S of surviving
    variables (up to ``max_subsets``), A_SS x_S = -b_S and zero elsewhere."""
    m = len(b)
    subsets = itertools.chain.from_iterable(
        itertools.combinations(range(m), k) for k in range(m + 1)
    )
    points = []
    for S in itertools.islice(subsets, max_subsets):
        x = np.zeros(m)
        if S:
            idx = list(S)
            try:
                x[idx] = np.linalg.solve(A[np.ix_(idx, idx)], -b[idx])
            except np.linalg.LinAlgError:
                continue
        points.append((x, "lotka_volterra"))
    return points


def _classified(model: Any, x: np.ndarray, method: str) -> dict[str, Any]:
    """One equilibrium with its Jacobian's eigenvalues (NaN where the field is not
    differentiable there), stability and feasibility."""
    jac = np.asarray(jax.jacfwd(lambda y: model.rhs(0.0, y))(jnp.asarray(x)), dtype=np.float64)
    eig = np.full(len(x), np.nan, dtype=np.complex128)
    if np.all(np.isfinite(jac)):
        eig = np.asarray(np.linalg.eigvals(jac), dtype=np.complex128)
    return {
        "x": x,
        "eigenvalues": eig,
        "stable": bool(np.all(np.real(eig) < 0)),
        "feasible": bool(np.all(x >= -1e-12)),
        "method": method,
    }


def _newton_points(model: Any, starts: Any, n_starts: int, seed: int) -> list:
    """Roots of the vector field by optimistix's Newton solver from every start at once
    (vmapped; at most ``NEWTON_STEPS`` steps each), kept where the residual is small and
    deduplicated."""
    m = model.n_vars
    if starts is None:
        starts = np.random.default_rng(seed).uniform(-1.0, 1.0, (n_starts, m))
    starts = np.atleast_2d(np.asarray(starts, dtype=np.float64))
    f = jax.jit(jax.vmap(lambda y: model.rhs(0.0, y)))
    x = np.asarray(_newton(model)(jnp.asarray(starts)))
    res = np.abs(np.asarray(f(jnp.asarray(x)))).max(axis=-1)
    found: list = []
    for p, r in zip(x, res):
        if (
            np.isfinite(r)
            and r < 1e-6 * (1 + np.abs(p).max())
            and not any(
                np.allclose(p, q, atol=1e-6 * (1 + math.fabs(np.abs(q).max()))) for q, _ in found
            )
        ):
            found.append((p, "newton"))
    return found


def _newton(model: Any):
    solver = optx.Newton(rtol=NEWTON_TOL, atol=NEWTON_TOL)

    def one(y0):
        sol = optx.root_find(
            lambda y, _: model.rhs(0.0, y), solver, y0, max_steps=NEWTON_STEPS, throw=False
        )
        return sol.value

    return jax.jit(jax.vmap(one))
