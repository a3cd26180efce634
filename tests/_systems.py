"""Known-answer systems shared by the fitting tests (simulated with scipy, tight tolerances)."""

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


def simulate(f, x0s: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = []
    for x0 in x0s:
        sol = solve_ivp(lambda _, x: f(x), (t[0], t[-1]), x0, t_eval=t, rtol=1e-10, atol=1e-12)
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
