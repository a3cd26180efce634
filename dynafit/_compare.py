"""``compare``: several families fitted on the same data (one pooled model per family on
a batch), scored and ranked into one leaderboard (``_board``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._board import (
    FORECAST_COLUMNS,
    SCORE_COLUMNS,
    _columns,
    _model_row,
    _unavailable_row,
    family_name,
    library_size,
    rank,
    rank_generalizing,
)
from ._choice import aicc
from ._discovery import _rollout_residuals, is_short
from ._fit_family import fit_family as fit
from ._generalize import generalization
from ._matching import refine as refine_model
from ._postfit import fit_ensemble, fit_stable
from ._score import pooled_information
from ._score_names import ROLLOUT_AICC
from ._trajectory import Trajectory
from .families import AbstractFamily, Polynomial, Rational, Trigonometric, get_family


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
    try:
        get_family(family).validate(np.asarray(traj.x), traj.names)
    except ValueError as err:
        return str(err)
    return None


def _fitter(ensemble: int | None) -> Callable[..., Any]:
    """``dynafit.fit``, or ``dynafit.fit_ensemble`` with ``n_models=ensemble``."""
    if ensemble is None:
        return fit
    if isinstance(ensemble, bool) or not isinstance(ensemble, (int, np.integer)) or ensemble < 2:
        raise ValueError(f"ensemble must be a number of models >= 2, got {ensemble!r}")

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
    out["aic"], out["bic"] = pooled_information(model, traj)
    if out.get("diverged"):
        out["aic"] = out["bic"] = math.inf
    return out


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
    return int(get_family(family).library_size(m))


def _family_rows(
    train: Trajectory,
    traj: Trajectory,
    family: Any,
    name: str,
    fit: Callable[..., Any],
    score_kw: Mapping[str, Any],
    by: str,
    *,
    auto: bool,
    generalize: bool,
    refine: bool,
    refine_options: Mapping[str, Any] | None,
    fit_options: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """One family's rows of :func:`compare`: its fit and, with ``refine``, the refined
    model; each with the generalisation columns and the rollout AICc where asked."""
    model = fit(train, family=family, **fit_options)
    row = _model_row(name, "sindy", model, _pooled_score(model, traj, score_kw))
    if auto:  # library size as the family counts it (a rational law's denominators)
        row["n_library"] = _library_size(family, traj.n_vars)
    if generalize:
        row.update(generalization(train, family, fit, model, **fit_options))
    rows = [row]
    if refine:
        rows.append(_refined_row(refine_model, train, traj, name, model, score_kw, refine_options))
    if by == ROLLOUT_AICC:
        for r in rows:
            r[ROLLOUT_AICC] = (
                math.inf if r.get("model") is None else rollout_aicc(r["model"], train)
            )
    return rows


def rollout_aicc(model: Any, traj: Trajectory) -> float:
    """AICc (``dynafit._choice.aicc``) of ``traj`` minus ``model``'s rollout from every
    run's first state, k = the model's terms; +inf where the rollout fails."""
    (res,) = _rollout_residuals(model.field, [model.coefficients], traj)
    return math.inf if res is None else aicc(res, model.n_terms)


def _check_ranking(by: str, score_kw: Mapping[str, Any]) -> None:
    """``by`` names a score column; a forecast score needs a horizon or a forecast."""
    allowed = [*SCORE_COLUMNS, ROLLOUT_AICC, *FORECAST_COLUMNS]
    if by not in allowed:
        raise ValueError(f"cannot rank by {by!r}; choose one of {allowed}")
    if by.startswith("forecast") and not score_kw:
        raise ValueError(f"ranking by {by!r} needs horizon= or forecast=")


def not_applicable_row(name: str, family: Any, why: str, m: int) -> dict[str, Any]:
    """The leaderboard row of a family that cannot apply to the data (status
    ``"not applicable: <why>"``, no model), with its library size for ``m`` variables."""
    row = _unavailable_row(name, "sindy", f"not applicable: {why}")
    row["n_library"] = _library_size(family, m)
    return row


def compare(
    traj: Trajectory,
    families: Sequence[str | AbstractFamily] | str = "auto",
    *,
    by: str | None = None,
    refine: bool = False,
    stable: bool = False,
    horizon: float | None = None,
    forecast: Trajectory | None = None,
    tolerance: float | None = None,
    ensemble: int | None = None,
    refine_options: Mapping[str, Any] | None = None,
    stable_options: Mapping[str, Any] | None = None,
    generalize: bool | None = None,
    **fit_options: Any,
) -> pd.DataFrame:
    """Fit every family on the same data and return a leaderboard, best first.

    ``families``: names or ``AbstractFamily`` instances (or one comma-separated string);
    by default ``"auto"``, the automatic library choice below.
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

    Ranking (``rank``): best first by ``by`` (default: ``"rollout_aicc"`` on short
    data, the runs of fewer than 100 samples that ``fit`` refines candidates on, else
    ``"bic"``); for "aic"/"bic" rows within ``tolerance``
    (10) of the best are equally good and the smaller library, then fewer terms, wins;
    diverged rows rank after finite ones. A family that cannot apply to the data (for
    example lotka_volterra on non-positive values) is a row with status
    ``"not applicable: <why>"``, ranked last; every other error propagates.
    ``fit_options`` go to ``dynafit.fit`` unchanged; with ``ensemble=N`` every family
    is fitted by ``dynafit.fit_ensemble(..., n_models=N)`` instead (coefficients with
    intervals and inclusion probabilities).

    ``families="auto"`` (the default): a set from small to large (:func:`auto_families`:
    linear, lotka_volterra where the data are positive, polynomial of degree 2 and 3,
    trigonometric, rational), with the generalisation check on. ``generalize`` (default:
    on for "auto" only) adds ``general_r2`` and ``support_stability``
    (``dynafit._generalize``: leave one run out, or on one run a late sub-window
    integrated from its own first state) and ranks with
    ``_board.rank_generalizing``: first the rows that generalise (within 0.05 R^2 of the
    best) and keep their terms across the folds (``support_stability`` >= 0.5), then those
    that generalise with an unstable support, then the rest, each group by the rule
    above. ``"rollout_aicc"`` (a column added when ranking by it) is the rule by which
    ``fit`` chooses among candidates on short data (``dynafit._choice``): AICc of the
    residuals of each row's rollout from the data's first states, under an AR(1)
    Gaussian error per variable, k = the model's terms; rows within 2 of the least
    (Burnham & Anderson's "substantial support") are equally good and the smaller
    library, then fewer terms, wins, as with BIC's band. On short data it compares
    families by how well their laws reproduce the trajectory, where BIC on noisy
    derivative estimates can prefer a law whose rollout leaves the data (21 lynx-hare
    points: linear by BIC, rollout R^2 0.72, against Lotka-Volterra's 0.97); from 100
    samples on, BIC puts the right family first more often (``benchmarks/family_choice.py``:
    48 of 56 regime cases against 39 for the rollout AICc, which on clean data rewards a
    larger library's round-off-level terms), so the switch is ``fit``'s own.
    """
    if not isinstance(traj, Trajectory):
        raise ValueError(f"compare needs a dynafit.Trajectory, got {type(traj).__name__}")
    auto = isinstance(families, str) and families.strip().lower() == "auto"
    families, names = auto_families(traj) if auto else _family_list(families, "compare")
    generalize = auto if generalize is None else generalize
    if not isinstance(generalize, bool):
        raise ValueError(f"generalize must be True, False or None, got {generalize!r}")
    score_kw = _score_kw(horizon, forecast)
    by = (ROLLOUT_AICC if is_short(traj) else "bic") if by is None else by
    _check_ranking(by, score_kw)
    train = split_horizon(traj, horizon) if horizon is not None else traj
    fit = _fitter(ensemble)
    rows: list[dict[str, Any]] = []
    for family, name in zip(families, names):
        why = _not_applicable(traj, family)
        if why is not None:
            rows.append(not_applicable_row(name, family, why, traj.n_vars))
            continue
        rows += _family_rows(
            train, traj, family, name, fit, score_kw, by, auto=auto, generalize=generalize,
            refine=refine, refine_options=refine_options, fit_options=fit_options,
        )  # fmt: skip
    if stable:
        rows.append(_stable_row(train, traj, score_kw, stable_options))
        if by == ROLLOUT_AICC and rows[-1].get("model") is not None:
            rows[-1][ROLLOUT_AICC] = rollout_aicc(rows[-1]["model"], train)
    board = pd.DataFrame(rows)
    ranker = rank_generalizing if generalize else rank
    board = ranker(_columns(board), by, tolerance=tolerance)
    board.attrs["by"] = by
    return board


#: the automatic choice's candidates, small to large: (label, family)
AUTO_CANDIDATES = (
    ("linear", "linear"),
    ("lotka_volterra", "lotka_volterra"),
    ("polynomial", Polynomial(2)),
    ("polynomial3", Polynomial(3)),
    ("trigonometric", Trigonometric()),
    ("rational", Rational()),
)
#: families whose library has more columns than this are left out of the automatic choice
AUTO_MAX_LIBRARY = 200


def auto_families(traj: Trajectory) -> tuple[list[Any], list[str]]:
    """The automatic choice's families for ``traj`` and their row labels: every
    :data:`AUTO_CANDIDATES` entry whose library fits the data (at most
    :data:`AUTO_MAX_LIBRARY` columns, and fewer than a fifth of the samples);
    lotka_volterra is listed even on non-positive data (a "not applicable" row)."""
    rows = traj.n_runs * traj.n_times
    fams, names = [], []
    for label, family in AUTO_CANDIDATES:
        size = _library_size(family, traj.n_vars)
        if size <= AUTO_MAX_LIBRARY and size * 5 <= rows:
            fams.append(family)
            names.append(label)
    if not fams:
        raise ValueError(f"too few samples ({rows}) for any family of the automatic choice")
    return fams, names


def _stable_row(
    train: Trajectory,
    traj: Trajectory,
    score_kw: Mapping[str, Any],
    options: Mapping[str, Any] | None,
) -> dict[str, Any]:
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


def fit_auto(traj: Trajectory, **fit_options: Any) -> Any:
    """``dynafit.fit(traj, family="auto")``: the best row of ``compare(traj, "auto")``, its
    leaderboard summarised in ``model.options["auto_choice"]``."""
    board = compare(traj, "auto", **fit_options)
    best = board.iloc[0]
    if best["model"] is None:
        raise ValueError(f"no family of the automatic choice applies: {best['status']}")
    keep = [
        c
        for c in (
            "family",
            "status",
            "n_library",
            "n_terms",
            "bic",
            ROLLOUT_AICC,
            "rollout_r2",
            "general_r2",
            "support_stability",
        )
        if c in board
    ]
    summary = board[keep].to_dict(orient="records")
    model = best["model"]
    return model.with_coefficients(
        model.coefficients, auto_choice={"chosen": best["family"], "board": summary}
    )
