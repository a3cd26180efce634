"""Leaderboards: several families fitted on the same data (``compare``), and every run of a
batch fitted on its own (``fit_many``).

Ranking rule (DESIGN.md, settled): best first by BIC; rows within ``tolerance`` (10) of the
best BIC are equally good, and among them the smaller library wins (linear =
lotka_volterra = m + 1 columns < polynomial), then fewer terms. A model with no terms
(dx/dt = 0) whose rollout is further from the data than some model with terms ranks
after every other finite row: it neither wins nor sets the band of the tie rule.
Diverged rows rank after every finite one; a family that cannot apply to the data is a
row with status ``"not applicable: <why>"``, ranked last.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._trajectory import Trajectory

DEFAULT_FAMILIES = ("linear", "lotka_volterra", "polynomial")
SCORE_COLUMNS = (
    "deriv_r2",
    "onestep_r2",
    "rollout_r2",
    "rmse",
    "n_terms",
    "aic",
    "bic",
    "diverged",
)
FORECAST_COLUMNS = ("forecast_r2", "forecast_rmse", "forecast_skill", "forecast_diverged")
#: Criteria where a larger value is better; every other criterion is minimised.
_HIGHER_IS_BETTER = {"deriv_r2", "onestep_r2", "rollout_r2", "forecast_r2", "forecast_skill"}
#: Information criteria, where differences below the tolerance mean "equally good".
_INFORMATION_CRITERIA = {"aic", "bic"}
DEFAULT_TOLERANCE = 10.0

BOARD_COLUMNS = (
    "rank",
    "family",
    "variant",
    "status",
    "n_library",
    *SCORE_COLUMNS,
    "equations",
    "model",
)


# --------------------------------------------------------------------------- helpers
def family_name(family: Any) -> str:
    """The name of a family given by name (aliases resolved) or as an instance.

    An unknown name is a ``ValueError`` (from ``families.get_family``).
    """
    from .families import get_family

    fam = get_family(family)
    return str(fam.name) if fam.name else type(fam).__name__


def equations_text(model: Any) -> str:
    """The model's equations as one line of text (``"dx/dt = ...; dy/dt = ..."``)."""
    return "; ".join(line.strip() for line in str(model).splitlines() if line.strip())


def library_size(model: Any) -> int:
    """Candidate terms per equation (the library's column count)."""
    return int(np.shape(model.coefficients)[-1])


