"""``Stages``: the parts of one fit, and how ``fit``'s shorthands (strings, ``threshold=``,
``n_terms=``, keyword options) become parts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import equinox as eqx

from ..families._base import AbstractFamily, Fitting
from ._derivative import AbstractDerivative, Auto, derivative_part
from ._matching import Matching
from ._regression import (
    STLSQ,
    AbstractSparseRegression,
    BudgetLeastSquares,
    SharedRate,
    regression_part,
)
from ._repr import describe
from ._selection import AbstractSelection, HeldOut, selection_part

#: keyword options of :func:`dynafit.fit` for the term-library families and their defaults
#: (each configures one part: order, window the derivative; alpha, max_iter, nu,
#: n_models, seed, weighting, regression the regression; the others the selection)
DEFAULT_OPTIONS: dict[str, Any] = {
    # finite-difference order ("centered", "smoothed"); None: 4 where derivative "auto"
    # finds clean data (centred differences), 2 otherwise
    "order": None,
    "window": None,  # Savitzky-Golay window for "smoothed" (default 11)
    "holdout": 0.2,  # fraction of every run's end held out for the sweep
    "n_thresholds": 24,  # size of the automatic threshold grid
    "thresholds": None,  # explicit grid (relative thresholds) instead
    "tolerance": None,  # fixed relative tolerance of the selection rule (None: adaptive)
    "abs_tolerance": 1e-6,  # errors below this fraction of the variance are equal
    "alpha": 1e-6,  # ridge strength (STLSQ), relative to the scaled library
    "max_iter": 20,
    "nu": 1.0,  # SR3 relaxation
    "n_models": 20,  # ensemble size
    "seed": 0,  # ensemble resampling
    # families with a prefactor g_i (lotka_volterra): "derivative" regresses dx_i/dt on
    # g_i(x) theta(x), equation by equation (noise stays additive); "per_capita" regresses
    # (dx_i/dt) / g_i(x) on theta(x) (noise is amplified where g_i is small)
    "weighting": "derivative",
    # holdout sweep: only candidates whose rollout over the fitted window (from every
    # run's first state) stays finite and whose rollout R^2 is within ``rollout_slack`` of
    # the best candidate's may be selected; recorded as sweep["rollout_finite"] and
    # sweep["rollout_r2"]
    "check_rollout": True,
    "rollout_slack": 0.1,
    # "derivative" (regress estimated dx/dt), "weak" (the integral formulation,
    # dynafit._regression._weak) or None: "weak" where derivative "auto" finds the data noisy and
    # every run has at least MIN_WEAK_TIMES samples, else "derivative"
    "regression": None,
}
#: keyword options of the shared-rate fit that configure its parts
SHARED_RATE_OPTIONS = (
    "order", "window", "competitive", "als_iter", "steps", "lr", "horizons",
    "time_limit", "rtol", "atol", "max_steps",
)  # fmt: skip
#: keyword options of the budget fit (the derivative's and ``BudgetLeastSquares``'s)
BUDGET_OPTIONS = ("order", "window", "start", "max_nfev")
#: the trajectory-matching options among them
MATCHING_OPTIONS = ("steps", "lr", "horizons", "time_limit", "rtol", "atol", "max_steps")


#: the default trajectory matching (``fit``'s ``matching=`` default; the keyword options
#: of a shared-rate fit, steps=..., configure it)
DEFAULT_MATCHING = Matching()


class Stages(eqx.Module):
    """The parts of a fit, in order: ``derivative`` -> (the family's library) ->
    ``regression`` -> ``selection`` -> ``matching``.

    Term-library families take a sparse regression part (``STLSQ``, ``SR3``,
    ``Ensemble``) and a selection part; the shared-rate families take ``SharedRate`` and
    no selection (``selection=None``); the budget family ``BudgetLeastSquares``, no
    selection and no matching. ``matching=None`` turns trajectory matching off.
    """

    __repr__ = describe

    derivative: AbstractDerivative = Auto()
    regression: AbstractSparseRegression | SharedRate | BudgetLeastSquares = STLSQ()
    selection: AbstractSelection | None = HeldOut()
    matching: Matching | None = Matching()

    def __check_init__(self):
        if not isinstance(self.derivative, AbstractDerivative):
            raise ValueError(
                f"derivative must be a dynafit.parts derivative, got {self.derivative!r}"
            )
        if not isinstance(
            self.regression, (AbstractSparseRegression, SharedRate, BudgetLeastSquares)
        ):
            raise ValueError(
                f"regression must be a dynafit.parts regression, got {self.regression!r}"
            )
        if self.selection is not None and not isinstance(self.selection, AbstractSelection):
            raise ValueError(f"selection must be a dynafit.parts selection, got {self.selection!r}")
        if isinstance(self.regression, (SharedRate, BudgetLeastSquares)) and (
            self.selection is not None
        ):
            raise ValueError(
                f"{type(self.regression).__name__} chooses no threshold: give selection=None"
            )
        if isinstance(self.regression, BudgetLeastSquares) and self.matching is not None:
            raise ValueError("BudgetLeastSquares is not followed by matching: give matching=None")
        if isinstance(self.regression, AbstractSparseRegression) and self.selection is None:
            raise ValueError("a sparse regression needs a selection part")
        if self.matching is not None and not isinstance(self.matching, Matching):
            raise ValueError(
                f"matching must be a dynafit.parts.Matching or None, got {self.matching!r}"
            )


def resolve_stages(
    family: AbstractFamily,
    stages: Stages | None,
    derivative: Any,
    optimizer: Any,
    threshold: float | None,
    n_terms: int | None,
    criterion: Any,
    matching: Any,
    options: dict[str, Any],
) -> Stages:
    """The parts of ``fit``'s arguments: ``stages`` as given, or the parts the
    shorthands stand for. Unknown options are a ValueError naming them."""
    if stages is not None:
        if not isinstance(stages, Stages):
            raise ValueError(f"stages must be a dynafit.parts.Stages, got {stages!r}")
        if options:
            raise ValueError(f"give {sorted(options)} in the parts of stages=, not beside it")
        _check_family(family, stages)
        return stages
    options = dict(options)
    if family.fitting is Fitting.BUDGET:
        return _budget_stages(family, derivative, optimizer, threshold, n_terms, matching, options)
    if family.fitting is Fitting.SHARED_RATE:
        # criterion is accepted and unused, as before the parts (compare passes it on)
        return _shared_rate_stages(
            family, derivative, optimizer, threshold, n_terms, matching, options
        )
    _check_known(
        options,
        DEFAULT_OPTIONS,
        "",
        "derivative, optimizer, threshold, n_terms, criterion, matching, stages",
    )
    deriv = derivative_part(derivative, options.pop("order", None), options.pop("window", None))
    regression = regression_part(optimizer, options)
    selection = selection_part(criterion, threshold, n_terms, options)
    if matching is not None and matching != DEFAULT_MATCHING:
        # the candidates' matching on short data has its own budget (dynafit._discovery)
        raise ValueError(
            f"the {family.name!r} family takes matching=Matching() (on short data every "
            f"candidate is matched) or None; its settings apply to the shared-rate families, "
            f"got {matching!r}"
        )
    return Stages(deriv, regression, selection, _matching_part(matching, {}))


def _matching_part(matching: Any, options: dict[str, Any]) -> Matching | None:
    if matching is DEFAULT_MATCHING:
        return Matching(**options) if options else matching
    if matching is None or isinstance(matching, Matching):
        if options:
            raise ValueError(f"give {sorted(options)} in the Matching part, not beside it")
        return matching
    raise ValueError(f"matching must be a dynafit.parts.Matching or None, got {matching!r}")


def _check_known(options: Mapping[str, Any], known: Iterable[str], where: str, named: str) -> None:
    """Every key of ``options`` is a ``known`` option, else a ``ValueError`` listing the
    valid ones (the ``named`` arguments, then the options)."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown}{where}; valid options are {named} and {sorted(known)}"
        )


