"""Exponential and logarithmic laws: Gompertz growth, Arrhenius-like rates, decays.

theta(x) = monomials up to ``degree``, with ``exp`` exp(x_i) and exp(-x_i), with
``log`` log(x_i) and x_i log(x_i) (Gompertz: dN/dt = r N log(K / N) = r log(K) N
- r N log N). g_i = 1. Log terms need strictly positive data.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import sympy

from ._base import AbstractFamily, check_positive, register

#: exp terms of data beyond this magnitude overflow float32 (exp(88) ~ 1.7e38)
EXP_LIMIT = 30.0


@register
class Exponential(AbstractFamily):
    """Monomials up to ``degree``; exp(+-x_i) with ``exp``; log(x_i), x_i log(x_i) with ``log``."""

    name = "exponential"

    def __init__(self, degree: int = 1, exp: bool = True, log: bool = True):
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 0:
            raise ValueError(f"exponential degree must be an int >= 0, got {degree!r}")
        if not (exp or log):
            raise ValueError("the exponential family needs exp=True or log=True")
        self.degree = degree
        self.exp = bool(exp)
        self.log = bool(log)

    def terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        out: list[sympy.Expr] = [sympy.Integer(1)]
        for d in range(1, self.degree + 1):
            out += [sympy.Mul(*c) for c in itertools.combinations_with_replacement(symbols, d)]
        for s in symbols:
            if self.exp:
                out += [sympy.exp(s), sympy.exp(-s)]
            if self.log:
                out += [sympy.log(s), s * sympy.log(s)]
        return tuple(out)

    def validate(self, x: np.ndarray, names: Sequence[str]) -> None:
        if self.log:
            check_positive("exponential (log terms)", x, names)
        if self.exp:
            big = float(np.max(np.abs(x))) if np.size(x) else 0.0
            if big > EXP_LIMIT:
                raise ValueError(
                    f"exponential: exp terms of values up to {big:g} overflow (limit "
                    f"{EXP_LIMIT:g}); rescale the data or use Exponential(exp=False)"
                )

    def __repr__(self) -> str:
        return f"Exponential(degree={self.degree}, exp={self.exp}, log={self.log})"
