"""Survivors predicted by a model against the rank-at-time-t baselines, in one table.

:func:`compare_survivors` answers "which circles will be alive at step ``until``?" from
what is known at the end of a fit window ``t``, three ways, for every run:

- ``model``: :func:`dynafit.survivors`: the model integrated from the run's state at
  ``t`` (``start="end"``, default) or at its first time (``start="first"``) up to
  ``until``, and the paper's threshold applied to the final state. The number of
  survivors is the model's own prediction.
- ``alive_at_t``: the circles above the paper's threshold at time ``t`` (with S_0 at
  ``t`` when the run records it). The count comes from the data at ``t``; no model.
- ``top_k_at_t``: the k largest circles at time ``t``, k the TRUE number of survivors:
  the issue's rank baseline, which is told the count.
- ``top_k_model``: the k largest variables of the model's final state, k told as well:
  the model's ranking, separated from its count.
- ``growth_top_k``: the k largest per-capita growth rates over the window's last
  ``growth_span`` time units, (x(t) - x(t - span)) / x(t - span), k told: the ranking
  by "decaying slowest at the end of the window" (issue 24).

``count_error`` is n_predicted - n_actual (0 for the methods told k).

Scores are precision, recall and F1 against the survivors the run records (meta
``"survivors"``) or, failing that, those above the threshold at its last time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._budget import budget_state
from ._fit import fit
from ._survival import _above, _final_state, actual_survivors, precision_recall
from ._trajectory import Trajectory
from .families import AbstractFamily

if TYPE_CHECKING:  # for annotations only: the model layer imports this one
    from ._model import Model

#: a candidate of :func:`early_window_table`: ``(family, fit options)`` for
#: :func:`dynafit.fit`, or a function of the window's Trajectory that returns a Model
Candidate = tuple[str | AbstractFamily, Mapping[str, Any]] | Callable[[Trajectory], "Model"]

METHODS = ("model", "alive_at_t", "top_k_at_t", "top_k_model", "growth_top_k")
#: how the model's state at ``until`` is read: its rollout, or its stable state
MODEL_STATES = ("auto", "rollout", "equilibrium")


def compare_survivors(
    model: Model,
    traj: Trajectory,
    until: float | None = None,
    *,
    t: float | None = None,
    start: str = "end",
    threshold: float | None = None,
    n_points: int = 401,
    model_state: str = "auto",
    growth_span: float | None = None,
) -> pd.DataFrame:
    """Survivors at time ``until`` predicted from time ``t``: the model against the rank
    baselines (see the module docstring), one row per run and method.

    - ``traj``: the runs (one or a batch), holding the model's variables at time ``t``;
      their actual survivors come from meta ``"survivors"`` or their last state.
    - ``until``: when survival is judged (data time units); default the trajectory's
      last time.
    - ``t``: the end of the fit window (default the model's ``options["t_range"][1]``).
    - ``start``: integrate from the state at ``t`` ("end") or at the first time ("first").
    - ``model_state``: "rollout" (the model integrated up to ``until``), "equilibrium"
      (its stable state, for families that give it in closed form: ``budget_share``,
      :func:`dynafit.budget_state`), or "auto" (default: the stable state where the
      family gives one, else the rollout).
    - ``growth_span``: the span of the per-capita growth of the ``growth_top_k`` baseline
      (default 10 time units, or half the time before ``t`` where that is shorter).

    Columns: run, method, predicted, n_predicted, actual, n_actual, count_error,
    precision, recall, f1 (0 when nothing is predicted but something survives; NaN when
    nothing survives).
    ``n_predicted`` of "model" and "alive_at_t" are predicted
    counts; the two top-k methods are told ``n_actual``.
    """
    if not isinstance(traj, Trajectory):
        raise ValueError(f"compare_survivors needs a dynafit.Trajectory, got {type(traj).__name__}")
    if start not in ("end", "first"):
        raise ValueError(f"start must be 'end' or 'first', got {start!r}")
    missing = [n for n in model.names if n not in traj.names]
    if missing:
        raise ValueError(f"traj lacks the model's variables {missing}")
    t, it = _window_end(model, traj, t)
    until = float(traj.t[-1]) if until is None else _number(until, "until")
    if until <= t:
        raise ValueError(f"until ({until:g}) must lie after the window's end t ({t:g})")
    if threshold is not None and (isinstance(threshold, bool) or not math.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    use_state = _uses_state(model, model_state)
    ib = _growth_start(traj, t, it, growth_span)
    t_from = t if start == "end" else float(traj.t[0])
    ts = np.linspace(0.0, until - t_from, n_points)
    i0 = it if start == "end" else 0
    actual_all = actual_survivors(traj)
    names = list(model.names)
    rows = []
    for r, run in enumerate(traj.runs()):
        sub = run.select(names) if run.names != tuple(names) else run
        act = [a for a in actual_all[r] if a in names]
        if use_state:  # the law's stable state has no S_0
            final, s0_from = np.asarray(budget_state(model)["state"]), 0.0
        else:
            final, s0_from = _final_state(model.simulate(ts, sub.x[i0])), _s0(run, i0)
        with np.errstate(divide="ignore", invalid="ignore"):
            growth = (sub.x[it] - sub.x[ib]) / sub.x[ib]
        preds = {
            "model": _above(final, names, threshold, s0_from),
            "alive_at_t": _above(sub.x[it], names, threshold, _s0(run, it)),
            "top_k_at_t": _top(sub.x[it], names, len(act)),
            "top_k_model": _top(np.where(np.isfinite(final), final, -np.inf), names, len(act)),
            "growth_top_k": _top(np.where(np.isfinite(growth), growth, -np.inf), names, len(act)),
        }
        rows += [_survivor_row(r, method, preds[method], act) for method in METHODS]
    out = pd.DataFrame(rows)
    cols = ["run", "method", "predicted", "n_predicted", "actual", "n_actual", "count_error"]
    return out[cols + ["precision", "recall", "f1"]]


def _window_end(model: Model, traj: Trajectory, t: float | None) -> tuple[float, int]:
    """The fit window's end ``t`` (given, or the model's ``options["t_range"][1]``) and
    its row in ``traj``."""
    if t is None:
        t_range = getattr(model, "options", {}).get("t_range")
        if not (isinstance(t_range, (list, tuple)) and len(t_range) == 2):
            raise ValueError("give t= (the end of the fit window): the model does not record it")
        t = float(t_range[1])
    t = _number(t, "t")
    hit = np.flatnonzero(np.isclose(traj.t, t))
    if not hit.size:
        raise ValueError(
            f"traj has no time {t:g} (the fit window's end); its times run "
            f"{traj.t[0]:g}..{traj.t[-1]:g}"
        )
    return t, int(hit[0])


def _uses_state(model: Model, model_state: str) -> bool:
    """Whether the model's survivors are read from its closed-form stable state."""
    if model_state not in MODEL_STATES:
        raise ValueError(f"model_state must be one of {MODEL_STATES}, got {model_state!r}")
    family = getattr(model, "family", None)
    closed = family.equilibria(model.coefficients) if isinstance(family, AbstractFamily) else None
    closed = closed or []
    has_state = bool(closed)
    if model_state == "equilibrium" and not has_state:
        raise ValueError(
            "model_state='equilibrium' needs a family whose stable state is known in closed "
            f"form (budget_share, with a positive decay); this model is "
            f"{getattr(family, 'name', '?')!r}"
        )
    return has_state and model_state != "rollout"


