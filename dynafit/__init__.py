"""dynafit: discover the differential equations that govern training dynamics."""

from ._compare import compare as compare
from ._compare import fit_many as fit_many
from ._fit import fit as fit
from ._model import Model as Model
from ._model import load_model as load_model
from ._trajectory import Trajectory as Trajectory
from ._trajectory import circle_signals as circle_signals
from ._trajectory import load as load
from ._trajectory import survival_threshold as survival_threshold
from .families import AbstractFamily as AbstractFamily

__version__ = "0.1.0"
