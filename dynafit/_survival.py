"""Which circles survive: the rule, what a model predicts, what the data say, the "fittest".

- :func:`survival_threshold` and :func:`alive` are the paper's rule, as the reference code
  decides it: S_k is alive when above twice the spectrum's mean, (S_0 + 2 sum_k S_k) / p.
- :func:`survivors` integrates a model far beyond its window and names the variables
  that end above the paper's threshold (:func:`dynafit.survival_threshold`).
- :func:`survival_scores` compares those predictions with the survivors a run actually
  had (its meta's ``"survivors"``: names or indices) by precision and recall.
- :func:`fittest` is the paper's "survival of the fittest" analysis on the trajectories
  themselves: rank frequencies by initial signal S_k(0) and by initial gradient
  (S_k(4) - S_k(3)) / S_k(0) (the reference code's definition) and measure by ROC AUC,
  across seeds, how well each ranking predicts survival (:func:`survival_auc`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.stats
from sklearn.metrics import roc_auc_score

from ._trajectory import Trajectory

if TYPE_CHECKING:  # for annotations only: the model layer imports this one
    from ._model import Model


def survival_threshold(S: npt.ArrayLike, s0: npt.ArrayLike = 0.0) -> np.ndarray:
    """The paper's survival threshold: twice the spectrum's mean, 2 (S_0 + 2 sum_k S_k) / p.

    ``S`` holds S_1..S_m along its last axis (p = 2m + 1); ``s0`` is S_0 (broadcast).
    A circle is alive when its signal is above the threshold (:func:`alive`).
    """
    S = np.asarray(S, dtype=float)
    m = S.shape[-1]
    p = 2 * m + 1
    return 2.0 * (np.asarray(s0, dtype=float) + 2.0 * S.sum(axis=-1)) / p


def alive(S: npt.ArrayLike, s0: npt.ArrayLike = 0.0) -> np.ndarray:
    """Which circles are alive: ``S`` (..., m) above :func:`survival_threshold` of its own
    spectrum (``s0``: S_0, broadcast over the leading axes). A boolean array of S's shape."""
    S = np.asarray(S, dtype=float)
    if S.ndim == 0 or S.shape[-1] == 0:
        raise ValueError(f"S must hold S_1..S_m along its last axis, got shape {S.shape}")
    return S > survival_threshold(S, s0)[..., None]


def survival_auc(score: Any, survived: Any, runs: Any = None) -> float:
    """How well ``score`` ranks circles by survival: the ROC AUC (scikit-learn's
    ``roc_auc_score``) of ``score`` for the boolean ``survived``, 0.5 chance and 1 a
    perfect ranking; NaN when every circle, or none, survived. A NaN score ranks last.

    With ``runs`` (a run label per circle), the mean over runs of the AUC within each run,
    over the runs that have both survivors and non-survivors (NaN when none has).
    """
    label = np.asarray(survived, dtype=bool)
    values = np.asarray(score, dtype=float)
    if label.shape != values.shape or label.ndim != 1:
        raise ValueError(
            f"score and survived must be 1-D of one length, got {values.shape} and {label.shape}"
        )
    if runs is not None:
        groups = np.asarray(runs)
        if groups.shape != label.shape:
            raise ValueError(f"runs must label every circle: {groups.shape} for {label.shape}")
        per_run = [survival_auc(values[groups == g], label[groups == g]) for g in np.unique(groups)]
        return _nanmean(per_run)
    if label.all() or not label.any():
        return math.nan
    values = np.nan_to_num(values, nan=-np.inf, posinf=1e300, neginf=-1e300)
    return float(roc_auc_score(label, values))


def _check_horizon(model: Any, horizon: Any) -> float:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, float, np.integer, np.floating)):
        raise ValueError(f"horizon must be a number of time units, got {horizon!r}")
    horizon = float(horizon)
    if not (math.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be a positive finite number, got {horizon}")
    t_range = getattr(model, "options", {}).get("t_range")
    if isinstance(t_range, (list, tuple)) and len(t_range) == 2:
        window = float(t_range[1]) - float(t_range[0])
        if horizon < window:
            raise ValueError(
                f"horizon {horizon:g} is shorter than the fitted window ({window:g} time "
                "units); survival is decided far beyond the window"
            )
    return horizon


def survivors(
    model: Model,
    x0: npt.ArrayLike,
    horizon: float,
    threshold: float | None = None,
    *,
    s0: float = 0.0,
    n_points: int = 201,
) -> list[str]:
    """Names of the variables that end above the threshold after integrating ``horizon``.

    ``x0`` (m,) is the starting state (for example a run's first in-window state);
    ``horizon`` how long to integrate, in the data's time units, at least the fitted
    window. ``threshold``: a fixed level, or None for the paper's rule on the final state,
    ``survival_threshold(S_final, s0)`` (``s0``: S_0, which the model does not know; 0
    unless given). A rollout that blows up is judged on its last finite state.
    """
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim != 1 or x0.shape[0] != model.n_vars:
        raise ValueError(f"x0 must have shape ({model.n_vars},), got {x0.shape}")
    if not np.all(np.isfinite(x0)):
        raise ValueError("x0 contains NaN or inf")
    horizon = _check_horizon(model, horizon)
    if threshold is not None:
        if isinstance(threshold, bool) or not math.isfinite(float(threshold)):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"n_points must be an int >= 2, got {n_points!r}")
    t = np.linspace(0.0, horizon, n_points)
    ys = model.simulate(t, x0)
    final = _final_state(ys)
    return _above(final, model.names, threshold, s0)


