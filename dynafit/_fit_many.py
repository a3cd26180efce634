"""``fit_many``: every run of a batch fitted on its own (through an executor), all runs of
a family scored by one vmapped rollout; one long table, with predicted and actual
survivors where the runs record them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._board import (
    DEFAULT_FAMILIES,
    _columns,
    _model_row,
    equations_text,
    family_name,
)
from ._compare import (
    _family_list,
    _fitter,
    _not_applicable,
    _score_kw,
    not_applicable_row,
    split_horizon,
)
from ._executors import Mapper
from ._score import score_many
from ._survival import survival_horizon as _survival_horizon
from ._survival import survivor_columns as _survivor_columns
from ._trajectory import Trajectory
from .families import AbstractFamily


# --------------------------------------------------------------------------- fit_many
def _map(executor: Mapper | None, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    if executor is None:
        return [fn(item) for item in items]
    if callable(getattr(executor, "map", None)):
        return list(executor.map(fn, items))
    raise ValueError(f"executor must have a .map(fn, items) method, got {type(executor).__name__}")


def _run_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Flat scalar columns from a run's meta: its config's keys and the run's own scalars
    (seed, ...); other nested dicts as ``key.subkey``; lists are left out."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if isinstance(value, Mapping):
            for k2, v2 in value.items():
                if isinstance(v2, (str, int, float, bool)) or v2 is None:
                    out[str(k2) if key == "config" else f"{key}.{k2}"] = v2
        elif isinstance(value, (str, int, float, bool)) or value is None:
            out[str(key)] = value
    return out


def _fit_one_run(
    job: tuple[int, Trajectory, list[Any], dict[str, Any], int | None, bool],
) -> list[dict]:
    """Worker: every family on one run; fitted models (scored later, batched), their
    equations as text (when asked: rendering is sympy work worth spreading over the
    workers too) or refusals."""
    i, run, families, options, ensemble, text = job
    fit = _fitter(ensemble)

    rows = []
    for family in families:
        name = family_name(family)
        why = _not_applicable(run, family)
        if why is not None:
            rows.append({"run": i, **not_applicable_row(name, family, why, run.n_vars)})
        else:
            model = fit(run, family=family, **options)
            rows.append(
                {
                    "run": i,
                    "family": name,
                    "variant": "sindy",
                    "model": model,
                    "equations": equations_text(model) if text else "",
                }
            )
    return rows


def fit_many(
    traj: Trajectory | Sequence[Trajectory],
    families: Sequence[str | AbstractFamily] | str = DEFAULT_FAMILIES,
    *,
    executor: Mapper | None = None,
    horizon: float | None = None,
    forecast: Trajectory | None = None,
    survival_horizon: float | None = None,
    ensemble: int | None = None,
    equations: bool = True,
    **fit_options: Any,
) -> pd.DataFrame:
    """Fit every family on each run of a batch separately; one long table.

    ``traj``: a batch (or one run, or a list of runs sharing ``t`` and names). Columns:
    ``run`` (0..R-1), the run's config and seed from its meta (one column per scalar),
    ``family, variant, status, n_library``, the scores (as in :func:`compare`),
    ``equations`` and ``model``; where a run's meta records ``survivors`` (the trainer's
    runs do): ``survivors_actual`` and, when ``dynafit.survivors`` exists,
    ``survivors_predicted``, ``survivor_precision`` and ``survivor_recall`` (integrated
    ``survival_horizon`` time units from the window's first state; default: to the end
    of training, the config's ``steps``). Rows are in run order, then family order.

    The sparse regressions run through ``executor.map(fn, items)`` (a ``Mapper``: for
    example ``dynafit.internal.make_executor("ray")`` or a ``concurrent.futures``
    executor; None: a loop in this process). The
    scoring is batched: one vmapped rollout per family over all runs
    (``dynafit._score.score_many``). ``horizon``/``forecast`` as in :func:`compare`
    (``forecast`` a batch with one continuation per run); ``ensemble`` as in
    :func:`compare`. ``equations=False`` leaves the ``equations`` column empty: for
    dense models (hundreds of terms) sympy's rendering of the text costs about as much
    as the fit; the ``model`` column has the equations either way.
    """
    if isinstance(traj, Trajectory):
        batch = traj if traj.is_batch else Trajectory.stack([traj])
    else:
        batch = Trajectory.stack(list(traj))
    families, _ = _family_list(families, "fit_many")
    score_kw = _score_kw(horizon, forecast)
    if forecast is not None:
        forecast = forecast if forecast.is_batch else Trajectory.stack([forecast])
        if forecast.n_runs != batch.n_runs:
            raise ValueError(f"forecast has {forecast.n_runs} runs for {batch.n_runs} runs")
    runs = list(batch.runs())
    fit_runs = runs if horizon is None else [split_horizon(r, horizon) for r in runs]
    _fitter(ensemble)  # a bad ensemble size fails here, not in every worker
    jobs = [
        (i, r, families, dict(fit_options), ensemble, bool(equations))
        for i, r in enumerate(fit_runs)
    ]
    fitted = [row for rows in _map(executor, _fit_one_run, jobs) for row in rows]
    scores = _score_batched(fitted, batch, score_kw)
    rows = []
    for row, sc in zip(fitted, scores):
        run = runs[row["run"]]
        out: dict[str, Any] = {"run": row["run"], **_run_meta(run.meta)}
        if sc is None:  # a family that does not apply: no model, no scores
            out.update({k: v for k, v in row.items() if k != "run"})
        else:
            out.update(
                _model_row(row["family"], row["variant"], row["model"], sc, row["equations"])
            )
            out.update(
                _survivor_columns(row["model"], run, _survival_horizon(run, survival_horizon))
            )
        rows.append(out)
    table = pd.DataFrame(rows)
    meta_cols = list(_run_meta(runs[0].meta))
    first = [
        c for c in dict.fromkeys(["run", *meta_cols, "family", "variant", "status"]) if c in table
    ]
    rest = _columns(table[[c for c in table.columns if c not in first]])
    return pd.concat([table[first], rest], axis=1)


def _score_batched(
    fitted: list[dict[str, Any]], batch: Trajectory, score_kw: Mapping[str, Any]
) -> list[dict[str, Any] | None]:
    """Scores per fitted row: the models of one family go through one ``score_many``
    call, vmapped over their runs."""
    out: list[dict[str, Any] | None] = [None] * len(fitted)
    groups: dict[Any, list[int]] = {}
    for j, row in enumerate(fitted):
        if row.get("model") is not None:
            # by family instance: low-rank fits of different runs differ in their weights
            groups.setdefault((row["family"], row["model"].family), []).append(j)
    for idx in groups.values():
        runs = [fitted[j]["run"] for j in idx]
        sub = Trajectory(batch.t, batch.x[runs], batch.names)
        kw = dict(score_kw)
        if "forecast" in kw:
            fc = kw["forecast"]
            kw["forecast"] = Trajectory(fc.t, fc.x[runs], fc.names)
        scores = score_many([fitted[j]["model"] for j in idx], sub, **kw)
        for n, j in enumerate(idx):
            out[j] = {k: np.asarray(v)[n] for k, v in scores.items()}
    return out
