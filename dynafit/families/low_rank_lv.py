"""Lotka-Volterra with a low-rank interaction: competition through K weighted totals.

    T_k = sum_j v_kj x_j,    dx_i/dt = x_i (r_i + a_i x_i + sum_k u_ik T_k)   [+ e_i]

The interaction matrix is diag(a) + U V (rank K off the diagonal); 2 + 2K numbers per
variable. The weights v are fitted (normalised to mean 1, so T_k reads as a weighted
total); rank 1 with v = 1 is the mean-field family. ``offset=True`` adds a constant
inflow e_i (see ``_shared_rate``).
"""

from __future__ import annotations

from typing import Any

from ._base import register
from ._shared_rate import AbstractSharedRateFamily, _weights_tuple


@register
class LowRankLV(AbstractSharedRateFamily):
    """dx_i/dt = x_i (r_i + a_i x_i + sum_k u_ik T_k), T_k = v_k . x; needs positive data."""

    name = "low_rank_lv"
    per_capita = True
    symbol = "T"
    learn_weights = True

    def __init__(self, rank: int = 1, weights: Any = None, offset: bool = False):
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be a positive int, got {rank!r}")
        if not isinstance(offset, bool):
            raise ValueError(f"offset must be True or False, got {offset!r}")
        self.rank = rank
        self.weights = _weights_tuple(weights, rank)
        self.offset = offset

    def with_weights(self, weights: Any) -> LowRankLV:
        return LowRankLV(self.rank, weights, self.offset)
