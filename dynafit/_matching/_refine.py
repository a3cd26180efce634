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

import math
import warnings
from typing import Any

import diffrax
import jax.numpy as jnp
import numpy as np
import optax

from .._integrate import rollout
from .._model import Model
from .._score import r2
from .._trajectory import Trajectory
from ._rollout_opt import Stop, make_adjoint, make_optimizer, optimise_rollout, resolve_horizons

#: ``optimizer="auto"`` uses Levenberg-Marquardt up to this many free coefficients: its
#: Jacobian costs one forward-mode solve per coefficient per iteration, against one
#: reverse-mode gradient per optax step, and it needs tens of iterations, not hundreds
LM_MAX_PARAMS = 64


def _affine_xi(params: Any, aux: Any) -> Any:
    """Xi = Xi0 + C * P: ``aux = (Xi0, C)``, C zero where a coefficient is held fixed."""
    xi0, c = aux
    return xi0 + c * params


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
    if not isinstance(model, Model):
        raise ValueError(f"refine needs a dynafit Model, got {type(model).__name__}")
    if not isinstance(traj, Trajectory):
        raise ValueError(f"refine needs a dynafit.Trajectory, got {type(traj).__name__}")
    xi0 = np.asarray(model.coefficients, dtype=np.float64)
    if not np.all(np.isfinite(xi0)):
        raise ValueError("cannot refine a model with non-finite coefficients")
    if not isinstance(fit_initial_state, bool):
        raise ValueError(f"fit_initial_state must be True or False, got {fit_initial_state!r}")
    if not isinstance(keep_support, bool):
        raise ValueError(f"keep_support must be True or False, got {keep_support!r}")
    if time_limit is not None and not (math.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    missing = [n for n in model.names if n not in traj.names]
    if missing:
        raise ValueError(f"traj lacks the model's variables {missing} (it has {traj.names})")
    if traj.names != model.names:
        traj = traj.select(list(model.names))
    x = traj.x if traj.is_batch else traj.x[None]
    R, T, m = x.shape
    if T < 3:
        raise ValueError(f"refine needs at least 3 time points, got {T}")
    field = model.field
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if (
        isinstance(lr, bool)
        or not isinstance(lr, (int, float))
        or not (math.isfinite(lr) and lr > 0)
    ):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not (isinstance(horizons, str) and horizons == "auto"):
        resolve_horizons(horizons, T)  # bad horizons fail before any integration
    make_adjoint(adjoint)
    if not (isinstance(optimizer, str) and optimizer in ("lm", "auto")):
        make_optimizer(optimizer, float(lr))

    # the model's own rollout decides the starting point's quality and the curriculum
    start_ys, _ = rollout(field, np.broadcast_to(xi0, (R, *xi0.shape)), x[:, 0], traj.t)
    start_r2 = float(np.mean(r2(x, start_ys)))
    if isinstance(horizons, str) and horizons == "auto":
        horizons = _auto_horizons(start_ys, x, T)
    hs = resolve_horizons(horizons, T)

    # one unit of a parameter moves coefficient (i, k) by its typical effect over the
    # window: C_ik = scale_i / (span * rms(g_i theta_k)) over the data
    span = float(traj.t[-1] - traj.t[0])
    scale = np.sqrt(np.mean(x**2, axis=(0, 1)))
    scale = np.where(scale > 0, scale, 1.0)
    flat = x.reshape(-1, m)
    with np.errstate(all="ignore"):
        sens = field.g_np(flat)[:, :, None] * field.theta_np(flat)[:, None, :]
        rms = np.sqrt(np.mean(sens**2, axis=0))
        c = np.where((rms > 0) & np.isfinite(rms), scale[:, None] / (span * rms), 0.0)
    if keep_support:
        c = np.where(xi0 != 0, c, 0.0)
    if isinstance(optimizer, str) and optimizer == "auto":
        optimizer = "lm" if np.count_nonzero(c) <= LM_MAX_PARAMS else "adam"

    res = optimise_rollout(
        field,
        _affine_xi,
        jnp.zeros_like(jnp.asarray(xi0)),
        traj.t,
        x,
        aux=(xi0, c),
        steps=steps,
        lr=lr,
        horizons=hs,
        optimizer=optimizer,
        adjoint=adjoint,
        eval_every=eval_every,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        scale=scale,
        time_limit=time_limit,
        fit_x0=fit_initial_state,
    )
    params, x0 = res.params, x[:, 0]
    if fit_initial_state:
        params, dz0 = params
        x0 = x[:, 0] + np.asarray(dz0, dtype=np.float64) * scale
    xi = xi0 + c * np.asarray(params, dtype=np.float64)
    if keep_support:
        xi = np.where(xi0 != 0, xi, 0.0)

    # check with the model's own integrator; keep the start unless the rollout improved
    improved = False
    new_r2 = start_r2
    if np.all(np.isfinite(xi)) and res.best_step > 0:
        ys, _ = rollout(field, np.broadcast_to(xi, (R, *xi.shape)), x0, traj.t)
        cand = float(np.mean(r2(x, ys)))
        if cand > start_r2 or (not np.isfinite(start_r2) and np.isfinite(cand)):
            improved, new_r2, end_ys = True, cand, ys
    if not improved:
        xi, x0, end_ys = xi0, x[:, 0], start_ys
    if res.stop is Stop.NON_FINITE:
        warnings.warn(f"refine stopped early: {res.stopped}", RuntimeWarning, stacklevel=2)
    info = {
        "steps": int(steps),
        "steps_run": int(res.steps_run),
        "best_step": int(res.best_step) if improved else 0,
        "horizons": [int(h) for h in hs],
        "lr": float(lr),
        "optimizer": optimizer if isinstance(optimizer, str) else "custom",
        "adjoint": adjoint if isinstance(adjoint, str) else type(adjoint).__name__,
        "keep_support": keep_support,
        "start_rollout_r2": _finite_or_none(start_r2),
        "rollout_r2": _finite_or_none(new_r2),
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
        info["n_params"] = int(np.count_nonzero(c)) + R * m
    return model.with_coefficients(xi, variant="refined", refine=info)


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
