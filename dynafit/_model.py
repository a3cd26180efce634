"""The Model: a family's sympy terms and a coefficient matrix, and nothing else that matters.

    dx_i/dt = g_i(x) * sum_k Xi[i, k] * theta_k(x)

Everything a Model prints, integrates and scores is generated from ``family.terms`` and
``coefficients`` (Xi, shape ``(m, n_terms)``): its vector field is ``_field``'s (theta(x)
lambdified once per family and variable count), its rollouts ``_integrate``'s, its scores
``_score``'s, its equilibria ``_equilibria``'s; saved as plain JSON.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Unpack, cast

import jax.numpy as jnp
import numpy as np
import pandas as pd
import sympy
from jaxtyping import Array, Float

from ._equilibria import fixed_points
from ._field import VectorField, canonical_symbols, vector_field
from ._integrate import rollout
from ._intervals import equations_with_intervals, uncertainty
from ._io import load_json, save_json, to_jsonable
from ._score import ScoreOptions, score_many
from ._trajectory import Trajectory
from .families._base import (
    AbstractFamily,
    MonomialFamily,
    exponents,
    family_names,
    get_family,
    monomial,
)
from .families._tree import from_tree, to_tree
from .families.library import Library

MODEL_SCHEMA = "dynafit.model/1"
_T = sympy.Symbol("t")


# ------------------------------------------------------------------------ Model
class Model:
    """A fitted ODE model: ``family``, variable ``names``, coefficients Xi ``(m, n_terms)``.

    ``options`` records how it was fitted (plain JSON data); ``sweep`` is the threshold
    sweep behind the fit (a pandas DataFrame, or None). Neither changes what the model
    computes: the equations, the vector field and the scores come from terms and Xi only.
    """

    __slots__ = ("family", "names", "_xi", "options", "sweep")

    def __init__(
        self,
        family: str | AbstractFamily,
        names: Sequence[str],
        coefficients: Any,
        options: dict[str, Any] | None = None,
        sweep: Any = None,
    ):
        family = get_family(family)
        names = tuple(str(n) for n in names)
        for n in names:
            if not n.isidentifier():
                raise ValueError(f"variable name {n!r} is not a valid identifier")
        if len(set(names)) != len(names):
            raise ValueError(f"variable names must be unique, got {names}")
        xi = np.array(coefficients, dtype=np.float64)
        n_lib = len(family.terms(canonical_symbols(len(names))))
        if xi.shape != (len(names), n_lib):
            raise ValueError(
                f"coefficients must have shape (m, n_terms) = ({len(names)}, {n_lib}) for the "
                f"{family.name!r} family on {len(names)} variables, got {xi.shape}"
            )
        if not np.all(np.isfinite(xi)):
            raise ValueError("coefficients contain NaN or inf")
        xi.setflags(write=False)
        self.family = family
        self.names = names
        self._xi = xi
        self.options = to_jsonable(dict(options or {}))
        self.sweep = sweep

    # ---------------------------------------------------------------- content
    @property
    def coefficients(self) -> np.ndarray:
        """Xi, numpy ``(m, n_terms)`` (read-only); column k multiplies ``terms[k]``."""
        return self._xi

    @property
    def n_vars(self) -> int:
        return len(self.names)

    @property
    def symbols(self) -> tuple[sympy.Symbol, ...]:
        return tuple(sympy.Symbol(n) for n in self.names)

    @property
    def terms(self) -> list[sympy.Expr]:
        """The library theta(x) as sympy expressions over the variable names."""
        return list(self.family.terms(self.symbols))

    @property
    def shared(self) -> list[sympy.Eq]:
        """The family's shared quantities, ``Eq(T, x_1 + ... + x_m)``, that the terms use
        by name (empty for most families); see ``AbstractFamily.shared``."""
        return [_eq(sym, expr) for sym, expr in self.family.shared(self.symbols)]

    @property
    def prefactors(self) -> list[sympy.Expr]:
        """g_i(x), one per variable (1, or x_i for Lotka-Volterra)."""
        return list(self.family.prefactors(self.symbols))

    @property
    def n_terms(self) -> int:
        """Number of non-zero coefficients (the model's complexity)."""
        return int(np.count_nonzero(self._xi))

    @property
    def library_size(self) -> int:
        return self._xi.shape[1]

    @property
    def support(self) -> np.ndarray:
        """Boolean ``(m, n_terms)``: which coefficients are non-zero."""
        return self._xi != 0

    def with_coefficients(self, coefficients: Any, **options: Any) -> Model:
        """The same family and variables with new coefficients (options updated)."""
        return Model(self.family, self.names, coefficients, {**self.options, **options})

    @property
    def uncertainty(self) -> dict[str, Any] | None:
        """Per-coefficient ensemble summary (arrays shaped like Xi: mean, median, std,
        lower, upper, inclusion) from ``dynafit.fit_ensemble``, or None."""
        return uncertainty(self)

    @property
    def field(self) -> VectorField:
        return vector_field(self.family, self.n_vars)

    # -------------------------------------------------------------- equations
    def equations(self, digits: int | None = None) -> list[sympy.Eq]:
        """One ``Eq(Derivative(x_i, t), g_i(x) * sum_k Xi[i, k] theta_k(x))`` per variable.

        Coefficients are exact (the floats integrated) unless ``digits`` rounds them for
        display. The coefficients' ensemble intervals, as text, come from
        :meth:`equations_with_intervals`.
        """
        terms, prefs, out = self.terms, self.prefactors, []
        for i, s in enumerate(self.symbols):
            parts = []
            for k, c in enumerate(self._xi[i]):
                if c != 0:
                    coef = (
                        sympy.Float(float(c)) if digits is None else sympy.Float(float(c), digits)
                    )
                    parts.append(coef * terms[k])
            rhs = prefs[i] * sympy.Add(*parts) if parts else sympy.Integer(0)
            if digits is not None and prefs[i].has(sympy.Float):
                rhs = _rounded(rhs, digits)  # a fitted prefactor (rational denominators)
            out.append(_eq(sympy.Derivative(s, _T), rhs))
        return out

    def equations_with_intervals(self, digits: int = 3, *, min_inclusion: float = 0.0) -> list[str]:
        """The equations as text, one line per variable, each coefficient with its
        ensemble interval and inclusion probability: ``dx0/dt = -0.5 [-0.52, -0.48]
        (p=1.00)*x0 + ...`` (``digits`` significant digits; terms included in fewer than
        ``min_inclusion`` of the fits left out). Only a model from
        ``dynafit.fit_ensemble`` has intervals; any other is a ``ValueError``.
        """
        if self.uncertainty is None:
            raise ValueError(
                "this model has no coefficient intervals; fit it with "
                "dynafit.fit_ensemble(traj, family, n_models=N) to get them"
            )
        return equations_with_intervals(self, digits, min_inclusion=min_inclusion)

    def latex(self, digits: int | None = 4) -> str:
        """The equations as a LaTeX ``aligned`` block (``digits`` significant digits)."""
        rows = [
            rf"{sympy.latex(eq.lhs)} &= {sympy.latex(_rounded(eq.rhs, digits), order='none')}"
            for eq in self.shared
        ] + [
            rf"\frac{{d {sympy.latex(s)}}}{{dt}} &= {sympy.latex(eq.rhs)}"
            for s, eq in zip(self.symbols, self.equations(digits))
        ]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def __str__(self) -> str:
        shared = [
            f"{eq.lhs} = {sympy.sstr(_rounded(eq.rhs, 4), order='none')}" for eq in self.shared
        ]
        return "\n".join(
            shared
            + [
                f"d{s}/dt = {sympy.sstr(eq.rhs)}"
                for s, eq in zip(self.symbols, self.equations(digits=4))
            ]
        )

    def __repr__(self) -> str:
        return (
            f"Model(family={self.family.name!r}, {self.n_vars} variables, "
            f"{self.n_terms}/{self._xi.size} terms)"
        )

    # --------------------------------------------------------------- dynamics
    def rhs(self, t: Any, x: Float[Array, "... m"]) -> Float[Array, "... m"]:  # noqa: F722
        """dx/dt at state(s) ``x`` (shape ``(..., m)``): a pure JAX function of ``x``."""
        x = jnp.asarray(x)
        return self.field(x, jnp.asarray(self._xi, dtype=x.dtype))

    def simulate(
        self,
        t: Any,
        x0: Any,
        *,
        solver: str = "tsit5",
        rtol: float = 1e-6,
        atol: float = 1e-8,
        max_steps: int = 4096,
    ) -> np.ndarray:
        """Integrate from ``x0`` ((m,) or (B, m)) and save at times ``t``.

        Returns numpy ``(len(t), m)`` or ``(B, len(t), m)``; rows after a failed or
        blown-up integration are inf (never an exception). Tsit5 by default; "kvaerno5"
        for stiff models (Tsit5 runs out of steps -> Kvaerno5 is tried once). In float32
        (JAX's default) rtol is floored at 1e-5 (and Kvaerno5's atol at 1e-6); enable
        ``jax_enable_x64`` for tighter integration.
        """
        t = _check_times(t)
        x0 = np.asarray(x0, dtype=np.float64)
        single = x0.ndim == 1
        x0 = np.atleast_2d(x0)
        if x0.ndim != 2 or x0.shape[1] != self.n_vars:
            raise ValueError(
                f"x0 must have shape ({self.n_vars},) or (B, {self.n_vars}), got {x0.shape}"
            )
        if not np.all(np.isfinite(x0)):
            raise ValueError("x0 contains NaN or inf")
        xi = np.broadcast_to(self._xi, (x0.shape[0], *self._xi.shape))
        ys, _ = rollout(
            self.field, xi, x0, t, solver=solver, rtol=rtol, atol=atol, max_steps=max_steps
        )
        return ys[0] if single else ys

    def score(self, traj: Trajectory, **options: Unpack[ScoreOptions]) -> dict[str, Any]:
        """Scores of this model on ``traj`` (one run: scalars; a batch: arrays over its
        runs): the keys and the ``options`` (``horizon``, ``forecast``, ``derivative``,
        ``solver``, ``rtol``, ``atol``) are described in :mod:`dynafit._score`."""
        return score_many([self], traj, _broadcast=True, **options)

    def fixed_points(self, **kw: Any) -> list[dict[str, Any]]:
        """Equilibria with Jacobian eigenvalues and stability; see :func:`fixed_points`."""
        return fixed_points(self, **kw)

    # --------------------------------------------------------------------- io
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: family, names, terms and prefactors as exponent lists, Xi."""
        z = canonical_symbols(self.n_vars)
        params = {
            k: (_nested_list(v) if isinstance(v, tuple) else v)
            for k, v in vars(self.family).items()
            if (isinstance(v, (int, float, str, bool)) or _is_number_tuple(v)) and k != "name"
        }
        shared = self.family.shared(z)
        over = (*z, *(sym for sym, _ in shared))  # terms may use the shared quantities
        out: dict[str, Any] = {
            "schema": MODEL_SCHEMA,
            "family": self.family.name,
            "family_params": params,
            "names": list(self.names),
            "terms": [term_data(e, over) for e in self.family.terms(z)],
            "prefactors": [term_data(e, z) for e in self.family.prefactors(z)],
            "coefficients": self._xi.tolist(),
            "options": self.options,
        }
        if shared:
            out["shared"] = [
                {"name": str(sym), _shared_key(expr, z): shared_data(expr, z)}
                for sym, expr in shared
            ]
        if self.sweep is not None:
            out["sweep"] = {
                str(c): [v.item() if hasattr(v, "item") else v for v in self.sweep[c]]
                for c in self.sweep.columns
            }
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model as JSON (atomically); returns the path."""
        return save_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str = "model") -> Model:
        """Rebuild from :meth:`to_dict` data; anything malformed is a ``ValueError``."""
        name, names, term_exp, pref_exp, options, params = _model_fields(data, source)
        m = len(names)
        shared = _shared_from_data(data.get("shared", []), m, names, source)
        term_exp = _exponents(term_exp, "terms", m + len(shared), source)
        pref_exp = _exponents(pref_exp, "prefactors", m, source)
        if len(pref_exp) != m:
            raise ValueError(f"{source}: expected {m} prefactors, got {len(pref_exp)}")
        try:
            xi = np.array(data["coefficients"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{source}: coefficients are not a numeric matrix") from None
        family = _family_from_data(name, params, m, term_exp, pref_exp, shared, source)
        sweep = None
        if "sweep" in data:
            try:
                sweep = pd.DataFrame(data["sweep"])
            except (TypeError, ValueError) as err:
                raise ValueError(f"{source}: malformed sweep ({err})") from None
        try:
            return cls(family, names, xi, options, sweep)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None


def _model_fields(data: Any, source: str) -> tuple[str, list[str], Any, Any, dict, dict]:
    """A model file's family name, variable names, terms, prefactors, options and family
    parameters, checked for their kinds (the coefficients are read by the caller)."""
    if not isinstance(data, dict) or data.get("schema") != MODEL_SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ValueError(
            f"{source}: not a dynafit model (schema {got!r}, expected {MODEL_SCHEMA!r})"
        )
    missing = [
        k for k in ("family", "names", "terms", "prefactors", "coefficients") if k not in data
    ]
    if missing:
        raise ValueError(f"{source}: dynafit model file lacks {missing[0]!r}")
    name, names = data["family"], data["names"]
    options, params = data.get("options", {}), data.get("family_params", {})
    if (
        not isinstance(name, str)
        or not isinstance(names, list)
        or not all(isinstance(n, str) for n in names)
    ):
        raise ValueError(f"{source}: 'family' must be a string and 'names' a list of strings")
    if not isinstance(options, dict) or not isinstance(params, dict):
        raise ValueError(f"{source}: 'options' and 'family_params' must be objects")
    return name, names, data["terms"], data["prefactors"], options, params


def _exponents(rows: Any, what: str, width: int, source: str) -> list[Any]:
    """Each entry: a monomial's exponent list (``width`` non-negative ints), or a term
    tree (``families/_tree.py``)."""
    if not isinstance(rows, list) or not all(
        isinstance(r, dict)
        or (
            isinstance(r, list)
            and len(r) == width
            and all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in r)
        )
        for r in rows
    ):
        raise ValueError(
            f"{source}: {what!r} must be lists of {width} non-negative ints or term trees"
        )
    return rows


def _family_from_data(
    name: str,
    params: dict[str, Any],
    m: int,
    term_exp: list[Any],
    pref_exp: list[Any],
    shared: list,
    source: str,
) -> AbstractFamily:
    """The family a model file describes: the registered family of that name where its
    terms are the file's, else a ``Library`` of the file's term trees, else a
    ``MonomialFamily`` of its exponents."""
    z = canonical_symbols(m)
    over = (*z, *(sympy.Symbol(n) for n, _ in shared))
    want_terms = tuple(
        _term_from_data(e, over, f"{source}: terms[{k}]") for k, e in enumerate(term_exp)
    )
    want_prefs = tuple(
        _term_from_data(e, z, f"{source}: prefactors[{k}]") for k, e in enumerate(pref_exp)
    )
    registered = _registered_family(name, params, z, term_exp, want_terms, want_prefs, shared)
    if registered is not None:
        return registered
    if any(isinstance(e, dict) for e in (*term_exp, *pref_exp)):
        if shared:
            raise ValueError(f"{source}: term trees with shared quantities are not supported")
        return Library(
            want_terms,
            z,
            prefactors=None if all(p == 1 for p in want_prefs) else want_prefs,
            name=name or "library",
            positive=params.get("positive", False) is True,
        )
    if any(isinstance(poly, dict) for _, poly in shared):
        raise ValueError(
            f"{source}: shared quantities given as term trees belong to a registered "
            f"family with the same parameters; {name!r} with {params} does not match"
        )
    return MonomialFamily(name, term_exp, pref_exp, shared or None)


def _registered_family(
    name: str,
    params: dict[str, Any],
    z: Sequence[sympy.Symbol],
    term_exp: list[Any],
    want_terms: tuple,
    want_prefs: tuple,
    shared: list,
) -> AbstractFamily | None:
    """The registered family ``name`` built with ``params``, when its terms, shared
    quantities and prefactors are the file's (terms compared as expressions or as the
    data they save to); else None."""
    if name not in family_names():
        return None
    try:
        candidate = type(get_family(name))(**params)
        own = candidate.shared(z)
        own_over = (*z, *(sym for sym, _ in own))
        same = (
            tuple(candidate.terms(z)) == want_terms
            or [term_data(e, own_over) for e in candidate.terms(z)] == term_exp
        ) and (
            [(str(sym), shared_data(e, z)) for sym, e in own] == shared
            and tuple(candidate.prefactors(z)) == want_prefs
        )
    except (TypeError, ValueError):
        return None
    return candidate if same else None


def term_data(expr: Any, symbols: Sequence[sympy.Symbol]) -> Any:
    """A library term as JSON data: its exponent list when it is a monomial with
    coefficient 1 (the original format), else a term tree (``families/_tree.py``)."""
    expr = sympy.sympify(expr)
    if expr.is_polynomial(*symbols):
        try:
            return exponents(expr, symbols)
        except ValueError:
            pass
    return to_tree(expr, symbols)


def _term_from_data(value: Any, symbols: Sequence[sympy.Symbol], where: str) -> Any:
    if isinstance(value, dict):
        return from_tree(value, symbols, where)
    return monomial(symbols, value)


def polynomial_terms(expr: Any, symbols: Sequence[sympy.Symbol]) -> list[list[Any]]:
    """A polynomial over ``symbols`` as JSON data: ``[[coefficient, exponents], ...]``."""
    poly = sympy.Poly(sympy.sympify(expr), *symbols)
    return [[float(c), [int(e) for e in k]] for k, c in sorted(poly.terms())]


def _shared_key(expr: Any, symbols: Sequence[sympy.Symbol]) -> str:
    return "polynomial" if sympy.sympify(expr).is_polynomial(*symbols) else "tree"


def shared_data(expr: Any, symbols: Sequence[sympy.Symbol]) -> Any:
    """A shared quantity as JSON data: ``polynomial_terms`` when it is a polynomial over
    ``symbols``, else its term tree (``families/_tree.py``; the budget's
    Z = sum_j w_j x_j^g)."""
    if _shared_key(expr, symbols) == "polynomial":
        return polynomial_terms(expr, symbols)
    return to_tree(expr, symbols)


def _shared_from_data(value: Any, m: int, names: Sequence[str], source: str) -> list:
    """The ``"shared"`` entry of a saved model, checked: ``[(name, polynomial), ...]``, a
    polynomial's rows as :func:`polynomial_terms` writes them, or a term tree (a dict)."""
    bad = ValueError(
        f"{source}: 'shared' must be a list of {{'name': identifier, 'polynomial': "
        f"[[number, [{m} non-negative ints]], ...]}} or {{'name': identifier, 'tree': term tree}}"
    )
    if not isinstance(value, list):
        raise bad
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) not in (
            {"name", "polynomial"},
            {"name", "tree"},
        ):
            raise bad
        name, poly = item["name"], item.get("polynomial", item.get("tree"))
        if not isinstance(name, str) or not name.isidentifier() or name in names:
            raise bad
        if isinstance(poly, dict):  # checked by building it: a malformed tree is a ValueError
            from_tree(poly, canonical_symbols(m), f"{source}: shared {name!r}")
            out.append((name, poly))
            continue
        if not isinstance(poly, list):
            raise bad
        rows = []
        for row in poly:
            if not (
                isinstance(row, list)
                and len(row) == 2
                and isinstance(row[0], (int, float))
                and not isinstance(row[0], bool)
                and math.isfinite(row[0])
                and isinstance(row[1], list)
                and len(row[1]) == m
                and all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in row[1])
            ):
                raise bad
            rows.append([float(row[0]), [int(e) for e in row[1]]])
        out.append((name, sorted(rows, key=lambda r: r[1])))
    if len({n for n, _ in out}) != len(out):
        raise bad
    return out


