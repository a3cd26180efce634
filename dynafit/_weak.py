"""The weak (integral) formulation of the regression, from pysindy's ``WeakPDELibrary``.

Instead of estimating dx/dt pointwise, each equation is multiplied by smooth test
functions phi_k(t) with compact support and integrated by parts:

    -int phi_k' x_i dt = int phi_k g_i(x) theta(x) dt . Xi_i

so measurement noise is averaged over every test function's support and no derivative
is estimated at all. pysindy's ``WeakPDELibrary`` (test functions (1 - s^2)^p on K
subdomains of width ``H``, trapezoid quadrature) computes both sides: its
``IdentityLibrary`` applied to the family's own library columns g_i theta_k gives the
right-hand side, ``convert_u_dot_integral`` the left. Each test function is one row of
the regression; the rows of the held-out blocks are those whose subdomain centre falls
in them.

The width of the test functions follows the data: ``WIDTH_PERIODS`` of the time scale
at which the (noise-floored) spectrum of dx/dt has half its power, between 11 samples
and an eighth of the series. Measured on the 67 quadratic dysts flows
(``benchmarks/discovery_dysts.py``): the exact support lies on the threshold path for
66, 64 and 56 of them clean, at 1 % and at 5 % noise, against 62, 51 and 41 with
smoothed finite differences.
"""

from __future__ import annotations

import warnings

import numpy as np
import pysindy as ps
from pysindy.utils import AxesArray

#: test-function width, in units of the data's dominant time scale (see module docstring)
WIDTH_PERIODS = 0.4
#: test functions per run (at most one per sample)
N_TEST_FUNCTIONS = 400
#: the weak formulation needs this many samples per run (a few test-function widths)
MIN_WEAK_TIMES = 100
#: polynomial degree of the test functions (pysindy's ``p``)
TEST_FUNCTION_DEGREE = 4


def test_function_width(t: np.ndarray, x: np.ndarray) -> float:
    """Width H (time units) of the test functions for data ``x`` (R, T, m) on ``t``.

    The spectrum of every variable (mean removed, averaged over runs) has its white-noise
    floor (the median power over the upper half of frequencies) removed and is
    normalised; weighted by frequency it is the spectrum of dx/dt, whose median frequency
    f sets H = ``WIDTH_PERIODS`` / f, clipped to [11 samples, T / 8 samples].
    """
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[1]
    dt = float(np.median(np.diff(t)))
    freq = np.fft.rfftfreq(T, dt)
    power = (np.abs(np.fft.rfft(x - x.mean(axis=1, keepdims=True), axis=1)) ** 2).mean(axis=0)
    power = np.maximum(power - np.median(power[freq.size // 2 :], axis=0), 0.0)
    total = power.sum(axis=0)
    power = power[:, total > 0] / total[total > 0]
    spectrum = power.sum(axis=1)[1:] * freq[1:]
    samples = T / 8.0
    if spectrum.sum() > 0:
        cum = np.cumsum(spectrum) / spectrum.sum()
        f_half = freq[1:][min(int(np.searchsorted(cum, 0.5)), freq.size - 2)]
        samples = WIDTH_PERIODS / (f_half * dt)
    return float(np.clip(samples, 11.0, T / 8.0) * dt)


def _axes(a: np.ndarray) -> AxesArray:
    return AxesArray(np.ascontiguousarray(a), {"ax_time": 0, "ax_coord": 1})


def weak_system(
    t: np.ndarray, x: np.ndarray, features: np.ndarray, width: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weak rows of every run: (F (R*K, p), Y (R*K, m), centres (R*K,) as fractions of
    each run's time span) for data ``x`` (R, T, m) and library columns ``features``
    (R, T, p) evaluated on it. pysindy draws the subdomain centres from numpy's global
    generator: seeded with ``seed`` here (and its state restored), so a fit is
    reproducible."""
    R, T, _ = x.shape
    K = int(min(N_TEST_FUNCTIONS, T))
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lib = ps.WeakPDELibrary(
                function_library=ps.IdentityLibrary(),
                spatiotemporal_grid=np.asarray(t, dtype=np.float64),
                K=K,
                p=TEST_FUNCTION_DEGREE,
                H_xt=[float(width)],
            )
            lib.fit([_axes(features[0])])
            F = [
                np.asarray(f, dtype=np.float64) for f in lib.transform([_axes(f) for f in features])
            ]
            Y = [np.asarray(lib.convert_u_dot_integral(_axes(xr)), dtype=np.float64) for xr in x]
    finally:
        np.random.set_state(state)
    centres = np.array([np.mean(idx[0]) for idx in lib.inds_k]) / max(T - 1, 1)
    return np.concatenate(F), np.concatenate(Y), np.tile(centres, R)
