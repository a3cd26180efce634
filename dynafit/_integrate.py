"""Integration with diffrax: the one place that builds solvers.

Every rollout of a model goes through here: Tsit5 (explicit) with Kvaerno5 (implicit)
as the stiff retry of what runs out of steps, PID step-size control with tolerances
floored in float32 (:func:`_tolerances`), a blow-up bound ``blowup * (1 + max|x0|)``
that stops a diverging rollout, ``throw=False`` so that a failure is a result
(``ok = False``, rows inf), never an exception. :func:`rollout` vmaps one solve per
model; :func:`rollout_joint` integrates a batch as one stacked system. Compiled solvers
are cached per vector field and settings (:func:`compiled`).
"""

from __future__ import annotations

import functools
from typing import cast

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._cache import cacheable
from ._field import VectorField

SOLVERS = ("tsit5", "kvaerno5")


@functools.lru_cache(maxsize=256)
def compiled(
    field: VectorField, solver: str, rtol: float, atol: float, max_steps: int, blowup: float
):
    """A jitted ``(Xi[B], x0[B], ts) -> (ys[B, T, m], ok[B], out_of_steps[B])``; solver
    ``"joint"`` is :func:`rollout_joint`'s stacked Tsit5 solve, whose last output is one
    flag: the solve finished. Cached per field and settings."""
    rtol, atol, max_steps, blowup = float(rtol), float(atol), int(max_steps), float(blowup)
    if solver == "joint":
        return _make_joint_solver(field, rtol, atol, max_steps, blowup)
    return _make_solver(field, solver, rtol, atol, max_steps, blowup)


def _states(sol: dfx.Solution) -> Array:
    """The states a solve saved (every solve here saves at ``ts``: never None)."""
    assert sol.ys is not None
    return cast(Array, sol.ys)


def _diffeqsolve(vector, method, y0, ts, args, controller, max_steps: int, **kw):
    """``diffrax.diffeqsolve`` as every solve here makes it: adaptive steps from ``ts[0]``
    to ``ts[-1]``, saved at ``ts``, failures returned in ``sol.result`` (never raised)."""
    return dfx.diffeqsolve(
        dfx.ODETerm(vector),
        method,
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=y0,
        args=args,
        saveat=dfx.SaveAt(ts=ts),
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=False,
        **kw,
    )


def _make_solver(field: VectorField, solver: str, rtol, atol, max_steps, blowup):
    if solver == "tsit5":
        method = dfx.Tsit5()
    elif solver == "kvaerno5":
        method = dfx.Kvaerno5()
    else:
        raise ValueError(f"unknown solver {solver!r}; choose one of {list(SOLVERS)}")

    def vector(t, y, xi):
        return field(y, xi)

    controller = dfx.PIDController(rtol=rtol, atol=atol)

    def one(xi, x0, ts):
        bound = blowup * (1.0 + jnp.max(jnp.abs(x0)))
        event = dfx.Event(lambda t, y, args, **kw: ~(jnp.max(jnp.abs(y)) < bound))
        sol = _diffeqsolve(vector, method, x0, ts, xi, controller, max_steps, event=event)
        ys = _states(sol)
        ok = (sol.result == dfx.RESULTS.successful) & jnp.all(jnp.isfinite(ys))
        ys = jnp.where(jnp.isfinite(ys), ys, jnp.inf)
        return ys, ok, sol.result == dfx.RESULTS.max_steps_reached

    return cacheable(jax.jit(jax.vmap(one, in_axes=(0, 0, None))))


def _make_joint_solver(field: VectorField, rtol, atol, max_steps, blowup):
    """One adaptive Tsit5 integration of B models as one system of B x m states (see
    :func:`rollout_joint`)."""

    def vector(t, y, args):
        xi, bound = args
        alive = jnp.all(jnp.abs(y) < bound[:, None], axis=-1)  # False past the bound, or NaN
        return jnp.where(alive[:, None], field(y[:, None], xi)[:, 0], 0.0)

    def run(xi, x0, ts):
        bound = blowup * (1.0 + jnp.max(jnp.abs(x0), axis=-1))
        controller = dfx.PIDController(rtol=rtol, atol=atol, norm=_max_member_rms)
        sol = _diffeqsolve(vector, dfx.Tsit5(), x0, ts, (xi, bound), controller, max_steps)
        ys = jnp.swapaxes(_states(sol), 0, 1)  # (B, T, m)
        ok = jnp.all(jnp.isfinite(ys) & (jnp.abs(ys) < bound[:, None, None]), axis=(1, 2))
        ys = jnp.where(jnp.isfinite(ys), ys, jnp.inf)
        return ys, ok, sol.result == dfx.RESULTS.successful

    return cacheable(jax.jit(run))


