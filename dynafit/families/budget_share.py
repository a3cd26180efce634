"""A shared growth budget: every variable draws a share of one inflow and decays.

    Z = w_1 x_1^g + ... + w_m x_m^g,    dx_i/dt = E w_i x_i^g / Z - lam x_i

E is the budget (the total inflow, shared by all variables), lam a decay rate common
to all, w_i how strongly variable i draws on the budget (its weight, mean 1) and g in
(0, 1) how much a larger variable is favoured (g -> 1: the rich take almost all, g = 0:
fixed shares). Written for the circles of an embedding trained with AdamW: weight
decay shrinks every circle at one rate, and the optimiser's update, whose size per
step is fixed, is the budget the gradient divides among them.

The stable state is explicit: x_i* = (E / lam) * w_i^(1/(1-g)) / sum_j w_j^(1/(1-g)),
so the total sum_i x_i* = E / lam and the share of each variable, hence how many are
above the paper's survival threshold (:func:`dynafit.budget_state`), depends only on
the weights and g; ``model.fixed_points()`` returns it with the Jacobian's eigenvalues. Two numbers are shared (E, lam) and one per variable (w_i); g is
a parameter of the family (fixed, not fitted: fitting it on decaying windows drives it
to 1, see benchmarks/RESULTS.md, issue 24).

The library is ``(x_1^g / Z, ..., x_m^g / Z, x_1, ..., x_m)`` with equation i using
its own two columns; models of this family are fitted by :mod:`dynafit._budget`, not
by the sparse-regression sweep (``Fitting.BUDGET``: the part ``parts.BudgetLeastSquares``).
A model saves as JSON like any other: gamma and the weights as family parameters, the
terms and Z as term trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from ._base import AbstractFamily, Fitting, check_positive, register


@register
class BudgetShare(AbstractFamily):
    """dx_i/dt = E w_i x_i^g / Z - lam x_i, Z = sum_j w_j x_j^g; needs positive data."""

    name = "budget_share"
    fitting = Fitting.BUDGET

    def __init__(self, gamma: float = 0.75, weights: Any = None):
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating)):
            raise ValueError(f"gamma must be a number in (0, 1), got {gamma!r}")
        if not (0.0 < float(gamma) < 1.0):
            raise ValueError(f"gamma must lie in (0, 1), got {gamma}")
        self.gamma = float(gamma)
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.ndim != 1 or w.size < 1:
                raise ValueError(f"weights must be a 1-d list of numbers, got shape {w.shape}")
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError("weights must be finite and non-negative")
            weights = tuple(float(v) for v in w)
        self.weights = weights

    def with_weights(self, weights: Any) -> BudgetShare:
        return BudgetShare(self.gamma, weights)

    def weight_vector(self, m: int) -> np.ndarray:
        """w, numpy (m,): the fitted weights, or all ones before a fit."""
        if self.weights is None:
            return np.ones(m)
        if len(self.weights) != m:
            raise ValueError(
                f"family {self.name!r} has weights for {len(self.weights)} variables, not {m}"
            )
        return np.asarray(self.weights, dtype=np.float64)

    @property
    def exponent(self) -> sympy.Rational:
        """g as an exact rational (0.75 -> 3/4), so equations print and simplify cleanly."""
        return sympy.Rational(repr(self.gamma)).limit_denominator(10_000)

    def _z(self, symbols: Sequence[sympy.Symbol]) -> sympy.Symbol:
        name = "Z"
        taken = {str(s) for s in symbols}
        while name in taken:
            name += "_"
        return sympy.Symbol(name, positive=True)

    def terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        g, z = self.exponent, self._z(symbols)
        return (*(s**g / z for s in symbols), *symbols)

    def shared(
        self, symbols: Sequence[sympy.Symbol]
    ) -> tuple[tuple[sympy.Symbol, sympy.Expr], ...]:
        w = self.weight_vector(len(symbols))
        g = self.exponent
        parts = [
            s**g if c == 1.0 else sympy.Float(c) * s**g for c, s in zip(w.tolist(), symbols) if c
        ]
        return ((self._z(symbols), sympy.Add(*parts, evaluate=False)),)

    def coefficient_matrix(self, budget: float, decay: float, m: int) -> np.ndarray:
        """Xi (m, 2m): E w_i on x_i^g / Z and -lam on x_i."""
        w = self.weight_vector(m)
        xi = np.zeros((m, 2 * m))
        idx = np.arange(m)
        xi[idx, idx] = float(budget) * w
        xi[idx, m + idx] = -float(decay)
        return xi

    def stable_state(self, coefficients: np.ndarray) -> np.ndarray:
        """x* (m,) of the model with coefficients Xi (m, 2m), from E w_i and lam (the
        decay of the first equation): (E / lam) w_i^(1/(1-g)) / sum_j w_j^(1/(1-g));
        ``ValueError`` when lam <= 0 (no stable state)."""
        xi = np.asarray(coefficients, dtype=np.float64)
        m = xi.shape[0]
        idx = np.arange(m)
        inflow = xi[idx, idx]  # E w_i
        decay = float(-xi[0, m])
        if not decay > 0:
            raise ValueError(f"the model's decay rate is {decay:g}: no stable state")
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            rel = np.maximum(inflow, 0.0) / max(float(np.max(inflow)), 1e-300)
            powered = rel ** (1.0 / (1.0 - self.gamma))
        budget = float(inflow.sum() / self.weight_vector(m).sum())
        return (budget / decay) * powered / powered.sum()

    def equilibria(self, coefficients: np.ndarray) -> list[np.ndarray] | None:
        """The stable state (:meth:`stable_state`); none when the decay is not positive."""
        try:
            return [self.stable_state(coefficients)]
        except ValueError:
            return []

    def library_size(self, m: int) -> int:
        return 2

    def validate(self, x: np.ndarray, names: Sequence[str]) -> None:
        x = np.asarray(x)
        if self.weights is not None:
            self.weight_vector(x.shape[-1])
        check_positive(self.name, x, names)

    def __repr__(self) -> str:
        fitted = "fitted weights" if self.weights is not None else "unfitted"
        return f"BudgetShare(gamma={self.gamma:g}, {fitted})"
