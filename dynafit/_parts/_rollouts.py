"""Rollouts of candidate coefficient matrices over the fitted window: the screen of the
held-out selection (does a candidate integrate, and how close to the data)."""

from __future__ import annotations

import numpy as np

from .._field import VectorField
from .._integrate import pow2_padding, rollout, rollout_joint
from .._trajectory import Trajectory

#: step budget of the stiff solver when the sweep screens candidates by their rollout. A
#: candidate the explicit solver cannot finish in its 4,096 steps is retried with
#: Kvaerno5; one that is merely stiff needs few implicit steps, while the dense Lotka-
#: Volterra candidates of circle data that exhaust Tsit5's budget did not finish within
#: 4,096 implicit steps either (measured: 0 of 22), which cost 8x as much, in lockstep
#: with the whole vmapped batch
SCREEN_STIFF_STEPS = 512


def rollout_quality(
    field: VectorField, fits: list[np.ndarray], traj: Trajectory
) -> tuple[np.ndarray, np.ndarray]:
    """Per coefficient matrix: does its rollout from every run's first state stay finite
    (and within the solver's blow-up bound) over the fitted window, and its rollout R^2
    (uniform over variables, averaged over runs; -inf where not finite)?

    Identical matrices are integrated once; all of them in ONE vmapped integration, padded
    to a power-of-two batch so that repeated calls reuse the compiled solver. The stiff
    retry gets ``SCREEN_STIFF_STEPS`` steps.
    """
    x = traj.x if traj.is_batch else traj.x[None]
    R = x.shape[0]
    keys: dict[bytes, int] = {}
    which = np.array([keys.setdefault(xi.tobytes(), len(keys)) for xi in fits])
    uniq = {int(k): xi for xi, k in zip(fits, which)}
    xis = np.repeat(np.stack([uniq[k] for k in range(len(uniq))]), R, axis=0)  # (U * R, m, n)
    x0 = np.tile(x[:, 0, :], (len(uniq), 1))
    n = xis.shape[0]
    pad = pow2_padding(n)
    # a long series (thousands of samples over many oscillations) needs more steps than
    # the default budget: a step budget of 4 per sample, in powers of two (few compiles)
    steps = max(4096, 1 << int(np.ceil(np.log2(4 * traj.n_times))))
    out = rollout_joint(field, xis[pad], x0[pad], traj.t)
    if out is None:  # a stiff candidate: one solve per candidate, with the stiff retry
        out = rollout(
            field,
            xis[pad],
            x0[pad],
            traj.t,
            max_steps=steps,
            stiff_max_steps=SCREEN_STIFF_STEPS,
        )
    ys, ok = out
    ys, ok = ys[:n].reshape(len(uniq), R, *x.shape[1:]), np.asarray(ok[:n]).reshape(len(uniq), R)
    data = np.asarray(x, dtype=np.float64)
    var = data.var(axis=1)  # (R, m)
    var = np.where(var > 0, var, 1.0)
    with np.errstate(all="ignore"):
        mse = ((ys - data[None]) ** 2).mean(axis=2)  # (U, R, m)
        r2 = (1.0 - mse / var).mean(axis=(1, 2))
    finite = np.asarray(ok.all(axis=1))
    r2 = np.where(finite & np.isfinite(r2), r2, -np.inf)
    return finite[which], r2[which]
