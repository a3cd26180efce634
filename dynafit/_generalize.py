"""The generalisation check: does a family's law integrate from states it was not fitted on?

A model is judged by how it integrates from an initial condition it did not see:

- several runs: leave one run out (up to ``MAX_FOLDS`` folds: runs 0, 1, ...): fit on the
  others, integrate the left-out run from its own first state over its whole span;
- one run: fit on the first ``1 - LATE_FRACTION`` of the span, integrate the late
  sub-window (the last ``LATE_FRACTION``) from its own first state.

``general_r2`` is the rollout R^2 of those integrations (mean over folds; -inf when the
rollout diverges). ``support_stability`` is the Jaccard overlap of the non-zero
coefficients of the fold models with those of the model fitted on all the data (1: the
same terms; on one trajectory a family whose support changes with the window is fitting
the window, not a law).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._score import r2
from ._trajectory import Trajectory

MAX_FOLDS = 3
LATE_FRACTION = 0.25
#: fewest samples a single run needs for the late-window check (fit part and window)
MIN_SAMPLES = 24


def folds(traj: Trajectory) -> list[tuple[Trajectory, Trajectory]]:
    """``(fit on, integrate over)`` pairs as the module docstring says; empty when the
    data are too short for a check."""
    if traj.is_batch and traj.n_runs >= 2:
        out = []
        for k in range(min(MAX_FOLDS, traj.n_runs)):
            rest = [traj.run(i) for i in range(traj.n_runs) if i != k]
            train = rest[0] if len(rest) == 1 else Trajectory.stack(rest)
            out.append((train, traj.run(k)))
        return out
    run = traj.run(0) if traj.is_batch else traj
    T = run.n_times
    if T < MIN_SAMPLES:
        return []
    cut = int(round(T * (1 - LATE_FRACTION)))
    return [(run.window(None, run.t[cut - 1]), run.window(run.t[cut], None))]


def generalization(
    traj: Trajectory, family: Any, fitter: Callable[..., Any], full_model: Any, **fit_options: Any
) -> dict[str, float]:
    """``general_r2`` and ``support_stability`` of ``family`` on ``traj`` (NaN when the data
    allow no check). ``fitter(train, family=..., **fit_options)`` fits a fold;
    ``full_model`` is the model fitted on all the data. A fold whose fit fails with a
    ``ValueError`` (too few points, a refused family) scores -inf."""
    pairs = folds(traj)
    if not pairs:
        return {"general_r2": float("nan"), "support_stability": float("nan")}
    scores, overlaps = [], []
    full = np.asarray(full_model.coefficients) != 0
    for train, test in pairs:
        try:
            model = fitter(train, family=family, **fit_options)
        except ValueError:
            scores.append(-np.inf)
            overlaps.append(0.0)
            continue
        ys = model.simulate(test.t, test.x[0])
        scores.append(float(r2(test.x[None], ys[None])[0]))
        sup = np.asarray(model.coefficients) != 0
        union = np.count_nonzero(sup | full) if sup.shape == full.shape else 0
        overlaps.append(np.count_nonzero(sup & full) / union if union else 1.0)
    return {"general_r2": float(np.mean(scores)), "support_stability": float(np.mean(overlaps))}
