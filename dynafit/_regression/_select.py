"""Choosing a model from a threshold sweep: the threshold grid, the sparsest candidate
within the held-out error band (stepping denser where BIC strongly asks), and the middle
of the chosen support's plateau."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ._design import _Data

#: evidence (BIC units per added term) for a denser candidate inside the held-out band:
#: twice the "very strong" level of 10, because derivative residuals are serially
#: correlated (smoothing, finite differences), which makes the plain BIC overconfident
BIC_STEP = 20.0


def select(
    sweep: pd.DataFrame,
    tolerance: float | None = None,
    abs_tolerance: float = 1e-6,
    floor: float = 0.0,
):
    """Index of the sparsest sweep point whose held-out error is within a tolerance of the best.

    Errors are fractions of unexplained variance. Accepted: ``err <= best + tol`` with
    ``tol = max(abs_tolerance, se_best, tolerance * best)``, where ``se_best`` is the
    standard error of the best point's held-out error (from blocks of held-out samples)
    unless a fixed relative ``tolerance`` is given. The standard error tracks the noise:
    clean data gets the small absolute floor (finite-difference truncation error no
    longer buys terms), noisy data a band as wide as its own uncertainty. Among the
    accepted, fewest terms wins, then the lower error; a denser accepted candidate takes
    its place when its BIC (a ``"bic"`` column, floored at the derivative's own error) is
    lower by more than ``BIC_STEP`` per added term: a true term the band cannot resolve.
    Returns ``(index, tol)``.
    """
    err = sweep["heldout_error"].to_numpy()
    se = sweep["heldout_se"].to_numpy()
    counts = sweep["n_terms"].to_numpy()
    finite = np.isfinite(err)
    if not finite.any():
        return int(np.argmax(counts)), float("nan")
    best = int(np.nanargmin(np.where(finite, err, np.inf)))
    spread = se[best] if tolerance is None else tolerance * err[best]
    tol = float(max(abs_tolerance, spread, 2.0 * floor))
    ok = np.flatnonzero(finite & (err <= err[best] + tol))
    order = np.lexsort((err[ok], counts[ok]))
    pick = int(ok[order[0]])
    if "bic" in sweep:
        # held-out error cannot tell apart candidates inside its band; the (floored) BIC
        # can, where a term the sparsest one lacks is strongly supported: step to a
        # denser candidate of the band when it lowers BIC by more than BIC_STEP per term
        bic = sweep["bic"].to_numpy()
        for j in ok[order[1:]]:
            extra = counts[j] - counts[pick]
            if extra > 0 and bic[pick] - bic[j] > BIC_STEP * extra:
                pick = int(j)
    return pick, tol


def plateau_middle(sweep: pd.DataFrame, pick: int) -> float:
    """The geometric middle of the run of thresholds around ``pick`` with its number of terms.

    Refitting on all the data at the plateau's edge can admit a term the held-out fits
    dropped; its middle is the most stable threshold for that support.
    """
    thr = sweep["threshold"].to_numpy()
    counts = sweep["n_terms"].to_numpy()
    lo = hi = pick
    while lo > 0 and counts[lo - 1] == counts[pick]:
        lo -= 1
    while hi < len(thr) - 1 and counts[hi + 1] == counts[pick]:
        hi += 1
    if thr[lo] <= 0:
        lo = min(lo + 1, hi)
    if thr[lo] <= 0:
        return float(thr[pick])
    return float(np.sqrt(thr[lo] * thr[hi]))


#: the grid is scaled on the first ridge step's largest coefficient when that is below
#: this fraction of the unbiased dense fit's (thresholds above it all leave no term)
RIDGE_REBASE = 1e-2


def threshold_grid(data: _Data, optimizer: str, opts: dict[str, Any]) -> np.ndarray:
    if opts["thresholds"] is not None:
        grid = np.asarray(opts["thresholds"], dtype=float).ravel()
        if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
            raise ValueError("thresholds must be a non-empty list of finite numbers >= 0")
        return np.unique(grid)
    n = int(opts["n_thresholds"])
    if n < 2:
        raise ValueError(f"n_thresholds must be >= 2, got {n}")
    dense = data.regress(data.all, 0.0, "stlsq", opts, scaled=True)
    top = float(np.abs(dense).max())
    if not np.isfinite(top) or top <= 0:
        top = 1.0
    if optimizer == "stlsq":
        # thresholds above the first ridge step's largest coefficient all leave no term;
        # an ill-conditioned library (one trajectory settling along a plane) can inflate
        # the unbiased dense fit by orders of magnitude, and a grid scaled on it then
        # skips every threshold that keeps a term (a clean linear system fitted as
        # dx/dt = 0): the grid is rebased where more than two decades of it are empty
        ridge = data.ridge_top(data.all, opts)
        if np.isfinite(ridge) and 0 < ridge < RIDGE_REBASE * top:
            top = ridge
    return np.concatenate([[0.0], np.geomspace(top * 1e-4, top * 1.01, n - 1)])
