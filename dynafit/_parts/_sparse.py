"""The stages of a term-library family's fit: derivative estimate -> library rows ->
sparse regression path -> selection -> (short data) trajectory matching -> Model.

On noisy data with no formulation given, both formulations are fitted and the rollouts
choose (:func:`dynafit._discovery.choose_formulation`); on short data every support on
the path is matched before the choice (:func:`dynafit._discovery.choose_refined`).
"""

from __future__ import annotations

import dataclasses
import enum
import warnings
from typing import Any

import numpy as np

from .._discovery import choose_formulation, choose_refined, is_short
from .._field import vector_field
from .._model import Model
from .._regression import _Data
from .._regression._weak import MIN_WEAK_TIMES
from .._trajectory import Trajectory
from ..families._base import AbstractFamily
from ._derivative import AbstractDerivative, Auto, Smoothed
from ._regression import AbstractSparseRegression, Formulation
from ._rollouts import rollout_quality
from ._selection import Choice, HeldOut
from ._stages import Stages


class EmptyReason(enum.Enum):
    """Why the selected model has no terms (dx/dt = 0)."""

    ROLLS_WORSE = "every candidate with terms rolls out further from the data than dx/dt = 0"
    NO_BETTER = "no candidate with terms predicts held-out derivatives better, within their noise"


def fit_sparse(traj: Trajectory, family: AbstractFamily, stages: Stages) -> Model:
    """Fit a term-library ``family`` to ``traj`` with ``stages`` (one call per stage)."""
    family.validate(traj.x, traj.names)
    derivative = stages.derivative.resolve(traj)
    formulation = _formulation(stages, derivative, traj)
    if formulation is None:  # noisy data, no formulation given: the rollouts choose
        return choose_formulation(
            lambda reg, **extra: _fit_formulation(
                traj, family, _with_formulation(stages, Formulation(reg), **extra), derivative
            ),
            lambda model: rollout_quality(model.field, [model.coefficients], traj)[1][0],
        )
    return _fit_formulation(traj, family, _with_formulation(stages, formulation), derivative)


def _formulation(stages: Stages, derivative: AbstractDerivative, traj: Trajectory):
    """The formulation the regression part asks for; when it asks none: weak where
    ``Auto`` found the data noisy and every run is long enough, else derivative; None
    where both are to be fitted and the rollouts choose."""
    regression = stages.regression
    assert isinstance(regression, AbstractSparseRegression)
    if regression.formulation is not None:
        return regression.formulation
    noisy = isinstance(stages.derivative, Auto) and isinstance(derivative, Smoothed)
    if not (noisy and traj.n_times >= MIN_WEAK_TIMES):
        return Formulation.DERIVATIVE
    selection = stages.selection
    if isinstance(selection, HeldOut) and selection.check_rollout:
        return None
    return Formulation.WEAK


def _with_formulation(stages: Stages, formulation: Formulation, check_rollout=None) -> Stages:
    regression = dataclasses.replace(stages.regression, formulation=formulation)
    selection = stages.selection
    if check_rollout is not None:
        assert isinstance(selection, HeldOut)  # only the held-out rule screens rollouts
        selection = dataclasses.replace(selection, check_rollout=check_rollout)
    return dataclasses.replace(stages, regression=regression, selection=selection)


def _fit_formulation(
    traj: Trajectory, family: AbstractFamily, stages: Stages, derivative: AbstractDerivative
) -> Model:
    regression, selection = stages.regression, stages.selection
    assert isinstance(regression, AbstractSparseRegression) and selection is not None
    zero_samples = _zero_prefactor_samples(family, traj)
    if zero_samples:
        warnings.warn(
            f"family {family.name!r}: {zero_samples} samples are 0 (a species that died out); "
            "their per-capita rate is undefined and they get weight 0 in their equation "
            '(model.options["zero_samples"])',
            RuntimeWarning,
            stacklevel=4,
        )
    data = library_rows(traj, family, derivative, regression, selection.fraction)
    record = _record(traj, stages, derivative, data)
    if zero_samples:
        record["zero_samples"] = zero_samples
    choice = selection.choose(data, regression, traj)
    if stages.matching is not None and isinstance(selection, HeldOut) and choice.refits is not None:
        choice = match_candidates(family, traj, record, choice)
    if choice.swept:
        _warn_if_empty(family, choice, isinstance(selection, HeldOut) and selection.check_rollout)
    return Model(
        family,
        traj.names,
        choice.xi,
        {**record, **choice.record, "threshold": choice.threshold},
        choice.sweep,
    )


