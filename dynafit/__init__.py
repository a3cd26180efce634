"""dynafit: discover the differential equations that govern training dynamics.

The face, organised by what users do (``__all__`` below lists it in groups):

- the core verbs at the top: :class:`Trajectory`, :func:`load`, :func:`fit`,
  :func:`compare`, :func:`fit_many`, :func:`refine`, :class:`Model`, :func:`load_model`,
  and the families (:mod:`dynafit.families`);
- the paper's circle and survival analyses in :mod:`dynafit.circles`;
- every figure in :mod:`dynafit.plot`;
- what dynafit's own clients (``training/``) share with it in :mod:`dynafit.internal`
  (not a user API; not imported here).

Names that earlier versions had at the top (``dynafit.survivors``,
``dynafit.fittest``, ``dynafit.plot_inclusion``, ...) stay, as the same objects.
"""

from . import circles as circles
from . import parts as parts
from . import plot as plot
from ._cache import configure as _configure_cache  # issue 23
from ._compare import compare as compare
from ._fit import fit as fit
from ._fit_many import fit_many as fit_many
from ._intervals import deprecated_equations_with_intervals as equations_with_intervals
from ._intervals import deprecated_uncertainty as uncertainty
from ._matching import refine as refine
from ._model import Model as Model
from ._model import load_model as load_model
from ._postfit import fit_ensemble as fit_ensemble
from ._postfit import fit_stable as fit_stable
from ._postfit import plot_inclusion as plot_inclusion
from ._recent import fit_recent as fit_recent
from ._runs import plot_r2_vs_dim as plot_r2_vs_dim
from ._runs import summarize_runs as summarize_runs
from ._trajectory import Trajectory as Trajectory
from ._trajectory import load as load
from ._version import __version__ as __version__
from .circles import actual_survivors as actual_survivors
from .circles import circle_signals as circle_signals
from .circles import compare_survivors as compare_survivors
from .circles import early_window_table as early_window_table
from .circles import fittest as fittest
from .circles import survival_scores as survival_scores
from .circles import survival_threshold as survival_threshold
from .circles import survivors as survivors
from .families import AbstractFamily as AbstractFamily

# isort: split
# --- which circles win and how many (issue 24; the same objects as in dynafit.circles) ---
from .circles import budget_state as budget_state
from .circles import circle_quantities as circle_quantities
from .circles import circle_readout as circle_readout

__all__ = [
    # ------------------------------------------------------------ the core verbs
    "Trajectory",
    "load",
    "fit",
    "compare",
    "fit_many",
    "refine",
    "Model",
    "load_model",
    "AbstractFamily",
    "fit_recent",
    "fit_ensemble",
    "fit_stable",
    "summarize_runs",
    # ------------------------------------------------------------ the namespaces
    "circles",
    "parts",
    "plot",
    # ------------------- kept where DESIGN.md had them (the same objects as in circles/plot)
    "actual_survivors",
    "circle_signals",
    "compare_survivors",
    "early_window_table",
    "fittest",
    "survival_scores",
    "survival_threshold",
    "survivors",
    "plot_inclusion",
    "plot_r2_vs_dim",
    # ------------- deprecated: Model.uncertainty and Model.equations_with_intervals
    "equations_with_intervals",
    "uncertainty",
    "__version__",
    # ------------------- which circles win and how many (issue 24; also in circles)
    "budget_state",
    "circle_quantities",
    "circle_readout",
]

# issue 23: JAX's persistent compilation cache on by default (dynafit._cache)
_configure_cache()
