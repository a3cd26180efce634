"""The interface every model family implements, and the registry of families by name.

A family fixes which terms may appear in each equation. A model of the family is

    dx_i/dt = g_i(x) * sum_k Xi[i, k] * theta_k(x)

with ``theta(x)`` the library (sympy expressions over the variable symbols) and
``g_i(x)`` a per-equation prefactor (1, or x_i for Lotka-Volterra).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import sympy


class Fitting(enum.Enum):
    """How ``dynafit.fit`` fits a family: ``SPARSE``, sparse regression over the term
    library with a threshold chosen by a selection rule; ``SHARED_RATE``, least squares
    with shared weights and trajectory matching (:mod:`dynafit._parts._shared_rate`)."""

    SPARSE = "sparse"
    SHARED_RATE = "shared_rate"
    #: least squares of the shared-budget law on the window's recent part (:mod:`dynafit._budget`)
    BUDGET = "budget"
    #: issue 21: the denominators of a rational law first (:mod:`dynafit._rational`),
    #: then the numerators by the sparse stages
    RATIONAL = "rational"


class AbstractFamily(abc.ABC):
    """A library of candidate terms, a per-equation prefactor and a data check.

    Subclass it (set ``name``, implement ``terms``; override ``prefactors`` and
    ``validate`` when needed) and pass an instance as ``dynafit.fit(traj, family=...)``.
    """

    #: short identifier, used in tables and saved models
    name: str = ""
    #: how ``dynafit.fit`` fits the family
    fitting: Fitting = Fitting.SPARSE

    @abc.abstractmethod
    def terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        """The library theta(x): one sympy expression per column, over ``symbols``."""

    def prefactors(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        """g_i(x), one per state variable; 1 unless the family says otherwise."""
        return tuple(sympy.Integer(1) for _ in symbols)

    def shared(
        self, symbols: Sequence[sympy.Symbol]
    ) -> tuple[tuple[sympy.Symbol, sympy.Expr], ...]:
        """Shared quantities the terms may use, as ``(symbol, expression over symbols)``
        pairs (for example ``T = x_1 + ... + x_m``); none unless the family says otherwise.

        Terms that use them are printed with the symbol (the quantity is named once) and
        integrated with the expression substituted (:func:`expanded_terms`).
        """
        del symbols
        return ()

    def validate(self, x: np.ndarray, names: Sequence[str]) -> None:
        """Raise ``ValueError`` naming the problem when the family cannot apply to ``x``.

        ``x`` has shape ``(T, m)`` or ``(R, T, m)``; ``names`` the m variable names.
        Any finite data is accepted unless a family says otherwise.
        """
        del x, names

    def equilibria(self, coefficients: np.ndarray) -> list[np.ndarray] | None:
        """The equilibria of the model with coefficients Xi ``(m, n_terms)`` in closed
        form, when the family knows them; None (the default): ``fixed_points`` finds
        them from the terms."""
        del coefficients
        return None

    def library_size(self, m: int) -> int:
        """Number of library columns for m variables (smaller libraries rank first)."""
        return len(self.terms(sympy.symbols(f"x0:{m}")))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))


_REGISTRY: dict[str, type[AbstractFamily]] = {}
_Family = TypeVar("_Family", bound=type[AbstractFamily])


def register(cls: _Family) -> _Family:
    """Class decorator: make a family available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def family_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_family(family: str | AbstractFamily) -> AbstractFamily:
    """A family instance from a name or an instance; unknown names are a ``ValueError``."""
    if isinstance(family, AbstractFamily):
        return family
    if isinstance(family, str):
        key = family.strip().lower().replace("-", "_")
        aliases = {"lv": "lotka_volterra", "quadratic": "polynomial"}
        key = aliases.get(key, key)
        if key in _REGISTRY:
            return _REGISTRY[key]()
        raise ValueError(
            f"unknown family {family!r}; choose one of {sorted(_REGISTRY)} "
            "or pass a dynafit.AbstractFamily instance"
        )
    raise ValueError(
        f"family must be a name ({sorted(_REGISTRY)}) or a dynafit.AbstractFamily, "
        f"got {type(family).__name__}"
    )


