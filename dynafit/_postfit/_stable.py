"""A stable linear model, dx/dt = A x + b with A Hurwitz by construction, fitted through diffrax.

In units where each variable is divided by its RMS ``D`` and time by the window's span
``tau``, the matrix is parameterised as

    A_n = -(L L^T + eps I) + (S - S^T),    A = D A_n D^-1 / tau,

so the symmetric part of A_n is negative definite and every eigenvalue of A has a
negative real part (A is similar to A_n). pysindy's constrained optimisers would need
cvxpy; this parameterisation needs none. The fit starts from least squares on the
derivatives, projected onto the stable set, matches derivatives in the parameterisation
with optax, then minimises the rollout error through diffrax (multiple shooting, as in
:func:`dynafit.refine`). With ``rank=r`` the model lives on the first r principal
components of the data (x = mu + U z, dz/dt = A_r z + b_r), which regularises the
many-variable circle dynamics; it is returned as an ordinary linear-family Model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._derivatives import differentiate
from .._field import vector_field
from .._matching._rollout_opt import optimise_rollout
from .._model import Model
from .._trajectory import Trajectory
from ..families.linear import Linear


def _stable_matrix(L: jax.Array, S: jax.Array, eps: float | jax.Array) -> jax.Array:
    n = L.shape[0]
    return -(L @ L.T + eps * jnp.eye(n, dtype=L.dtype)) + (S - S.T)


def _stable_xi(params: Any, aux: Any) -> jax.Array:
    """[b | A] for the linear family from normalised (L, S, b_n) and (U, mu, D, tau, eps)."""
    L, S, bn = params
    U, mu, D, tau, eps = aux
    An = _stable_matrix(L, S, eps)  # in reduced, normalised coordinates
    # z = U^T D^-1 (x - mu) / 1; dx/dt = D U (An z + bn) / tau
    M = (D[:, None] * U) / tau  # (m, r)
    P = U.T / D[None, :]  # (r, m)
    A = M @ An @ P
    b = M @ bn - A @ mu
    return jnp.concatenate([b[:, None], A], axis=1)


def _checked_rank(rank: Any, m: int) -> int:
    """The number of principal components fitted (None: all ``m`` variables)."""
    if rank is None:
        return m
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 1 <= rank <= m:
        raise ValueError(f"rank must be an int in 1..{m} (the number of variables), got {rank!r}")
    return int(rank)


def fit_stable(
    traj: Trajectory,
    *,
    rank: int | None = None,
    eps: float = 1e-3,
    derivative: str = "centered",
    deriv_steps: int = 500,
    steps: int = 200,
    lr: float = 1e-2,
    horizons: str | float | Sequence[float] = "auto",
    time_limit: float | None = None,
) -> Model:
    """Fit dx/dt = A x + b with A Hurwitz by construction (see the module doc).

    - ``rank``: fit on the first ``rank`` principal components (None: all variables).
    - ``eps``: the least decay rate of the normalised symmetric part, per window length.
    - ``deriv_steps``: optax steps matching the derivatives (cheap, no integration);
      ``steps``: optax steps matching the rollout through diffrax (0 to skip).
    Returns a linear-family Model with ``options["variant"] == "stable"``.
    """
    if not isinstance(traj, Trajectory):
        raise ValueError(f"fit_stable needs a dynafit.Trajectory, got {type(traj).__name__}")
    x = traj.x if traj.is_batch else traj.x[None]
    R, T, m = x.shape
    r = _checked_rank(rank, m)
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    for name, v in (("deriv_steps", deriv_steps), ("steps", steps)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    if R * T < r + 2:
        raise ValueError(f"too few points ({R * T}) for a {r}-dimensional linear model")

    tau = float(traj.t[-1] - traj.t[0])
    D = np.sqrt(np.mean(x**2, axis=(0, 1)))
    D = np.where(D > 0, D, 1.0)
    flat = x.reshape(-1, m)
    mu = flat.mean(axis=0) if r < m else np.zeros(m)
    if r < m:
        _, _, vt = np.linalg.svd((flat - mu) / D, full_matrices=False)
        U = vt[:r].T  # (m, r), orthonormal columns
    else:
        U = np.eye(m)
    dxdt = differentiate(x, traj.t, derivative).reshape(-1, m)
    z = ((flat - mu) / D) @ U  # (N, r)
    dz = (dxdt / D) @ U * tau  # d z / d(t / tau)

    # least squares, projected onto the stable set
    design = np.concatenate([np.ones((z.shape[0], 1)), z], axis=1)
    coef, *_ = np.linalg.lstsq(design, dz, rcond=None)
    A0, b0 = coef[1:].T, coef[0]
    sym = 0.5 * (A0 + A0.T)
    lam, V = np.linalg.eigh(-sym)
    L0 = V * np.sqrt(np.maximum(lam - eps, 1e-6))
    S0 = 0.25 * (A0 - A0.T)

    aux = (U, mu, D, tau, eps)
    dtype = jnp.asarray(0.0).dtype
    params = tuple(jnp.asarray(a, dtype=dtype) for a in (L0, S0, b0))

    if deriv_steps:
        params = _match_derivatives(params, z, dz, eps, deriv_steps, lr)

    field = vector_field(Linear(), m)
    info: dict[str, Any] = {"rank": r, "eps": eps, "deriv_steps": int(deriv_steps)}
    if steps:
        res = optimise_rollout(
            field,
            _stable_xi,
            params,
            traj.t,
            x,
            aux=aux,
            steps=steps,
            lr=lr,
            horizons=horizons,
            time_limit=time_limit,
        )
        params = res.params
        info.update(
            steps=int(steps),
            steps_run=res.steps_run,
            best_step=res.best_step,
            stopped=res.stopped,
            seconds=round(res.seconds, 3),
        )
    aux_j = tuple(jnp.asarray(a, dtype=dtype) for a in (U, mu, D, tau, eps))
    xi = np.asarray(_stable_xi(params, aux_j), dtype=np.float64)
    eig = np.linalg.eigvals(xi[:, 1:])
    info["max_real_eigenvalue"] = float(eig.real.max())
    return Model(
        Linear(),
        traj.names,
        xi,
        {
            "variant": "stable" if r == m else f"stable_rank{r}",
            "derivative": derivative,
            "stable": info,
            "n_runs": traj.n_runs,
            "t_range": [float(traj.t[0]), float(traj.t[-1])],
        },
    )


def _match_derivatives(params, z, dz, eps, n_steps, lr):
    """Adam on the mean squared derivative error in normalised reduced coordinates."""
    dtype = params[0].dtype
    zj = jnp.asarray(z, dtype=dtype)
    dzj = jnp.asarray(dz, dtype=dtype)
    var = jnp.maximum(jnp.var(dzj, axis=0), 1e-12)

    def loss(p):
        L, S, bn = p
        A = _stable_matrix(L, S, eps)
        pred = zj @ A.T + bn
        return jnp.mean((pred - dzj) ** 2 / var)

    opt = optax.adam(lr)

    @jax.jit
    def run(p):
        def body(carry, _):
            p, st = carry
            val, g = jax.value_and_grad(loss)(p)
            upd, st = opt.update(g, st, p)
            return (optax.apply_updates(p, upd), st), val

        (p, _), _ = jax.lax.scan(body, (p, opt.init(p)), None, length=n_steps)
        return p

    out = run(params)
    if all(bool(jnp.all(jnp.isfinite(a))) for a in out) and float(loss(out)) <= float(loss(params)):
        return out
    return params
