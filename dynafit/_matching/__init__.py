"""Trajectory matching: the primitive below ``fit`` and ``refine``.

``_rollout_opt`` minimises a rollout's error through diffrax (multiple shooting, a
curriculum of horizons); ``_refine`` applies it to a Model's own support
(``dynafit.refine``). ``fit`` (short data: every candidate matched before the choice),
the structured families' fit and the stable linear fit all call down into this layer;
nothing here imports ``_fit`` or anything above it.
"""

from ._refine import refine as refine