class MonomialFamily(AbstractFamily):
    """A family given by explicit monomials (exponent lists); how saved models come back
    when their family is not a registered one."""

    def __init__(
        self,
        name: str,
        term_exponents: Sequence[Sequence[int]],
        prefactor_exponents: Sequence[Sequence[int]] | None = None,
        shared: Sequence[tuple[str, Sequence[tuple[float, Sequence[int]]]]] | None = None,
    ):
        self.name = str(name)
        self.term_exponents = tuple(tuple(int(e) for e in row) for row in term_exponents)
        self.prefactor_exponents = (
            None
            if prefactor_exponents is None
            else tuple(tuple(int(e) for e in row) for row in prefactor_exponents)
        )
        # shared quantities: (name, ((coefficient, exponents), ...)); the term exponents
        # then run over the variables and these quantities, in that order
        self.shared_polynomials = tuple(
            (str(n), tuple((float(c), tuple(int(e) for e in ex)) for c, ex in poly))
            for n, poly in (shared or ())
        )

    def terms(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        over = (*symbols, *(sym for sym, _ in self.shared(symbols)))
        return tuple(monomial(over, e) for e in self.term_exponents)

    def shared(
        self, symbols: Sequence[sympy.Symbol]
    ) -> tuple[tuple[sympy.Symbol, sympy.Expr], ...]:
        return tuple(
            (
                sympy.Symbol(n),
                sympy.Add(*(sympy.Float(c) * monomial(symbols, ex) for c, ex in poly)),
            )
            for n, poly in self.shared_polynomials
        )

    def prefactors(self, symbols: Sequence[sympy.Symbol]) -> tuple[sympy.Expr, ...]:
        if self.prefactor_exponents is None:
            return tuple(sympy.Integer(1) for _ in symbols)
        return tuple(monomial(symbols, e) for e in self.prefactor_exponents)

    def __repr__(self) -> str:
        return f"MonomialFamily({self.name!r}, {len(self.term_exponents)} terms)"


def check_positive(family: str, x: np.ndarray, names: Sequence[str]) -> None:
    """``ValueError`` naming the variables of ``x`` (..., m) that are not strictly positive,
    for families whose prefactor g_i(x) = x_i divides the derivative."""
    flat = np.asarray(x).reshape(-1, np.shape(x)[-1])
    bad = np.flatnonzero((flat <= 0).any(axis=0))
    if bad.size:
        which = [names[i] for i in bad]
        raise ValueError(
            f"{family} needs strictly positive values; variable(s) {which} reach "
            f"{flat[:, bad].min():g} (first: {names[int(bad[0])]!r}). Use another family or "
            "shift/select the data."
        )


def check_extinction(family: str, x: np.ndarray, names: Sequence[str]) -> None:
    """``ValueError`` naming the variables of ``x`` ((T, m) or (R, T, m)) that are
    negative, or that return from 0 (an invariant state of a law whose prefactor is
    g_i(x) = x_i), or that are 0 throughout. Zeros at the end of a series (a species
    that died out) are accepted: their rows carry no information on the per-capita rate
    and get weight 0 in the fit."""
    arr = np.asarray(x)
    runs = arr.reshape(-1, *arr.shape[-2:]) if arr.ndim >= 2 else arr[None, :, None]
    m = runs.shape[-1]
    neg = np.flatnonzero((runs < 0).any(axis=(0, 1)))
    if neg.size:
        which = [names[i] for i in neg]
        raise ValueError(
            f"{family} needs positive values (or zeros at the end of a series); variable(s) "
            f"{which} reach {runs[..., neg].min():g} (first: {names[neg[0]]!r}). Use another "
            "family or shift/select the data."
        )
    zero = runs == 0
    # a zero followed by a positive value later in the same run
    later_positive = np.flip(np.logical_or.accumulate(np.flip(runs > 0, axis=1), axis=1), axis=1)
    back = np.zeros_like(zero)
    back[:, :-1] = zero[:, :-1] & later_positive[:, 1:]
    bad = [i for i in range(m) if back[..., i].any() or zero[..., i].all()]
    if bad:
        which = [names[i] for i in bad]
        raise ValueError(
            f"{family} needs positive values; variable(s) {which} are 0 and then positive "
            "again, or 0 throughout (0 is an invariant state of the law: a series may reach "
            f"0 at its end, never leave it) (first: {names[bad[0]]!r}). Use another family or "
            "shift/select the data."
        )


def expanded_terms(family: AbstractFamily, symbols: Sequence[sympy.Symbol]) -> tuple:
    """``family.terms(symbols)`` with its shared quantities (:meth:`AbstractFamily.shared`)
    substituted: expressions over ``symbols`` alone, as they are integrated."""
    terms = tuple(sympy.sympify(e) for e in family.terms(symbols))
    defs = family.shared(symbols)
    if not defs:
        return terms
    sub = {sym: sympy.sympify(expr) for sym, expr in defs}
    return tuple(e.xreplace(sub) for e in terms)


def monomial(symbols: Sequence[sympy.Symbol], exponents: Sequence[int]) -> sympy.Expr:
    """prod_j symbols[j] ** exponents[j]."""
    if len(exponents) != len(symbols):
        raise ValueError(f"exponent list {list(exponents)} does not match {len(symbols)} variables")
    out = sympy.Integer(1)
    for s, e in zip(symbols, exponents):
        if e < 0:
            raise ValueError(f"negative exponent in {list(exponents)}")
        out = out * s ** int(e)
    return out


def exponents(expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> list[int]:
    """The exponent list of a monomial with coefficient 1; other expressions are a ValueError."""
    try:
        poly = sympy.Poly(expr, *symbols)
    except sympy.PolynomialError:
        poly = None
    if poly is None or len(poly.terms()) != 1 or poly.terms()[0][1] != 1:
        raise ValueError(
            f"term {expr} is not a monomial in {list(symbols)}; only monomial libraries can be "
            "saved as exponent lists"
        )
    return [int(e) for e in poly.terms()[0][0]]
