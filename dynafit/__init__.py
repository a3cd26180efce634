"""dynafit: discover the differential equations that govern training dynamics."""

from ._compare import compare as compare
from ._compare import fit_many as fit_many
from ._fit import fit as fit
from ._model import Model as Model
from ._model import load_model as load_model
from ._refine import refine as refine
from ._selection import plot_r2_vs_dim as plot_r2_vs_dim
from ._selection import summarize_runs as summarize_runs
from ._stable import fit_stable as fit_stable
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
from ._uncertainty import equations_with_intervals as equations_with_intervals
from ._uncertainty import fit_ensemble as fit_ensemble
from ._uncertainty import plot_inclusion as plot_inclusion
from ._uncertainty import uncertainty as uncertainty
from .families import AbstractFamily as AbstractFamily

__version__ = "0.1.0"