def _growth_start(traj: Trajectory, t: float, it: int, growth_span: float | None) -> int:
    """The row ``growth_span`` before ``t`` (row ``it``) that the growth baseline starts
    from (default span: 10 time units, or half the time before ``t`` where shorter)."""
    if growth_span is None:
        span = min(10.0, (t - float(traj.t[0])) / 2)
    else:
        span = _number(growth_span, "growth_span")
        if not 0 < span <= t - float(traj.t[0]):
            raise ValueError(
                f"growth_span must be positive and reach no further back than the data's "
                f"first time ({traj.t[0]:g}), got {span:g} before t = {t:g}"
            )
    back = np.flatnonzero(traj.t <= t - span + 1e-9 * max(1.0, abs(t)))
    return int(back[-1]) if back.size and back[-1] < it else max(it - 1, 0)


def _s0(run: Trajectory, i: int) -> float:
    """S_0 at row ``i`` where the run records it, else 0."""
    return float(run.aux["s0"][i]) if "s0" in run.aux else 0.0


def _survivor_row(r: int, method: str, pred: list[str], act: list[str]) -> dict[str, Any]:
    """One row of :func:`compare_survivors`: a method's prediction scored against the
    actual survivors (f1 = 0 when nothing is predicted but something survives)."""
    score = precision_recall(pred, act)
    if act and not pred:
        score["f1"] = 0.0
    return {
        "run": r,
        "method": method,
        "n_predicted": len(pred),
        "n_actual": len(act),
        "count_error": len(pred) - len(act),
        **score,
    }


def _top(values: np.ndarray, names: Sequence[str], k: int) -> list[str]:
    order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")[:k]
    return [names[int(i)] for i in sorted(order)]


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {v}")
    return v


#: the candidates of :func:`early_window_table` by default: name -> (family, fit options)
#: (a candidate may also be a function from a Trajectory to a Model)
DEFAULT_CANDIDATES: dict[str, Candidate] = {
    "mean_field_lv": ("mean_field_lv", {}),
    "linear": ("linear", {}),
    "linear least squares": ("linear", {"threshold": 0.0}),
}


