"""The dysts protocol shared by ``discovery_dysts.py`` (the quadratic flows) and
``discovery_beyond_polynomials.py`` (the others): which flows qualify, their
trajectories, the noise, and the true coefficients on a library.

Every flow of ``dysts.systems.get_attractor_list()`` whose ``rhs`` is autonomous (the
same at two times) and finite at 200 random states around its initial condition is
split by one test: a least-squares fit on all monomials of degree <= 2 at those states
reproduces it to within 1e-9 (relative, max norm), or not. Trajectories: 4,000 samples
at 100 per period from the system's own initial condition (dysts' ``make_trajectory``,
DOP853 at rtol = atol = 1e-10, no post-processing), cached as .npz. Noise: ``level x
each variable's std x N(0, 1)``, a fixed seed per system and level.
"""

from __future__ import annotations

import sys
import types
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

N_SAMPLES = 4000
PTS_PER_PERIOD = 100
#: a law reproduced to within this (relative, max norm) by a library is in it; smaller
#: coefficients (relative to the largest) are zero
EXACT = 1e-9


def import_dysts() -> tuple[Any, Callable[[], list[str]]]:
    """``dysts.flows`` and ``get_attractor_list``. dysts 0.96 imports gluonts only to
    write datasets: a stand-in module takes its place when gluonts is missing."""
    try:
        import gluonts.dataset.arrow  # noqa: F401
    except ImportError:
        for name in ("gluonts", "gluonts.dataset", "gluonts.dataset.arrow"):
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.modules["gluonts.dataset.arrow"].ArrowWriter = object  # pyright: ignore[reportAttributeAccessIssue]
    import dysts.flows as flows
    from dysts.systems import get_attractor_list

    return flows, get_attractor_list


def true_coefficients(theta: np.ndarray, f: np.ndarray) -> np.ndarray | None:
    """The coefficients (m, n) of the law ``f`` (N, m) on the library columns ``theta``
    (N, n), with |c| < EXACT max |c| set to zero; None when the library does not hold
    the law (or either is not finite)."""
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(f))):
        return None
    coef = np.linalg.lstsq(theta, f, rcond=None)[0].T
    if np.abs(coef @ theta.T - f.T).max() > EXACT * np.abs(f).max():
        return None
    coef[np.abs(coef) < EXACT * np.abs(coef).max()] = 0.0
    return coef


def support_scores(coef: np.ndarray, true: np.ndarray) -> tuple[bool, float, float]:
    """(exact support, support F1, relative coefficient error)."""
    est, tru = coef != 0, true != 0
    tp = int(np.sum(est & tru))
    f1 = 2 * tp / (est.sum() + tru.sum()) if est.sum() + tru.sum() else 1.0
    err = float(np.linalg.norm(coef - true) / np.linalg.norm(true))
    return bool(np.array_equal(est, tru)), float(f1), err


def law_samples(model: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(X, f): 200 states around a dysts flow's initial condition and its right-hand side
    there; None for a delay equation, a non-autonomous law or one that cannot take them."""
    if not hasattr(model, "rhs"):  # delay equations
        return None
    ic = np.asarray(model.ic, dtype=float)
    X = ic + np.random.default_rng(0).normal(size=(200, ic.size)) * (np.abs(ic) + 1)
    with np.errstate(all="ignore"):
        try:
            f0 = np.array([model.rhs(x, 0.0) for x in X], dtype=float)
            f1 = np.array([model.rhs(x, 1.2345) for x in X], dtype=float)
        except Exception:  # noqa: BLE001  (a flow that cannot take these states)
            return None
    if not np.all(np.isfinite(f0)) or not np.allclose(f0, f1, rtol=1e-12, atol=1e-12):
        return None
    return X, f0


def quadratic_coef(model: Any) -> np.ndarray | None:
    """A dysts flow's law as coefficients on sklearn's degree-2 monomial order (1, x0, ..,
    x0^2, x0 x1, ..), or None when it is not an autonomous quadratic polynomial."""
    from sklearn.preprocessing import PolynomialFeatures

    samples = law_samples(model)
    if samples is None:
        return None
    X, f = samples
    return true_coefficients(PolynomialFeatures(2).fit_transform(X), f)


def autonomous_flows() -> dict[str, tuple[Any, np.ndarray | None]]:
    """name -> (dysts model, its true coefficients by :func:`quadratic_coef`, or None when
    the law is not a quadratic polynomial), for every autonomous dysts flow."""
    flows, get_attractor_list = import_dysts()
    out = {}
    for name in get_attractor_list():
        model = getattr(flows, name)()
        if law_samples(model) is not None:
            out[name] = (model, quadratic_coef(model))
    return out


def dysts_trajectory(name: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(t, x) of ``name`` as the module docstring says (DOP853 instead of dysts' default
    Radau at 1e-12, which without numba takes minutes per system); cached."""
    path = data_dir / f"{name}_n{N_SAMPLES}_ppp{PTS_PER_PERIOD}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            return f["t"], f["x"]
    flows, _ = import_dysts()
    t, x = getattr(flows, name)().make_trajectory(
        N_SAMPLES, pts_per_period=PTS_PER_PERIOD, resample=True, return_times=True,
        postprocess=False, method="DOP853", rtol=1e-10, atol=1e-10,
    )  # fmt: skip
    t, x = np.asarray(t, dtype=float), np.asarray(x, dtype=float)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, t=t, x=x)
    tmp.replace(path)
    return t, x


def add_noise(x: np.ndarray, level: float, key: str) -> np.ndarray:
    """``x`` plus ``level`` x each variable's std (over samples and runs) x N(0, 1), the
    seed fixed by ``key`` and ``level``."""
    if level == 0:
        return x
    seed = zlib.crc32(f"{key}:{level}".encode())
    axes = tuple(range(x.ndim - 1))
    noise = np.random.default_rng(seed).standard_normal(x.shape)
    return x + level * x.std(axis=axes, keepdims=True) * noise
