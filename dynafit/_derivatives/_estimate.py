"""Time derivatives of trajectories, by name.

- ``"forward"``: (x[k+1] - x[k]) / (t[k+1] - t[k]), the paper's discrete difference; the
  last point repeats the last difference so the result has T rows.
- ``"centered"`` (alias ``"finite_difference"``): pysindy's ``FiniteDifference`` of
  ``order`` (2 by default; 4 is more accurate on clean, smooth data).
- ``"smoothed"``: pysindy's ``SmoothedFiniteDifference`` (Savitzky-Golay, then centred
  differences); ``window`` sets the filter length.
- ``"auto"``: "smoothed" when the data's estimated measurement noise explains more than
  ``AUTO_NOISE_FRACTION`` of the centred derivative's variance, "centered" otherwise.

Any other ``method`` that is not a string is a differentiator called as ``method(x, t)``
on one run ``x`` (T, m) and its times ``t`` (T,) (``dynafit.parts.PySINDy`` wraps a
pysindy differentiation object so).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pysindy as ps

DERIVATIVES = ("auto", "forward", "centered", "finite_difference", "smoothed")

#: "auto" picks "smoothed" when white noise explains more than this fraction of the
#: centred derivative's variance, and "centered" otherwise
AUTO_NOISE_FRACTION = 1e-3


def check_method(method: Any) -> Any:
    if not isinstance(method, str) and callable(method):
        return method
    if method not in DERIVATIVES:
        raise ValueError(f"unknown derivative method {method!r}; choose one of {list(DERIVATIVES)}")
    return method


def recorded_method(label: Any) -> str:
    """The method to re-estimate a fitted model's derivative with, from what
    ``model.options["derivative"]`` records: the name itself, or "centered" for a
    differentiator object (recorded as "pysindy:<class>"; the object is not saved)."""
    return label if label in DERIVATIVES else "centered"


def noise_fraction(x: np.ndarray, t: np.ndarray) -> float:
    """Fraction of the centred derivative's variance that measurement noise explains.

    The noise variance of each variable comes from fourth differences of ``x`` (which
    remove smooth signal; white noise gives 70 sigma^2), its effect on the derivative
    from passing white noise through the centred difference. ``x``: (T, m) or (R, T, m).
    """
    x = np.asarray(x, dtype=np.float64)
    x = x if x.ndim == 3 else x[None]
    if x.shape[1] < 8:
        return 0.0
    sigma2 = noise_variance(x)
    gain = float((white_noise_derivative(t, "centered") ** 2).mean())
    var = differentiate(x, t, "centered").var(axis=(0, 1))
    return float(np.mean(np.where(var > 0, sigma2 * gain / np.where(var > 0, var, 1.0), 0.0)))


def noise_variance(x: np.ndarray) -> np.ndarray:
    """Measurement-noise variance of each variable of ``x`` (R, T, m), averaged over runs:
    fourth differences remove smooth signal, and white noise of variance sigma^2 gives
    fourth differences of variance 70 sigma^2."""
    return (np.diff(x, n=4, axis=1) ** 2).mean(axis=(0, 1)) / 70.0


def white_noise_derivative(
    t: np.ndarray, method: str, order: int = 2, window: int | None = None
) -> np.ndarray:
    """``method``'s derivative of 16 fixed unit white-noise series sampled at ``t``, (T, 16):
    how the method passes measurement noise. Cached per (t, method, order, window); read-only."""
    t = np.ascontiguousarray(t, dtype=np.float64)
    return _white_noise_derivative(t.tobytes(), method, order, window)


@functools.lru_cache(maxsize=32)
def _white_noise_derivative(t_bytes: bytes, method: str, order: int, window: int | None):
    t = np.frombuffer(t_bytes, dtype=np.float64)
    w = np.random.default_rng(0).normal(size=(t.shape[0], 16))
    out = differentiate(w, t, method, order=order, window=window)
    out.setflags(write=False)
    return out


def resolve(method: Any, x: np.ndarray, t: np.ndarray) -> Any:
    """The method "auto" stands for on this data; other methods are returned as they are."""
    check_method(method)
    if method != "auto":
        return method
    if np.asarray(t).shape[0] < 11:
        return "centered"
    return "smoothed" if noise_fraction(x, t) > AUTO_NOISE_FRACTION else "centered"


def differentiate(
    x: np.ndarray,
    t: np.ndarray,
    method: Any = "centered",
    *,
    order: int = 2,
    window: int | None = None,
) -> np.ndarray:
    """dx/dt along the time axis of ``x`` (shape ``(T, m)`` or ``(R, T, m)``), same shape."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    method = resolve(method, x, t)
    if x.ndim == 3:
        return np.stack([differentiate(xr, t, method, order=order, window=window) for xr in x])
    if not isinstance(method, str):  # a differentiator object
        out = np.asarray(method(x, t), dtype=np.float64)
        if out.shape != x.shape:
            raise ValueError(
                f"the differentiator {method!r} returned shape {out.shape}, not {x.shape}"
            )
        return out
    T = t.shape[0]
    if method == "forward":
        d = np.diff(x, axis=0) / np.diff(t)[:, None]
        return np.concatenate([d, d[-1:]], axis=0)
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"derivative order must be a positive int, got {order!r}")
    need = order + 1
    if T < need:
        raise ValueError(
            f"{method!r} differences of order {order} need at least {need} points, got {T}"
        )
    if method in ("centered", "finite_difference"):
        diff: Any = ps.FiniteDifference(order=order)
    else:
        w = window if window is not None else min(11, T - (1 - T % 2))
        if w % 2 == 0:
            w -= 1
        if w < 5:
            raise ValueError(f"'smoothed' needs at least 5 points (window {w}), got {T}")
        diff = ps.SmoothedFiniteDifference(
            order=order, smoother_kws={"window_length": w, "polyorder": 3, "axis": 0}
        )
    # exactly uniform sampling: pysindy's constant-step path (the same coefficients, ~4x
    # faster than deriving them point by point from the time array)
    steps = np.diff(t)
    spacing = float(steps[0]) if np.all(steps == steps[0]) else t
    return np.asarray(diff(x, t=spacing), dtype=np.float64)