def early_window_table(
    traj: Trajectory,
    windows: Sequence[float] = (100, 200, 500, 1000),
    candidates: Mapping[str, Candidate] | None = None,
    *,
    until: float | None = None,
    forecast_window: float | None = 1000.0,
    horizons: Sequence[float] = (50, 100, 250, 500, 1000),
    progress: Callable[[str], object] | None = None,
    model_state: str = "auto",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Survivors and forecasts from the early window, by fit window and candidate model.

    For every run of ``traj`` and window 0..W in ``windows``, every candidate
    (``name -> (family, fit options)`` for :func:`dynafit.fit`, or ``name -> function``
    of the window's Trajectory returning a Model, such as a ``functools.partial`` of
    :func:`dynafit.fit_recent`; default :data:`DEFAULT_CANDIDATES`) is fitted on the
    window and :func:`compare_survivors` predicts the survivors at ``until``
    (default: the run's last time). With ``forecast_window`` (F), each candidate fitted
    on 0..F also forecasts from the state at F over ``horizons`` (those that fit in the
    runs): relative RMSE (forecast RMSE / RMS of the data over the horizon) and skill
    against persistence (1 - RMSE / RMSE of holding the state at F).

    ``model_state``: how each model's survivors are read (see :func:`compare_survivors`).

    Returns ``(survivors, forecasts)``: DataFrames with columns run, window, candidate,
    predicted, n_predicted, n_actual, count_error (n_predicted - n_actual), f1, rollout_r2 (over the part of the window the model was
    fitted on, its ``options["t_range"]``), params_per_variable, fit_s
    (plus the rows of the baselines "alive at W", "top-k at W (told k)" and "growth
    top-k at W (told k)", the per-capita growth over the window's last 10 time units); and run,
    candidate, horizon, rel_rmse, skill (plus "persistence" rows, skill 0).
    ``progress``: called with one line of text per fit (for example ``print``).
    """
    if not isinstance(traj, Trajectory):
        raise ValueError(
            f"early_window_table needs a dynafit.Trajectory, got {type(traj).__name__}"
        )
    candidates = _checked_candidates(candidates)
    windows = [_number(w, "window") for w in windows]
    if not windows and forecast_window is None:
        raise ValueError("early_window_table needs a window or a forecast_window")
    end = float(traj.t[-1]) if until is None else _number(until, "until")
    for w in windows:
        if not (traj.t[0] < w < end) or not np.isclose(traj.t, w).any():
            raise ValueError(
                f"window end {w:g} must be a time of traj before until ({end:g}); traj runs "
                f"{traj.t[0]:g}..{traj.t[-1]:g}"
            )
    say = progress if callable(progress) else (lambda line: None)
    surv_rows: list[dict[str, Any]] = []
    fc_rows: list[dict[str, Any]] = []
    for r, run in enumerate(traj.runs()):
        for W in windows:
            surv_rows += _window_rows(r, run, W, candidates, end, model_state, say)
        if forecast_window is not None:
            F = _number(forecast_window, "forecast_window")
            fc_rows += _forecast_rows(r, run, F, horizons, candidates, say)
    return pd.DataFrame(surv_rows), pd.DataFrame(fc_rows)


def _checked_candidates(candidates: Mapping[str, Candidate] | None) -> dict[str, Candidate]:
    candidates = DEFAULT_CANDIDATES if candidates is None else dict(candidates)
    if not candidates:
        raise ValueError("early_window_table needs at least one candidate")
    for name, spec in candidates.items():
        if not (callable(spec) or (isinstance(spec, tuple) and len(spec) == 2)):
            raise ValueError(
                f"candidate {name!r} must be (family, fit options) or a function of a "
                f"Trajectory returning a Model, got {spec!r}"
            )
    return candidates


#: the baselines of :func:`compare_survivors` that :func:`early_window_table` lists
_BASELINES = (
    ("alive_at_t", "alive at W"),
    ("top_k_at_t", "top-k at W (told k)"),
    ("growth_top_k", "growth top-k at W (told k)"),
)


def _window_rows(
    r: int,
    run: Trajectory,
    W: float,
    candidates: dict[str, Candidate],
    end: float,
    model_state: str,
    say: Callable[[str], object],
) -> list[dict[str, Any]]:
    """The survivor rows of run ``r`` for the window 0..W: each candidate fitted on the
    window, then the baselines (the same for every candidate)."""
    win = run.window(float(run.t[0]), W)
    rows, table = [], None
    for name, spec in candidates.items():
        t0 = time.perf_counter()
        model = _fit_candidate(spec, win)
        seconds = time.perf_counter() - t0
        table = _by_method(compare_survivors(model, run, end, t=W, model_state=model_state))
        inside = float(np.mean(model.score(_fitted_span(model, win))["rollout_r2"]))
        row = _survivor_summary(r, W, name, table, "model")
        rows.append(
            {
                **row,
                "rollout_r2": inside,
                "params_per_variable": params_per_variable(model),
                "fit_s": round(seconds, 2),
            }
        )
        say(
            f"run {r} window 0..{W:g} {name}: survivors "
            f"{table['model']['predicted'] or '-'} (actual "
            f"{table['model']['actual']}), F1 {row['f1']:.2f}, "
            f"rollout R^2 {inside:.3f}, {seconds:.1f} s"
        )
    assert table is not None  # candidates is never empty
    return rows + [_survivor_summary(r, W, label, table, m) for m, label in _BASELINES]


def _by_method(table: pd.DataFrame) -> dict[str, dict[Hashable, Any]]:
    """The rows of one run's :func:`compare_survivors` table by method."""
    return {str(row["method"]): row for row in table.to_dict("records")}


def _survivor_summary(
    r: int, W: float, label: str, table: dict[str, dict[Hashable, Any]], method: str
) -> dict[str, Any]:
    """One method's row of ``table`` (:func:`_by_method` of compare_survivors' output)."""
    row = table[method]
    return {
        "run": r,
        "window": W,
        "candidate": label,
        "predicted": row["predicted"],
        "n_predicted": int(row["n_predicted"]),
        "n_actual": int(row["n_actual"]),
        "count_error": int(row["count_error"]),
        "f1": float(row["f1"]),
    }


def _forecast_rows(
    r: int,
    run: Trajectory,
    F: float,
    horizons: Sequence[float],
    candidates: dict[str, Candidate],
    say: Callable[[str], object],
) -> list[dict[str, Any]]:
    """The forecast rows of run ``r``: each candidate fitted on 0..F forecasting over
    the ``horizons`` that fit in the run, then persistence (holding the state at F)."""
    hs = [float(h) for h in horizons if np.isclose(run.t, F + float(h)).any()]
    if not hs:
        return []
    t_start = float(run.t[0])
    train = run.window(t_start, F)
    rows: list[dict[str, Any]] = []
    for name, spec in candidates.items():
        t0 = time.perf_counter()
        model = _fit_candidate(spec, train)
        seconds = time.perf_counter() - t0
        for h in hs:
            sc = model.score(run.window(t_start, F + h), horizon=h)
            rms = float(np.sqrt(np.mean(run.window(F, F + h).x[..., 1:, :] ** 2)))
            rows.append(
                {
                    "run": r,
                    "candidate": name,
                    "horizon": h,
                    "rel_rmse": float(np.mean(sc["forecast_rmse"])) / rms,
                    "skill": float(np.mean(sc["forecast_skill"])),
                    "params_per_variable": params_per_variable(model),
                    "fit_s": round(seconds, 2),
                }
            )
        say(
            f"run {r} forecast from {F:g} {name}: skill "
            + ", ".join(f"{row['skill']:.2f}" for row in rows[-len(hs) :])
            + f" at {', '.join(f'{h:g}' for h in hs)} steps"
        )
    hold = run.x[..., int(np.flatnonzero(np.isclose(run.t, F))[0]), :][..., None, :]
    for h in hs:
        ahead = run.window(F, F + h).x[..., 1:, :]
        rmse = float(np.sqrt(np.mean((ahead - hold) ** 2)))
        rows.append(
            {
                "run": r,
                "candidate": "persistence",
                "horizon": h,
                "rel_rmse": rmse / float(np.sqrt(np.mean(ahead**2))),
                "skill": 0.0,
            }
        )
    return rows


def _fitted_span(model: Any, win: Trajectory) -> Trajectory:
    """The part of ``win`` that ``model`` was fitted on (a ``fit_recent`` model starts
    late), or all of it where the model does not say."""
    t_range = getattr(model, "options", {}).get("t_range")
    if isinstance(t_range, (list, tuple)) and len(t_range) == 2 and t_range[0] > win.t[0]:
        return win.window(float(t_range[0]), float(win.t[-1]))
    return win


def _fit_candidate(spec: Candidate, traj: Trajectory) -> Model:
    if callable(spec):
        return spec(traj)
    family, options = spec
    return fit(traj, family, **options)


def params_per_variable(model: Any) -> float:
    """Numbers a reader must know per variable: non-zero coefficients plus the shared
    quantities' weights (a family's ``weights``), divided by the number of variables."""
    n = int(model.n_terms)
    weights = getattr(model.family, "weights", None)
    if weights is not None:
        n += int(np.count_nonzero(np.asarray(weights)))
    return n / model.n_vars
