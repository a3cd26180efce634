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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._fit import fit
from ._survival import _above, _final_state, actual_survivors, precision_recall
from ._trajectory import Trajectory
from .families._base import AbstractFamily

if TYPE_CHECKING:  # for annotations only: the model layer imports this one
    from ._model import Model

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
    it = int(hit[0])
    until = float(traj.t[-1]) if until is None else _number(until, "until")
    t_from = t if start == "end" else float(traj.t[0])
    if until <= t:
        raise ValueError(f"until ({until:g}) must lie after the window's end t ({t:g})")
    if threshold is not None and (isinstance(threshold, bool) or not math.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
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
    use_state = has_state and model_state != "rollout"
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
    ib = int(back[-1]) if back.size and back[-1] < it else max(it - 1, 0)
    actual_all = actual_survivors(traj)
    names = list(model.names)
    rows = []
    for r, run in enumerate(traj.runs()):
        sub = run.select(names) if run.names != tuple(names) else run
        s0_t = float(run.aux["s0"][it]) if "s0" in run.aux else 0.0
        i0 = it if start == "end" else 0
        s0_from = float(run.aux["s0"][i0]) if "s0" in run.aux else 0.0
        act = [a for a in actual_all[r] if a in names]
        k = len(act)
        horizon = until - t_from
        ts = np.linspace(0.0, horizon, n_points)
        if use_state:
            final = np.asarray(closed[0])  # the family's stable state (budget_state's)
            s0_from = 0.0  # the law's stable state has no S_0
        else:
            final = _final_state(model.simulate(ts, sub.x[i0]))
        at_t = sub.x[it]
        with np.errstate(divide="ignore", invalid="ignore"):
            growth = (sub.x[it] - sub.x[ib]) / sub.x[ib]
        preds = {
            "model": _above(final, names, threshold, s0_from),
            "alive_at_t": _above(at_t, names, threshold, s0_t),
            "top_k_at_t": _top(at_t, names, k),
            "top_k_model": _top(np.where(np.isfinite(final), final, -np.inf), names, k),
            "growth_top_k": _top(np.where(np.isfinite(growth), growth, -np.inf), names, k),
        }
        for method in METHODS:
            pred = preds[method]
            score = precision_recall(pred, act)
            if act and not pred:
                score["f1"] = 0.0
            rows.append(
                {
                    "run": r,
                    "method": method,
                    "n_predicted": len(pred),
                    "n_actual": k,
                    "count_error": len(pred) - k,
                    **score,
                }
            )
    out = pd.DataFrame(rows)
    cols = ["run", "method", "predicted", "n_predicted", "actual", "n_actual", "count_error"]
    return out[cols + ["precision", "recall", "f1"]]


def _top(values: np.ndarray, names: Sequence[str], k: int) -> list[str]:
    order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")[:k]
    return [names[i] for i in sorted(order)]


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {v}")
    return v


#: the candidates of :func:`early_window_table` by default: name -> (family, fit options)
#: (a candidate may also be a function from a Trajectory to a Model)
DEFAULT_CANDIDATES: dict[str, Any] = {
    "mean_field_lv": ("mean_field_lv", {}),
    "linear": ("linear", {}),
    "linear least squares": ("linear", {"threshold": 0.0}),
}


def early_window_table(
    traj: Trajectory,
    windows: Sequence[float] = (100, 200, 500, 1000),
    candidates: dict[str, Any] | None = None,
    *,
    until: float | None = None,
    forecast_window: float | None = 1000.0,
    horizons: Sequence[float] = (50, 100, 250, 500, 1000),
    progress: Any = None,
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
    candidates = DEFAULT_CANDIDATES if candidates is None else dict(candidates)
    if not candidates:
        raise ValueError("early_window_table needs at least one candidate")
    for name, spec in candidates.items():
        if not (callable(spec) or (isinstance(spec, tuple) and len(spec) == 2)):
            raise ValueError(
                f"candidate {name!r} must be (family, fit options) or a function of a "
                f"Trajectory returning a Model, got {spec!r}"
            )
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
    t_start = float(traj.t[0])
    for r, run in enumerate(traj.runs()):
        for W in windows:
            win = run.window(t_start, W)
            table = None
            for name, spec in candidates.items():
                t0 = time.perf_counter()
                model = _fit_candidate(spec, win)
                seconds = time.perf_counter() - t0
                table = compare_survivors(model, run, end, t=W, model_state=model_state)
                table = table.set_index("method")
                inside = float(np.mean(model.score(_fitted_span(model, win))["rollout_r2"]))
                surv_rows.append(
                    {
                        "run": r,
                        "window": W,
                        "candidate": name,
                        "predicted": table.loc["model", "predicted"],
                        "n_predicted": int(table.loc["model", "n_predicted"]),
                        "n_actual": int(table.loc["model", "n_actual"]),
                        "count_error": int(table.loc["model", "count_error"]),
                        "f1": float(table.loc["model", "f1"]),
                        "rollout_r2": inside,
                        "params_per_variable": params_per_variable(model),
                        "fit_s": round(seconds, 2),
                    }
                )
                say(
                    f"run {r} window 0..{W:g} {name}: survivors "
                    f"{table.loc['model', 'predicted'] or '-'} (actual "
                    f"{table.loc['model', 'actual']}), F1 {surv_rows[-1]['f1']:.2f}, "
                    f"rollout R^2 {inside:.3f}, {seconds:.1f} s"
                )
            for method, label in (
                ("alive_at_t", "alive at W"),
                ("top_k_at_t", "top-k at W (told k)"),
                ("growth_top_k", "growth top-k at W (told k)"),
            ):
                surv_rows.append(
                    {
                        "run": r,
                        "window": W,
                        "candidate": label,
                        "predicted": table.loc[method, "predicted"],
                        "n_predicted": int(table.loc[method, "n_predicted"]),
                        "n_actual": int(table.loc[method, "n_actual"]),
                        "count_error": int(table.loc[method, "count_error"]),
                        "f1": float(table.loc[method, "f1"]),
                    }
                )
        if forecast_window is None:
            continue
        F = _number(forecast_window, "forecast_window")
        hs = [float(h) for h in horizons if np.isclose(run.t, F + float(h)).any()]
        if not hs:
            continue
        train = run.window(t_start, F)
        for name, spec in candidates.items():
            t0 = time.perf_counter()
            model = _fit_candidate(spec, train)
            seconds = time.perf_counter() - t0
            for h in hs:
                sc = model.score(run.window(t_start, F + h), horizon=h)
                rms = float(np.sqrt(np.mean(run.window(F, F + h).x[..., 1:, :] ** 2)))
                fc_rows.append(
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
                + ", ".join(f"{row['skill']:.2f}" for row in fc_rows[-len(hs) :])
                + f" at {', '.join(f'{h:g}' for h in hs)} steps"
            )
        for h in hs:
            ahead = run.window(F, F + h).x[..., 1:, :]
            hold = run.x[..., int(np.flatnonzero(np.isclose(run.t, F))[0]), :][..., None, :]
            rmse = float(np.sqrt(np.mean((ahead - hold) ** 2)))
            fc_rows.append(
                {
                    "run": r,
                    "candidate": "persistence",
                    "horizon": h,
                    "rel_rmse": rmse / float(np.sqrt(np.mean(ahead**2))),
                    "skill": 0.0,
                }
            )
    return pd.DataFrame(surv_rows), pd.DataFrame(fc_rows)


def _fitted_span(model: Any, win: Trajectory) -> Trajectory:
    """The part of ``win`` that ``model`` was fitted on (a ``fit_recent`` model starts
    late), or all of it where the model does not say."""
    t_range = getattr(model, "options", {}).get("t_range")
    if isinstance(t_range, (list, tuple)) and len(t_range) == 2 and t_range[0] > win.t[0]:
        return win.window(float(t_range[0]), float(win.t[-1]))
    return win


def _fit_candidate(spec: Any, traj: Trajectory) -> Any:
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
