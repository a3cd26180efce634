"""After a fit: rollout-matched refinement (``_refine``), the stable linear fit
(``_stable``), both on the rollout optimiser (``_rollout_opt``), and ensemble fits with
coefficient uncertainty (``_ensemble``)."""

from ._ensemble import fit_ensemble as fit_ensemble
from ._ensemble import plot_inclusion as plot_inclusion
from ._refine import refine as refine
from ._stable import fit_stable as fit_stable
