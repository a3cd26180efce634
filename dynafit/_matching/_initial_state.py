"""Trajectory matching that treats every point alike: the initial state fitted with the
coefficients.

A rollout from the first observation inherits that observation's noise, and on short
noisy data the first point is as noisy as the rest. As ecologists' tools do (gauseR's
``lv_optim``, deSolve-based fits), the initial state of every run is fitted together
with the coefficients of the model's support, over the whole window (the coefficients
come in matched already): the same trajectory matching as
:func:`dynafit.refine` (:func:`dynafit._matching._refine.match` with
``fit_initial_state=True``: optimistix's Levenberg-Marquardt through diffrax, in place of
the scipy least_squares this module used to run, whose finite differences of float32
rollouts barely moved the first states), each variable scaled by its
standard deviation.

Used by the short-data choice (:func:`dynafit._discovery.choose_refined`), where the
fitted initial states count as parameters in the information criterion, so they are
kept only when they pay for themselves.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._field import VectorField
from .._integrate import rollout
from ._refine import match

#: Levenberg-Marquardt iterations at most (one stage, the whole window): the cap of one
#: stage of the short-data choice's matching (600 steps over 4 stages), hence the same
#: compiled program
STEPS = 150


def match_initial_state(
    field: VectorField, xi: np.ndarray, t: np.ndarray, x: np.ndarray, *, steps: int = STEPS
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Fit the non-zero coefficients of ``xi`` (m, n) and every run's initial state to
    ``x`` (R, T, m). Returns ``(xi, x0, residuals)``: the coefficients (zeros stay zero),
    the initial states (R, m) and the data minus the rollout (R, T, m), or None for the
    residuals when the best rollout still fails."""
    x = np.asarray(x, dtype=np.float64)
    xi = np.asarray(xi, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = match(
            field, xi, t, x, horizons=[len(t) - 1], optimizer="lm", fit_initial_state=True,
            steps=steps,
        )  # fmt: skip
    ys, ok = rollout(field, np.broadcast_to(found.xi, (x.shape[0], *xi.shape)), found.x0, t)
    ys = np.asarray(ys, dtype=np.float64)
    if not np.all(ok) or not np.all(np.isfinite(ys)):
        return found.xi, found.x0, None
    return found.xi, found.x0, x - ys