def _final_state(ys: np.ndarray) -> np.ndarray:
    """The last finite state (a rollout that blows up ends with its runaway variables huge,
    so they count as survivors and the rest are judged against them)."""
    finite_rows = np.flatnonzero(np.isfinite(ys).all(axis=-1))
    return ys[finite_rows[-1]] if finite_rows.size else np.zeros(ys.shape[-1])


def _above(final: np.ndarray, names: Sequence[str], threshold: float | None, s0: float):
    if threshold is None:
        finite = np.where(np.isfinite(final), final, 0.0)
        level = float(survival_threshold(np.maximum(finite, 0.0), s0))
    else:
        level = float(threshold)
    return [n for n, v in zip(names, final) if v > level]


def recorded_survivors(run: Trajectory) -> list[str] | None:
    """The survivors one run's meta records (``"survivors"``: names or indices into its
    variables), as names; None when it records none."""
    value = run.meta.get("survivors")
    if not isinstance(value, (list, tuple)):
        return None
    names = []
    for v in value:
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            if not 0 <= int(v) < run.n_vars:
                raise ValueError(f"survivor index {v} out of range for {run.n_vars} variables")
            names.append(run.names[int(v)])
        else:
            if str(v) not in run.names:
                raise ValueError(f"survivor {v!r} is not one of the variables {run.names}")
            names.append(str(v))
    return names


def actual_survivors(traj: Trajectory, *, from_data: bool = False) -> list[list[str]]:
    """Per run, the survivors a trajectory records (:func:`recorded_survivors`), or with
    ``from_data`` (or no record) those above the threshold at its last time point (S_0
    from ``traj.aux["s0"]`` when present)."""
    out = []
    for run in traj.runs():
        names = None if from_data else recorded_survivors(run)
        if names is None:
            s0 = float(run.aux["s0"][-1]) if "s0" in run.aux else 0.0
            names = _above(run.x[-1], run.names, None, s0)
        out.append(names)
    return out


def survival_scores(
    model: Model,
    traj: Trajectory,
    horizon: float,
    threshold: float | None = None,
    *,
    s0: float | None = None,
) -> pd.DataFrame:
    """Predicted against actual survivors, one row per run of ``traj``.

    Each run starts from its first state; the actual survivors come from its meta (or
    its last state, see :func:`actual_survivors`). ``s0`` defaults to the run's S_0 at
    its first time (``aux["s0"]``) when present, else 0. Columns: run, predicted,
    actual (comma-separated names), precision, recall, f1 (NaN when undefined).
    """
    missing = [n for n in model.names if n not in traj.names]
    if missing:
        raise ValueError(f"traj lacks the model's variables {missing}")
    rows = []
    actual_all = actual_survivors(traj)
    for r, run in enumerate(traj.runs()):
        sub = run.select(list(model.names)) if run.names != tuple(model.names) else run
        run_s0 = s0
        if run_s0 is None:
            run_s0 = float(run.aux["s0"][0]) if "s0" in run.aux else 0.0
        pred = survivors(model, sub.x[0], horizon, threshold, s0=run_s0)
        act = [a for a in actual_all[r] if a in model.names]
        rows.append({"run": r, **precision_recall(pred, act)})
    return pd.DataFrame(rows)


