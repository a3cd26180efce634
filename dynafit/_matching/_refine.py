"""``dynafit.refine``: improve a fitted model's rollout by gradient descent through diffrax.

SINDy fits derivatives one step at a time; integrated over a long window its model may
drift or blow up. ``refine`` starts from the model's coefficients and minimises the
error of the integrated trajectory (multiple shooting over a curriculum of growing
horizons, ending on the whole window) with optax, differentiating through diffrax.
Zeros stay zero unless ``keep_support=False``. The result is the best iterate by the
full-window rollout error, the starting model included, checked once more with the
model's own integrator: refinement never makes the rollout worse.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import diffrax
import jax.numpy as jnp
import numpy as np
import optax

from .._field import VectorField
from .._integrate import rollout
from .._model import Model
from .._score import r2
from .._trajectory import Trajectory
from ._rollout_opt import (
    RolloutResult,
    Stop,
    make_adjoint,
    make_optimizer,
    optimise_rollout,
    resolve_horizons,
)

#: ``optimizer="auto"`` uses Levenberg-Marquardt up to this many free coefficients: its
#: Jacobian costs one forward-mode solve per coefficient per iteration, against one
#: reverse-mode gradient per optax step, and it needs tens of iterations, not hundreds
LM_MAX_PARAMS = 64


def _affine_xi(params: Any, aux: Any) -> Any:
    """Xi = Xi0 + C * P: ``aux = (Xi0, C)``, C zero where a coefficient is held fixed."""
    xi0, c = aux
    return xi0 + c * params


@dataclasses.dataclass
class Matched:
    """What :func:`match` found: the coefficients (zeros stay zero where the support is
    kept), every run's first state (the observed one unless fitted), the optimiser's
    record, the curriculum, the optimiser used and the number of coefficients moved."""

    xi: np.ndarray
    x0: np.ndarray
    result: RolloutResult
    horizons: list[int]
    optimizer: str | optax.GradientTransformation
    n_moved: int


def _units(field: VectorField, x: np.ndarray, span: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-variable scale (m,) and the move of coefficient (i, k) per unit of its
    parameter, ``scale_i / (span * rms(g_i theta_k))`` over the data (m, n): one unit
    moves a coefficient by its typical effect over the window."""
    m = x.shape[-1]
    scale = np.sqrt(np.mean(x**2, axis=(0, 1)))
    scale = np.where(scale > 0, scale, 1.0)
    flat = x.reshape(-1, m)
    with np.errstate(all="ignore"):
        sens = field.g_np(flat)[:, :, None] * field.theta_np(flat)[:, None, :]
        rms = np.sqrt(np.mean(sens**2, axis=0))
        c = np.where((rms > 0) & np.isfinite(rms), scale[:, None] / (span * rms), 0.0)
    return scale, c


def match(
    field: VectorField,
    xi0: np.ndarray,
    t: np.ndarray,
    x: np.ndarray,
    *,
    horizons: Any = "auto",
    optimizer: str | optax.GradientTransformation = "auto",
    keep_support: bool = True,
    fit_initial_state: bool = False,
    start_ys: np.ndarray | None = None,
    **options: Any,
) -> Matched:
    """Trajectory matching of the coefficients ``xi0`` (m, n) of ``field`` to ``x``
    (R, T, m): the primitive under :func:`refine` and the short-data choice. Every
    support of one family and size shares the same compiled programs (the support is a
    mask over the full coefficient matrix, data, not shape). ``options`` go to
    :func:`optimise_rollout` (steps, lr, adjoint, tolerances, time_limit)."""
    R, T, _ = x.shape
    if start_ys is None:
        start_ys, _ = rollout(field, np.broadcast_to(xi0, (R, *xi0.shape)), x[:, 0], t)
    hs = resolve_horizons(_auto_horizons(start_ys, x, T) if _is_auto(horizons) else horizons, T)
    scale, c = _units(field, x, float(t[-1] - t[0]))
    if keep_support:
        c = np.where(xi0 != 0, c, 0.0)
    if _is_auto(optimizer):
        optimizer = "lm" if np.count_nonzero(c) <= LM_MAX_PARAMS else "adam"
    res = optimise_rollout(
        field, _affine_xi, jnp.zeros_like(jnp.asarray(xi0)), t, x,
        aux=(xi0, c), horizons=hs, optimizer=optimizer, scale=scale,
        fit_x0=fit_initial_state, **options,
    )  # fmt: skip
    params, x0 = res.params, x[:, 0]
    if fit_initial_state:
        params, dz0 = params
        x0 = x[:, 0] + np.asarray(dz0, dtype=np.float64) * scale
    xi = xi0 + c * np.asarray(params, dtype=np.float64)
    if keep_support:
        xi = np.where(xi0 != 0, xi, 0.0)
    return Matched(xi, x0, res, hs, optimizer, int(np.count_nonzero(c)))


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == "auto"