def solve_traced(
    vector,
    y0: Array,
    ts: Array,
    args,
    *,
    rtol: float,
    atol: float,
    max_steps: int,
    adjoint: dfx.AbstractAdjoint | None = None,
) -> tuple[Array, Array]:
    """One adaptive Tsit5 solve of ``dy/dt = vector(t, y, args)`` from ``y0`` saved at
    ``ts``, for use inside a traced (jitted, differentiated) computation: ``adjoint``
    chooses how gradients flow. Tolerances are floored in float32 as for :func:`rollout`.
    Returns ``(ys, ok)``: ``ok`` (a scalar) means the solve succeeded and its states are
    finite, the meaning of ``ok`` everywhere in this module; rows of a failed solve are
    inf."""
    rtol, atol = _tolerances(rtol, atol, y0.dtype)
    controller = dfx.PIDController(rtol=rtol, atol=atol)
    adjoint = dfx.RecursiveCheckpointAdjoint() if adjoint is None else adjoint
    sol = _diffeqsolve(vector, dfx.Tsit5(), y0, ts, args, controller, max_steps, adjoint=adjoint)
    ys = _states(sol)
    ok = (sol.result == dfx.RESULTS.successful) & jnp.all(jnp.isfinite(ys))
    return jnp.where(ok, ys, jnp.inf), ok


def _max_member_rms(err: Array) -> Array:
    """The step-size controller's error norm for B stacked models: the largest of their
    own RMS norms, so that every model meets the tolerance on its own."""
    return jnp.max(jnp.sqrt(jnp.mean(err**2, axis=-1)))


def rollout_joint(
    field: VectorField,
    xi: np.ndarray,
    x0: np.ndarray,
    t: np.ndarray,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    max_steps: int = 1024,
    blowup: float = 1e6,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Integrate B models ``xi`` (B, m, n) from ``x0`` (B, m) as ONE adaptive Tsit5 solve of
    the stacked B x m system, every model held to the tolerance on its own (the error
    norm is the largest per-model RMS); a model whose state leaves
    ``blowup * (1 + max|x0|)`` is frozen there and reported diverged.

    :func:`rollout` vmaps one solve per model, which on a CPU makes every step select
    over every model's whole output buffer; one stacked solve of models that share a
    time scale (a threshold sweep's candidates) is several times cheaper. The models
    share their step sizes, so results agree with :func:`rollout`'s to the tolerance,
    not bit for bit. Returns ``(ys (B, T, m), ok (B,))``, or None when the solve ran out
    of its ``max_steps`` (a stiff model slows them all: use :func:`rollout`).
    """
    dtype = jnp.zeros(()).dtype
    solve = compiled(field, "joint", *_tolerances(rtol, atol, dtype), max_steps, blowup)
    ys, ok, done = solve(
        jnp.asarray(xi, dtype=dtype), jnp.asarray(x0, dtype=dtype), jnp.asarray(t, dtype=dtype)
    )
    if not bool(done):
        return None
    return np.array(ys), np.array(ok)


def _tolerances(rtol: float, atol: float, dtype, stiff: bool = False) -> tuple[float, float]:
    """(rtol, atol) as the solvers use them: in single precision, tolerances near float32's
    resolution make the step-size controller thrash (and Kvaerno5's Newton iterations
    fail), so they are floored."""
    if dtype == jnp.float64:
        return rtol, atol
    return max(rtol, 1e-5), (max(atol, 1e-6) if stiff else atol)


def pow2_padding(n: int) -> np.ndarray:
    """Indices that pad a batch of ``n`` to the next power of two by cycling through it:
    every batch of up to 2^k items then reuses one compiled, vmapped solver."""
    return np.arange(1 << max(0, int(np.ceil(np.log2(n))))) % n


def rollout(
    field: VectorField,
    xi: np.ndarray,
    x0: np.ndarray,
    t: np.ndarray,
    *,
    solver: str = "tsit5",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    max_steps: int = 4096,
    blowup: float = 1e6,
    stiff_max_steps: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate B models at once: ``xi`` (B, m, n), ``x0`` (B, m), ``t`` (T,).

    Returns ``(ys, ok)``: numpy ``(B, T, m)`` (rows after a failure are inf) and ``(B,)``
    bool. Rollouts stopped by the explicit solver's step limit are retried with the stiff
    solver once (with ``stiff_max_steps`` steps, default ``max_steps``); a state beyond
    ``blowup * (1 + max|x0|)`` stops the rollout as diverged.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of {list(SOLVERS)}")
    dtype = jnp.zeros(()).dtype  # float32, or float64 when jax_enable_x64 is on
    ts = jnp.asarray(t, dtype=dtype)
    xi_j = jnp.asarray(xi, dtype=dtype)
    x0_j = jnp.asarray(x0, dtype=dtype)
    stiff_tol = _tolerances(rtol, atol, dtype, stiff=True)
    tol = stiff_tol if solver == "kvaerno5" else _tolerances(rtol, atol, dtype)
    ys, ok, maxed = compiled(field, solver, *tol, max_steps, blowup)(xi_j, x0_j, ts)
    ys, ok, maxed = np.array(ys), np.array(ok), np.array(maxed)
    if solver == "tsit5" and maxed.any():
        idx = np.flatnonzero(maxed)
        pad = idx[pow2_padding(idx.size)]  # one compiled stiff solver per 2^k, not per size
        stiff_steps = max_steps if stiff_max_steps is None else int(stiff_max_steps)
        ys2, ok2, _ = compiled(field, "kvaerno5", *stiff_tol, stiff_steps, blowup)(
            xi_j[pad], x0_j[pad], ts
        )
        ys[idx], ok[idx] = np.array(ys2)[: idx.size], np.array(ok2)[: idx.size]
    return ys, ok