def _zero_prefactor_samples(family: AbstractFamily, traj: Trajectory) -> int:
    """How many samples (run, time, variable) have a prefactor g_i(x) = 0 (a species at
    0 in the Lotka-Volterra family): 0 for families with g = 1."""
    field = vector_field(family, traj.n_vars)
    if field.g_is_one:
        return 0
    x = traj.x if traj.is_batch else traj.x[None]
    return int(np.sum(field.g_np(np.asarray(x)) == 0))


def library_rows(
    traj: Trajectory,
    family: AbstractFamily,
    derivative: AbstractDerivative,
    regression: AbstractSparseRegression,
    fraction: float,
) -> _Data:
    """The regression problem: library rows theta(x), prefactors g(x) and targets (the
    derivative estimate, or the weak form's integrals), split into training and held-out
    rows."""
    opts = {
        "order": derivative.derivative_order,
        "window": derivative.derivative_window,
        "holdout": fraction,
        "weighting": regression.weighting.value,
        "seed": regression.seed,
    }
    if regression.formulation is Formulation.WEAK:
        if traj.n_times < MIN_WEAK_TIMES:
            raise ValueError(
                f"regression='weak' needs at least {MIN_WEAK_TIMES} samples per run, got "
                f"{traj.n_times}"
            )
        return _Data.build_weak(traj, family, opts)
    return _Data.build(traj, family, derivative.method, opts)


def _record(
    traj: Trajectory, stages: Stages, derivative: AbstractDerivative, data: _Data
) -> dict[str, Any]:
    """What ``model.options`` records of the parts used."""
    regression, selection = stages.regression, stages.selection
    assert isinstance(regression, AbstractSparseRegression) and selection is not None
    assert regression.formulation is not None  # set by _with_formulation
    requested = stages.derivative.label
    record: dict[str, Any] = {
        "regression": regression.formulation.value,
        **(data.weak or {}),
        "derivative": derivative.label,
        **({"derivative_requested": requested} if requested != derivative.label else {}),
        **regression.record(),
        **selection.record(),
        "order": derivative.derivative_order,
        **({"weighting": regression.weighting.value} if not data.field.g_is_one else {}),
        "n_runs": traj.n_runs,
        "t_range": [float(traj.t[0]), float(traj.t[-1])],
    }
    if isinstance(derivative, Smoothed):
        record["window"] = derivative.window
    return record


def match_candidates(
    family: AbstractFamily, traj: Trajectory, record: dict[str, Any], choice: Choice
) -> Choice:
    """Short data (tens of samples): every support of the path is judged by its rollout
    after trajectory matching, and the matched coefficients are returned."""
    if not is_short(traj):
        return choice
    assert choice.refits is not None and choice.grid is not None and choice.sweep is not None
    pick, xi, choice.sweep["refined_rollout_r2"], info = choose_refined(
        lambda c: Model(family, traj.names, c, record), choice.refits, traj
    )
    choice.sweep["selected"] = np.arange(len(choice.sweep)) == pick
    return dataclasses.replace(
        choice,
        xi=xi,
        threshold=float(choice.grid[pick]),
        record={**choice.record, "selection": "refined candidates", "choice": info},
    )


def _warn_if_empty(family: AbstractFamily, choice: Choice, screened: bool) -> None:
    sweep = choice.sweep
    assert sweep is not None
    if np.any(choice.xi) or sweep["n_terms"].max() <= 0:
        return
    with_terms = sweep["n_terms"].to_numpy() > 0
    pick = int(np.flatnonzero(sweep["selected"].to_numpy())[0])
    rolls_worse = screened and bool(
        np.all(sweep["rollout_r2"].to_numpy()[with_terms] < sweep["rollout_r2"].iloc[pick])
    )
    why = EmptyReason.ROLLS_WORSE if rolls_worse else EmptyReason.NO_BETTER
    warnings.warn(
        f"family {family.name!r}: the selected model has no terms (dx/dt = 0): {why.value}; "
        "model.sweep shows the candidates, fit(..., n_terms=...) picks one by hand",
        RuntimeWarning,
        stacklevel=4,
    )