def precision_recall(pred: Sequence[str], act: Sequence[str]) -> dict[str, Any]:
    """Predicted against actual survivors: both as text, precision, recall and f1 (NaN
    where undefined)."""
    p, a = set(pred), set(act)
    hit = len(p & a)
    precision = hit / len(p) if p else math.nan
    recall = hit / len(a) if a else math.nan
    f1 = (
        2 * precision * recall / (precision + recall)
        if p and a and (precision + recall) > 0
        else (0.0 if p and a else math.nan)
    )
    return {
        "predicted": ",".join(pred),
        "actual": ",".join(act),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def survival_horizon(run: Trajectory, given: float | None) -> float | None:
    """How far to integrate for the predicted survivors: ``given``, else to the end of
    training (the run's config ``steps``), measured from the window's first time."""
    if given is not None:
        return float(given)
    steps = (
        run.meta.get("config", {}).get("steps")
        if isinstance(run.meta.get("config"), dict)
        else None
    )
    if steps is None:
        return None
    return float(steps) - float(run.t[0])


def survivor_columns(model: Any, run: Trajectory, horizon: float | None) -> dict[str, Any]:
    """The survivor columns of one run's row in :func:`dynafit.fit_many`'s table: where the
    run records its survivors, ``survivors_actual`` and, integrated ``horizon`` from the
    run's first state, ``survivors_predicted``, ``survivor_precision`` and
    ``survivor_recall`` (a model that cannot be integrated: the error as the prediction).
    """
    actual = recorded_survivors(run)
    if actual is None:
        return {}
    out: dict[str, Any] = {"survivors_actual": ",".join(actual)}
    if horizon is None or horizon <= 0:
        return out
    try:
        s0 = float(run.aux["s0"][0]) if "s0" in run.aux else 0.0
        predicted = [str(p) for p in survivors(model, run.x[0], horizon, s0=s0)]
    except ValueError as err:
        out["survivors_predicted"] = f"error: {err}"
        return out
    prf = precision_recall(predicted, actual)
    out["survivors_predicted"] = ",".join(predicted)
    out["survivor_precision"], out["survivor_recall"] = prf["precision"], prf["recall"]
    return out


def _at_time(traj: Trajectory, step: float) -> int:
    """Index of time ``step`` in ``traj.t`` (by value when present, else by position)."""
    hit = np.flatnonzero(np.isclose(traj.t, step))
    if hit.size:
        return int(hit[0])
    if step < traj.n_times:
        return int(step)
    raise ValueError(f"trajectory has no time {step:g} and only {traj.n_times} points")


def fittest(
    traj: Trajectory | Sequence[Trajectory],
    *,
    survived: Sequence[Sequence[str]] | None = None,
    gradient_steps: tuple[float, float] = (3, 4),
) -> dict[str, Any]:
    """The paper's "fittest" analysis: do initial signal or initial gradient predict survival?

    For every run and frequency: the initial signal S_k(0) (the first state), the initial
    gradient (S_k(4) - S_k(3)) / S_k(0) (times 3 and 4 looked up by value in ``t``,
    as the reference code does from the trajectory itself), and whether it survived (the
    run's meta ``"survivors"``, or ``survived=`` per run, or the threshold rule on the last
    state). Each score ranks frequencies; the ROC AUC (scikit-learn ``roc_auc_score``)
    measures how well it predicts survival, pooled over all runs and per run (averaged
    over runs that have both survivors and non-survivors).

    Returns a dict: ``table`` (a DataFrame, one row per run and frequency: run, name,
    initial_signal, initial_gradient, rank_signal, rank_gradient, survived),
    ``auc_signal``, ``auc_gradient`` (pooled), ``auc_signal_per_run``,
    ``auc_gradient_per_run`` (means), ``n_runs``, ``n_survivors``.
    """
    if isinstance(traj, Trajectory):
        runs = list(traj.runs())
    else:
        runs = [r for tr in traj for r in tr.runs()]
    if not runs:
        raise ValueError("fittest needs at least one run")
    if survived is not None and len(survived) != len(runs):
        raise ValueError(f"survived= gives {len(survived)} lists for {len(runs)} runs")
    records = []
    for r, run in enumerate(runs):
        i0 = 0
        i3, i4 = (_at_time(run, s) for s in gradient_steps)
        s_init = run.x[i0]
        with np.errstate(divide="ignore", invalid="ignore"):
            grad = (run.x[i4] - run.x[i3]) / s_init
        if survived is not None:
            alive = set(map(str, survived[r]))
        else:
            alive = set(actual_survivors(run)[0])
        rank_s = _rank(-s_init)
        rank_g = _rank(-np.nan_to_num(grad, nan=-np.inf))
        for k, name in enumerate(run.names):
            records.append(
                {
                    "run": r,
                    "name": name,
                    "initial_signal": float(s_init[k]),
                    "initial_gradient": float(grad[k]),
                    "rank_signal": int(rank_s[k]),
                    "rank_gradient": int(rank_g[k]),
                    "survived": name in alive,
                }
            )
    table = pd.DataFrame.from_records(records)
    y = table["survived"].to_numpy()

    def auc(col: str, per_run: bool = False) -> float:
        runs = table["run"].to_numpy() if per_run else None
        return survival_auc(table[col].to_numpy(dtype=float), y, runs)

    return {
        "table": table,
        "auc_signal": auc("initial_signal"),
        "auc_gradient": auc("initial_gradient"),
        "auc_signal_per_run": auc("initial_signal", per_run=True),
        "auc_gradient_per_run": auc("initial_gradient", per_run=True),
        "n_runs": len(runs),
        "n_survivors": int(y.sum()),
    }


def _rank(values: np.ndarray) -> np.ndarray:
    """1 for the smallest (the caller negates, so 1 is the largest), ties by position,
    NaN last."""
    return scipy.stats.rankdata(np.nan_to_num(values, nan=np.inf), method="ordinal")


def _nanmean(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan
