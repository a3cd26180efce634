"""A linear ODE of low rank: each variable relaxes on its own and is driven by K modes.

    y_k = sum_j v_kj x_j,    dx_i/dt = c_i + d_i x_i + sum_k u_ik y_k

The matrix is diag(d) + U V (rank K off the diagonal); 2 + 2K numbers per variable
instead of the dense linear family's m + 1. The weights v are fitted (normalised to
mean 1 where their mean is not near 0, else to largest magnitude 1).
"""

from __future__ import annotations

from typing import Any

from ._base import register
from ._shared_rate import AbstractSharedRateFamily, _weights_tuple


@register
class LowRankLinear(AbstractSharedRateFamily):
    """dx_i/dt = c_i + d_i x_i + sum_k u_ik y_k, y_k = v_k . x."""

    name = "low_rank_linear"
    per_capita = False
    symbol = "y"
    learn_weights = True

    def __init__(self, rank: int = 2, weights: Any = None):
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be a positive int, got {rank!r}")
        self.rank = rank
        self.weights = _weights_tuple(weights, rank)

    def with_weights(self, weights: Any) -> LowRankLinear:
        return LowRankLinear(self.rank, weights)