def _check(model: Any, traj: Any, **args: Any) -> None:
    """ValueError for a bad argument of :func:`refine`, before any integration."""
    if not isinstance(model, Model):
        raise ValueError(f"refine needs a dynafit Model, got {type(model).__name__}")
    if not isinstance(traj, Trajectory):
        raise ValueError(f"refine needs a dynafit.Trajectory, got {type(traj).__name__}")
    if not np.all(np.isfinite(np.asarray(model.coefficients, dtype=np.float64))):
        raise ValueError("cannot refine a model with non-finite coefficients")
    for name in ("fit_initial_state", "keep_support"):
        if not isinstance(args[name], bool):
            raise ValueError(f"{name} must be True or False, got {args[name]!r}")
    limit = args["time_limit"]
    if limit is not None and not (math.isfinite(limit) and limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds, got {limit!r}")
    missing = [n for n in model.names if n not in traj.names]
    if missing:
        raise ValueError(f"traj lacks the model's variables {missing} (it has {traj.names})")
    if traj.n_times < 3:
        raise ValueError(f"refine needs at least 3 time points, got {traj.n_times}")
    _check_optimiser(**{k: args[k] for k in ("steps", "lr", "horizons", "adjoint", "optimizer")})
    if not _is_auto(args["horizons"]):
        resolve_horizons(args["horizons"], traj.n_times)


def _check_optimiser(steps: Any, lr: Any, horizons: Any, adjoint: Any, optimizer: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if (
        isinstance(lr, bool)
        or not isinstance(lr, (int, float))
        or not (math.isfinite(lr) and lr > 0)
    ):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    make_adjoint(adjoint)
    if not (isinstance(optimizer, str) and optimizer in ("lm", "auto")):
        make_optimizer(optimizer, float(lr))


def refine(
    model: Model,
    traj: Trajectory,
    *,
    steps: int = 300,
    lr: float = 1e-2,
    horizons: Any = "auto",
    optimizer: str | optax.GradientTransformation = "auto",
    adjoint: str | diffrax.AbstractAdjoint = "recursive",
    keep_support: bool = True,
    eval_every: int = 10,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    max_steps: int = 4096,
    time_limit: float | None = None,
    fit_initial_state: bool = False,
) -> Model:
    """A copy of ``model`` whose coefficients minimise the rollout error over ``traj``.

    - ``traj``: the window to match (one run, or a batch sharing one model); it must
      hold the model's variables.
    - ``steps``: optimiser steps in all, shared by the stages of the curriculum; ``lr``:
      learning rate of ``optimizer`` ("adam", "adabelief", "sgd" or an optax
      transformation), in units where 1 moves a coefficient by its typical effect over
      the window.
    - ``horizons``: "auto" (1/8, 1/4, 1/2, 1 of the window; shorter first when the
      model's rollout blows up early), or ints (intervals per shooting segment) or
      fractions of the window, shortest first.
    - ``adjoint``: "recursive" (diffrax's checkpointed reverse mode, default), "direct",
      "backsolve", or a diffrax adjoint.
    - ``keep_support``: zeros stay zero (True) or every coefficient may move (False).
    - ``time_limit``: stop after this many seconds, keeping the best so far.
    - ``optimizer="auto"`` (default): "lm" where at most ``LM_MAX_PARAMS`` coefficients
      move, else "adam".
    - ``optimizer="lm"``: optimistix's Levenberg-Marquardt on the rollout residuals (each
      stage of the curriculum one least-squares solve of at most ``steps / stages``
      iterations, the Jacobian by forward mode through diffrax; ``lr`` and ``adjoint``
      do not apply): for a few to a few hundred coefficients, far fewer solves than
      optax's steps.
    - ``fit_initial_state``: fit every run's first state with the coefficients (the
      rollout then starts there, not at the first observation); recorded in
      ``options["refine"]["x0"]`` (one list per run) with ``rss`` (the rollout's sum of
      squared residuals, first state included) and ``n_params`` (coefficients moved plus
      initial states), for information criteria on the rollout.

    Returns a Model (``options["variant"] == "refined"``, details in
    ``options["refine"]``: steps run, rollout R^2 before and after, whether it stopped
    early and why). A loss that turns non-finite stops the optimisation with a
    ``RuntimeWarning``; the best finite coefficients are kept. Raises ``ValueError`` for
    non-finite coefficients or bad arguments only.
    """
    _check(
        model, traj, steps=steps, lr=lr, horizons=horizons, optimizer=optimizer,
        adjoint=adjoint, keep_support=keep_support, time_limit=time_limit,
        fit_initial_state=fit_initial_state,
    )  # fmt: skip
    if traj.names != model.names:
        traj = traj.select(list(model.names))
    x = np.asarray(traj.x if traj.is_batch else traj.x[None], dtype=np.float64)
    xi0 = np.asarray(model.coefficients, dtype=np.float64)
    R = x.shape[0]
    # the model's own rollout decides the starting point's quality and the curriculum
    start_ys, _ = rollout(model.field, np.broadcast_to(xi0, (R, *xi0.shape)), x[:, 0], traj.t)
    found = match(
        model.field, xi0, traj.t, x, horizons=horizons, optimizer=optimizer,
        keep_support=keep_support, fit_initial_state=fit_initial_state, start_ys=start_ys,
        steps=steps, lr=lr, adjoint=adjoint, eval_every=eval_every, rtol=rtol, atol=atol,
        max_steps=max_steps, time_limit=time_limit,
    )  # fmt: skip
    start_r2 = float(np.mean(r2(x, start_ys)))
    xi, x0, new_r2, end_ys = _keep_if_better(model.field, xi0, found, x, traj.t, start_ys)
    res = found.result
    if res.stop is Stop.NON_FINITE:
        warnings.warn(f"refine stopped early: {res.stopped}", RuntimeWarning, stacklevel=2)
    improved = new_r2 is not None
    info = {
        "steps": int(steps),
        "steps_run": int(res.steps_run),
        "best_step": int(res.best_step) if improved else 0,
        "horizons": [int(h) for h in found.horizons],
        "lr": float(lr),
        "optimizer": found.optimizer if isinstance(found.optimizer, str) else "custom",
        "adjoint": adjoint if isinstance(adjoint, str) else type(adjoint).__name__,
        "keep_support": keep_support,
        "start_rollout_r2": _finite_or_none(start_r2),
        "rollout_r2": _finite_or_none(new_r2 if improved else start_r2),
        "improved": improved,
        "stopped": res.stopped,
        "seconds": round(res.seconds, 3),
        "t_range": [float(traj.t[0]), float(traj.t[-1])],
        "fit_initial_state": fit_initial_state,
    }
    if fit_initial_state:
        with np.errstate(all="ignore"):
            rss = float(np.sum((end_ys - x) ** 2))
        info["x0"] = np.asarray(x0, dtype=np.float64).tolist()
        info["rss"] = rss if np.isfinite(rss) else None
        info["n_params"] = found.n_moved + x0.size
    return model.with_coefficients(xi, variant="refined", refine=info)


def _keep_if_better(field, xi0, found: Matched, x, t, start_ys):
    """``(xi, x0, r2, ys)`` of the matched model where its rollout, by the model's own
    integrator, beats the start's; else the start's, with ``r2`` None."""
    start_r2 = float(np.mean(r2(x, start_ys)))
    xi = found.xi
    if np.all(np.isfinite(xi)) and found.result.best_step > 0:
        ys, _ = rollout(field, np.broadcast_to(xi, (x.shape[0], *xi.shape)), found.x0, t)
        cand = float(np.mean(r2(x, ys)))
        if cand > start_r2 or (not np.isfinite(start_r2) and np.isfinite(cand)):
            return xi, found.x0, cand, ys
    return xi0, x[:, 0], None, start_ys


def refine_info(model: Model) -> dict[str, Any] | None:
    """What :func:`refine` recorded on a refined model (None for other models)."""
    info = model.options.get("refine")
    return dict(info) if isinstance(info, dict) else None


def _finite_or_none(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _auto_horizons(ys: np.ndarray, x: np.ndarray, T: int) -> list[int]:
    """1/8, 1/4, 1/2, 1 of the window; when the rollout leaves the data early (blows up
    or fails), start at a quarter of the time it stayed close, doubling up to the window."""
    n = T - 1
    default = [max(1, n // 8), max(1, n // 4), max(1, n // 2), n]
    scale = np.abs(x).max(axis=1, keepdims=True)  # (R, 1, m)
    bad = ~np.isfinite(ys) | (np.abs(ys) > 100.0 * (1.0 + scale))
    bad_t = np.flatnonzero(bad.any(axis=(0, 2)))
    if bad_t.size == 0 or bad_t[0] >= n // 2:
        return sorted(set(default))
    h = max(1, int(bad_t[0]) // 4)
    out = []
    while h < n:
        out.append(h)
        h *= 2
    out.append(n)
    return out
