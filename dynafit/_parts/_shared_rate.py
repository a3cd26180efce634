"""Fitting the shared-rate families (``dynafit.families.AbstractSharedRateFamily``):

    dx_i/dt = e_i + g_i(x) * (c_i + d_i x_i + sum_k u_ik Q_k),    Q_k = sum_j v_kj x_j

1. Derivatives by the derivative part (as for every family).
2. Least squares on the derivatives: with the weights v fixed, each equation is a
   linear least-squares problem in its 2 + K coefficients (columns
   ``g_i * (1, x_i, Q)``); v is fitted by variable projection (scipy's
   ``least_squares`` on the residual left after those are solved for each v). The
   start is v = 1 (the plain total) and, for K > 1, the leading singular vectors of
   the off-diagonal part of a dense least-squares fit (reduced-rank regression).
   Families whose weights are fixed (mean field) need the linear step only.
3. Trajectory matching (the ``Matching`` part: ``steps``, 400 by default; 0 or
   ``matching=None`` skips it): every parameter, v included, moves to
   minimise the error of the integrated trajectory over the whole window and every run
   (``dynafit._matching._rollout_opt.optimise_rollout``: optax through diffrax, multiple shooting
   on a curriculum of growing horizons); the result is checked with the model's own
   integrator and kept only where it rolls out closer to the data than the start. The
   vector field it integrates is generated from the family's sympy terms
   (:func:`dynafit._field.shared_field`), with the weights v as an argument.
"""

from __future__ import annotations

import functools
import time
import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize

from .._derivatives import differentiate
from .._field import shared_field
from .._integrate import rollout
from .._matching._refine import _auto_horizons
from .._matching._rollout_opt import Stop, make_optimizer, optimise_rollout, resolve_horizons
from .._model import Model
from .._score import r2
from .._trajectory import Trajectory
from ..families._shared_rate import AbstractSharedRateFamily
from ._derivative import AbstractDerivative
from ._matching import Matching
from ._regression import SharedRate
from ._stages import Stages


def fit_shared_rate(traj: Trajectory, family: AbstractSharedRateFamily, stages: Stages) -> Model:
    """Fit ``family`` (a shared-rate family) to ``traj`` (one run, or a batch sharing one
    model) with ``stages`` (derivative, ``SharedRate``, matching); see the module
    docstring."""
    regression, matching = stages.regression, stages.matching
    assert isinstance(regression, SharedRate)
    x = traj.x if traj.is_batch else traj.x[None]
    R, T, m = x.shape
    family.validate(traj.x, traj.names)
    if matching is not None and matching.steps > 0:
        resolve_horizons(matching.horizons, T)
    if R * T < 3 + family.rank:
        raise ValueError(
            f"too few points ({R * T}) for the {family.name!r} family's {2 + family.rank} "
            "coefficients per equation"
        )
    derivative = stages.derivative.resolve(traj)
    t0 = time.perf_counter()
    model, rows = least_squares(traj, family, derivative, regression, stages.derivative.label)
    seconds = time.perf_counter() - t0
    if matching is None or matching.steps == 0:
        return model
    return match_trajectory(model, traj, family, matching, rows, seconds)


def least_squares(
    traj: Trajectory,
    family: AbstractSharedRateFamily,
    derivative: AbstractDerivative,
    regression: SharedRate,
    requested: str,
) -> tuple[Model, tuple]:
    """The derivative fit: per equation least squares, v by variable projection. Returns
    the Model and what trajectory matching starts from (parameters, rows, prefactors)."""
    x = traj.x if traj.is_batch else traj.x[None]
    R, T, m = x.shape
    order = derivative.derivative_order
    dxdt = differentiate(
        x, traj.t, derivative.method, order=order, window=derivative.derivative_window
    )
    flat_x = x.reshape(-1, m).astype(np.float64)
    flat_d = dxdt.reshape(-1, m)
    if derivative.method == "forward":  # the last row repeats a difference: leave it out
        keep = np.ones((R, T), dtype=bool)
        keep[:, -1] = False
        flat_x, flat_d = flat_x[keep.ravel()], flat_d[keep.ravel()]
    g = flat_x if family.per_capita else np.ones_like(flat_x)
    competitive = regression.competitive
    if competitive is None:
        competitive = bool(family.per_capita)
    e, c, d, U, V = _als(flat_x, flat_d, g, family, int(regression.als_iter), competitive)
    record: dict[str, Any] = {
        "derivative": derivative.label,
        **({"derivative_requested": requested} if requested != derivative.label else {}),
        "order": int(order),
        "optimizer": "als" if family.learn_weights else "lstsq",
        "n_runs": traj.n_runs,
        "t_range": [float(traj.t[0]), float(traj.t[-1])],
        "rank": int(family.rank),
        "competitive": competitive,
    }
    if derivative.method == "smoothed":
        record["window"] = derivative.derivative_window
    model = _model(family, traj.names, e, c, d, U, V, record)
    return model, ((e, c, d, U, V), flat_x, g, competitive, record)


