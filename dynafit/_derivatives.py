"""Time derivatives of trajectories, by name.

- ``"forward"``: (x[k+1] - x[k]) / (t[k+1] - t[k]), the paper's discrete difference; the
  last point repeats the last difference so the result has T rows.
- ``"centered"`` (alias ``"finite_difference"``): pysindy's ``FiniteDifference`` of
  ``order`` (2 by default; 4 is more accurate on clean, smooth data).
- ``"smoothed"``: pysindy's ``SmoothedFiniteDifference`` (Savitzky-Golay, then centred
  differences); ``window`` sets the filter length.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pysindy as ps

DERIVATIVES = ("forward", "centered", "finite_difference", "smoothed")


def check_method(method: str) -> str:
    if method not in DERIVATIVES:
        raise ValueError(f"unknown derivative method {method!r}; choose one of {list(DERIVATIVES)}")
    return method


def differentiate(
    x: np.ndarray,
    t: np.ndarray,
    method: str = "centered",
    *,
    order: int = 2,
    window: int | None = None,
) -> np.ndarray:
    """dx/dt along the time axis of ``x`` (shape ``(T, m)`` or ``(R, T, m)``), same shape."""
    check_method(method)
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if x.ndim == 3:
        return np.stack([differentiate(xr, t, method, order=order, window=window) for xr in x])
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
    return np.asarray(diff._differentiate(x, t), dtype=np.float64)
