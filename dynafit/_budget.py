"""Fitting the shared-budget family (:class:`dynafit.families.BudgetShare`) and reading
its stable state.

    Z = sum_j w_j x_j^g,    dx_i/dt = E w_i x_i^g / Z - lam x_i

:func:`fit_budget` (what ``dynafit.fit(traj, BudgetShare(...))`` runs, as the family's
``fitting`` is ``Fitting.BUDGET``):

1. Only the recent part of the window is used (``start`` of the part
   ``parts.BudgetLeastSquares``, a fraction of the window skipped, 0.5 by default): in training runs the first tens of steps are a transient
   every circle shares (the loss falls to ~0), which this law does not describe.
2. Derivatives by the derivative part (as for every family), on that recent part.
3. A linear start: dx_i/dt = e_i - lam x_i by least squares (one decay shared by all,
   a constant inflow per variable); then w_i = e_i / x_i(end)^g, E = sum_i e_i.
4. Nonlinear least squares (scipy's ``least_squares``, at most ``max_nfev``
   evaluations) of the derivatives over log w (m), log E and log lam; w is normalised
   to mean 1.

:func:`budget_state` gives the stable state in closed form and the variables above the
paper's survival threshold there: the count the law predicts.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import scipy.optimize

from ._derivatives import differentiate
from ._model import Model
from ._parts import BudgetLeastSquares, Stages
from ._survival import survival_threshold
from ._trajectory import Trajectory
from .families.budget_share import BudgetShare


def fit_budget(traj: Trajectory, family: BudgetShare, stages: Stages) -> Model:
    """Fit ``family`` to ``traj`` (one run, or a batch sharing one model) on the recent
    part of its window with ``stages`` (a derivative part and ``BudgetLeastSquares``);
    see the module docstring."""
    regression = stages.regression
    if not isinstance(regression, BudgetLeastSquares):
        raise ValueError(f"the budget fit needs BudgetLeastSquares, got {regression!r}")
    family.validate(traj.x, traj.names)
    t_all = traj.t
    t_from = float(t_all[0] + regression.start * (t_all[-1] - t_all[0]))
    part = traj.window(t_from, float(t_all[-1]))
    x = part.x if part.is_batch else part.x[None]
    R, T, m = x.shape
    if T < 5:
        raise ValueError(
            f"the recent part of the window ({t_from:g}..{t_all[-1]:g}) holds {T} times; "
            "the budget fit needs at least 5 (lower start= or give a longer window)"
        )
    derivative = stages.derivative.resolve(part)
    t0 = time.perf_counter()
    dxdt = differentiate(
        x,
        part.t,
        derivative.method,
        order=derivative.derivative_order,
        window=derivative.derivative_window,
    )
    xs = x.reshape(-1, m).astype(np.float64)
    ds = dxdt.reshape(-1, m).astype(np.float64)
    if derivative.method == "forward":  # the last row repeats a difference
        keep = np.ones((R, T), dtype=bool)
        keep[:, -1] = False
        xs, ds = xs[keep.ravel()], ds[keep.ravel()]
    g = family.gamma
    w, budget, decay = _least_squares(xs, ds, g, x[:, -1].mean(axis=0), int(regression.max_nfev))
    requested = stages.derivative.label
    record: dict[str, Any] = {
        "derivative": derivative.label,
        **({"derivative_requested": requested} if requested != derivative.label else {}),
        "order": int(derivative.derivative_order),
        "optimizer": "least_squares",
        "n_runs": traj.n_runs,
        "t_range": [t_from, float(t_all[-1])],
        "window_start": float(t_all[0]),
        "start": float(regression.start),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    fam = family.with_weights(w)
    return Model(fam, traj.names, fam.coefficient_matrix(budget, decay, m), record)


def _least_squares(x, d, g: float, x_end, nfev: int) -> tuple[np.ndarray, float, float]:
    """(w normalised to mean 1, E, lam) fitting d ~ E w x^g / (x^g @ w) - lam x."""
    N, m = x.shape
    # linear start: d_i = e_i - lam x_i with one lam
    A = np.zeros((N * m, m + 1))
    rows = np.arange(N * m)
    A[rows, rows % m] = 1.0
    A[:, m] = -x.ravel()
    sol = np.linalg.lstsq(A, d.ravel(), rcond=None)[0]
    e0, lam0 = sol[:m], float(sol[m])
    floor = 1e-3 * max(float(np.abs(e0).max()), 1e-300)
    e0 = np.maximum(e0, floor)
    lam0 = lam0 if lam0 > 0 else float(np.mean(np.abs(d)) / max(float(np.mean(x)), 1e-300))
    scale = float(np.sqrt(np.mean(d**2))) or 1.0
    xg = x**g

    def unpack(p):
        lw = p[:m] - p[:m].mean()
        return np.exp(lw), math.exp(p[m]), math.exp(p[m + 1])

    def residual(p):
        w, budget, decay = unpack(p)
        share = xg * w
        return ((budget * share / share.sum(axis=1, keepdims=True) - decay * x - d) / scale).ravel()

    eye = np.eye(m)

    def jacobian(p):  # the shares are a softmax in log w: d s_ni / d lw_k = s_ni (1_ik - s_nk)
        w, budget, decay = unpack(p)
        share = xg * w
        share = share / share.sum(axis=1, keepdims=True)  # (N, m)
        jw = budget * share[:, :, None] * (eye[None] - share[:, None, :])  # (N, m, m)
        out = np.concatenate([jw, (budget * share)[:, :, None], (-decay * x)[:, :, None]], axis=2)
        return out.reshape(N * m, m + 2) / scale

    p0 = np.concatenate(
        [np.log(e0 / np.maximum(x_end, 1e-300) ** g), [math.log(e0.sum())], [math.log(lam0)]]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = scipy.optimize.least_squares(
            residual,
            p0,
            jac=jacobian,  # pyright: ignore[reportArgumentType]  (scipy's stubs: str only)
            method="trf",
            max_nfev=nfev,
        )
    p = fit.x if np.all(np.isfinite(fit.x)) and fit.cost <= 0.5 * np.sum(residual(p0) ** 2) else p0
    w, budget, decay = unpack(p)
    w = w / w.mean()
    return w, budget, decay


def budget_state(model: Any, *, s0: float = 0.0) -> dict[str, Any]:
    """The stable state of a :class:`~dynafit.families.BudgetShare` model and what it
    says about survival.

    Returns a dict: ``state`` (m,) x_i* = (E / lam) w_i^(1/(1-g)) / sum_j w_j^(1/(1-g));
    ``share`` (m,) x_i* / sum_j x_j*; ``threshold`` the paper's survival threshold there
    (S_0 = ``s0``); ``survivors`` the names above it and ``count`` their number;
    ``budget`` E, ``decay`` lam, ``total`` E / lam. ``ValueError`` for another family.
    """
    fam = getattr(model, "family", None)
    if not isinstance(fam, BudgetShare):
        raise ValueError(
            f"budget_state needs a model of the budget_share family, got "
            f"{getattr(fam, 'name', type(model).__name__)!r}"
        )
    m = model.n_vars
    xi = np.asarray(model.coefficients)
    state = fam.stable_state(xi)
    decay = float(-xi[0, m])
    total = float(state.sum())
    share = state / total
    level = float(survival_threshold(state, s0))
    alive = [n for n, v in zip(model.names, state) if v > level]
    return {
        "state": state,
        "share": share,
        "threshold": level,
        "survivors": alive,
        "count": len(alive),
        "budget": total * decay,
        "decay": decay,
        "total": total,
    }
