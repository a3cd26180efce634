"""The base of the structured families: each equation uses its own variable and a few
quantities shared by all equations.

    dx_i/dt = e_i + g_i(x) * (c_i + d_i x_i + sum_k u_ik Q_k),    Q_k = sum_j v_kj x_j

with ``g_i(x) = x_i`` (Lotka-Volterra form: per-capita rates, competition for shared
resources Q_k) or ``g_i = 1`` (linear form: a diagonal plus a rank-K coupling), and
``e_i`` an optional constant inflow of the Lotka-Volterra form (``offset=True``: a
variable pushed from outside, such as a circle that Adam's updates keep at a floor,
never dies out). Without the offset the library is ``(1, x_1, ..., x_m, Q_1, ...,
Q_K)`` with g_i as above; with it, ``g = 1`` and the library is ``(1, x_1..x_m,
x_1^2..x_m^2, x_1 Q_1, ..., x_m Q_K)``. Equation i may use only the columns of its own
variable and the Q's (:meth:`AbstractSharedRateFamily.mask`), so a model has
``2 + K`` (+1 with the offset) coefficients per equation plus the K x m weights ``v``,
which are the family's parameters (``weights``; fixed for the mean-field family,
fitted by the low-rank ones).
The shared quantities are named once when printed (``T = S1 + ... + S29``) and
substituted when integrated.

These families are not fitted by the sparse-regression sweep (``fitting`` is
``Fitting.SHARED_RATE``): ``dynafit.fit`` hands them to
:func:`dynafit._parts._shared_rate.fit_shared_rate` (least squares and variable projection
on the derivatives, then trajectory matching through diffrax of the vector field generated
from the family's sympy terms).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from ._base import AbstractFamily, Fitting, check_positive


def _weights_tuple(weights: Any, rank: int) -> tuple[tuple[float, ...], ...] | None:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != rank or w.shape[1] < 1:
        raise ValueError(f"weights must have shape (rank, m) = ({rank}, m), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or inf")
    return tuple(tuple(float(v) for v in row) for row in w)


class AbstractSharedRateFamily(AbstractFamily):
    """Equations that each use their own variable and K shared linear quantities.

    Final subclasses set ``name``, ``per_capita`` (g_i = x_i, else 1), ``symbol`` (the
    shared quantities' printed name), ``learn_weights`` (whether a fit moves ``v``), and
    in ``__init__`` the fields ``rank`` and ``weights`` (a (rank, m) tuple of tuples, or
    None before a fit: then the weights are all 1, every Q the plain total).
    """

    fitting = Fitting.SHARED_RATE
    per_capita: bool = True
    symbol: str = "T"
    learn_weights: bool = True
    offset: bool = False
    rank: int
    weights: tuple[tuple[float, ...], ...] | None

    @abc.abstractmethod
    def with_weights(self, weights: Any) -> AbstractSharedRateFamily:
        """The same family with the shared quantities' weights ``v`` (rank, m)."""

    # ------------------------------------------------------------- the library
    def weight_matrix(self, m: int) -> np.ndarray:
        """v, numpy (rank, m): the fitted weights, or all ones before a fit."""
        if self.weights is None:
            return np.ones((self.rank, m))
        w = np.asarray(self.weights, dtype=np.float64)
        if w.shape[1] != m:
            raise ValueError(
                f"family {self.name!r} has weights for {w.shape[1]} variables, not {m}"
            )
        return w

    def shared_symbols(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Symbol, ...]:
        """Q_1..Q_K, named ``symbol`` (``T`` for one, ``T1, T2, ...`` for several), with
        underscores added where a variable has that name already."""
        taken = {str(s) for s in symbols}
        out = []
        for k in range(self.rank):
            name = self.symbol if self.rank == 1 else f"{self.symbol}{k + 1}"
            while name in taken:
                name += "_"
            taken.add(name)
            out.append(sympy.Symbol(name))
        return tuple(out)

    @property
    def expanded(self) -> bool:
        """True when the per-capita form is written out (``offset``): g = 1."""
        return bool(self.per_capita and self.offset)

    def terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        q = self.shared_symbols(symbols)
        if not self.expanded:
            return (sympy.Integer(1), *symbols, *q)
        return (
            sympy.Integer(1),
            *symbols,
            *(s**2 for s in symbols),
            *(s * qk for qk in q for s in symbols),
        )

    def shared(
        self, symbols: Sequence[sympy.Symbol]
    ) -> tuple[tuple[sympy.Symbol, sympy.Expr], ...]:
        w = self.weight_matrix(len(symbols))
        out = []
        for q, row in zip(self.shared_symbols(symbols), w):
            parts = [
                s if c == 1.0 else sympy.Float(c) * s for c, s in zip(row.tolist(), symbols) if c
            ]
            out.append((q, sympy.Add(*parts, evaluate=False)))
        return tuple(out)

    def prefactors(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        if self.per_capita and not self.expanded:
            return tuple(symbols)
        return tuple(sympy.Integer(1) for _ in symbols)

    def coefficient_matrix(self, e: Any, c: Any, d: Any, U: Any) -> np.ndarray:
        """Xi (m, n_terms) of the inflow ``e`` (m,; zeros without the offset), rates
        ``c``, ``d`` (m,) and couplings ``U`` (m, K), in this family's library."""
        U = np.asarray(U, dtype=np.float64)
        m, K = U.shape
        idx = np.arange(m)
        if not self.expanded:
            xi = np.zeros((m, 1 + m + K))
            xi[:, 0] = c
            xi[idx, 1 + idx] = d
            xi[:, 1 + m :] = U
            return xi
        xi = np.zeros((m, 1 + 2 * m + K * m))
        xi[:, 0] = e
        xi[idx, 1 + idx] = c
        xi[idx, 1 + m + idx] = d
        for k in range(K):
            xi[idx, 1 + (2 + k) * m + idx] = U[:, k]
        return xi

    def mask(self, m: int) -> np.ndarray:
        """Boolean (m, n_terms): the library columns equation i may use."""
        ones = np.ones(m)
        return self.coefficient_matrix(ones, ones, ones, np.ones((m, self.rank))) != 0

    def library_size(self, m: int) -> int:
        """Columns per equation that may be non-zero: 1, x_i (x_i^2) and the shared terms."""
        return 2 + self.rank + int(self.expanded)

    def validate(self, x: np.ndarray, names: Sequence[str]) -> None:
        x = np.asarray(x)
        if self.weights is not None:
            self.weight_matrix(x.shape[-1])
        if not self.per_capita:
            return
        check_positive(self.name, x, names)

    def __repr__(self) -> str:
        fitted = "fitted weights" if self.weights is not None else "unfitted"
        return f"{type(self).__name__}(rank={self.rank}, offset={self.offset}, {fitted})"
