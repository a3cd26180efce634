"""Trajectory matching that treats every point alike: the initial state fitted with the
coefficients.

A rollout from the first observation inherits that observation's noise, and on short
noisy data the first point is as noisy as the rest. As ecologists' tools do (gauseR's
``lv_optim``, deSolve-based fits), the initial state of every run is fitted together
with the coefficients of the model's support: scipy's ``least_squares`` (trust-region
reflective, finite-difference Jacobian) on the rollout residuals, each variable scaled
by its standard deviation, with the rollouts integrated by dynafit's diffrax solver
(:func:`dynafit._integrate.rollout`, one vmapped solve per evaluation).

Used by the short-data choice (:func:`dynafit._discovery.choose_refined`), where the
fitted initial states count as parameters in the information criterion, so they are
kept only when they pay for themselves.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import least_squares

from .._field import VectorField
from .._integrate import rollout

#: residual of a rollout that failed (in units of each variable's standard deviation)
FAILED = 1e3


def match_initial_state(
    field: VectorField, xi: np.ndarray, t: np.ndarray, x: np.ndarray, *, max_nfev: int = 200
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Fit the non-zero coefficients of ``xi`` (m, n) and every run's initial state to
    ``x`` (R, T, m). Returns ``(xi, x0, residuals)``: the coefficients (zeros stay zero),
    the initial states (R, m) and the data minus the rollout (R, T, m), or None for the
    residuals when the best rollout still fails."""
    x = np.asarray(x, dtype=np.float64)
    R, T, m = x.shape
    xi = np.asarray(xi, dtype=np.float64)
    support = np.flatnonzero(xi.ravel() != 0)
    sd = x.reshape(-1, m).std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    c = np.abs(xi.ravel()[support])
    x00 = x[:, 0, :].copy()

    def unpack(p):
        flat = xi.ravel().copy()
        flat[support] = xi.ravel()[support] + c * p[: support.size]
        return flat.reshape(xi.shape), x00 + sd * p[support.size :].reshape(R, m)

    def residuals(p):
        xi_p, x0 = unpack(p)
        ys, ok = rollout(field, np.broadcast_to(xi_p, (R, *xi.shape)), x0, t)
        ys = np.asarray(ys, dtype=np.float64)
        res = (x - ys) / sd
        res = np.where(np.isfinite(res), res, FAILED)
        if not np.all(ok):
            res[~np.asarray(ok)] = FAILED
        return res.ravel()

    p0 = np.zeros(support.size + R * m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = least_squares(residuals, p0, method="trf", x_scale=1.0, max_nfev=max_nfev)
    best = sol.x if sol.cost <= 0.5 * np.sum(residuals(p0) ** 2) else p0
    xi_b, x0_b = unpack(best)
    ys, ok = rollout(field, np.broadcast_to(xi_b, (R, *xi.shape)), x0_b, t)
    ys = np.asarray(ys, dtype=np.float64)
    if not np.all(ok) or not np.all(np.isfinite(ys)):
        return xi_b, x0_b, None
    return xi_b, x0_b, x - ys
