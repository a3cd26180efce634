"""Leaderboards: several families fitted on the same data (``compare``), and every run of a
batch fitted on its own (``fit_many``).

Ranking rule (DESIGN.md, settled): best first by BIC; rows within ``tolerance`` (10) of the
best BIC are equally good, and among them the smaller library wins (linear =
lotka_volterra = m + 1 columns < polynomial), then fewer terms. Diverged rows rank after
every finite one; a family that cannot apply to the data is a row with status
``"not applicable: <why>"``, ranked last.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._trajectory import Trajectory

DEFAULT_FAMILIES = ("linear", "lotka_volterra", "polynomial")
SCORE_COLUMNS = ("deriv_r2", "rollout_r2", "rmse", "n_terms", "aic", "bic", "diverged")
FORECAST_COLUMNS = ("forecast_r2", "forecast_skill")
#: Criteria where a larger value is better; every other criterion is minimised.
_HIGHER_IS_BETTER = {"deriv_r2", "rollout_r2", "forecast_r2", "forecast_skill"}
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
    """The model's equations as one line of text, ``"; "``-separated."""
    try:
        return "; ".join(f"{eq.lhs} = {eq.rhs}" for eq in model.equations())
    except Exception:  # a model without sympy equations still gets a row
        return str(model)


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


def _model_row(family: str, variant: str, model: Any, scores: Mapping[str, Any]) -> dict:
    row = {"family": family, "variant": variant, "status": "ok"}
    row["n_library"] = library_size(model)
    row.update(_scores_row(scores))
    row["diverged"] = bool(row.get("diverged", False))
    row["equations"] = equations_text(model)
    row["model"] = model
    return row


# --------------------------------------------------------------------------- ranking
def rank(board: pd.DataFrame, by: str = "bic", *, tolerance: float | None = None) -> pd.DataFrame:
    """Sort a leaderboard best first and number it (``rank`` column, 1 = best).

    For ``by`` in {"aic", "bic"}, rows within ``tolerance`` (default 10) of the best value
    are equally good and ordered by library size, then number of terms, then ``by``. Other
    criteria are sorted alone (R^2 and skill descending, the rest ascending). Diverged rows
    come after every finite one, rows whose status is not "ok" after those.
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
    # tier 0: equally good; 1: other finite; 2: ok but diverged or non-finite; 3: not ok
    tier = np.where(~ok, 3, np.where(~finite, 2, 1))
    if finite.any():
        best = value[finite].min()
        tier = np.where(finite & (value <= best + tolerance), 0, tier)
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
def _fit_and_score(
    traj: Trajectory, family: Any, horizon: int | None, fit_options: Mapping[str, Any]
) -> tuple[Any, dict[str, Any]]:
    from ._fit import fit

    if horizon is None:
        model = fit(traj, family=family, **fit_options)
        return model, dict(model.score(traj))
    train = _train_part(traj, horizon)
    model = fit(train, family=family, **fit_options)
    return model, dict(model.score(traj, horizon=horizon))


def _train_part(traj: Trajectory, horizon: int) -> Trajectory:
    """All but the last ``horizon`` time points (the held-out forecast window)."""
    if not isinstance(horizon, (int, np.integer)) or isinstance(horizon, bool) or horizon < 1:
        raise ValueError(f"horizon must be a positive number of time points, got {horizon!r}")
    if horizon > traj.n_times - 3:
        raise ValueError(
            f"horizon {horizon} leaves {traj.n_times - horizon} points to fit on; "
            f"the trajectory has {traj.n_times} time points"
        )
    return traj.window(traj.t[0], traj.t[-horizon - 1])


def _not_applicable(traj: Trajectory, family: Any) -> str | None:
    """Why ``family`` cannot apply to ``traj`` (its ``validate`` refuses the data), or None."""
    from .families import get_family

    try:
        get_family(family).validate(np.asarray(traj.x), traj.names)
    except ValueError as err:
        return str(err)
    return None


def _refine_available() -> Callable[..., Any] | None:
    try:
        from ._refine import refine
    except ImportError:
        return None
    return refine


def compare(
    traj: Trajectory,
    families: Sequence[Any] | str = DEFAULT_FAMILIES,
    *,
    by: str = "bic",
    refine: bool = False,
    horizon: int | None = None,
    tolerance: float | None = None,
    refine_options: Mapping[str, Any] | None = None,
    **fit_options: Any,
) -> pd.DataFrame:
    """Fit every family on the same data and return a leaderboard, best first.

    One row per family and variant (``"sindy"``; ``"refined"`` with ``refine=True``), with
    columns ``rank, family, variant, status, n_library`` (candidate terms per equation),
    the scores of ``model.score`` (``deriv_r2, rollout_r2, rmse, n_terms, aic, bic,
    diverged`` and, with ``horizon`` time points held out, ``forecast_r2,
    forecast_skill``), ``equations`` (text) and ``model`` (the Model itself).
    A family that cannot apply to the data (for example ``lotka_volterra`` on
    non-positive values) gets the status ``"not applicable: <why>"`` and ranks last; any
    other error propagates. ``fit_options`` go to ``dynafit.fit`` unchanged.
    """
    if not isinstance(traj, Trajectory):
        raise ValueError(f"compare needs a dynafit.Trajectory, got {type(traj).__name__}")
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    families = list(families)
    if not families:
        raise ValueError("compare needs at least one family")
    names = [family_name(f) for f in families]
    if len(set(names)) != len(names):
        raise ValueError(f"families given twice: {names}")
    refine_fn = None
    if refine:
        refine_fn = _refine_available()
        if refine_fn is None:
            raise ValueError(
                "refine=True needs dynafit.refine, which this installation does not have yet"
            )
    if horizon is not None:
        _train_part(traj, horizon)  # validate before any fitting
    rows: list[dict[str, Any]] = []
    for family, name in zip(families, names):
        why = _not_applicable(traj, family)
        if why is not None:
            rows.append(_unavailable_row(name, "sindy", f"not applicable: {why}"))
            continue
        model, scores = _fit_and_score(traj, family, horizon, fit_options)
        rows.append(_model_row(name, "sindy", model, scores))
        if refine_fn is not None:
            rows.append(_refined_row(refine_fn, traj, name, model, horizon, refine_options))
    board = pd.DataFrame(rows)
    board = rank(_columns(board), by, tolerance=tolerance)
    board.attrs["by"] = by
    return board


def _refined_row(
    refine_fn: Callable[..., Any],
    traj: Trajectory,
    name: str,
    model: Any,
    horizon: int | None,
    options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    data = traj if horizon is None else _train_part(traj, horizon)
    try:
        refined = refine_fn(model, data, **dict(options or {}))
    except ValueError as err:  # e.g. refining a diverged model: a result, not a crash
        return _unavailable_row(name, "refined", f"not refined: {err}")
    scores = refined.score(traj) if horizon is None else refined.score(traj, horizon=horizon)
    return _model_row(name, "refined", refined, scores)


# --------------------------------------------------------------------------- fit_many
class _InProcess:
    """The plain default executor: a Python loop in this process."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return [fn(item) for item in items]


