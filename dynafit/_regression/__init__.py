"""The sparse regression of ``dynafit.fit``: the design (``_design``: library rows,
scaling, held-out parts), the STLSQ path (``_stlsq``), the pysindy adapter for its other
optimisers (``_pysindy``), information criteria (``_criteria``) and the choice of a
threshold from the sweep (``_select``)."""

from ._criteria import information_criteria as information_criteria
from ._design import _Data as _Data
from ._design import _Rows as _Rows
from ._pysindy import pysindy_fit as pysindy_fit
from ._select import BIC_STEP as BIC_STEP
from ._select import plateau_middle as plateau_middle
from ._select import select as select
from ._select import threshold_grid as threshold_grid
from ._stlsq import stlsq_path as stlsq_path
