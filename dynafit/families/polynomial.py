"""The generic SINDy library: all monomials up to a degree (2 by default)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import sympy

from ._base import AbstractFamily, register


@register
class Polynomial(AbstractFamily):
    """theta(x) = all monomials of degree <= ``degree`` (1, x_i, x_i x_j, ...), g_i = 1."""

    name = "polynomial"

    def __init__(self, degree: int = 2):
        if not isinstance(degree, int) or degree < 1:
            raise ValueError(f"polynomial degree must be a positive int, got {degree!r}")
        self.degree = degree

    def terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        out: list[sympy.Expr] = [sympy.Integer(1)]
        for d in range(1, self.degree + 1):
            for combo in itertools.combinations_with_replacement(symbols, d):
                out.append(sympy.Mul(*combo))
        return tuple(out)

    def __repr__(self) -> str:
        return f"Polynomial(degree={self.degree})"
