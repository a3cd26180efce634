"""A user library: any sympy expressions of the state variables as candidate terms.

    dynafit.families.Library([sympy.sin(th), om, om * sympy.cos(th)], variables=[th, om])

The terms are printed, integrated (lambdified to JAX) and saved (as data trees,
``_tree``) like those of every other family; a saved model whose family is not a
registered one comes back as a ``Library`` with the same terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from ._base import AbstractFamily, check_positive
from ._tree import to_tree


class Library(AbstractFamily):
    """theta(x) = the given expressions; g_i = ``prefactors`` (1 by default).

    ``terms``: sympy expressions (or numbers) over ``variables``: sympy Symbols (or their
    names) in the order of the data's variables. Without ``variables``, the free symbols
    of the terms sorted by name (give ``variables`` when the order matters). ``positive``:
    the data must be strictly positive (for example for log terms). ``name`` identifies
    the family in tables and saved models.
    """

    def __init__(
        self,
        terms: Sequence[Any],
        variables: Sequence[Any] | None = None,
        *,
        prefactors: Sequence[Any] | None = None,
        name: str = "library",
        positive: bool = False,
    ):
        if isinstance(terms, (str, bytes)) or not isinstance(terms, Sequence) or not terms:
            raise ValueError("Library needs a non-empty list of sympy expressions")
        exprs = []
        for e in terms:
            if isinstance(e, str):
                raise ValueError(
                    f"Library terms must be sympy expressions, not strings ({e!r}); "
                    "build them with sympy (sympy.sin(x), x * y, ...)"
                )
            exprs.append(sympy.sympify(e))
        if variables is None:
            free = set().union(*(e.free_symbols for e in exprs))
            variables = sorted(free, key=lambda s: s.name)
        syms = tuple(sympy.Symbol(v) if isinstance(v, str) else v for v in variables)
        if not all(isinstance(s, sympy.Symbol) for s in syms):
            raise ValueError("Library variables must be sympy Symbols or names")
        if len(set(syms)) != len(syms):
            raise ValueError(f"Library variables given twice: {list(syms)}")
        pref = None if prefactors is None else tuple(sympy.sympify(p) for p in prefactors)
        for e in (*exprs, *(pref or ())):
            extra = e.free_symbols - set(syms)
            if extra:
                raise ValueError(f"term {e} uses {sorted(map(str, extra))}, not in {list(syms)}")
            to_tree(e, syms)  # every term must be savable: unknown operators fail here
        if pref is not None and len(pref) != len(syms):
            raise ValueError(f"{len(pref)} prefactors for {len(syms)} variables")
        if not isinstance(name, str) or not name:
            raise ValueError(f"Library name must be a non-empty string, got {name!r}")
        self.name = name
        self.library_terms = tuple(exprs)
        self.variables = syms
        self.library_prefactors = pref
        self.positive = bool(positive)

    def _check_m(self, symbols: Sequence[sympy.Symbol]) -> dict:
        if len(symbols) != len(self.variables):
            raise ValueError(
                f"library {self.name!r} is written for {len(self.variables)} variables "
                f"({[str(v) for v in self.variables]}); the data have {len(symbols)}"
            )
        return dict(zip(self.variables, symbols))

    def terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        sub = self._check_m(symbols)
        return tuple(e.xreplace(sub) for e in self.library_terms)

    def prefactors(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        if self.library_prefactors is None:
            return tuple(sympy.Integer(1) for _ in symbols)
        sub = self._check_m(symbols)
        return tuple(e.xreplace(sub) for e in self.library_prefactors)

    def validate(self, x: np.ndarray, names: Sequence[str]) -> None:
        if np.shape(x)[-1] != len(self.variables):
            raise ValueError(
                f"library {self.name!r} is written for {len(self.variables)} variables; "
                f"the data have {np.shape(x)[-1]}"
            )
        if self.positive:
            check_positive(self.name, x, names)

    def library_size(self, m: int) -> int:
        return len(self.library_terms)

    def __repr__(self) -> str:
        return f"Library({self.name!r}, {len(self.library_terms)} terms)"