def _no_sparse_options(
    family: AbstractFamily, optimizer: Any, threshold: float | None, n_terms: int | None, how: str
) -> None:
    """A family fitted by ``how`` takes no sparse regression, threshold or term count."""
    if optimizer != "stlsq" or threshold is not None or n_terms is not None:
        raise ValueError(
            f"the {family.name!r} family is fitted by {how}; optimizer, threshold and n_terms "
            "do not apply"
        )


def _shared_rate_stages(
    family: AbstractFamily,
    derivative: Any,
    optimizer: Any,
    threshold: float | None,
    n_terms: int | None,
    matching: Any,
    options: dict[str, Any],
) -> Stages:
    _no_sparse_options(
        family, optimizer, threshold, n_terms, "least squares and trajectory matching"
    )
    _check_known(
        options,
        SHARED_RATE_OPTIONS,
        f" for the {family.name!r} family",
        "derivative, matching, stages",
    )
    deriv = derivative_part(derivative, options.pop("order", None), options.pop("window", None))
    regression = SharedRate(
        **{k: options.pop(k) for k in ("als_iter", "competitive") if k in options}
    )
    return Stages(deriv, regression, None, _matching_part(matching, options))


def _budget_stages(
    family: AbstractFamily,
    derivative: Any,
    optimizer: Any,
    threshold: float | None,
    n_terms: int | None,
    matching: Any,
    options: dict[str, Any],
) -> Stages:
    _no_sparse_options(family, optimizer, threshold, n_terms, "least squares")
    if matching is not None and matching is not DEFAULT_MATCHING:
        raise ValueError(f"the {family.name!r} family is not followed by trajectory matching")
    _check_known(options, BUDGET_OPTIONS, f" for the {family.name!r} family", "derivative, stages")
    deriv = derivative_part(derivative, options.pop("order", None), options.pop("window", None))
    return Stages(deriv, BudgetLeastSquares(**options), None, None)


#: the regression part each kind of family takes (the sparse ones: any sparse regression)
_REGRESSION = {
    Fitting.SHARED_RATE: (SharedRate, "SharedRate()"),
    Fitting.BUDGET: (BudgetLeastSquares, "BudgetLeastSquares()"),
}


def _check_family(family: AbstractFamily, stages: Stages) -> None:
    kind, want = _REGRESSION.get(
        family.fitting, (AbstractSparseRegression, "a sparse regression (STLSQ, SR3, Ensemble)")
    )
    if not isinstance(stages.regression, kind):
        raise ValueError(
            f"the {family.name!r} family is fitted with {want}, got {stages.regression!r}"
        )
