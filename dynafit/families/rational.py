"""Rational laws: Michaelis-Menten and Hill kinetics, saturating incidence, Holling responses.

    dx_i/dt = p_i(x) / q_i(x),   p_i = sum_k Xi[i, k] theta_k(x),   q_i = 1 + sum_l b_il phi_l(x)

theta(x): monomials up to ``degree`` (the numerators, the model's coefficients Xi);
phi(x): monomials of degree 1..``denominator_degree``; the denominators ``b`` are the
family's parameters (one row per variable), so the model is ``g_i(x) = 1 / q_i(x)``
times a sparse numerator and prints, integrates and saves as every other family does.
``Rational()`` without denominators is the polynomial of ``degree``; ``dynafit.fit``
finds the denominators first (``dynafit._rational``: the implicit formulation
dx_i/dt * q_i(x) = p_i(x), linear in both), then the numerators by the usual sweep.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from ._base import AbstractFamily, Fitting, register


def _monomials(symbols: Sequence[sympy.Symbol], lo: int, hi: int) -> list[sympy.Expr]:
    out: list[sympy.Expr] = []
    for d in range(lo, hi + 1):
        out += [sympy.Mul(*c) for c in itertools.combinations_with_replacement(symbols, d)]
    return out


@register
class Rational(AbstractFamily):
    """Numerators: monomials up to ``degree``; denominators 1 + monomials of degree
    1..``denominator_degree`` with coefficients ``denominators`` (m rows; None: q_i = 1,
    found by ``dynafit.fit`` among supports of at most ``max_denominator_terms`` terms)."""

    name = "rational"
    fitting = Fitting.RATIONAL

    def __init__(
        self,
        degree: int = 2,
        denominator_degree: int = 2,
        denominators: Sequence[Sequence[float]] | None = None,
        max_denominator_terms: int = 2,
    ):
        for what, v in (("degree", degree), ("denominator_degree", denominator_degree)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"rational {what} must be a positive int, got {v!r}")
        k = max_denominator_terms
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"max_denominator_terms must be an int >= 0, got {k!r}")
        self.degree = degree
        self.denominator_degree = denominator_degree
        #: the denominator search tries every support of q_i - 1 up to this size
        self.max_denominator_terms = k
        if denominators is not None:
            try:
                rows = tuple(tuple(float(b) for b in row) for row in denominators)
            except (TypeError, ValueError):
                raise ValueError("denominators must be rows of numbers, one per variable") from None
            if not all(np.isfinite(b) for row in rows for b in row):
                raise ValueError("denominators contain NaN or inf")
            denominators = rows
        self.denominators = denominators

    def denominator_terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        """phi(x): the monomials of degree 1..denominator_degree."""
        return tuple(_monomials(symbols, 1, self.denominator_degree))

    def terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        return (sympy.Integer(1), *_monomials(symbols, 1, self.degree))

    def denominator_polynomials(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        """q_i(x), one per variable."""
        if self.denominators is None:
            return tuple(sympy.Integer(1) for _ in symbols)
        phi = self.denominator_terms(symbols)
        if len(self.denominators) != len(symbols) or any(
            len(row) != len(phi) for row in self.denominators
        ):
            raise ValueError(
                f"rational denominators must be {len(symbols)} rows of {len(phi)} numbers "
                f"(1 + b . phi with phi = {list(phi)})"
            )
        return tuple(
            sympy.Integer(1) + sympy.Add(*(sympy.Float(b) * f for b, f in zip(row, phi) if b))
            for row in self.denominators
        )

    def prefactors(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        return tuple(
            sympy.Integer(1) if q == 1 else sympy.Pow(q, -1)
            for q in self.denominator_polynomials(symbols)
        )

    def with_denominators(self, denominators: Any) -> Rational:
        return Rational(
            self.degree, self.denominator_degree, denominators, self.max_denominator_terms
        )

    def library_size(self, m: int) -> int:
        """Numerator and denominator columns: what the family may use per equation."""
        z = sympy.symbols(f"x0:{m}")
        return len(self.terms(z)) + len(self.denominator_terms(z))

    def __repr__(self) -> str:
        fitted = "" if self.denominators is None else ", denominators=..."
        return (
            f"Rational(degree={self.degree}, denominator_degree={self.denominator_degree}{fitted})"
        )
