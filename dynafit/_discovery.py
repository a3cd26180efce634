"""Model choice on short, coarse data: candidates judged after trajectory matching.

On tens of samples (yearly census counts, a few checkpoints of a run) a derivative
estimate is too coarse for the derivative-matched coefficients of even the right
support to roll out well: on the Hudson's Bay lynx and hare pelts (21 yearly points)
the Lotka-Volterra candidate rolls out at R^2 about -1.9 and the held-out sweep keeps
dx/dt = 0. Each support on the threshold path is therefore refined first
(:func:`dynafit.refine`, trajectory matching on that support), and the supports are
compared by the rollout of their refined coefficients: the sparsest whose refined
rollout R^2 is within ``TRAJECTORY_SLACK`` of the best wins, and dx/dt = 0 only when no
candidate with terms rolls out closer to the data than holding still.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._trajectory import Trajectory

#: runs with fewer samples than this have their candidates refined before the choice
SHORT_TIMES = 100
#: optimiser budget of each candidate's trajectory matching (refine's steps and lr)
REFINE_STEPS = 600
REFINE_LR = 0.05
#: refined rollout R^2 within this of the best counts as equally good (fewest terms wins)
TRAJECTORY_SLACK = 0.05
#: at most this many distinct supports are refined (spread over the path)
MAX_CANDIDATES = 8


def is_short(traj: Trajectory) -> bool:
    return traj.n_times < SHORT_TIMES


def choose_refined(
    model_of, fits: list[np.ndarray], traj: Trajectory
) -> tuple[int, np.ndarray, np.ndarray]:
    """Refine every distinct support of ``fits`` (coefficient matrices, one per sweep
    point) on ``traj`` and choose among them.

    ``model_of(xi)`` builds the Model of a coefficient matrix. Returns ``(pick, xi, r2)``:
    the chosen sweep index, its refined coefficients, and every sweep point's refined
    rollout R^2 (NaN where its support was not refined; -inf where it diverged).
    """
    keys: dict[bytes, list[int]] = {}
    for j, xi in enumerate(fits):
        keys.setdefault(np.packbits(xi != 0).tobytes(), []).append(j)
    groups = list(keys.values())
    if len(groups) > MAX_CANDIDATES:
        keep = np.unique(np.linspace(0, len(groups) - 1, MAX_CANDIDATES).round().astype(int))
        groups = [groups[k] for k in keep]
    from ._refine import refine

    r2 = np.full(len(fits), np.nan)
    refined: dict[int, np.ndarray] = {}
    for group in groups:
        j = group[0]
        model = model_of(fits[j])
        if not np.any(fits[j]):
            score = model.score(traj)
            value, xi = float(np.mean(score["rollout_r2"])), fits[j]
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = refine(model, traj, steps=REFINE_STEPS, lr=REFINE_LR)
            info = out.options["refine"]
            value = info["rollout_r2"] if info["rollout_r2"] is not None else -np.inf
            xi = np.asarray(out.coefficients)
        for k in group:
            r2[k] = value
        refined[j] = xi
    tried = np.array(sorted(refined))
    counts = np.array([np.count_nonzero(fits[j]) for j in tried])
    scores = r2[tried]
    with_terms = counts > 0
    if with_terms.any() and (~with_terms).any():
        # dx/dt = 0 only when nothing with terms rolls out closer to the data
        if np.nanmax(scores[with_terms]) > np.nanmax(scores[~with_terms]):
            scores = np.where(with_terms, scores, -np.inf)
    best = np.max(scores)
    ok = np.flatnonzero(scores >= best - TRAJECTORY_SLACK)
    pick = ok[np.lexsort((-scores[ok], counts[ok]))[0]]
    j = int(tried[pick])
    return j, refined[j], r2
