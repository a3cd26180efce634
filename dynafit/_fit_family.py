"""One family's fit: from a Trajectory to a Model, as a pipeline of parts (what
``dynafit.fit`` runs for a named family; ``family="auto"`` is ``dynafit._fit``'s, above
``compare``).

    derivative -> library (the family) -> regression -> selection -> matching -> Model

Each stage is a frozen part of :mod:`dynafit.parts` (``Stages`` bundles them); the
strings and keyword options of ``fit`` are shorthands for the default parts. The
term-library families run the sparse stages (:mod:`dynafit._parts._sparse`); the
shared-rate families least squares and trajectory matching
(:mod:`dynafit._parts._shared_rate`), the budget family its own least squares
(:mod:`dynafit._budget`), as their ``fitting`` attribute says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._budget import fit_budget
from ._model import Model
from ._parts import DEFAULT_OPTIONS as DEFAULT_OPTIONS
from ._parts import OPTIMIZERS as OPTIMIZERS
from ._parts import (
    AbstractDerivative,
    AbstractSelection,
    AbstractSparseRegression,
    Matching,
    Stages,
    fit_shared_rate,
    fit_sparse,
    resolve_stages,
)
from ._parts._selection import CRITERIA as CRITERIA
from ._parts._stages import DEFAULT_MATCHING
from ._rational import fit_rational
from ._trajectory import Trajectory
from .families._base import AbstractFamily, Fitting, get_family

if TYPE_CHECKING:
    from pysindy.differentiation import BaseDifferentiation

#: how each kind of family is fitted
FITS = {
    Fitting.SPARSE: fit_sparse,
    Fitting.SHARED_RATE: fit_shared_rate,
    Fitting.RATIONAL: fit_rational,  # issue 21
    Fitting.BUDGET: fit_budget,  # issue 24
}


def fit_family(
    traj: Trajectory,
    family: str | AbstractFamily = "linear",
    *,
    derivative: str | AbstractDerivative | BaseDifferentiation = "auto",
    optimizer: str | AbstractSparseRegression = "stlsq",
    threshold: float | None = None,
    n_terms: int | None = None,
    criterion: str | AbstractSelection = "holdout",
    matching: Matching | None = DEFAULT_MATCHING,
    stages: Stages | None = None,
    **options: Any,
) -> Model:
    """Fit one ODE model of the named ``family`` to ``traj``: the stages of
    :func:`dynafit.fit`, whose docstring describes every argument (``family="auto"`` is
    not a family: :func:`dynafit.fit` resolves it above this layer)."""
    if not isinstance(traj, Trajectory):
        raise ValueError(f"fit needs a dynafit.Trajectory, got {type(traj).__name__}")
    fam = get_family(family)
    parts = resolve_stages(
        fam, stages, derivative, optimizer, threshold, n_terms, criterion, matching, options
    )
    return FITS[fam.fitting](traj, fam, parts)
