"""Trigonometric laws: pendulums, forced and coupled oscillators (Kuramoto coupling).

theta(x) = monomials up to ``degree`` (1, x_i, x_i x_j, ...), sin and cos of each
variable (times ``frequencies``), and, with ``differences``, sin and cos of every
pairwise difference x_j - x_i; with ``products``, every x_i times every sin(x_j) and
cos(x_j). g_i = 1.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import sympy

from ._base import AbstractFamily, register


@register
class Trigonometric(AbstractFamily):
    """Monomials up to ``degree``, sin/cos of ``k * x_i`` for k in ``frequencies``,
    sin/cos of x_j - x_i (``differences``), x_i sin(x_j), x_i cos(x_j) (``products``)."""

    name = "trigonometric"

    def __init__(
        self,
        degree: int = 1,
        frequencies: Sequence[int] = (1,),
        differences: bool = True,
        products: bool = False,
    ):
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 0:
            raise ValueError(f"trigonometric degree must be an int >= 0, got {degree!r}")
        freqs = tuple(frequencies)
        if not freqs or not all(
            isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in freqs
        ):
            raise ValueError(f"frequencies must be positive ints, got {frequencies!r}")
        if len(set(freqs)) != len(freqs):
            raise ValueError(f"frequencies given twice: {freqs}")
        self.degree = degree
        self.frequencies = freqs
        self.differences = bool(differences)
        self.products = bool(products)

    def terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        out: list[sympy.Expr] = [sympy.Integer(1)]
        for d in range(1, self.degree + 1):
            out += [sympy.Mul(*c) for c in itertools.combinations_with_replacement(symbols, d)]
        for k in self.frequencies:
            for s in symbols:
                out += [sympy.sin(k * s), sympy.cos(k * s)]
        if self.differences:
            for k in self.frequencies:
                for a, b in itertools.combinations(symbols, 2):
                    out += [sympy.sin(k * (b - a)), sympy.cos(k * (b - a))]
        if self.products:
            for a in symbols:
                for b in symbols:
                    out += [a * sympy.sin(b), a * sympy.cos(b)]
        # sympy may fold sin(b - a) into -sin(a - b), depending on the symbols' names: the
        # column stays the same function of x either way (never flip its sign here, or
        # the printed and the integrated columns would differ between symbol sets)
        unique: list[sympy.Expr] = []
        for e in out:
            if e not in unique:
                unique.append(e)
        return tuple(unique)

    def __repr__(self) -> str:
        return (
            f"Trigonometric(degree={self.degree}, frequencies={self.frequencies}, "
            f"differences={self.differences}, products={self.products})"
        )
