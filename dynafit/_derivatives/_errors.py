"""Error statistics of a derivative estimate: its systematic part (truncation or
smoothing, against a higher-order difference) and its noise part (measurement noise
through the method's white-noise gain)."""

from __future__ import annotations

import numpy as np

from ._estimate import differentiate, noise_variance, white_noise_derivative


def _reference(method: str, order: int) -> tuple[str, int]:
    """The higher-order derivative that ``method`` of ``order`` is compared with: smoothed
    data with a higher-order difference of the same smoothing, others centred."""
    ref_order = (2 if method == "forward" else int(order)) + 2
    return ("smoothed" if method == "smoothed" else "centered"), ref_order


def reference_derivative(
    x: np.ndarray, t: np.ndarray, method: str, order: int, window
) -> np.ndarray | None:
    """The reference derivative of :func:`_error_parts` (None where the series is too
    short to tell), for callers that estimate several error parts of the same data."""
    ref_method, ref_order = _reference(method, order)
    if x.shape[-2] < ref_order + 2 or x.shape[-2] < 8:
        return None
    return differentiate(x, t, ref_method, order=ref_order, window=window)


def _error_parts(
    x: np.ndarray,
    t: np.ndarray,
    dxdt: np.ndarray,
    method: str,
    order: int,
    window,
    rows,
    ref: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per variable: systematic error^2 of ``dxdt`` (truncation or smoothing), its noise
    error^2 (sigma^2 times the method's white-noise gain), and the variance of ``dxdt``,
    averaged over runs and ``rows``. None when the series is too short to tell. ``ref``:
    :func:`reference_derivative` of ``x`` when already computed."""
    R, T, m = x.shape
    ref_method, ref_order = _reference(method, order)
    if T < ref_order + 2 or T < 8:
        return None
    if ref is None:
        ref = differentiate(x, t, ref_method, order=ref_order, window=window)
    sq = ((dxdt - ref)[:, rows] ** 2).mean(axis=(0, 1))
    sigma2 = noise_variance(x)
    own = white_noise_derivative(t, method, order, window)
    diff = own - white_noise_derivative(t, ref_method, ref_order, window)
    gain_diff = float((diff[rows] ** 2).mean())
    gain_own = float((own[rows] ** 2).mean())
    systematic = np.maximum(sq - sigma2 * gain_diff, 0.0)
    return systematic, sigma2 * gain_own, dxdt[:, rows].var(axis=(0, 1))


def derivative_error_floor(
    x: np.ndarray,
    t: np.ndarray,
    dxdt: np.ndarray,
    method: str,
    opts: dict,
    rows: np.ndarray,
    ref: np.ndarray | None = None,
) -> float:
    """Estimated systematic error of the derivative estimate, as a fraction of variance.

    The estimate ``dxdt`` is compared with a higher-order centred difference; the part of
    their mean squared difference that white noise would explain (noise level from
    fourth differences of ``x``, gain from passing white noise through both estimators)
    is removed, leaving the truncation or smoothing error that a dense library can fit but
    a correct sparse model cannot. Averaged over variables on the held-out ``rows``.
    """
    parts = _error_parts(x, t, dxdt, method, int(opts["order"]), opts["window"], rows, ref)
    if parts is None:
        return 0.0
    systematic, _, var = parts
    var = np.where(var > 0, var, 1.0)
    return float(np.mean(systematic / var))


def derivative_error_variance(
    x: np.ndarray,
    t: np.ndarray,
    method: str,
    order: int = 2,
    window: int | None = None,
    dxdt: np.ndarray | None = None,
    ref: np.ndarray | None = None,
) -> np.ndarray:
    """The noise floor of derivative residuals: estimated mean squared error of the
    derivative estimate itself, per run (``x``: (T, m) -> scalar array, (R, T, m) -> (R,)).

    Systematic part (truncation or smoothing error, against a higher-order difference)
    plus noise part (measurement noise from fourth differences of ``x``, through the
    method's white-noise gain), averaged over variables. No model can be told apart from
    the truth by fitting the derivative estimate more closely than this: that is the
    variance below which :func:`information_criteria` grants no likelihood.
    """
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == 2
    x = x[None] if single else x
    R, T, m = x.shape
    if dxdt is None:
        dxdt = differentiate(x, t, method, order=order, window=window)
    rows = np.arange(T - 1) if method == "forward" else np.arange(T)
    out = np.zeros(R)
    for r in range(R):
        parts = _error_parts(
            x[r : r + 1],
            t,
            dxdt[r : r + 1],
            method,
            order,
            window,
            rows,
            None if ref is None else ref[r : r + 1],
        )
        if parts is not None:
            out[r] = float(np.mean(parts[0] + parts[1]))
    out = np.where(np.isfinite(out), out, 0.0)
    return out[0] if single else out
