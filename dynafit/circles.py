"""The paper's circle and survival analyses, in one namespace.

Circles are the Fourier magnitudes S_k(t) of a learned embedding (:func:`circle_signals`);
"Survival of the Fittest Representation" (arXiv 2405.17420) asks which of them survive
training and why. One home for each concept:

- the rule: :func:`survival_threshold` (twice the spectrum's mean) and :func:`alive`;
- what a run records or its data say: :func:`actual_survivors`;
- what a model predicts: :func:`survivors` (integrate far beyond the window) and
  :func:`survival_scores` (predicted against actual, per run);
- the "fittest": :func:`fittest` (do the initial signal or gradient rank survivors?),
  :func:`survival_auc` (the ROC AUC behind it);
- from an early window: :func:`compare_survivors` (a model against the rank baselines)
  and :func:`early_window_table` (every candidate and window in one table).

The names that were at the top of ``dynafit`` (``dynafit.survivors``,
``dynafit.fittest``, ...) are the same functions.
"""

from ._survival import actual_survivors as actual_survivors
from ._survival import alive as alive
from ._survival import fittest as fittest
from ._survival import survival_auc as survival_auc
from ._survival import survival_scores as survival_scores
from ._survival import survival_threshold as survival_threshold
from ._survival import survivors as survivors
from ._survivor_forecast import compare_survivors as compare_survivors
from ._survivor_forecast import early_window_table as early_window_table
from ._trajectory import circle_signals as circle_signals

__all__ = [
    "actual_survivors",
    "alive",
    "circle_signals",
    "compare_survivors",
    "early_window_table",
    "fittest",
    "survival_auc",
    "survival_scores",
    "survival_threshold",
    "survivors",
]
