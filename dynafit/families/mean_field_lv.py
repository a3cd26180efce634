"""Mean-field Lotka-Volterra: every variable competes with itself and with the total.

    T = x_1 + ... + x_m,    dx_i/dt = x_i (r_i + a_i x_i + b_i T)   [+ e_i]

Three coefficients per variable: the growth rate r_i, self-limitation a_i and the
response b_i to the shared total T (the "resource" all circles draw on); with
``offset=True`` a fourth, a constant inflow e_i that keeps a losing variable at a floor
instead of extinction (printed expanded: e_i + r_i x_i + a_i x_i^2 + b_i x_i T).
"""

from __future__ import annotations

from typing import Any

from ._base import register
from ._shared_rate import AbstractSharedRateFamily


@register
class MeanFieldLV(AbstractSharedRateFamily):
    """dx_i/dt = x_i (r_i + a_i x_i + b_i T), T the sum of all variables; needs positive data."""

    name = "mean_field_lv"
    per_capita = True
    symbol = "T"
    learn_weights = False
    rank = 1
    weights = None  # T is the plain total

    def __init__(self, offset: bool = False):
        if not isinstance(offset, bool):
            raise ValueError(f"offset must be True or False, got {offset!r}")
        self.offset = offset

    def with_weights(self, weights: Any) -> MeanFieldLV:
        del weights  # the total's weights are fixed at 1
        return self

    def __repr__(self) -> str:
        return f"MeanFieldLV(offset={self.offset})"
