"""Model families: one file each on the small base in ``_base.py``."""

from ._base import AbstractFamily as AbstractFamily
from ._base import Fitting as Fitting
from ._base import MonomialFamily as MonomialFamily
from ._base import family_names as family_names
from ._base import get_family as get_family
from ._base import register as register
from ._shared_rate import AbstractSharedRateFamily as AbstractSharedRateFamily
from .budget_share import BudgetShare as BudgetShare
from .linear import Linear as Linear
from .lotka_volterra import LotkaVolterra as LotkaVolterra
from .low_rank_linear import LowRankLinear as LowRankLinear
from .low_rank_lv import LowRankLV as LowRankLV
from .mean_field_lv import MeanFieldLV as MeanFieldLV
from .polynomial import Polynomial as Polynomial

# isort: split
# ---- issue 21: laws beyond polynomials (trigonometric, exponential, rational, user libraries)
from .exponential import Exponential as Exponential
from .library import Library as Library
from .rational import Rational as Rational
from .trigonometric import Trigonometric as Trigonometric
