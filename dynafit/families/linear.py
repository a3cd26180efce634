"""The linear family: dx/dt = A x + b, the paper's model."""

from __future__ import annotations

from collections.abc import Sequence

import sympy

from ._base import AbstractFamily, register


@register
class Linear(AbstractFamily):
    """theta(x) = (1, x_1, ..., x_m), g_i = 1."""

    name = "linear"

    def terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        return (sympy.Integer(1), *symbols)
