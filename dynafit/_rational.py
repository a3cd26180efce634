"""Fitting rational laws (``dynafit.families.Rational``): dx_i/dt = p_i(x) / q_i(x).

1. Denominators: every support of q_i - 1 with at most ``max_denominator_terms`` terms
   is tried. Its coefficients start from the implicit formulation (SINDy-PI's idea,
   with the constant as the left-hand term: dx_i/dt = p_i(x) - dx_i/dt * (q_i(x) - 1)
   is linear in p and q) and are then fitted on the explicit law p_i / q_i (scipy's
   ``least_squares``, the numerator solved linearly for each q: the implicit form
   alone is biased by noise in dx/dt on both sides). Each candidate is judged by the explicit law p_i / q_i on held-out blocks of every run (the
   derivative error there; every fifth block of 10 samples); candidates whose q_i comes near zero on the data are
   refused. The sparsest candidate within ``DENOMINATOR_TOLERANCE`` of the best
   held-out error wins (q_i = 1, the polynomial, is always a candidate).
2. With q fixed, g_i = 1 / q_i is the family's prefactor and the numerators are fitted by
   the sparse stages of every term-library fit (selection, rollout check, weak form on
   noisy data); ``dynafit.fit`` dispatches here by ``Fitting.RATIONAL``.

pysindy's ``SINDyPI`` needs cvxpy (not a dependency of dynafit).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import scipy.optimize

from ._derivatives import differentiate
from ._field import canonical_symbols, vector_field
from ._model import Model
from ._parts import Stages, fit_sparse
from ._parts._derivative import AbstractDerivative
from ._trajectory import Trajectory
from .families.library import Library
from .families.rational import Rational

#: the held-out band of the denominator choice (relative to the best candidate's error)
DENOMINATOR_TOLERANCE = 0.1
#: q_i must stay above this on every sample
MIN_DENOMINATOR = 0.05
#: most denominator supports of one size tried (else the size is lowered)
MAX_SUPPORTS = 200


def fit_rational(traj: Trajectory, family: Rational, stages: Stages) -> Model:
    """Fit ``family`` to ``traj``: the denominators (unless the family fixes them), then
    the numerators by the sparse stages (``stages``, as for every term-library family).
    ``model.options["denominator_search"]`` records the search."""
    family.validate(traj.x, traj.names)
    record: dict[str, Any] = {}
    if family.denominators is None:
        b, record = find_denominators(traj, family, stages.derivative.resolve(traj))
        family = family.with_denominators(b)
    z = canonical_symbols(traj.n_vars)
    prefs = family.prefactors(z)
    fixed = Library(
        family.terms(z),
        z,
        prefactors=None if all(p == 1 for p in prefs) else prefs,
        name=family.name,
    )
    numer = fit_sparse(traj, fixed, stages)
    return Model(
        family,
        traj.names,
        numer.coefficients,
        {**numer.options, "denominator_search": record},
        numer.sweep,
    )


def find_denominators(
    traj: Trajectory, family: Rational, derivative: AbstractDerivative
) -> tuple[list[list[float]], dict[str, Any]]:
    """The denominators' coefficients b (m rows), chosen as the module docstring says;
    ``derivative`` is the resolved derivative part of the fit."""
    x = traj.x if traj.is_batch else traj.x[None]
    R, T, m = x.shape
    method = derivative.method
    dx = differentiate(
        x,
        traj.t,
        method,
        order=derivative.derivative_order,
        window=derivative.derivative_window,
    )
    # held out: every fifth block of 10 samples (interleaved, so that a run settling to
    # an equilibrium keeps informative rows on both sides)
    test = np.zeros((R, T), dtype=bool)
    test[:, (np.arange(T) // 10) % 5 == 4] = True
    keep = np.ones((R, T), dtype=bool)
    if method == "forward":  # the last row repeats a difference
        keep[:, -1] = False
    X = x.reshape(-1, m).astype(np.float64)[keep.ravel()]
    D = dx.reshape(-1, m)[keep.ravel()]
    test = test.ravel()[keep.ravel()]
    train = ~test
    if train.sum() < 4 or test.sum() < 2:
        raise ValueError(f"too few points ({X.shape[0]}) to choose rational denominators")
    z = canonical_symbols(m)
    theta = vector_field(Rational(family.degree, family.denominator_degree), m).theta_np(X)
    phi_terms = family.denominator_terms(z)
    phi = vector_field(Library(phi_terms, z, name="denominator"), m).theta_np(X)
    p = phi.shape[1]
    k_max = min(family.max_denominator_terms, p)
    while k_max > 1 and math.comb(p, k_max) > MAX_SUPPORTS:
        k_max -= 1  # many variables: fewer denominator terms at once
    supports = [()] + [
        tuple(c) for k in range(1, k_max + 1) for c in itertools.combinations(range(p), k)
    ]
    rows, info = [], []
    for i in range(m):
        y = D[:, i]
        var = float(np.var(y)) or 1.0
        scored = []
        for sup in supports:
            b = _denominator(theta[train], phi[train][:, sup], y[train], MIN_DENOMINATOR)
            if b is None:
                continue
            full = np.zeros(p)
            full[list(sup)] = b
            q = 1.0 + phi @ full
            if np.min(q) <= MIN_DENOMINATOR:
                continue
            a = np.linalg.lstsq(theta[train] / q[train, None], y[train], rcond=None)[0]
            err = float(np.mean((theta[test] @ a / q[test] - y[test]) ** 2) / var)
            scored.append((len(sup), err, full))
        best = min(e for _, e, _ in scored)
        band = best * (1 + DENOMINATOR_TOLERANCE) + 1e-10
        n_b, err, b = min((s for s in scored if s[1] <= band), key=lambda s: (s[0], s[1]))
        rows.append([float(v) for v in b])
        info.append({"n_denominator_terms": n_b, "heldout_error": err, "candidates": len(scored)})
    return rows, {"derivative": derivative.label, "equations": info}


def _denominator(
    theta: np.ndarray, phi: np.ndarray, y: np.ndarray, min_q: float
) -> np.ndarray | None:
    """Coefficients b of q = 1 + phi b on one support: started from the implicit least
    squares (y = theta a - y phi b), then the explicit law's residual theta a / q - y is
    minimised over b by scipy's ``least_squares`` with a solved linearly for each b
    (variable projection). None when no admissible start exists."""
    if phi.shape[1] == 0:
        return np.zeros(0)
    A = np.hstack([theta, -y[:, None] * phi])
    c = np.linalg.lstsq(A, y, rcond=None)[0]
    b0 = c[theta.shape[1] :]
    if not np.all(np.isfinite(b0)):
        return None
    if np.min(1.0 + phi @ b0) <= min_q:
        b0 = np.zeros_like(b0)
    scale = np.sqrt(np.mean(y**2)) or 1.0

    def resid(b: np.ndarray) -> np.ndarray:
        q = 1.0 + phi @ b
        if np.min(q) <= min_q:
            return np.full(y.shape, 1e3)
        cols = theta / q[:, None]
        a = np.linalg.lstsq(cols, y, rcond=None)[0]
        return (cols @ a - y) / scale

    sol = scipy.optimize.least_squares(resid, b0, method="trf", max_nfev=200)
    b = sol.x
    if not np.all(np.isfinite(b)) or np.min(1.0 + phi @ b) <= min_q:
        return None
    return b