def _map(executor: Any, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    if executor is None:
        return _InProcess().map(fn, items)
    if callable(getattr(executor, "map", None)):
        return list(executor.map(fn, items))
    raise ValueError(f"executor must have a .map(fn, items) method, got {type(executor).__name__}")


def _run_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Flat scalar columns from a run's meta (config and seed); nested values as JSON text."""
    import json

    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key in ("survivors", "final_survivors"):
            continue
        if isinstance(value, Mapping):
            for k2, v2 in value.items():
                if isinstance(v2, (str, int, float, bool)) or v2 is None:
                    out[f"{key}.{k2}" if key != "config" else str(k2)] = v2
        elif isinstance(value, (str, int, float, bool)) or value is None:
            out[str(key)] = value
        else:
            out[str(key)] = json.dumps(value)
    return out


def actual_survivors(meta: Mapping[str, Any], names: Sequence[str]) -> list[str] | None:
    """The survivors recorded in a run's meta (names or indices), or None if absent."""
    for key in ("survivors", "final_survivors"):
        if key in meta and meta[key] is not None:
            value = meta[key]
            if isinstance(value, Mapping):  # {"names": [...]} or {name: bool}
                value = value.get("names", [k for k, v in value.items() if v is True])
            return [names[v] if isinstance(v, int) else str(v) for v in value]
    return None


def _survivor_columns(
    model: Any, run: Trajectory, actual: list[str] | None, horizon_t: float | None
) -> dict[str, Any]:
    if actual is None:
        return {}
    out: dict[str, Any] = {"survivors_actual": ",".join(actual)}
    try:
        from ._survival import survivors
    except ImportError:
        try:
            import dynafit

            survivors = dynafit.survivors  # type: ignore[attr-defined]
        except AttributeError:
            return out
    horizon = horizon_t if horizon_t is not None else float(run.meta.get("steps", run.t[-1]))
    try:
        kwargs = {}
        if "s0" in run.aux:
            kwargs["s0"] = float(run.aux["s0"][0])
        predicted = list(survivors(model, run.x[0], horizon, **kwargs))
    except TypeError:
        predicted = list(survivors(model, run.x[0], horizon))
    except ValueError as err:
        out["survivors_predicted"] = f"error: {err}"
        return out
    pred, act = set(predicted), set(actual)
    out["survivors_predicted"] = ",".join(str(p) for p in predicted)
    out["survivor_precision"] = len(pred & act) / len(pred) if pred else math.nan
    out["survivor_recall"] = len(pred & act) / len(act) if act else math.nan
    return out


def _fit_one_run(job: tuple[int, Trajectory, list[Any], dict[str, Any]]) -> list[dict]:
    """All families on one run: fitted models (scored later, batched) or refusals."""
    i, run, families, options = job
    from ._fit import fit

    rows = []
    for family in families:
        name = family_name(family)
        why = _not_applicable(run, family)
        if why is not None:
            rows.append({"run": i, **_unavailable_row(name, "sindy", f"not applicable: {why}")})
        else:
            model = fit(run, family=family, **options)
            rows.append({"run": i, "family": name, "variant": "sindy", "model": model})
    return rows


def fit_many(
    traj: Trajectory | Sequence[Trajectory],
    families: Sequence[Any] | str = DEFAULT_FAMILIES,
    *,
    executor: Any = None,
    horizon: int | None = None,
    survival_horizon: float | None = None,
    **fit_options: Any,
) -> pd.DataFrame:
    """Fit every family on each run of a batch separately; one long table.

    Columns: ``run``, the run's config and seed from its meta, ``family``, ``variant``,
    ``status``, ``n_library``, the scores, ``equations`` and ``model``; and, where a
    run's meta records the survivors, ``survivors_actual``, ``survivors_predicted``
    (from ``dynafit.survivors`` when available), ``survivor_precision`` and
    ``survivor_recall``. Rows are ordered by run, then family as given (not ranked).

    The regressions run through ``executor.map`` (an object with ``map(fn, items)``, for
    example from ``dynafit._executors``; None: a loop in this process). Scoring goes
    through the core's batch scoring: one vmapped rollout per family over the runs.
    """
    if isinstance(traj, Trajectory):
        runs = list(traj.runs())
    else:
        runs = [r for tr in traj for r in tr.runs()]
    if not runs:
        raise ValueError("fit_many needs at least one run")
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    families = list(families)
    if not families:
        raise ValueError("fit_many needs at least one family")
    fit_runs = runs
    if horizon is not None:
        fit_runs = [_train_part(r, horizon) for r in runs]
    jobs = [(i, r, families, dict(fit_options)) for i, r in enumerate(fit_runs)]
    for family in families:
        family_name(family)  # unknown names fail before any work is sent out
    fitted = [row for rows in _map(executor, _fit_one_run, jobs) for row in rows]
    scores = _score_batched(fitted, runs, horizon)
    rows = []
    for row, sc in zip(fitted, scores):
        run = runs[row["run"]]
        if row.get("model") is None:
            out = dict(row)
        else:
            out = {"run": row["run"], **_model_row(row["family"], row["variant"], row["model"], sc)}
            actual = actual_survivors(run.meta, run.names)
            out.update(_survivor_columns(row["model"], run, actual, survival_horizon))
        out.update({k: v for k, v in _run_meta(run.meta).items() if k not in out})
        rows.append(out)
    table = pd.DataFrame(rows)
    meta_cols = [c for c in table.columns if c not in rows[0] or c in _run_meta(runs[0].meta)]
    first = ["run", *[c for c in meta_cols if c != "run"], "family", "variant", "status"]
    first = [c for c in dict.fromkeys(first) if c in table.columns]
    rest = _columns(table[[c for c in table.columns if c not in first]])
    return pd.concat([table[first], rest], axis=1)


def _score_batched(
    fitted: list[dict[str, Any]], runs: list[Trajectory], horizon: int | None
) -> list[dict[str, Any] | None]:
    """Scores for each fitted row; models of one family go through one batched call."""
    out: list[dict[str, Any] | None] = [None] * len(fitted)
    batch_score = _batch_scorer()
    groups: dict[str, list[int]] = {}
    for j, row in enumerate(fitted):
        if row.get("model") is not None:
            groups.setdefault(row["family"], []).append(j)
    for idx in groups.values():
        models = [fitted[j]["model"] for j in idx]
        data = [runs[fitted[j]["run"]] for j in idx]
        if batch_score is not None:
            kw = {} if horizon is None else {"horizon": horizon}
            results = batch_score(models, data, **kw)
        else:
            results = [
                m.score(d) if horizon is None else m.score(d, horizon=horizon)
                for m, d in zip(models, data)
            ]
        for j, sc in zip(idx, results):
            out[j] = dict(sc)
    return out


def _batch_scorer() -> Callable[..., list[Mapping[str, Any]]] | None:
    """The core's batched scoring (vmapped over models of one family), if it has one."""
    try:
        from . import _score
    except ImportError:
        return None
    return getattr(_score, "score_many", None)
