"""The parts of a fit (``dynafit.parts`` is their public face) and the stages that run
them: ``_sparse`` (term-library families) and ``_shared_rate`` (shared-rate families)."""

from ._derivative import AbstractDerivative as AbstractDerivative
from ._derivative import Auto as Auto
from ._derivative import Centered as Centered
from ._derivative import Forward as Forward
from ._derivative import PySINDy as PySINDy
from ._derivative import Smoothed as Smoothed
from ._matching import Matching as Matching
from ._regression import OPTIMIZERS as OPTIMIZERS
from ._regression import SR3 as SR3
from ._regression import STLSQ as STLSQ
from ._regression import AbstractSparseRegression as AbstractSparseRegression
from ._regression import BudgetLeastSquares as BudgetLeastSquares
from ._regression import Ensemble as Ensemble
from ._regression import Formulation as Formulation
from ._regression import SharedRate as SharedRate
from ._regression import Weighting as Weighting
from ._selection import AbstractSelection as AbstractSelection
from ._selection import HeldOut as HeldOut
from ._selection import InformationCriterion as InformationCriterion
from ._selection import NTerms as NTerms
from ._selection import Threshold as Threshold
from ._shared_rate import fit_shared_rate as fit_shared_rate
from ._sparse import fit_sparse as fit_sparse
from ._stages import DEFAULT_OPTIONS as DEFAULT_OPTIONS
from ._stages import Stages as Stages
from ._stages import resolve_stages as resolve_stages
