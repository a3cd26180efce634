"""Systems with known equations, simulated independently of dynafit (scipy), for the
leaderboard, report and CLI tests."""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

import dynafit


def sparse_stable_linear(m: int = 10, seed: int = 0):
    """A sparse Hurwitz A (diagonal -0.6..-1.4, ~1.5 off-diagonal entries per row) and b
    with a positive equilibrium x* in [1, 2]."""
    rng = np.random.default_rng(seed)
    while True:
        A = -np.diag(rng.uniform(0.6, 1.4, m))
        for i in range(m):
            cols = rng.choice(
                [j for j in range(m) if j != i], size=rng.integers(1, 3), replace=False
            )
            A[i, cols] = rng.choice([-1, 1], size=cols.size) * rng.uniform(0.2, 0.4, cols.size)
        if np.linalg.eigvals(A).real.max() < -0.2:
            break
    xstar = rng.uniform(1.0, 2.0, m)
    b = -A @ xstar
    return A, b, xstar


def competitive_lv(n: int = 4, seed: int = 0):
    """r > 0 and a competitive interaction matrix (a_ii = -1, some a_ij in [-0.5, -0.1])
    with a stable, feasible interior equilibrium."""
    rng = np.random.default_rng(seed)
    while True:
        r = rng.uniform(0.6, 1.4, n)
        a = -np.eye(n)
        mask = rng.random((n, n)) < 0.5
        np.fill_diagonal(mask, False)
        a[mask] = -rng.uniform(0.1, 0.5, mask.sum())
        xstar = np.linalg.solve(a, -r)
        jac = np.diag(xstar) @ a
        if np.all(xstar > 0.1) and np.linalg.eigvals(jac).real.max() < -0.05:
            return r, a, xstar


def _simulate(f, x0s, t):
    out = []
    for x0 in x0s:
        sol = solve_ivp(f, (t[0], t[-1]), x0, t_eval=t, method="LSODA", rtol=1e-10, atol=1e-12)
        assert sol.success
        out.append(sol.y.T)
    return np.stack(out)


def _noisy(x, noise, seed):
    if noise == 0:
        return x
    rng = np.random.default_rng(seed + 1000)
    scale = x.reshape(-1, x.shape[-1]).std(axis=0)
    return x + noise * scale * rng.standard_normal(x.shape)


def linear_trajectory(m=10, noise=0.0, runs=4, seed=0, n_times=201, t_end=8.0):
    """A batch of ``runs`` initial conditions of a sparse stable linear system (positive
    states, so every family applies)."""
    A, b, xstar = sparse_stable_linear(m, seed)
    rng = np.random.default_rng(seed + 1)
    x0s = xstar + rng.uniform(-0.9, 0.9, (runs, m))
    t = np.linspace(0.0, t_end, n_times)
    x = _simulate(lambda _, y: A @ y + b, x0s, t)
    x = _noisy(x, noise, seed)
    names = [f"x{i}" for i in range(m)]
    return dynafit.Trajectory(
        t, x, names, {"runs": [{"seed": seed, "ic": i} for i in range(runs)]}
    ), (A, b)


def lv_trajectory(n=4, noise=0.0, runs=3, seed=0, n_times=201, t_end=12.0):
    """A batch of ``runs`` initial conditions of a competitive Lotka-Volterra system."""
    r, a, xstar = competitive_lv(n, seed)
    rng = np.random.default_rng(seed + 1)
    x0s = rng.uniform(0.05, 1.2, (runs, n)) * xstar.max()
    t = np.linspace(0.0, t_end, n_times)
    x = _simulate(lambda _, y: y * (r + a @ y), x0s, t)
    x = np.abs(_noisy(x, noise, seed))  # multiplicative noise keeps the data positive
    names = [f"s{i}" for i in range(n)]
    return dynafit.Trajectory(
        t, x, names, {"runs": [{"seed": seed, "ic": i} for i in range(runs)]}
    ), (r, a)
