"""Rollout-error minimisation through diffrax with optax: the engine behind ``refine``
and the stable linear fit.

Works on a plain JAX vector field ``field(xi, x) -> dx/dt`` with coefficients ``xi``
produced from free parameters by ``to_xi(params)``. The ODE is integrated in
normalised units (states divided by a per-variable scale, time by the window's span) so
that solver tolerances and learning rates mean the same at any scale of the data.

The loss over a horizon of ``h`` intervals is multiple shooting from the data: the
window is cut into segments of ``h`` intervals, each integrated from its observed first
state, and the squared error of every predicted state, divided by the variable's
variance over the window, is averaged. A curriculum runs growing horizons, ending on
the whole window. Every few steps the full rollout from the first state is scored
(``1 - R^2``, R^2 averaged over variables as scikit-learn's ``r2_score`` does) and the
best parameters seen, the starting point included, are kept.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import time
from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx

from .._cache import cacheable
from .._integrate import solve_traced

#: ``field(x, xi) -> dx/dt`` for a state ``x`` (m,) and coefficients ``xi``
Field = Callable[[jax.Array, Any], jax.Array]
#: ``to_xi(params, aux) -> xi``: coefficients from free parameters and fixed arrays
ToXi = Callable[[Any, Any], Any]

ADJOINTS = ("recursive", "direct", "backsolve")
#: optimisers of :func:`optimise_rollout`: optax's by name, and "lm" (optimistix's
#: Levenberg-Marquardt on the shooting residuals, :func:`_lm_stage`)
OPTIMIZERS = ("adam", "adabelief", "sgd", "lm")
#: a residual whose prediction failed (diverged, non-finite) in Levenberg-Marquardt: large,
#: finite, so that the step is rejected instead of poisoning the solve with NaN
FAILED_RESIDUAL = 1e3


def make_adjoint(adjoint: str | diffrax.AbstractAdjoint) -> diffrax.AbstractAdjoint:
    """A diffrax adjoint from a name (``"recursive"``, ``"direct"``, ``"backsolve"``)."""
    if isinstance(adjoint, diffrax.AbstractAdjoint):
        return adjoint
    if adjoint == "recursive":
        return diffrax.RecursiveCheckpointAdjoint()
    if adjoint == "direct":
        return diffrax.DirectAdjoint()
    if adjoint == "backsolve":
        return diffrax.BacksolveAdjoint()
    raise ValueError(
        f"unknown adjoint {adjoint!r}; choose one of {list(ADJOINTS)} or pass a diffrax adjoint"
    )


def make_optimizer(
    optimizer: str | optax.GradientTransformation, lr: float
) -> optax.GradientTransformation:
    """An optax optimiser from a name (``"adam"``, ``"adabelief"``, ``"sgd"``) or as given."""
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    if optimizer == "adam":
        return optax.chain(optax.clip_by_global_norm(10.0), optax.adam(lr))
    if optimizer == "adabelief":
        return optax.chain(optax.clip_by_global_norm(10.0), optax.adabelief(lr))
    if optimizer == "lm":
        raise ValueError(
            "optimizer 'lm' (Levenberg-Marquardt) is a least-squares solver, not an optax "
            "transformation; optimise_rollout runs it itself"
        )
    if optimizer == "sgd":
        return optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(lr, momentum=0.9))
    raise ValueError(
        f"unknown optimizer {optimizer!r}; choose 'adam', 'adabelief', 'sgd' or pass an "
        "optax.GradientTransformation"
    )


@functools.cache
def _schedulable(name: str) -> optax.GradientTransformation:
    """The named optimiser with its learning rate held in its state (data, not a
    constant): one object per name, hence one compiled update shared by every call and
    learning rate."""
    return optax.inject_hyperparams(lambda learning_rate: make_optimizer(name, learning_rate))(
        learning_rate=1.0
    )


@cacheable
@eqx.filter_jit
def _update(params, opt_state, grads, opt):
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


class Stop(enum.Enum):
    """Why the optimisation stopped before its last step (``RolloutResult.stop``)."""

    NON_FINITE = "non-finite loss"
    TIME_LIMIT = "time limit"


@dataclasses.dataclass
class RolloutResult:
    """What the optimiser found and how it got there."""

    params: Any
    best_error: float
    start_error: float
    best_step: int
    steps_run: int
    stopped: str | None
    history: list[dict[str, float]]
    seconds: float
    #: why it stopped early (None: it ran every step); ``stopped`` says it in words
    stop: Stop | None = None


class _Problem(eqx.Module):
    """Normalised data and the vector field; every method is a pure function of params."""

    field: Field = eqx.field(static=True)
    to_xi: ToXi = eqx.field(static=True)
    aux: Any  # fixed arrays to_xi needs (part of the data, so no recompilation)
    s: jax.Array  # (T,) normalised times in [0, 1]
    z: jax.Array  # (R, T, m) normalised states x / scale
    scale: jax.Array  # (m,)
    span: jax.Array  # the window's length in time units
    weight: jax.Array  # (m,) 1 / variance of z per variable
    x0_on: jax.Array  # 1.0 where the first states are fitted, 0.0 where they stay
    rtol: float = eqx.field(static=True)
    atol: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    adjoint: diffrax.AbstractAdjoint

    def vf(self, t, z, xi):
        return self.span * self.field(z * self.scale, xi) / self.scale

    def solve(self, xi, z0, ts, adjoint):
        ys, _ = solve_traced(
            self.vf,
            z0,
            ts,
            xi,
            rtol=self.rtol,
            atol=self.atol,
            max_steps=self.max_steps,
            adjoint=adjoint,
        )
        return ys

    def _predict(self, params, idx):
        """Segments integrated from their first state: ``(pred, zs, dz0)``, both (R, S, L, m).

        The params are ``(p, dz0)``: ``dz0`` (R, m) moves every run's first state
        (normalised units, times ``x0_on``), used by the segments that start at index 0."""
        params, dz0 = params
        dz0 = dz0 * self.x0_on
        xi = self.to_xi(params, self.aux)
        ts = self.s[idx]  # (S, L)
        zs = self.z[:, idx]  # (R, S, L, m)
        z0 = zs[:, :, 0] + jnp.where(idx[None, :, :1] == 0, 1.0, 0.0) * dz0[:, None, :]

        def one(z0, t_seg):
            return self.solve(xi, z0, t_seg, self.adjoint)

        pred = jax.vmap(jax.vmap(one, in_axes=(0, 0)), in_axes=(0, None))(z0, ts)
        return pred, zs, dz0

    def _count(self, w, zs):
        """Points a loss averages over: the weighted ones (and the fitted first states)."""
        return (jnp.sum(w) + self.x0_on) * zs.shape[0] * zs.shape[-1]

    def shooting_loss(self, params, idx, w):
        """Weighted squared error of segments integrated from the observed state at their
        first index. ``idx`` (S, L) holds each segment's time indices, padded by repeating
        its last one; ``w`` (S, L) is 1 where a point counts, 0 at starts and padding.
        Where the first states are fitted, each one's own error counts as one more point."""
        pred, zs, dz0 = self._predict(params, idx)
        err = jnp.where(w[None, :, :, None] > 0, (pred - zs) ** 2, 0.0) * self.weight
        total = jnp.sum(err) + jnp.sum(dz0**2 * self.weight)
        loss = total / self._count(w, zs)
        return jnp.where(jnp.isfinite(loss), loss, jnp.inf)

    def residuals(self, params, args):
        """The residual vector whose sum of squares is :meth:`shooting_loss` (the least-
        squares form, for Levenberg-Marquardt); a failed or non-finite prediction gives
        a large finite residual, which the trust region rejects."""
        idx, w = args
        pred, zs, dz0 = self._predict(params, idx)
        norm = jnp.sqrt(self.weight / self._count(w, zs))
        r = jnp.where(w[None, :, :, None] > 0, pred - zs, 0.0) * norm
        r = jnp.concatenate([r.ravel(), (dz0 * norm).ravel()])
        return jnp.where(jnp.isfinite(r), r, FAILED_RESIDUAL)


