"""The parts of a fit, each a frozen object that checks its parameters when built and
says what it is in its ``repr``::

    derivative -> library (a family) -> regression -> selection -> matching

    import dynafit
    from dynafit import parts

    model = dynafit.fit(
        traj,
        "linear",
        derivative=parts.Smoothed(window=9),
        optimizer=parts.SR3(nu=0.5),
        criterion=parts.InformationCriterion("bic"),
    )
    # or all at once
    model = dynafit.fit(traj, "linear", stages=parts.Stages(derivative=parts.Forward()))

The strings ``fit`` takes are shorthands for the default parts: ``derivative="centered"``
is ``parts.Centered()``, ``optimizer="sr3"`` is ``parts.SR3()``, ``criterion="bic"`` is
``parts.InformationCriterion("bic")``, ``threshold=0.1`` is ``parts.Threshold(0.1)``.
"""

from ._parts import SR3 as SR3
from ._parts import STLSQ as STLSQ
from ._parts import AbstractDerivative as AbstractDerivative
from ._parts import AbstractSelection as AbstractSelection
from ._parts import AbstractSparseRegression as AbstractSparseRegression
from ._parts import Auto as Auto
from ._parts import BudgetLeastSquares as BudgetLeastSquares
from ._parts import Centered as Centered
from ._parts import Ensemble as Ensemble
from ._parts import Formulation as Formulation
from ._parts import Forward as Forward
from ._parts import HeldOut as HeldOut
from ._parts import InformationCriterion as InformationCriterion
from ._parts import Matching as Matching
from ._parts import NTerms as NTerms
from ._parts import PySINDy as PySINDy
from ._parts import SharedRate as SharedRate
from ._parts import Smoothed as Smoothed
from ._parts import Stages as Stages
from ._parts import Threshold as Threshold
from ._parts import Weighting as Weighting
from .families._base import Fitting as Fitting
