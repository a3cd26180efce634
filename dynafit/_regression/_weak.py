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

import functools
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
    # on a grid of quarter octaves, so that runs of a batch share cached weights
    samples = 2.0 ** (np.round(4.0 * np.log2(max(samples, 1.0))) / 4.0)
    return float(np.clip(samples, 11.0, T / 8.0) * dt)


def _axes(a: np.ndarray) -> AxesArray:
    return AxesArray(np.ascontiguousarray(a), {"ax_time": 0, "ax_coord": 1})


def weak_operators(t: np.ndarray, width: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """pysindy's weak-form weights on ``t`` as two (K, T) matrices: ``W0 @ f`` is
    ``WeakPDELibrary.transform`` of columns f (the integrals of phi_k f) and ``W1 @ x``
    its ``convert_u_dot_integral`` (-int phi_k' x). Cached per grid, width and seed:
    pysindy sets the weights up in a Python loop over test functions (about a second),
    after which every library and run on the same grid is one matrix product."""
    t = np.ascontiguousarray(t, dtype=np.float64)
    return _weak_operators(t.tobytes(), float(width), int(seed))


@functools.lru_cache(maxsize=16)
def _weak_operators(t_bytes: bytes, width: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.frombuffer(t_bytes, dtype=np.float64)
    T = t.size
    K = int(min(N_TEST_FUNCTIONS, T))
    state = np.random.get_state()
    np.random.seed(seed)  # pysindy draws the subdomain centres from the global generator
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lib = ps.WeakPDELibrary(
                function_library=ps.IdentityLibrary(),
                spatiotemporal_grid=t,
                K=K,
                p=TEST_FUNCTION_DEGREE,
                H_xt=[width],
            )
    finally:
        np.random.set_state(state)
    w0, w1 = np.zeros((K, T)), np.zeros((K, T))
    for k, idx in enumerate(lib.inds_k):
        w0[k, np.asarray(idx[0])] = np.asarray(lib.fullweights0[k])
        w1[k, np.asarray(idx[0])] = -np.asarray(lib.fulltweights[k])
    w0.setflags(write=False)
    w1.setflags(write=False)
    return w0, w1


def weak_system(
    t: np.ndarray, x: np.ndarray, features: np.ndarray, width: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weak rows of every run: (F (R*K, p), Y (R*K, m), centres (R*K,) as fractions of
    each run's time span) for data ``x`` (R, T, m) and library columns ``features``
    (R, T, p) evaluated on it (:func:`weak_operators`)."""
    R, T, _ = x.shape
    w0, w1 = weak_operators(t, width, seed)
    F = (w0 @ features).reshape(-1, features.shape[-1])
    Y = (w1 @ x).reshape(-1, x.shape[-1])
    support = w0 != 0
    centres = (support * np.arange(T)).sum(axis=1) / np.maximum(support.sum(axis=1), 1)
    return F, Y, np.tile(centres / max(T - 1, 1), R)
