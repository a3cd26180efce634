"""Information criteria of Gaussian residuals, floored at the derivative estimate's own
error variance."""

from __future__ import annotations

import numpy as np


def information_criteria(residuals: np.ndarray, k: int, floor: float = 0.0) -> tuple[float, float]:
    """AIC and BIC of Gaussian residuals (n = residuals.size, k parameters).

    ``-2 log L = n (log(2 pi sigma^2) + 1)`` with ``sigma^2 = max(RSS / n, floor)``:
    ``floor`` is the variance of the derivative estimate's own error
    (:func:`derivative_error_variance`). Residuals smaller than the error of the data
    they are measured against carry no information, so terms that only fit below the
    floor earn no likelihood and still pay their ``2 k`` (AIC) or ``k log n`` (BIC). This
    is what keeps a dense library from winning on noise-free data, where the
    finite-difference truncation error is smooth and partly fittable; with
    ``floor = 0`` it is the plain Gaussian criterion.
    """
    rss = float(np.sum(np.asarray(residuals, dtype=np.float64) ** 2))
    return _criteria(rss, residuals.size, k, floor)


def _criteria(rss: float, n: int, k: int, floor: float) -> tuple[float, float]:
    """:func:`information_criteria` from the residual sum of squares of ``n`` residuals."""
    if not np.isfinite(rss):
        return float("inf"), float("inf")
    floor = float(floor) if np.isfinite(floor) and floor > 0 else 0.0
    rss = max(rss, np.finfo(np.float64).tiny * n, floor * n)
    nll2 = n * (np.log(2 * np.pi * rss / n) + 1)
    return float(nll2 + 2 * k), float(nll2 + k * np.log(n))