def _as_float(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _scores_row(scores: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _as_float(v) for k, v in dict(scores).items()}


def _unavailable_row(family: str, variant: str, status: str) -> dict[str, Any]:
    row: dict[str, Any] = {"family": family, "variant": variant, "status": status}
    for key in SCORE_COLUMNS:
        row[key] = np.nan
    row["diverged"] = False
    row["n_library"] = np.nan
    row["equations"] = ""
    row["model"] = None
    return row


def _model_row(
    family: str,
    variant: str,
    model: Any,
    scores: Mapping[str, Any],
    equations: str | None = None,
) -> dict:
    """A table row for ``model``; ``equations``: its text when already rendered."""
    row = {"family": family, "variant": variant, "status": "ok"}
    row["n_library"] = library_size(model)
    row.update(_scores_row(scores))
    row["diverged"] = bool(row.get("diverged", False))
    row["equations"] = equations_text(model) if equations is None else equations
    row["model"] = model
    return row


# --------------------------------------------------------------------------- ranking
def rank(board: pd.DataFrame, by: str = "bic", *, tolerance: float | None = None) -> pd.DataFrame:
    """Sort a leaderboard best first and number it (``rank`` column, 1 = best).

    For ``by`` in {"aic", "bic"}, rows within ``tolerance`` (default 10) of the best value
    are equally good and ordered by library size, then number of terms, then ``by``. Other
    criteria are sorted alone (R^2 and skill descending, the rest ascending). A 0-term
    row whose rollout R^2 is below that of a row with terms comes after every other
    finite row. Diverged rows come after every finite one, rows whose status is not "ok"
    after those.
    """
    if board.empty:
        out = board.copy()
        out.insert(0, "rank", pd.Series(dtype=int))
        return out
    if by not in board.columns:
        raise ValueError(
            f"cannot rank by {by!r}: no such score; choose one of "
            f"{[c for c in (*SCORE_COLUMNS, *FORECAST_COLUMNS) if c in board.columns]}"
        )
    if tolerance is None:
        tolerance = DEFAULT_TOLERANCE if by in _INFORMATION_CRITERIA else 0.0
    df = board.drop(columns=["rank"], errors="ignore").reset_index(drop=True)
    sign = -1.0 if by in _HIGHER_IS_BETTER else 1.0
    value = sign * pd.to_numeric(df[by], errors="coerce").astype(float)
    ok = df["status"].eq("ok")
    diverged = df["diverged"].fillna(False).astype(bool)
    finite = ok & ~diverged & np.isfinite(value)
    empty = _explains_nothing(df, ok & ~diverged)
    # tier 0: equally good; 1: other finite; 1.5: finite but a 0-term model that rolls out
    # further from the data than a model with terms; 2: ok but diverged or non-finite;
    # 3: not ok
    tier = np.where(~ok, 3.0, np.where(~finite, 2.0, np.where(empty, 1.5, 1.0)))
    if (finite & ~empty).any():
        best = value[finite & ~empty].min()
        tier = np.where(finite & ~empty & (value <= best + tolerance), 0.0, tier)
    n_library = pd.to_numeric(df["n_library"], errors="coerce").fillna(np.inf)
    n_terms = pd.to_numeric(df["n_terms"], errors="coerce").fillna(np.inf)
    in_tie = (tier == 0) & (tolerance > 0)
    keys = pd.DataFrame(
        {
            "tier": tier,
            "lib": np.where(in_tie, n_library, 0.0),
            "terms": np.where(in_tie, n_terms, 0.0),
            "value": value.fillna(np.inf).where(finite, np.inf),
            "order": np.arange(len(df)),
        }
    )
    order = keys.sort_values(["tier", "lib", "terms", "value", "order"]).index
    out = df.loc[order].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _explains_nothing(df: pd.DataFrame, usable: pd.Series) -> np.ndarray:
    """Rows with no terms (dx/dt = 0) whose rollout R^2 is below that of some usable row
    with terms: a model that explains nothing never wins over one that rolls out closer
    to the data, whatever the criterion or the family tie rule say."""
    if "rollout_r2" not in df or "n_terms" not in df:
        return np.zeros(len(df), dtype=bool)
    r2 = pd.to_numeric(df["rollout_r2"], errors="coerce").astype(float).to_numpy()
    terms = pd.to_numeric(df["n_terms"], errors="coerce").to_numpy()
    usable = np.asarray(usable, dtype=bool) & np.isfinite(r2)
    with_terms = usable & (terms > 0)
    if not with_terms.any():
        return np.zeros(len(df), dtype=bool)
    return (terms == 0) & (np.nan_to_num(r2, nan=-np.inf) < r2[with_terms].max())


def _columns(board: pd.DataFrame) -> pd.DataFrame:
    """Known columns first in a fixed order, then any extra score the core reports."""
    front = [c for c in BOARD_COLUMNS if c in board.columns]
    forecast = [c for c in FORECAST_COLUMNS if c in board.columns]
    extra = [c for c in board.columns if c not in front and c not in forecast]
    tail = ["equations", "model"]
    middle = [c for c in front if c not in tail] + forecast
    middle += [c for c in extra if c not in tail]
    return board[middle + [c for c in tail if c in board.columns]]


# --------------------------------------------------------------------------- fitting
def split_horizon(traj: Trajectory, horizon: float) -> Trajectory:
    """The part of ``traj`` before its last ``horizon`` time units (``t <= t_end - horizon``),
    the same split as ``model.score(traj, horizon=horizon)``."""
    if isinstance(horizon, bool) or not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be a positive number of time units, got {horizon!r}")
    n_in = int(np.searchsorted(traj.t, traj.t[-1] - horizon, side="right"))
    if n_in < 3 or n_in >= traj.n_times:
        raise ValueError(
            f"horizon {horizon:g} leaves {n_in} points to fit on and {traj.n_times - n_in} "
            f"held out (the data spans [{traj.t[0]:g}, {traj.t[-1]:g}]); need at least 3 and 1"
        )
    return traj.window(None, traj.t[n_in - 1])


def _score_kw(horizon: float | None, forecast: Trajectory | None) -> dict[str, Any]:
    if horizon is not None and forecast is not None:
        raise ValueError("give horizon= or forecast=, not both")
    if horizon is not None:
        return {"horizon": horizon}
    if forecast is not None:
        if not isinstance(forecast, Trajectory):
            raise ValueError("forecast must be a dynafit.Trajectory continuing the data")
        return {"forecast": forecast}
    return {}


def _not_applicable(traj: Trajectory, family: Any) -> str | None:
    """Why ``family`` cannot apply to ``traj`` (its ``validate`` refuses the data), or None."""
    from .families import get_family

    try:
        get_family(family).validate(np.asarray(traj.x), traj.names)
    except ValueError as err:
        return str(err)
    return None


def _fitter(ensemble: int | None) -> Callable[..., Any]:
    """``dynafit.fit``, or ``dynafit.fit_ensemble`` with ``n_models=ensemble``."""
    from ._fit import fit

    if ensemble is None:
        return fit
    if isinstance(ensemble, bool) or not isinstance(ensemble, (int, np.integer)) or ensemble < 2:
        raise ValueError(f"ensemble must be a number of models >= 2, got {ensemble!r}")
    import dynafit

    fit_ensemble = getattr(dynafit, "fit_ensemble", None)
    if fit_ensemble is None:
        raise ValueError("ensemble= needs dynafit.fit_ensemble, which this installation lacks")

    def fit_with_ensemble(traj: Trajectory, family: Any, **options: Any) -> Any:
        return fit_ensemble(traj, family, n_models=int(ensemble), **options)

    return fit_with_ensemble


def _pooled_score(model: Any, traj: Trajectory, score_kw: Mapping[str, Any]) -> dict[str, Any]:
    """``model.score`` on one run; on a batch, one score for the pooled fit.

    The core scores each run of a batch (one vmapped rollout); pooled, the R^2 and skill
    keys are their mean over runs, ``rmse`` the RMSE over all runs, ``diverged`` any
    run's, and AIC/BIC come from the derivative residuals of all runs together
    (n = runs x rows x m), as for the pooled regression itself.
    """
    scores = dict(model.score(traj, **score_kw))
    if not traj.is_batch:
        return scores
    out: dict[str, Any] = {}
    for key, value in scores.items():
        v = np.asarray(value)
        if key in ("diverged", "forecast_diverged"):
            out[key] = bool(v.any())
        elif key in ("rmse", "forecast_rmse"):
            out[key] = float(np.sqrt(np.mean(v.astype(float) ** 2)))
        elif key == "n_terms":
            out[key] = int(v.max())
        elif key in ("aic", "bic"):
            continue
        else:
            out[key] = float(np.mean(v.astype(float)))
    out["aic"], out["bic"] = _pooled_information(model, traj)
    if out.get("diverged"):
        out["aic"] = out["bic"] = math.inf
    return out


def _pooled_information(model: Any, traj: Trajectory) -> tuple[float, float]:
    """AIC and BIC of the derivative residuals of every run together, with the fit's own
    derivative estimate (as ``dynafit._score`` computes them per run), the variance
    floored at the mean over runs of the derivative estimate's error variance."""
    import jax.numpy as jnp

    from ._derivatives import differentiate
    from ._fit import derivative_error_variance, information_criteria

    method = model.options.get("derivative", "centered")
    order = int(model.options.get("order", 2))
    x = np.asarray(traj.x, dtype=np.float64)
    with np.errstate(all="ignore"):
        dxdt = differentiate(x, traj.t, method, order=order, window=model.options.get("window"))
        f = np.asarray(model.rhs(0.0, jnp.asarray(x)), dtype=np.float64)
    rows = slice(0, traj.n_times - 1) if method == "forward" else slice(None)
    resid = dxdt[:, rows] - f[:, rows]
    if not np.all(np.isfinite(resid)):
        return math.inf, math.inf
    window = model.options.get("window")
    with np.errstate(all="ignore"):
        floor = float(np.mean(derivative_error_variance(x, traj.t, method, order, window, dxdt)))
    return information_criteria(resid, model.n_terms, floor)


def _refine_available() -> Callable[..., Any] | None:
    import dynafit

    return getattr(dynafit, "refine", None)


def _family_list(families: Sequence[Any] | str, what: str) -> tuple[list[Any], list[str]]:
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    families = list(families)
    if not families:
        raise ValueError(f"{what} needs at least one family")
    names = [family_name(f) for f in families]
    if len(set(names)) != len(names):
        raise ValueError(f"families given twice: {names}")
    return families, names


def _library_size(family: Any, m: int) -> int:
    from .families import get_family

    return int(get_family(family).library_size(m))


def compare(
    traj: Trajectory,
    families: Sequence[Any] | str = DEFAULT_FAMILIES,
    *,
    by: str = "bic",
    refine: bool = False,
    stable: bool = False,
    horizon: float | None = None,
    forecast: Trajectory | None = None,
    tolerance: float | None = None,
    ensemble: int | None = None,
    refine_options: Mapping[str, Any] | None = None,
    stable_options: Mapping[str, Any] | None = None,
    **fit_options: Any,
) -> pd.DataFrame:
    """Fit every family on the same data and return a leaderboard, best first.

    ``families``: names or ``AbstractFamily`` instances (or one comma-separated string).
    One row per family and variant (``"sindy"``; ``"refined"`` too with ``refine=True``,
    from ``dynafit.refine``; with ``stable=True`` one more linear row, variant
    ``"stable"``, from ``dynafit.fit_stable(**stable_options)``: A Hurwitz by
    construction, the variant meant for forecasting) with the columns ``rank, family, variant, status,
    n_library`` (candidate terms per equation), the scores of ``model.score``
    (``deriv_r2, onestep_r2, rollout_r2, rmse, n_terms, aic, bic, diverged``), then
    ``equations`` (text) and ``model`` (the Model, None when not applicable).

    Forecasts: with ``horizon`` (time units) the models are fitted on the data before
    the last ``horizon`` units and scored on it, then forecast over the held-out end;
    with ``forecast`` (a Trajectory continuing ``traj``) they are fitted on all of
    ``traj`` and forecast over it. Either adds ``forecast_r2, forecast_rmse,
    forecast_skill, forecast_diverged``.

    Ranking (``rank``): best first by ``by``; for "aic"/"bic" rows within ``tolerance``
    (10) of the best are equally good and the smaller library, then fewer terms, wins;
    diverged rows rank after finite ones. A family that cannot apply to the data (for
    example lotka_volterra on non-positive values) is a row with status
    ``"not applicable: <why>"``, ranked last; every other error propagates.
    ``fit_options`` go to ``dynafit.fit`` unchanged; with ``ensemble=N`` every family
    is fitted by ``dynafit.fit_ensemble(..., n_models=N)`` instead (coefficients with
    intervals and inclusion probabilities).
    """
    if not isinstance(traj, Trajectory):
        raise ValueError(f"compare needs a dynafit.Trajectory, got {type(traj).__name__}")
    families, names = _family_list(families, "compare")
    score_kw = _score_kw(horizon, forecast)
    if by not in (*SCORE_COLUMNS, "onestep_r2", *FORECAST_COLUMNS, "forecast_rmse"):
        raise ValueError(
            f"cannot rank by {by!r}; choose one of "
            f"{[*SCORE_COLUMNS, 'onestep_r2', *FORECAST_COLUMNS, 'forecast_rmse']}"
        )
    if by.startswith("forecast") and not score_kw:
        raise ValueError(f"ranking by {by!r} needs horizon= or forecast=")
    refine_fn = None
    if refine:
        refine_fn = _refine_available()
        if refine_fn is None:
            raise ValueError(
                "refine=True needs dynafit.refine, which this installation does not have yet"
            )
    train = split_horizon(traj, horizon) if horizon is not None else traj
    fit = _fitter(ensemble)
    rows: list[dict[str, Any]] = []
    for family, name in zip(families, names):
        why = _not_applicable(traj, family)
        if why is not None:
            row = _unavailable_row(name, "sindy", f"not applicable: {why}")
            row["n_library"] = _library_size(family, traj.n_vars)
            rows.append(row)
            continue
        model = fit(train, family=family, **fit_options)
        rows.append(_model_row(name, "sindy", model, _pooled_score(model, traj, score_kw)))
        if refine_fn is not None:
            rows.append(_refined_row(refine_fn, train, traj, name, model, score_kw, refine_options))
    if stable:
        rows.append(_stable_row(train, traj, score_kw, stable_options))
    board = pd.DataFrame(rows)
    board = rank(_columns(board), by, tolerance=tolerance)
    board.attrs["by"] = by
    return board


def _stable_row(
    train: Trajectory,
    traj: Trajectory,
    score_kw: Mapping[str, Any],
    options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    from ._stable import fit_stable

    model = fit_stable(train, **dict(options or {}))
    return _model_row("linear", "stable", model, _pooled_score(model, traj, score_kw))


def _refined_row(
    refine_fn: Callable[..., Any],
    train: Trajectory,
    traj: Trajectory,
    name: str,
    model: Any,
    score_kw: Mapping[str, Any],
    options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    try:
        refined = refine_fn(model, train, **dict(options or {}))
    except ValueError as err:  # e.g. refining a diverged model: a result, not a crash
        row = _unavailable_row(name, "refined", f"not refined: {err}")
        row["n_library"] = library_size(model)
        return row
    return _model_row(name, "refined", refined, _pooled_score(refined, traj, score_kw))


# --------------------------------------------------------------------------- fit_many
def _map(executor: Any, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
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


def actual_survivors(meta: Mapping[str, Any], names: Sequence[str]) -> list[str] | None:
    """The survivors recorded in a run's meta (``"survivors"``: names or indices), or None."""
    value = meta.get("survivors")
    if value is None or not isinstance(value, (list, tuple)):
        return None
    return [names[v] if isinstance(v, int) else str(v) for v in value]


def _survival_horizon(run: Trajectory, given: float | None) -> float | None:
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


def _survivor_columns(model: Any, run: Trajectory, horizon: float | None) -> dict[str, Any]:
    actual = actual_survivors(run.meta, run.names)
    if actual is None:
        return {}
    out: dict[str, Any] = {"survivors_actual": ",".join(actual)}
    import dynafit

    survivors = getattr(dynafit, "survivors", None)
    if survivors is None or horizon is None or horizon <= 0:
        return out
    try:
        s0 = float(run.aux["s0"][0]) if "s0" in run.aux else 0.0
        predicted = [str(p) for p in survivors(model, run.x[0], horizon, s0=s0)]
    except ValueError as err:
        out["survivors_predicted"] = f"error: {err}"
        return out
    pred, act = set(predicted), set(actual)
    out["survivors_predicted"] = ",".join(predicted)
    out["survivor_precision"] = len(pred & act) / len(pred) if pred else math.nan
    out["survivor_recall"] = len(pred & act) / len(act) if act else math.nan
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
            row = _unavailable_row(name, "sindy", f"not applicable: {why}")
            row["n_library"] = _library_size(family, run.n_vars)
            rows.append({"run": i, **row})
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
    families: Sequence[Any] | str = DEFAULT_FAMILIES,
    *,
    executor: Any = None,
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

    The sparse regressions run through ``executor.map(fn, items)`` (for example
    ``dynafit._executors.make_executor("ray")``; None: a loop in this process). The
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
        if row.get("model") is None:
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
    from ._score import score_many

    out: list[dict[str, Any] | None] = [None] * len(fitted)
    groups: dict[str, list[int]] = {}
    for j, row in enumerate(fitted):
        if row.get("model") is not None:
            groups.setdefault(row["family"], []).append(j)
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
