"""``dynafit.fit``: from a Trajectory to a Model, as a pipeline of parts.

    derivative -> library (the family) -> regression -> selection -> matching -> Model

A named family runs its stages (:mod:`dynafit._fit_family`); ``family="auto"`` is the
automatic library choice (``dynafit._compare.fit_auto``: the winner of ``compare(traj,
"auto")``), which sits above the one-family fit, so this module is the top of the two
and nothing is registered at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._compare import fit_auto
from ._fit_family import CRITERIA as CRITERIA
from ._fit_family import DEFAULT_OPTIONS as DEFAULT_OPTIONS
from ._fit_family import OPTIMIZERS as OPTIMIZERS
from ._fit_family import fit_family
from ._model import Model
from ._parts import (
    AbstractDerivative,
    AbstractSelection,
    AbstractSparseRegression,
    Matching,
    Stages,
)
from ._parts._stages import DEFAULT_MATCHING
from ._trajectory import Trajectory
from .families._base import AbstractFamily

if TYPE_CHECKING:
    from pysindy.differentiation import BaseDifferentiation


def fit(
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
    """Fit one ODE model of ``family`` to ``traj`` (one run, or a batch pooled into one model).

    ``family="auto"``: the winner of ``dynafit.compare(traj, "auto")`` (the automatic
    library choice, generalisation check included); ``model.options["auto_choice"]``
    records the leaderboard.

    The stages, each a part of :mod:`dynafit.parts` or a shorthand for one:

    - ``derivative``: ``Auto()`` / "auto" (default: ``Smoothed`` when the data look noisy,
      else ``Centered`` of order 4), ``Centered()`` / "centered" (order 2),
      ``Forward()`` / "forward" (the paper's x[t+1] - x[t]), ``Smoothed()`` / "smoothed"
      (Savitzky-Golay first), or ``PySINDy(obj)`` (any pysindy differentiation object).
      Recorded as ``model.options["derivative"]``.
    - ``optimizer`` (the regression): ``STLSQ()`` / "stlsq" (default), ``SR3()`` / "sr3"
      (L0), ``Ensemble()`` / "ensemble" (bagged STLSQ, median). The formulation
      (``regression`` option or the part's ``formulation``): "derivative" (regress the
      derivative estimate) or "weak" (the integral form); None (default): on data that
      ``Auto`` finds noisy (>= 100 samples per run) the derivative model when its rollout
      tracks the data, else the weak one.
    - ``criterion`` (the selection): ``HeldOut()`` / "holdout" (default: the sparsest
      candidate whose held-out error is not meaningfully worse than the best's, among
      those whose rollout over the window stays finite and, when the best of them tracks
      the data, within ``rollout_slack`` R^2 of it), ``InformationCriterion("aic" |
      "bic")`` / "aic", "bic"; ``threshold=`` (``Threshold(value)``: a relative
      threshold, coefficients measured on unit-RMS columns against unit-RMS targets) or
      ``n_terms=`` (``NTerms(n)``: the densest sweep point with at most n terms).
    - ``matching``: ``Matching()`` (default) or None. Term-library families on short data
      (< 100 samples per run): every support on the path is refined by trajectory
      matching (also with the initial states fitted) before the choice, the least AICc
      of the matched rollout residuals wins (:mod:`dynafit._choice`), and the refined
      coefficients are returned (``options["selection"] == "refined candidates"``;
      ``options["choice"]``: the rule, the runner-up, its evidence ratio, whether close). Shared-rate families: the
      trajectory matching after least squares (``steps``, ``lr``, ...).
    - ``stages``: all of them at once (``dynafit.parts.Stages``), instead of the above.
    - ``**options``: the parts' parameters by their old names (``DEFAULT_OPTIONS``: order,
      window, holdout, n_thresholds, thresholds, tolerance, abs_tolerance, alpha,
      max_iter, nu, n_models, seed, weighting, check_rollout, rollout_slack, regression;
      for shared-rate families order, window, competitive, als_iter, steps, lr, horizons,
      time_limit, rtol, atol, max_steps).
    """
    if not isinstance(traj, Trajectory):
        raise ValueError(f"fit needs a dynafit.Trajectory, got {type(traj).__name__}")
    if isinstance(family, str) and family.strip().lower() == "auto":
        if stages is not None or threshold is not None or n_terms is not None:
            raise ValueError(f"family={family!r} takes no stages, threshold or n_terms")
        return fit_auto(
            traj,
            derivative=derivative,
            optimizer=optimizer,
            criterion=criterion,
            matching=matching,
            **options,
        )
    return fit_family(
        traj,
        family,
        derivative=derivative,
        optimizer=optimizer,
        threshold=threshold,
        n_terms=n_terms,
        criterion=criterion,
        matching=matching,
        stages=stages,
        **options,
    )