def match_trajectory(
    model: Model,
    traj: Trajectory,
    family: AbstractSharedRateFamily,
    matching: Matching,
    rows: tuple,
    seconds_ls: float,
) -> Model:
    """Trajectory matching of every parameter (v included) from the derivative fit; the
    result is kept only where its rollout is closer to the data than the start's."""
    p0, flat_x, g, competitive, record = rows
    x = traj.x if traj.is_batch else traj.x[None]
    R, T, m = x.shape
    start_ys, start_r2 = _rollout_runs(model, x, traj.t)
    hs = matching.horizons
    if isinstance(hs, str) and hs == "auto":  # shorter first where the start blows up
        hs = _auto_horizons(start_ys, x, T)
    units = _units(family, x, traj.t, flat_x, g, p0)
    optimizer = make_optimizer(matching.optimizer, float(matching.lr))
    if competitive:  # the signs of the derivative fit hold: e >= 0, d <= 0, U <= 0, V >= 0
        lower, upper = _sign_bounds(p0)
        optimizer = _projected(
            optimizer,
            [_free_bound(b, a, u) for b, a, u in zip(lower, p0, units)],
            [_free_bound(b, a, u) for b, a, u in zip(upper, p0, units)],
        )
    res = optimise_rollout(
        _matching_field(family, m),
        _to_params,
        tuple(jnp.zeros_like(jnp.asarray(a)) for a in p0),
        traj.t,
        x,
        aux=(p0, units),
        steps=int(matching.steps),
        lr=float(matching.lr),
        horizons=hs,
        optimizer=optimizer,
        rtol=matching.rtol,
        atol=matching.atol,
        max_steps=matching.max_steps,
        scale=_scale(x),
        time_limit=matching.time_limit,
    )
    found = [a + u * np.asarray(p, dtype=np.float64) for a, u, p in zip(p0, units, res.params)]
    if competitive:  # the float32 iterate sits on its bound; in float64 land exactly on it
        found = [np.clip(a, lo, hi) for a, lo, hi in zip(found, lower, upper)]
    improved, new_r2 = False, start_r2
    if res.best_step > 0 and all(np.all(np.isfinite(a)) for a in found):
        cand = _model(family, traj.names, *found, record)
        _, cand_r2 = _rollout_runs(cand, x, traj.t)
        if cand_r2 > start_r2 or (not np.isfinite(start_r2) and np.isfinite(cand_r2)):
            improved, new_r2, model = True, cand_r2, cand
    if res.stop is Stop.NON_FINITE:
        warnings.warn(f"trajectory matching stopped early: {res.stopped}", RuntimeWarning, 3)
    info = {
        "steps": int(matching.steps),
        "steps_run": int(res.steps_run),
        "best_step": int(res.best_step) if improved else 0,
        "lr": float(matching.lr),
        "start_rollout_r2": float(start_r2) if np.isfinite(start_r2) else None,
        "rollout_r2": float(new_r2) if np.isfinite(new_r2) else None,
        "improved": improved,
        "stopped": res.stopped,
        "seconds": round(res.seconds + seconds_ls, 3),
    }
    return model.with_coefficients(model.coefficients, variant="matched", refine=info)


def _scale(x: np.ndarray) -> np.ndarray:
    scale = np.sqrt(np.mean(x**2, axis=(0, 1)))
    return np.where(scale > 0, scale, 1.0)


def _units(family, x, t, flat_x, g, p0) -> tuple:
    """The size of one unit of each free parameter: C = scale_i / (span * rms(g_i theta))."""
    e, c, d, U, V = p0
    m, K = U.shape
    span = float(t[-1] - t[0])
    scale = _scale(x)
    q = flat_x @ V.T  # (N, K)
    gg = g if family.per_capita else np.ones_like(flat_x)

    def unit(col: np.ndarray) -> np.ndarray:
        rms = np.sqrt(np.mean(col**2, axis=0))
        return np.where((rms > 0) & np.isfinite(rms), scale / (span * np.where(rms > 0, rms, 1)), 0)

    e_unit = unit(np.ones_like(flat_x)) if family.offset else np.zeros(m)
    u_unit = np.stack([unit(gg * q[:, [k]]) for k in range(K)], axis=1)  # (m, K)
    if family.learn_weights:
        v_unit = np.broadcast_to(np.abs(V).mean(axis=1, keepdims=True), V.shape).copy()
    else:
        v_unit = np.zeros_like(V)
    return (e_unit, unit(gg), unit(gg * flat_x), u_unit, v_unit)


def _sign_bounds(p0: tuple) -> tuple[tuple, tuple]:
    """Competitive signs: e >= 0, d <= 0, U <= 0, V >= 0 (c free)."""
    e, c, d, U, V = p0
    m, K = U.shape
    inf = np.inf
    lower = (np.zeros(m), np.full(m, -inf), np.full(m, -inf), np.full((m, K), -inf), V * 0)
    upper = (np.full(m, inf), np.full(m, inf), np.zeros(m), np.zeros((m, K)), V * 0 + inf)
    return lower, upper


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


def _matching_field(family: AbstractSharedRateFamily, m: int):
    """``field(x, (e, c, d, U, V))``: dx/dt of ``family``'s model with those parameters,
    generated from its sympy terms (:func:`dynafit._field.shared_field`); the
    coefficients placed into Xi as ``family.coefficient_matrix`` places them."""
    ids = family.coefficient_matrix(
        np.arange(1, m + 1),
        np.arange(m + 1, 2 * m + 1),
        np.arange(2 * m + 1, 3 * m + 1),
        np.arange(3 * m + 1, 3 * m + 1 + m * family.rank).reshape(m, family.rank),
    )
    rows, cols = np.nonzero(ids)
    src = (ids[rows, cols] - 1).astype(int)
    return _field_of(
        shared_field(family, m), ids.shape, rows.tobytes(), cols.tobytes(), src.tobytes()
    )


@functools.lru_cache(maxsize=32)
def _field_of(vf, shape, rows_b, cols_b, src_b):
    """One function object per library and placement (trajectory matching reuses its
    compilation)."""
    rows, cols, src = (np.frombuffer(b, dtype=np.int64) for b in (rows_b, cols_b, src_b))

    def field(x, p):
        e, c, d, U, V = p
        flat = jnp.concatenate([e, c, d, U.ravel()])
        xi = jnp.zeros(shape, dtype=flat.dtype).at[rows, cols].set(flat[src])
        return vf(x, xi, V)

    return field
