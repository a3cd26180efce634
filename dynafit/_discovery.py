"""Model choice beyond derivative matching: which formulation on noisy data, and on
short, coarse data the candidates judged after trajectory matching.

Noisy data (:func:`choose_formulation`): the weak formulation (:mod:`dynafit._regression._weak`)
finds the true support of chaotic flows far more often than smoothed derivatives, but
on data whose right family is not in the library (circle-like magnitudes fitted by a
linear model) its candidates can all roll out badly where the derivative sweep's roll
out well. The derivative model is kept when its rollout tracks the data; otherwise the
weak model is fitted and returned.

Short data:
On tens of samples (yearly census counts, a few checkpoints of a run) a derivative
estimate is too coarse for the derivative-matched coefficients of even the right
support to roll out well: on the Hudson's Bay lynx and hare pelts (21 yearly points)
the Lotka-Volterra candidate rolls out at R^2 about -1.9 and the held-out sweep keeps
dx/dt = 0. Each support on the threshold path is therefore refined first
(:func:`dynafit.refine`, trajectory matching on that support), and the supports are
compared by AICc of their refined rollout residuals (:mod:`dynafit._choice`: the number
of fitted coefficients against the likelihood of the residuals under an AR(1) Gaussian
error per variable; dx/dt = 0 is a candidate with no parameters). What the choice rested on, the
runner-up and its evidence ratio are recorded as ``options["choice"]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ._choice import choose
from ._integrate import rollout
from ._matching._initial_state import match_initial_state
from ._matching._refine import refine
from ._trajectory import Trajectory

if TYPE_CHECKING:  # for annotations only: the model layer sits beside this one
    from ._model import Model

#: a rollout "tracks the data" at this R^2 or above. Below it, over a window much longer
#: than its predictability time (chaos), the true law's rollout decorrelates like any
#: other and R^2 ranks models by how quickly they settle, not by how right they are: the
#: held-out sweep's rollout band (``rollout_slack``) applies only above it
ROLLOUT_INFORMATIVE = 0.9
#: a rollout below this R^2 has left the data: an uncorrelated trajectory on the data's
#: own attractor has R^2 about -1 (mean squared error twice the variance), give or take
#: its fluctuations; -10 is a mean squared error eleven times the variance
ROLLOUT_OFF_DATA = -10.0

#: runs with fewer samples than this have their candidates refined before the choice
SHORT_TIMES = 100
#: optimiser budget of each candidate's trajectory matching (refine's steps and lr)
REFINE_STEPS = 600
REFINE_LR = 0.05
#: AICc band within which the sparsest candidate is kept (0: the least AICc wins);
#: fitted on the tuning half (even draws) of benchmarks/regimes.py
TIE = 0.0
#: at most this many distinct supports are refined (spread over the path)
MAX_CANDIDATES = 8


def is_short(traj: Trajectory) -> bool:
    return traj.n_times < SHORT_TIMES


def choose_refined(
    model_of, fits: list[np.ndarray], traj: Trajectory, *, initial_state: bool = True
) -> tuple[int, np.ndarray, np.ndarray, dict]:
    """Refine every distinct support of ``fits`` (coefficient matrices, one per sweep
    point) on ``traj`` and choose among them.

    ``model_of(xi)`` builds the Model of a coefficient matrix. Returns ``(pick, xi, r2,
    record)``: the chosen sweep index, its refined coefficients, every sweep point's
    refined rollout R^2 (NaN where its support was not refined; -inf where it diverged),
    and what the choice rested on (:meth:`dynafit._choice.Choice.record`, with every
    refined candidate's AICc). With ``initial_state``, every candidate with terms is also
    matched with the initial states fitted (:mod:`dynafit._matching._initial_state`),
    its m values per run counted as parameters; when such a variant wins, its fitted
    initial states are ``record["initial_state"]``.
    """
    keys: dict[bytes, list[int]] = {}
    for j, xi in enumerate(fits):
        keys.setdefault(np.packbits(xi != 0).tobytes(), []).append(j)
    groups = list(keys.values())
    if len(groups) > MAX_CANDIDATES:
        keep = np.unique(np.linspace(0, len(groups) - 1, MAX_CANDIDATES).round().astype(int))
        groups = [groups[k] for k in keep]
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
    tried = [int(j) for j in sorted(refined)]
    field = model_of(fits[tried[0]]).field
    residuals = _rollout_residuals(field, [refined[j] for j in tried], traj)
    counts = [int(np.count_nonzero(refined[j])) for j in tried]
    xis = [refined[j] for j in tried]
    x0s: list = [None] * len(tried)
    labels = [f"{c} terms (sweep point {i})" for c, i in zip(counts, tried)]
    sweep_points, fitted_x0 = list(tried), [False] * len(tried)
    if initial_state:
        # the same candidates with every run's initial state fitted too (its m values per
        # run count as parameters): chosen only where they pay for themselves
        x = np.asarray(traj.x if traj.is_batch else traj.x[None], dtype=np.float64)
        for j, xi, c in zip(tried, list(xis), list(counts)):
            if c == 0:
                continue
            xi2, x0, res = match_initial_state(field, xi, traj.t, x)
            xis.append(xi2)
            x0s.append(x0)
            residuals.append(res)
            counts.append(c + x0.size)
            labels.append(f"{c} terms (sweep point {j}) + fitted initial state")
            sweep_points.append(j)
            fitted_x0.append(True)
    choice = choose(residuals, counts, tie=TIE)
    k = choice.pick
    record = choice.record(labels)
    record["candidates"] = [
        {
            "sweep_point": i,
            "n_params": c,
            "fitted_initial_state": f,
            "aicc": _finite_or_none(a),
            "rollout_r2": _finite_or_none(r2[i]) if not f else None,
        }
        for i, c, f, a in zip(sweep_points, counts, fitted_x0, choice.scores)
    ]
    if fitted_x0[k]:
        record["initial_state"] = np.asarray(x0s[k]).tolist()
    return sweep_points[k], xis[k], r2, record


def _rollout_residuals(field, xis: list[np.ndarray], traj: Trajectory) -> list[np.ndarray | None]:
    """Data minus rollout (R, T, m) of each coefficient matrix from every run's first
    state, in one vmapped integration; None where the rollout failed."""
    x = np.asarray(traj.x if traj.is_batch else traj.x[None], dtype=np.float64)
    R = x.shape[0]
    stack = np.repeat(np.stack(xis), R, axis=0)
    x0 = np.tile(x[:, 0, :], (len(xis), 1))
    ys, ok = rollout(field, stack, x0, traj.t)
    ys = np.asarray(ys, dtype=np.float64).reshape(len(xis), R, *x.shape[1:])
    ok = np.asarray(ok).reshape(len(xis), R).all(axis=1)
    return [
        (x - y) if good and np.all(np.isfinite(y)) else None
        for y, good in zip(ys, list(np.atleast_1d(ok)))
    ]


def _finite_or_none(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _selected_r2(model: Model) -> float:
    """The rollout R^2 of the sweep point behind ``model`` (-inf when not screened)."""
    sweep = model.sweep
    if sweep is None or "rollout_r2" not in sweep or not sweep["selected"].any():
        return -np.inf
    return float(sweep.loc[sweep["selected"], "rollout_r2"].iloc[0])


def _derivative_wins(derivative: float, weak: float) -> bool:
    """The derivative model is kept over the weak one when the weak one's rollout leaves
    the data (below ``ROLLOUT_OFF_DATA``) while the derivative one's stays closer, or
    when the derivative one tracks the data (R^2 >= ``ROLLOUT_INFORMATIVE``, where
    rollouts rank models: no chaotic decorrelation over the window) and the weak one
    does not (one 4-species trajectory settling to equilibrium at 1 % noise: derivative
    0.98, weak -6.4)."""
    if weak < ROLLOUT_OFF_DATA and derivative > weak:
        return True
    return derivative >= ROLLOUT_INFORMATIVE > weak


def choose_formulation(
    fit_with: Callable[..., Model], rollout_r2: Callable[[Model], float]
) -> Model:
    """Which formulation on noisy data: ``fit_with(regression, **options)`` fits one,
    ``rollout_r2(model)`` scores a model's rollout over the data.

    The weak model, whose support is the more reliable (rollouts cannot vouch for a
    support over a chaotic window, and a dense derivative model can track the data as
    closely as the true law), unless its rollout leaves the data (R^2 below
    ``ROLLOUT_OFF_DATA``, or diverged) where the derivative model's stays closer (data
    whose right family is not in the library), or the derivative model tracks the data
    and the weak one does not (:func:`_derivative_wins`). The derivative model is fitted first;
    when its rollout tracks the data (R^2 at least ``ROLLOUT_INFORMATIVE``), the weak
    model is fitted without the per-candidate rollout screen and its choice rolled out
    once (the screen's cost where the derivative model already tracks the data). Both
    rollout R^2 are recorded as ``options["formulation_rollout_r2"]``; the warnings of
    the model returned are re-issued, the other's dropped."""
    with warnings.catch_warnings(record=True) as caught_strong:
        warnings.simplefilter("always")
        strong = fit_with("derivative")
    r2 = {"derivative": _selected_r2(strong)}
    chosen, caught = strong, caught_strong
    with warnings.catch_warnings(record=True) as caught_weak:
        warnings.simplefilter("always")
        if r2["derivative"] >= ROLLOUT_INFORMATIVE:
            weak = fit_with("weak", check_rollout=False)
            r2["weak"] = float(rollout_r2(weak))
        else:
            weak = fit_with("weak")
            r2["weak"] = _selected_r2(weak)
    if not _derivative_wins(r2["derivative"], r2["weak"]):
        chosen, caught = weak, caught_weak
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    chosen.options["formulation_rollout_r2"] = {
        k: (float(v) if np.isfinite(v) else None) for k, v in r2.items()
    }
    return chosen