def _is_number_tuple(v: Any) -> bool:
    """A (nested) tuple of numbers: a family parameter such as a weight matrix."""
    if not isinstance(v, tuple):
        return False
    return all(
        _is_number_tuple(e)
        or (isinstance(e, (int, float)) and not isinstance(e, bool) and math.isfinite(e))
        for e in v
    )


def _nested_list(v: Any) -> Any:
    return [_nested_list(e) for e in v] if isinstance(v, tuple) else v


def _eq(lhs: sympy.Basic, rhs: sympy.Basic) -> sympy.Eq:
    """``Eq(lhs, rhs)`` unevaluated: always an equation (sympy's stubs allow any relation,
    or True/False, which only evaluation gives)."""
    return cast(sympy.Eq, sympy.Eq(lhs, rhs, evaluate=False))


def _rounded(expr: Any, digits: int | None) -> Any:
    """``expr`` with its floats shown to ``digits`` significant digits (None: as they are)."""
    if digits is None:
        return expr
    return expr.xreplace({f: sympy.Float(float(f), digits) for f in expr.atoms(sympy.Float)})


def load_model(path: str | os.PathLike) -> Model:
    """Read a model written by :meth:`Model.save`. Nothing in the file is evaluated."""
    return Model.from_dict(load_json(path), str(path))


def _check_times(t: Any) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.shape[0] < 2:
        raise ValueError(f"t must be one-dimensional with at least 2 times, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("t contains NaN or inf")
    if np.any(np.diff(t) <= 0):
        raise ValueError("t must be strictly increasing")
    return t