def _segment_starts(T: int, h: int) -> np.ndarray:
    """Start indices of segments of ``h`` intervals covering 0..T-1 (the last may overlap)."""
    starts = list(range(0, T - h, h))
    if not starts or starts[-1] + h < T - 1:
        starts.append(T - 1 - h)
    return np.asarray(sorted(set(starts)), dtype=np.int32)


def _segments(T: int, h: int, n_seg: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Index and weight arrays of shape (n_seg, length) for horizon ``h``.

    Every stage of a curriculum shares one shape, hence one compilation: a segment of
    ``h`` intervals is observed at ``length`` indices spread evenly over it (every index
    when ``h < length``, then repeated ones weigh 0), and missing segments repeat the
    first one with weight 0. Points already counted by an earlier segment weigh 0.
    """
    starts = _segment_starts(T, h)
    offsets = np.unique(np.round(np.linspace(0, h, length)).astype(np.int64))
    offsets = np.concatenate([offsets, np.full(length - offsets.size, h)])
    idx = np.zeros((n_seg, length), dtype=np.int32)
    w = np.zeros((n_seg, length))
    counted = np.zeros(T, dtype=bool)
    counted[0] = True
    for j in range(n_seg):
        s0 = int(starts[j % len(starts)])
        idx[j] = s0 + offsets
        if j < len(starts):
            for i in range(1, length):
                k = idx[j, i]
                if idx[j, i] != idx[j, i - 1] and not counted[k]:
                    w[j, i] = 1.0
                    counted[k] = True
    return idx, w


def resolve_horizons(horizons: Any, T: int) -> list[int]:
    """Horizons in intervals: ints are intervals, floats in (0, 1] fractions of the window.

    ``"auto"`` is the curriculum 1/8, 1/4, 1/2, 1 of the window (short horizons first, so
    a model whose long rollout diverges still has a finite loss to descend).
    """
    n = T - 1
    if isinstance(horizons, str):
        if horizons != "auto":
            raise ValueError(
                f"horizons must be 'auto', an int, a float or a list of them, got {horizons!r}"
            )
        horizons = [0.125, 0.25, 0.5, 1.0]
    if isinstance(horizons, (int, float)) and not isinstance(horizons, bool):
        horizons = [horizons]
    out: list[int] = []
    for h in horizons:
        if isinstance(h, bool) or not isinstance(h, (int, float, np.integer, np.floating)):
            raise ValueError(f"a horizon must be an int (intervals) or a float fraction, got {h!r}")
        if isinstance(h, (float, np.floating)):
            if not 0.0 < h <= 1.0:
                raise ValueError(f"a fractional horizon must be in (0, 1], got {h}")
            hi = max(1, int(round(h * n)))
        else:
            hi = int(h)
            if hi < 1:
                raise ValueError(f"a horizon must be at least 1 interval, got {h}")
            if hi > n:
                raise ValueError(
                    f"horizon of {hi} intervals is longer than the window ({n} intervals)"
                )
        if not out or hi != out[-1]:
            out.append(hi)
    return out


def _stage_steps(steps: int, n_stages: int) -> list[int]:
    base, extra = divmod(steps, n_stages)
    # the remainder goes to the last (full-window) stage
    return [base] * (n_stages - 1) + [base + extra]


@cacheable
@eqx.filter_jit
def _value_and_grad(params, prob, idx, w):
    return eqx.filter_value_and_grad(lambda p: prob.shooting_loss(p, idx, w))(params)


@cacheable
@eqx.filter_jit
def _loss(params, prob, idx, w):
    return prob.shooting_loss(params, idx, w)


#: Levenberg-Marquardt's convergence tolerances on the parameters (normalised units, in
#: which 1 moves a coefficient by its typical effect over the window)
LM_RTOL = 1e-6
LM_ATOL = 1e-8


@cacheable
@eqx.filter_jit
def _lm_stage(params, prob, idx, w, max_steps):
    """One stage of the curriculum by optimistix's Levenberg-Marquardt: least squares on
    the shooting residuals, the Jacobian by forward mode through diffrax. Returns the
    parameters, the steps taken and whether the solve ended well."""
    solver = optx.LevenbergMarquardt(rtol=LM_RTOL, atol=LM_ATOL)
    sol = optx.least_squares(
        prob.residuals, solver, params, args=(idx, w), max_steps=max_steps, throw=False
    )
    return sol.value, sol.stats["num_steps"], sol.result == optx.RESULTS.successful


def _check_options(steps: Any, lr: Any, eval_every: Any, fit_x0: Any) -> None:
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be a positive int, got {eval_every!r}")
    if not isinstance(fit_x0, bool):
        raise ValueError(f"fit_x0 must be True or False, got {fit_x0!r}")


#: windows of at most this many points pad their segments to the default curriculum's
SHARED_LAYOUT_TIMES = 128


def _bucket(n: int) -> int:
    """``n`` rounded up to a power of two: layouts of nearby sizes share one compilation."""
    return 1 << max(0, int(n) - 1).bit_length()


def _layouts(T: int, hs: list[int], dtype: Any) -> dict[int, tuple[jax.Array, jax.Array]]:
    """Index and weight arrays of every horizon (and the full window), all of one shape:
    the number of segments rounded up to a power of two (the extra ones weigh 0), on
    short windows at least the default curriculum's (its padding costs little), so that
    candidates whose curricula differ, and the whole-window matching of the fitted first
    states, share one compiled program."""
    sizing = [*hs, max(1, (T - 1) // 8)] if T <= SHARED_LAYOUT_TIMES else hs
    n_seg = _bucket(max(len(_segment_starts(T, h)) for h in sizing))
    length = min(T, max(min(hs) + 1, 65))
    return {
        h: (jnp.asarray(i), jnp.asarray(w, dtype=dtype))
        for h, (i, w) in ((h, _segments(T, h, n_seg, length)) for h in {*hs, T - 1})
    }


def _problem(field, to_xi, aux, t, x, scale, *, rtol, atol, max_steps, adjoint, fit_x0):
    """The normalised problem: states over ``scale``, times over the window's span, each
    variable weighted by one over its variance."""
    span = float(t[-1] - t[0])
    if scale is None:
        scale = np.sqrt(np.mean(x**2, axis=(0, 1)))
        scale = np.where(scale > 0, scale, 1.0)
    z = x / scale
    var = np.var(z.reshape(-1, z.shape[-1]), axis=0)
    tiny = 1e-12 * max(float(np.max(var)), 1e-300)
    dtype = jnp.asarray(0.0).dtype
    return _Problem(
        field=field,
        to_xi=to_xi,
        aux=jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=dtype), aux),
        s=jnp.asarray((t - t[0]) / span, dtype=dtype),
        z=jnp.asarray(z, dtype=dtype),
        scale=jnp.asarray(scale, dtype=dtype),
        span=jnp.asarray(span, dtype=dtype),
        weight=jnp.asarray(1.0 / np.maximum(var, tiny), dtype=dtype),
        x0_on=jnp.asarray(1.0 if fit_x0 else 0.0, dtype=dtype),
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        adjoint=adjoint,
    )


def _all_finite(*trees: Any) -> bool:
    leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(trees)]
    return all(np.all(np.isfinite(a)) for a in leaves)


@dataclasses.dataclass
class _Progress:
    """The bookkeeping both optimisers share: the best parameters by full-window rollout
    error, the history, the time limit, and why the optimisation stopped."""

    params: Any
    start_error: float
    time_limit: float | None
    step: int = 0
    best_step: int = 0
    stop: Stop | None = None
    stopped: str | None = None
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    t_start: float = dataclasses.field(default_factory=time.perf_counter)

    def __post_init__(self):
        self.best_params, self.best_error = self.params, self.start_error
        self.record(float("nan"), float("nan"), self.start_error, self.params)

    def record(self, horizon: float, loss: float, error: float, params: Any) -> None:
        self.history.append(
            {"step": self.step, "horizon": horizon, "loss": loss, "rollout_error": error}
        )
        if error < self.best_error:
            self.best_error, self.best_params, self.best_step = error, params, self.step

    def halt(self, stop: Stop, message: str) -> None:
        self.stop, self.stopped = stop, message

    def out_of_time(self) -> bool:
        if self.time_limit is None or time.perf_counter() - self.t_start <= self.time_limit:
            return False
        self.halt(
            Stop.TIME_LIMIT, f"time limit of {self.time_limit:g} s reached at step {self.step}"
        )
        return True

    def result(self) -> RolloutResult:
        return RolloutResult(
            params=self.best_params,
            best_error=self.best_error,
            start_error=self.start_error,
            best_step=self.best_step,
            steps_run=self.step,
            stopped=self.stopped,
            history=self.history,
            seconds=time.perf_counter() - self.t_start,
            stop=self.stop,
        )


def _run_lm(prob, progress: _Progress, layouts, hs: list[int], steps: int, error) -> None:
    """The curriculum by Levenberg-Marquardt: one least-squares solve per stage of at
    most ``ceil(steps / stages)`` iterations, warm started from the last."""
    params = progress.params
    per_stage = -(-steps // len(hs))
    for h in hs if per_stage else []:
        idx, w = layouts[h]
        new, n_run, _ = _lm_stage(params, prob, idx, w, per_stage)
        progress.step += int(n_run)
        if not _all_finite(new):
            progress.halt(
                Stop.NON_FINITE,
                f"non-finite parameters at horizon {h}; kept the best finite coefficients",
            )
            return
        params = new
        progress.record(h, float(_loss(new, prob, idx, w)), error(new), new)
        if progress.out_of_time():
            return


def _pair(
    first: optax.GradientTransformation, second: optax.GradientTransformation
) -> optax.GradientTransformation:
    """``first`` on element 0 of a ``(params, dz0)`` pair, ``second`` on element 1."""

    def init(params):
        return first.init(params[0]), second.init(params[1])

    def update(updates, state, params=None):
        p0, p1 = (None, None) if params is None else params
        u0, s0 = first.update(updates[0], state[0], p0)
        u1, s1 = second.update(updates[1], state[1], p1)
        return (u0, u1), (s0, s1)

    return optax.GradientTransformation(init, update)


def _optax_state(optimizer, lr: float, params: Any, dtype: Any):
    """The optimiser and its state; a named one holds its learning rate as data (one
    compiled update for every call and learning rate)."""
    if not isinstance(optimizer, str):
        # the caller's transformation sees the caller's parameters; the first-state moves
        # (zero gradient unless fitted) take adam at the same learning rate
        optimizer = _pair(optimizer, make_optimizer("adam", lr))
        return optimizer, optimizer.init(eqx.filter(params, eqx.is_inexact_array))
    opt = _schedulable(optimizer)
    state: Any = opt.init(eqx.filter(params, eqx.is_inexact_array))  # InjectHyperparamsState
    state.hyperparams["learning_rate"] = jnp.asarray(lr, dtype=dtype)
    return opt, state


def _run_optax(prob, progress: _Progress, layouts, hs, steps, opt_state, eval_every, error):
    """The curriculum by an optax optimiser: ``steps`` gradient steps shared by the
    stages, the full-window rollout error scored every ``eval_every`` steps."""
    opt, state = opt_state
    params = progress.params
    for h, n in zip(hs, _stage_steps(steps, len(hs))):
        idx, w = layouts[h]
        for i in range(n):
            loss, grads = _value_and_grad(params, prob, idx, w)
            loss = float(loss)
            if not (np.isfinite(loss) and _all_finite(grads)):
                progress.halt(
                    Stop.NON_FINITE,
                    f"non-finite loss at step {progress.step + 1} (horizon {h} intervals); "
                    "kept the best finite coefficients",
                )
                return
            params, state = _update(params, state, grads, opt)
            progress.step += 1
            if progress.step % eval_every == 0 or i == n - 1:
                progress.record(h, loss, error(params), params)
            if progress.out_of_time():
                return


def optimise_rollout(
    field: Field,
    to_xi: ToXi,
    params0: Any,
    t: np.ndarray,
    x: np.ndarray,
    *,
    aux: Any = None,
    steps: int = 300,
    lr: float = 1e-2,
    horizons: Any = "auto",
    optimizer: str | optax.GradientTransformation = "adam",
    adjoint: str | diffrax.AbstractAdjoint = "recursive",
    eval_every: int = 10,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    max_steps: int = 4096,
    scale: np.ndarray | None = None,
    time_limit: float | None = None,
    fit_x0: bool = False,
) -> RolloutResult:
    """Minimise the rollout error of ``dx/dt = field(x, to_xi(params, aux))`` against ``x``.

    ``field`` and ``to_xi`` are static (keep them the same objects across calls to reuse
    the compilation); ``aux`` holds the arrays ``to_xi`` needs.

    ``t`` has shape ``(T,)``, ``x`` shape ``(T, m)`` or ``(R, T, m)`` (runs share t and
    the parameters). Returns the parameters with the smallest full-window rollout error
    seen (``params0`` included). A non-finite loss stops the optimisation (``stopped``
    says so); the best finite parameters are kept.

    ``optimizer="lm"``: each stage of the curriculum is one Levenberg-Marquardt solve
    (optimistix) of at most ``ceil(steps / stages)`` iterations, warm-started from the
    previous stage; ``lr``,
    ``adjoint`` and ``eval_every`` do not apply (the Jacobian is taken in forward mode).
    ``fit_x0``: every run's first state is fitted too; the returned params are then
    ``(params, dz0)``, ``dz0`` (R, m) the move of the first states in units of ``scale``.
    The same compiled programs serve both (whether the first states move is data).
    """
    _check_options(steps, lr, eval_every, fit_x0)
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    T = t.shape[0]
    hs = resolve_horizons(horizons, T)
    lm = isinstance(optimizer, str) and optimizer == "lm"
    if not lm:
        make_optimizer(optimizer, lr)  # a bad name fails before any integration
    adj = diffrax.ForwardMode() if lm else make_adjoint(adjoint)
    prob = _problem(
        field, to_xi, aux, t, x, scale,
        rtol=rtol, atol=atol, max_steps=max_steps, adjoint=adj, fit_x0=fit_x0,
    )  # fmt: skip
    dtype = prob.z.dtype
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=dtype), params0)
    params = (params, jnp.zeros(x.shape[::2], dtype=dtype))
    layouts = _layouts(T, hs, dtype)
    full_idx, full_w = layouts[T - 1]
    # the loss over the full window leaves out the exact first state; R^2 counts it
    # (with fit_x0 the first state's error is part of the loss already)
    to_r2_error = 1.0 if fit_x0 else (T - 1) / T

    def error(params) -> float:
        loss = float(_loss(params, prob, full_idx, full_w))
        return loss * to_r2_error if np.isfinite(loss) else float("inf")

    progress = _Progress(params, error(params), time_limit)
    if lm:
        _run_lm(prob, progress, layouts, hs, int(steps), error)
    else:
        state = _optax_state(optimizer, lr, params, dtype)
        _run_optax(prob, progress, layouts, hs, int(steps), state, eval_every, error)
    res = progress.result()
    if not fit_x0:
        res.params = res.params[0]
    return res
