"""Generalised Lotka-Volterra: dx_i/dt = x_i (r_i + sum_j a_ij x_j).

Linear in the per-capita rates: fitted as sparse regression of (dx_i/dt) / x_i on (1, x).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy

from ._base import AbstractFamily, check_extinction, register


@register
class LotkaVolterra(AbstractFamily):
    """theta(x) = (1, x_1, ..., x_m), g_i = x_i; needs positive data, or zeros at the end
    of a series (extinction: the rows where a per-capita rate is undefined get weight 0)."""

    name = "lotka_volterra"

    def terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        return (sympy.Integer(1), *symbols)

    def prefactors(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        return tuple(symbols)

    def validate(self, x: np.ndarray, names: Sequence[str]) -> None:
        check_extinction("lotka_volterra", x, names)
