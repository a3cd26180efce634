"""dynafit: discover the differential equations that govern training dynamics."""

from . import _structured as _structured  # registers the shared-rate families with fit
from ._compare import compare as compare
from ._fit import fit as fit
from ._fit_many import fit_many as fit_many
from ._intervals import equations_with_intervals as equations_with_intervals
from ._intervals import uncertainty as uncertainty
from ._matching import refine as refine
from ._model import Model as Model
from ._model import load_model as load_model
from ._postfit import fit_ensemble as fit_ensemble
from ._postfit import fit_stable as fit_stable
from ._postfit import plot_inclusion as plot_inclusion
from ._recent import fit_recent as fit_recent
from ._selection import plot_r2_vs_dim as plot_r2_vs_dim
from ._selection import summarize_runs as summarize_runs
from ._survival import actual_survivors as actual_survivors
from ._survival import fittest as fittest
from ._survival import survival_scores as survival_scores
from ._survival import survivors as survivors
from ._survivor_forecast import compare_survivors as compare_survivors
from ._survivor_forecast import early_window_table as early_window_table
from ._trajectory import Trajectory as Trajectory
from ._trajectory import circle_signals as circle_signals
from ._trajectory import load as load
from ._trajectory import survival_threshold as survival_threshold
from ._version import __version__ as __version__
from .families import AbstractFamily as AbstractFamily

# isort: split
# ---- issue 21: laws beyond polynomials
from . import _rational as _rational  # registers the rational family's own fit
