"""Fitting the shared-rate families (``dynafit.families.AbstractSharedRateFamily``):

    dx_i/dt = e_i + g_i(x) * (c_i + d_i x_i + sum_k u_ik Q_k),    Q_k = sum_j v_kj x_j

1. Derivatives as ``dynafit.fit`` estimates them (``_derivatives``).
2. Least squares on the derivatives: with the weights v fixed, each equation is a
   linear least-squares problem in its 2 + K coefficients (columns
   ``g_i * (1, x_i, Q)``); v is fitted by variable projection (scipy's
   ``least_squares`` on the residual left after those are solved for each v). The
   start is v = 1 (the plain total) and, for K > 1, the leading singular vectors of
   the off-diagonal part of a dense least-squares fit (reduced-rank regression).
   Families whose weights are fixed (mean field) need the linear step only.
3. Trajectory matching (``steps``, 400 by default; 0 skips it): every parameter, v included, moves to
   minimise the error of the integrated trajectory over the whole window and every run
   (``dynafit._matching._rollout_opt.optimise_rollout``: optax through diffrax, multiple shooting
   on a curriculum of growing horizons); the result is checked with the model's own
   integrator and kept only where it rolls out closer to the data than the start.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize

from ._derivatives import check_method, differentiate, resolve
from ._fit import OWN_FITS
from ._integrate import rollout
from ._matching._refine import _auto_horizons
from ._matching._rollout_opt import make_optimizer, optimise_rollout, resolve_horizons
from ._model import Model
from ._score import r2
from ._trajectory import Trajectory
from .families._shared_rate import AbstractSharedRateFamily

#: options of the shared-rate fit and their defaults
STRUCTURED_OPTIONS: dict[str, Any] = {
    "order": None,  # finite-difference order (None: 4 on clean data, as dynafit.fit)
    "window": None,  # Savitzky-Golay window for "smoothed"
    # d_i <= 0 and u_ik <= 0 in the derivative fit (self-limitation and competition,
    # which keep a Lotka-Volterra rollout bounded); None: for the per-capita families
    "competitive": None,
    "als_iter": 10,  # weight fit: at most this many x (rank x m + 1) residual evaluations
    "steps": 400,  # trajectory-matching steps (0: the derivative fit only)
    "lr": 1e-2,
    "horizons": "auto",
    "optimizer": "adam",
    "time_limit": None,  # seconds for the trajectory matching
    "rtol": 1e-5,
    "atol": 1e-7,
    "max_steps": 4096,
}


def fit_structured(
    traj: Trajectory, family: AbstractSharedRateFamily, derivative: str = "auto", **options: Any
) -> Model:
    """Fit ``family`` (a shared-rate family) to ``traj`` (one run, or a batch sharing
    one model); see the module docstring. ``options``: :data:`STRUCTURED_OPTIONS`."""
    unknown = sorted(set(options) - set(STRUCTURED_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for the {family.name!r} family; valid options are "
            f"derivative and {sorted(STRUCTURED_OPTIONS)}"
        )
    opts = {**STRUCTURED_OPTIONS, **options}
    steps = opts["steps"]
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    als = opts["als_iter"]
    if isinstance(als, bool) or not isinstance(als, (int, np.integer)) or als < 1:
        raise ValueError(f"als_iter must be a positive int, got {als!r}")
    lr = opts["lr"]
    if (
        isinstance(lr, bool)
        or not isinstance(lr, (int, float))
        or not (math.isfinite(lr) and lr > 0)
    ):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    tl = opts["time_limit"]
    if tl is not None and not (isinstance(tl, (int, float)) and math.isfinite(tl) and tl > 0):
        raise ValueError(f"time_limit must be a positive number of seconds, got {tl!r}")
    make_optimizer(opts["optimizer"], float(lr))
    check_method(derivative)

    x = traj.x if traj.is_batch else traj.x[None]
    R, T, m = x.shape
    family.validate(traj.x, traj.names)
    if steps > 0:
        resolve_horizons(opts["horizons"], T)
    K = family.rank
    if R * T < 3 + K:
        raise ValueError(
            f"too few points ({R * T}) for the {family.name!r} family's {2 + K} coefficients "
            "per equation"
        )
    requested = derivative
    derivative = resolve(derivative, traj.x, traj.t)
    order = opts["order"]
    if order is None:
        order = 4 if requested == "auto" and derivative == "centered" and T >= 11 else 2
    t0 = time.perf_counter()
    dxdt = differentiate(x, traj.t, derivative, order=order, window=opts["window"])
    flat_x = x.reshape(-1, m).astype(np.float64)
    flat_d = dxdt.reshape(-1, m)
    if derivative == "forward":  # the last row repeats a difference: leave it out
        keep = np.ones((R, T), dtype=bool)
        keep[:, -1] = False
        flat_x, flat_d = flat_x[keep.ravel()], flat_d[keep.ravel()]
    g = flat_x if family.per_capita else np.ones_like(flat_x)
    competitive = opts["competitive"]
    if competitive is None:
        competitive = bool(family.per_capita)
    if not isinstance(competitive, bool):
        raise ValueError(f"competitive must be True, False or None, got {competitive!r}")
    e, c, d, U, V = _als(flat_x, flat_d, g, family, int(als), competitive)
    seconds_ls = time.perf_counter() - t0

    record: dict[str, Any] = {
        "derivative": derivative,
        **({"derivative_requested": requested} if requested != derivative else {}),
        "order": int(order),
        "optimizer": "als" if family.learn_weights else "lstsq",
        "n_runs": traj.n_runs,
        "t_range": [float(traj.t[0]), float(traj.t[-1])],
        "rank": int(K),
        "competitive": competitive,
    }
    if derivative == "smoothed":
        record["window"] = opts["window"]
    model = _model(family, traj.names, e, c, d, U, V, record)
    if steps == 0:
        return model

    # ---- trajectory matching: every parameter, through diffrax
    start_ys, start_r2 = _rollout_runs(model, x, traj.t)
    hs = opts["horizons"]
    if isinstance(hs, str) and hs == "auto":  # shorter first where the start blows up
        hs = _auto_horizons(start_ys, x, T)
    span = float(traj.t[-1] - traj.t[0])
    scale = np.sqrt(np.mean(x**2, axis=(0, 1)))
    scale = np.where(scale > 0, scale, 1.0)
    q = flat_x @ V.T  # (N, K)
    gg = g if family.per_capita else np.ones_like(flat_x)

    def unit(col: np.ndarray) -> np.ndarray:  # C = scale_i / (span * rms(g_i theta))
        rms = np.sqrt(np.mean(col**2, axis=0))
        return np.where((rms > 0) & np.isfinite(rms), scale / (span * np.where(rms > 0, rms, 1)), 0)

    e_unit = unit(np.ones_like(flat_x)) if family.offset else np.zeros(m)
    c_unit = unit(gg)
    d_unit = unit(gg * flat_x)
    u_unit = np.stack([unit(gg * q[:, [k]]) for k in range(K)], axis=1)  # (m, K)
    if family.learn_weights:
        v_unit = np.broadcast_to(np.abs(V).mean(axis=1, keepdims=True), V.shape).copy()
    else:
        v_unit = np.zeros_like(V)
    p0 = (e, c, d, U, V)
    units = (e_unit, c_unit, d_unit, u_unit, v_unit)
    optimizer = make_optimizer(opts["optimizer"], float(lr))
    if competitive:  # the signs of the derivative fit hold: e >= 0, d <= 0, U <= 0, V >= 0
        inf = np.inf
        lower = (np.zeros(m), np.full(m, -inf), np.full(m, -inf), np.full((m, K), -inf), V * 0)
        upper = (np.full(m, inf), np.full(m, inf), np.zeros(m), np.zeros((m, K)), V * 0 + inf)
        optimizer = _projected(
            optimizer,
            [_free_bound(b, a, u) for b, a, u in zip(lower, p0, units)],
            [_free_bound(b, a, u) for b, a, u in zip(upper, p0, units)],
        )
    res = optimise_rollout(
        _field(bool(family.per_capita)),
        _to_params,
        tuple(jnp.zeros_like(jnp.asarray(a)) for a in p0),
        traj.t,
        x,
        aux=(p0, units),
        steps=int(steps),
        lr=float(lr),
        horizons=hs,
        optimizer=optimizer,
        rtol=opts["rtol"],
        atol=opts["atol"],
        max_steps=opts["max_steps"],
        scale=scale,
        time_limit=tl,
    )
    found = [a + u * np.asarray(p, dtype=np.float64) for a, u, p in zip(p0, units, res.params)]
    if competitive:  # the float32 iterate sits on its bound; in float64 land exactly on it
        found = [np.clip(a, lo, hi) for a, lo, hi in zip(found, lower, upper)]
    improved = False
    new_r2 = start_r2
    if res.best_step > 0 and all(np.all(np.isfinite(a)) for a in found):
        cand = _model(family, traj.names, *found, record)
        _, cand_r2 = _rollout_runs(cand, x, traj.t)
        if cand_r2 > start_r2 or (not np.isfinite(start_r2) and np.isfinite(cand_r2)):
            improved, new_r2, model = True, cand_r2, cand
    if res.stopped is not None and res.stopped.startswith("non-finite"):
        warnings.warn(f"trajectory matching stopped early: {res.stopped}", RuntimeWarning, 2)
    info = {
        "steps": int(steps),
        "steps_run": int(res.steps_run),
        "best_step": int(res.best_step) if improved else 0,
        "lr": float(lr),
        "start_rollout_r2": float(start_r2) if np.isfinite(start_r2) else None,
        "rollout_r2": float(new_r2) if np.isfinite(new_r2) else None,
        "improved": improved,
        "stopped": res.stopped,
        "seconds": round(res.seconds + seconds_ls, 3),
    }
    return model.with_coefficients(model.coefficients, variant="matched", refine=info)


def _rollout_runs(model: Model, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
    """``model``'s rollouts from every run's first state of ``x`` (R, T, m), and their
    rollout R^2 averaged over runs and variables."""
    xi = np.broadcast_to(model.coefficients, (x.shape[0], *model.coefficients.shape))
    ys, _ = rollout(model.field, xi, x[:, 0], t)
    return ys, float(np.mean(r2(x, ys)))


def _model(family, names, e, c, d, U, V, record) -> Model:
    """The Model of coefficients ``e, c, d`` (m,), ``U`` (m, K) and weights ``V`` (K, m),
    with v normalised (each row to mean 1, or largest magnitude 1 where the mean is
    small) and U scaled to match: the same vector field, readable shared quantities."""
    m, K = U.shape
    V = np.array(V, dtype=np.float64)
    U = np.array(U, dtype=np.float64)
    if family.learn_weights:
        for k in range(K):
            mean, big = V[k].mean(), np.abs(V[k]).max()
            s = mean if abs(mean) > 0.1 * big else big
            if s != 0 and np.isfinite(s):
                V[k] /= s
                U[:, k] *= s
    xi = family.coefficient_matrix(e, c, d, U)
    fam = family.with_weights(V) if family.learn_weights else family
    return Model(fam, names, xi, record)


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _per_equation(x, dxdt, g, V, competitive: bool = False, offset: bool = False):
    """With weights V fixed: per equation, least squares of dx_i/dt on (1,) g_i (1, x_i,
    Q) (the first 1 with the offset); ``competitive``: e_i >= 0, d_i <= 0 and u_ik <= 0
    (scipy's bounded ``lsq_linear``). Returns (e, c, d, U)."""
    N, m = x.shape
    K = V.shape[0]
    q = x @ V.T
    e, c, d, U = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros((m, K))
    j = int(offset)
    lower = np.concatenate([np.zeros(j), [-np.inf], np.full(1 + K, -np.inf)])
    upper = np.concatenate([np.full(j, np.inf), [np.inf], np.zeros(1 + K)])
    ones = np.ones((N, 1))
    for i in range(m):
        cols = g[:, [i]] * np.concatenate([ones, x[:, [i]], q], axis=1)
        if offset:
            cols = np.concatenate([ones, cols], axis=1)
        s = np.sqrt(np.mean(cols**2, axis=0))
        s = np.where(s > 0, s, 1.0)
        w = _lstsq(cols / s, dxdt[:, i])
        if competitive and (np.any(w > upper) or np.any(w < lower)):
            sol = scipy.optimize.lsq_linear(cols / s, dxdt[:, i], bounds=(lower, upper))
            w = np.where(sol.active_mask != 0, 0.0, sol.x)  # on a bound: exactly 0
        w = w / s
        if offset:
            e[i] = w[0]
        c[i], d[i], U[i] = w[j], w[j + 1], w[j + 2 :]
    return e, c, d, U


def _als(x, dxdt, g, family: AbstractSharedRateFamily, n_iter: int, competitive: bool = False):
    """Coefficients (c, d, U) and weights V on the derivatives.

    For fixed V the coefficients are linear least squares (:func:`_per_equation`); V
    itself is fitted by variable projection: scipy's ``least_squares`` (trust-region
    reflective) on the residual that remains after the coefficients are solved for the
    current V, ``n_iter`` x (K m + 1) residual evaluations at most (about ``n_iter``
    Jacobians). Inside, the coefficients are unconstrained; ``competitive`` signs are
    imposed on the final solve for the fitted V.
    """
    N, m = x.shape
    K = family.rank
    offset = bool(family.offset)
    V = family.weight_matrix(m).copy() if family.weights is not None else np.ones((K, m))
    if family.learn_weights and family.weights is None and K > 1:
        # reduced-rank start: the off-diagonal part of a dense least-squares fit of the
        # rates, B = A - diag(A); its leading right singular vectors after the total
        N1 = np.concatenate([np.ones((N, 1)), x], axis=1)
        A = np.stack([_lstsq(g[:, [i]] * N1, dxdt[:, i])[1:] for i in range(m)])
        B = A - np.diag(np.diag(A))
        _, _, vt = np.linalg.svd(B)
        V[1:] = vt[: K - 1] * np.sqrt(m)
        V = np.abs(V) if competitive else V
    if family.learn_weights:
        if competitive:  # a feasible start for non-negative weights
            V = np.maximum(V, 1e-3 * max(float(np.abs(V).max()), 1e-300))
        scale = np.sqrt(np.mean(dxdt**2, axis=0))
        scale = np.where(scale > 0, scale, 1.0)

        def residual(v: np.ndarray) -> np.ndarray:
            W = v.reshape(K, m)
            # unconstrained inside (fast); the signs are imposed on the final solve
            e, c, d, U = _per_equation(x, dxdt, g, W, False, offset)
            return ((dxdt - e - g * (c + d * x + (x @ W.T) @ U.T)) / scale).ravel()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sol = scipy.optimize.least_squares(
                residual,
                V.ravel(),
                method="trf",
                max_nfev=n_iter * (K * m + 1),
                x_scale="jac",
                # competition draws on the shared quantities with non-negative weights
                bounds=(0.0, np.inf) if competitive else (-np.inf, np.inf),
            )
        if np.all(np.isfinite(sol.x)) and sol.cost <= 0.5 * np.sum(residual(V.ravel()) ** 2):
            V = sol.x.reshape(K, m)
    e, c, d, U = _per_equation(x, dxdt, g, V, competitive, offset)
    return e, c, d, U, V


def _free_bound(bound: np.ndarray, start: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """A bound on a coefficient as a bound on its free parameter P (coefficient =
    start + unit * P); unbounded where the unit is 0 (the coefficient does not move)."""
    with np.errstate(all="ignore"):
        out = (bound - start) / unit
    return np.where((unit > 0) & ~np.isnan(out), out, np.nan)


def _projected(opt: optax.GradientTransformation, lower: list, upper: list):
    """``opt`` followed by projection of the parameters onto the box [lower, upper]
    (NaN: no bound): an optax transformation whose updates keep every iterate feasible."""
    lo = tuple(jnp.asarray(np.where(np.isnan(b), -np.inf, b)) for b in lower)
    hi = tuple(jnp.asarray(np.where(np.isnan(b), np.inf, b)) for b in upper)

    def update(updates, state, params=None):
        updates, state = opt.update(updates, state, params)
        new = tuple(
            jnp.clip(p + u, a.astype(p.dtype), b.astype(p.dtype)) - p
            for p, u, a, b in zip(params, updates, lo, hi)
        )
        return new, state

    return optax.GradientTransformation(opt.init, update)


def _to_params(params: Any, aux: Any) -> Any:
    """(e, c, d, U, V) = start + unit * free parameters."""
    p0, units = aux
    return tuple(a + u * p for a, u, p in zip(p0, units, params))


@functools.cache
def _field(per_capita: bool):
    """``field(x, (e, c, d, U, V))``: dx/dt of the shared-rate form (one object per form,
    so that trajectory matching reuses its compilation)."""

    def field(x, p):
        e, c, d, U, V = p
        rate = c + d * x + U @ (V @ x)
        return e + (x * rate if per_capita else rate)

    return field


OWN_FITS[AbstractSharedRateFamily] = fit_structured
