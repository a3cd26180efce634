"""Systems with known equations shared by the tests, simulated independently of dynafit
(scipy, tight tolerances): for fitting, the leaderboard, the report and the CLI."""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

import dynafit


def sparse_linear(m: int, seed: int = 0, density: float = 0.15):
    """A sparse stable A (m, m) and offset b: dx/dt = A x + b."""
    rng = np.random.default_rng(seed)
    mask = rng.random((m, m)) < density
    A = np.where(mask, rng.uniform(0.3, 1.0, (m, m)) * rng.choice([-1, 1], (m, m)), 0.0)
    np.fill_diagonal(A, 0.0)
    shift = max(np.linalg.eigvals(A).real.max(), 0.0) + 0.5
    np.fill_diagonal(A, -shift)
    b = np.where(rng.random(m) < 0.3, rng.uniform(0.5, 1.5, m), 0.0)
    return A, b


def competitive_lv(m: int, seed: int = 0):
    """Competitive Lotka-Volterra: r > 0, a_ii < 0, sparse a_ij <= 0 (i != j)."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(0.5, 1.5, m)
    a = -np.where(rng.random((m, m)) < 0.4, rng.uniform(0.2, 0.6, (m, m)), 0.0)
    np.fill_diagonal(a, -rng.uniform(0.8, 1.2, m))
    return r, a


def simulate(f, x0s: np.ndarray, t: np.ndarray, method: str = "RK45") -> np.ndarray:
    """dx/dt = f(x) from every row of ``x0s``, saved at ``t``: (runs, T, m)."""
    out = []
    for x0 in x0s:
        sol = solve_ivp(
            lambda _, x: f(x), (t[0], t[-1]), x0, t_eval=t, method=method, rtol=1e-10, atol=1e-12
        )
        assert sol.success, sol.message
        out.append(sol.y.T)
    return np.stack(out)


def add_noise(X: np.ndarray, level: float, seed: int) -> np.ndarray:
    """Gaussian noise of ``level`` times each variable's standard deviation."""
    rng = np.random.default_rng(seed)
    return X + level * X.std(axis=(0, 1)) * rng.normal(size=X.shape)


def linear_traj(m=10, seed=0, noise=0.0, runs=None, T=201, tmax=6.0):
    runs = runs or max(4, m // 2)
    A, b = sparse_linear(m, seed)
    rng = np.random.default_rng(seed + 100)
    t = np.linspace(0.0, tmax, T)
    X = simulate(lambda x: A @ x + b, rng.normal(0.0, 2.0, (runs, m)), t)
    if noise:
        X = add_noise(X, noise, seed + 200)
    return dynafit.Trajectory(t, X), np.concatenate([b[:, None], A], axis=1)


def lv_traj(m=4, seed=0, noise=0.0, runs=None, T=201, tmax=8.0):
    runs = runs or max(4, m)
    r, a = competitive_lv(m, seed)
    rng = np.random.default_rng(seed + 100)
    t = np.linspace(0.0, tmax, T)
    X = simulate(lambda x: x * (r + a @ x), rng.uniform(0.05, 1.5, (runs, m)), t)
    if noise:
        X = np.abs(add_noise(X, noise, seed + 200))
    return dynafit.Trajectory(t, X), np.concatenate([r[:, None], a], axis=1)


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


def feasible_competitive_lv(n: int = 4, seed: int = 0):
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


def linear_trajectory(m=10, noise=0.0, runs=4, seed=0, n_times=201, t_end=8.0):
    """A batch of ``runs`` initial conditions of a sparse stable linear system (positive
    states, so every family applies)."""
    A, b, xstar = sparse_stable_linear(m, seed)
    rng = np.random.default_rng(seed + 1)
    x0s = xstar + rng.uniform(-0.9, 0.9, (runs, m))
    t = np.linspace(0.0, t_end, n_times)
    x = simulate(lambda y: A @ y + b, x0s, t, method="LSODA")
    x = add_noise(x, noise, seed + 1000) if noise else x
    names = [f"x{i}" for i in range(m)]
    return dynafit.Trajectory(
        t, x, names, {"runs": [{"seed": seed, "ic": i} for i in range(runs)]}
    ), (A, b)


def lv_trajectory(n=4, noise=0.0, runs=3, seed=0, n_times=201, t_end=12.0):
    """A batch of ``runs`` initial conditions of a competitive Lotka-Volterra system."""
    r, a, xstar = feasible_competitive_lv(n, seed)
    rng = np.random.default_rng(seed + 1)
    x0s = rng.uniform(0.05, 1.2, (runs, n)) * xstar.max()
    t = np.linspace(0.0, t_end, n_times)
    x = simulate(lambda y: y * (r + a @ y), x0s, t, method="LSODA")
    x = (
        np.abs(add_noise(x, noise, seed + 1000)) if noise else x
    )  # multiplicative noise keeps the data positive
    names = [f"s{i}" for i in range(n)]
    return dynafit.Trajectory(
        t, x, names, {"runs": [{"seed": seed, "ic": i} for i in range(runs)]}
    ), (r, a)
