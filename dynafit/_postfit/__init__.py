"""After a fit: the stable linear fit (``_stable``) and ensemble fits with coefficient
uncertainty (``_ensemble``). Trajectory matching (``refine``) lives one layer below
``fit``, in :mod:`dynafit._matching`."""

from ._ensemble import fit_ensemble as fit_ensemble
from ._ensemble import plot_inclusion as plot_inclusion
from ._stable import fit_stable as fit_stable
