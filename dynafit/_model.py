"""The Model: a family's sympy terms and a coefficient matrix, and nothing else that matters.

    dx_i/dt = g_i(x) * sum_k Xi[i, k] * theta_k(x)

Everything a Model prints, integrates and scores is generated from ``family.terms`` and
``coefficients`` (Xi, shape ``(m, n_terms)``): the JAX vector field is theta(x),
lambdified once per family and variable count from the same sympy terms, times Xi passed
as an array, so models of one family share one compiled function and vmap over Xi.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import sympy
from jaxtyping import Array, Float

from ._io import load_json, save_json, to_jsonable
from .families._base import (
    AbstractFamily,
    MonomialFamily,
    expanded_terms,
    exponents,
    family_names,
    get_family,
    monomial,
)

MODEL_SCHEMA = "dynafit.model/1"
SOLVERS = ("tsit5", "kvaerno5")
_T = sympy.Symbol("t")


def canonical_symbols(m: int) -> tuple[sympy.Symbol, ...]:
    """Positional symbols z0..z{m-1}: what the compiled functions are keyed on."""
    return tuple(sympy.Symbol(f"z{i}") for i in range(m))


# ----------------------------------------------------------------- vector field
class VectorField:
    """theta(x) and g(x) lambdified once from a family's sympy terms, for m variables.

    ``field(x, Xi) = g(x) * (Xi @ theta(x))`` for ``x`` of shape ``(..., m)`` and ``Xi`` of
    shape ``(m, n_terms)`` (or ``(R, m, n_terms)`` against ``x`` of shape ``(R, T, m)``). Get instances through :func:`vector_field` (cached).
    """

    def __init__(self, terms: tuple[sympy.Expr, ...], prefactors: tuple[sympy.Expr, ...], m: int):
        z = canonical_symbols(m)
        self.m = m
        self.n_terms = len(terms)
        self.terms = terms
        self.prefactors = prefactors
        self.g_is_one = all(p == 1 for p in prefactors)
        self._theta_jax = sympy.lambdify(z, list(terms), modules="jax")
        self._g_jax = sympy.lambdify(z, list(prefactors), modules="jax")
        self._theta_np = sympy.lambdify(z, list(terms), modules="numpy")
        self._g_np = sympy.lambdify(z, list(prefactors), modules="numpy")
        self._solvers: dict[tuple, Any] = {}

    @staticmethod
    def _stack(cols: Sequence[Any], x: Any, xp: Any) -> Any:
        shape = x.shape[:-1]
        return xp.stack([xp.broadcast_to(xp.asarray(c, dtype=x.dtype), shape) for c in cols], -1)

    def theta(self, x: Float[Array, "... m"]) -> Float[Array, "... n_terms"]:  # noqa: F722
        return self._stack(self._theta_jax(*[x[..., i] for i in range(self.m)]), x, jnp)

    def g(self, x: Float[Array, "... m"]) -> Float[Array, "... m"]:  # noqa: F722
        if self.g_is_one:
            return jnp.ones_like(x)
        return self._stack(self._g_jax(*[x[..., i] for i in range(self.m)]), x, jnp)

    def __call__(self, x: Float[Array, "... m"], xi: Float[Array, "m n_terms"]) -> Array:  # noqa: F722
        out = self.theta(x) @ jnp.swapaxes(xi, -1, -2)
        return out if self.g_is_one else self.g(x) * out

    def theta_np(self, x: np.ndarray) -> np.ndarray:
        """theta(x) in numpy float64 (for regression)."""
        x = np.asarray(x, dtype=np.float64)
        return self._stack(self._theta_np(*[x[..., i] for i in range(self.m)]), x, np)

    def g_np(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.g_is_one:
            return np.ones_like(x)
        return self._stack(self._g_np(*[x[..., i] for i in range(self.m)]), x, np)

    def solver(self, solver: str, rtol: float, atol: float, max_steps: int, blowup: float):
        """A jitted ``(Xi[B], x0[B], ts) -> (ys[B, T, m], ok[B], out_of_steps[B])``; solver
        ``"joint"`` is :func:`rollout_joint`'s stacked Tsit5 solve, whose last output is
        one flag: the solve finished."""
        key = (solver, float(rtol), float(atol), int(max_steps), float(blowup))
        if key not in self._solvers:
            if solver == "joint":
                self._solvers[key] = _make_joint_solver(self, *key[1:])
            else:
                self._solvers[key] = _make_solver(self, *key)
        return self._solvers[key]


@functools.lru_cache(maxsize=128)
def _vector_field_cached(terms, prefactors, m) -> VectorField:
    return VectorField(terms, prefactors, m)


def vector_field(family: AbstractFamily, m: int) -> VectorField:
    """The compiled vector field of ``family`` for ``m`` variables (one per library)."""
    z = canonical_symbols(m)
    terms = expanded_terms(family, z)  # shared quantities substituted
    prefactors = tuple(sympy.sympify(e) for e in family.prefactors(z))
    if len(prefactors) != m:
        raise ValueError(
            f"family {family.name!r} gives {len(prefactors)} prefactors for {m} variables"
        )
    if not terms:
        raise ValueError(f"family {family.name!r} has an empty library")
    return _vector_field_cached(terms, prefactors, m)


def _make_solver(field: VectorField, solver: str, rtol, atol, max_steps, blowup):
    if solver == "tsit5":
        method = dfx.Tsit5()
    elif solver == "kvaerno5":
        method = dfx.Kvaerno5()
    else:
        raise ValueError(f"unknown solver {solver!r}; choose one of {list(SOLVERS)}")
    term = dfx.ODETerm(lambda t, y, xi: field(y, xi))
    controller = dfx.PIDController(rtol=rtol, atol=atol)

    def one(xi, x0, ts):
        bound = blowup * (1.0 + jnp.max(jnp.abs(x0)))
        event = dfx.Event(lambda t, y, args, **kw: ~(jnp.max(jnp.abs(y)) < bound))
        sol = dfx.diffeqsolve(
            term,
            method,
            t0=ts[0],
            t1=ts[-1],
            dt0=None,
            y0=x0,
            args=xi,
            saveat=dfx.SaveAt(ts=ts),
            stepsize_controller=controller,
            max_steps=max_steps,
            throw=False,
            event=event,
        )
        ys = jnp.where(jnp.isfinite(sol.ys), sol.ys, jnp.inf)
        ok = (sol.result == dfx.RESULTS.successful) & jnp.all(jnp.isfinite(sol.ys))
        return ys, ok, sol.result == dfx.RESULTS.max_steps_reached

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def _make_joint_solver(field: VectorField, rtol, atol, max_steps, blowup):
    """One adaptive Tsit5 integration of B models as one system of B x m states (see
    :func:`rollout_joint`)."""

    def vector(t, y, args):
        xi, bound = args
        alive = jnp.all(jnp.abs(y) < bound[:, None], axis=-1)  # False past the bound, or NaN
        return jnp.where(alive[:, None], field(y[:, None], xi)[:, 0], 0.0)

    def run(xi, x0, ts):
        bound = blowup * (1.0 + jnp.max(jnp.abs(x0), axis=-1))
        sol = dfx.diffeqsolve(
            dfx.ODETerm(vector),
            dfx.Tsit5(),
            t0=ts[0],
            t1=ts[-1],
            dt0=None,
            y0=x0,
            args=(xi, bound),
            saveat=dfx.SaveAt(ts=ts),
            stepsize_controller=dfx.PIDController(rtol=rtol, atol=atol, norm=_max_member_rms),
            max_steps=max_steps,
            throw=False,
        )
        ys = jnp.swapaxes(sol.ys, 0, 1)  # (B, T, m)
        ok = jnp.all(jnp.isfinite(ys) & (jnp.abs(ys) < bound[:, None, None]), axis=(1, 2))
        ys = jnp.where(jnp.isfinite(ys), ys, jnp.inf)
        return ys, ok, sol.result == dfx.RESULTS.successful

    return jax.jit(run)


def _max_member_rms(err: Array) -> Array:
    """The step-size controller's error norm for B stacked models: the largest of their
    own RMS norms, so that every model meets the tolerance on its own."""
    return jnp.max(jnp.sqrt(jnp.mean(err**2, axis=-1)))


def rollout_joint(
    field: VectorField,
    xi: np.ndarray,
    x0: np.ndarray,
    t: np.ndarray,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    max_steps: int = 1024,
    blowup: float = 1e6,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Integrate B models ``xi`` (B, m, n) from ``x0`` (B, m) as ONE adaptive Tsit5 solve of
    the stacked B x m system, every model held to the tolerance on its own (the error
    norm is the largest per-model RMS); a model whose state leaves
    ``blowup * (1 + max|x0|)`` is frozen there and reported diverged.

    :func:`rollout` vmaps one solve per model, which on a CPU makes every step select
    over every model's whole output buffer; one stacked solve of models that share a
    time scale (a threshold sweep's candidates) is several times cheaper. The models
    share their step sizes, so results agree with :func:`rollout`'s to the tolerance,
    not bit for bit. Returns ``(ys (B, T, m), ok (B,))``, or None when the solve ran out
    of its ``max_steps`` (a stiff model slows them all: use :func:`rollout`).
    """
    dtype = jnp.zeros(()).dtype
    solve = field.solver("joint", *_tolerances(rtol, atol, dtype), max_steps, blowup)
    ys, ok, done = solve(
        jnp.asarray(xi, dtype=dtype), jnp.asarray(x0, dtype=dtype), jnp.asarray(t, dtype=dtype)
    )
    if not bool(done):
        return None
    return np.array(ys), np.array(ok)


def _tolerances(rtol: float, atol: float, dtype, stiff: bool = False) -> tuple[float, float]:
    """(rtol, atol) as the solvers use them: in single precision, tolerances near float32's
    resolution make the step-size controller thrash (and Kvaerno5's Newton iterations
    fail), so they are floored."""
    if dtype == jnp.float64:
        return rtol, atol
    return max(rtol, 1e-5), (max(atol, 1e-6) if stiff else atol)


def pow2_padding(n: int) -> np.ndarray:
    """Indices that pad a batch of ``n`` to the next power of two by cycling through it:
    every batch of up to 2^k items then reuses one compiled, vmapped solver."""
    return np.arange(1 << max(0, int(np.ceil(np.log2(n))))) % n


def rollout(
    field: VectorField,
    xi: np.ndarray,
    x0: np.ndarray,
    t: np.ndarray,
    *,
    solver: str = "tsit5",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    max_steps: int = 4096,
    blowup: float = 1e6,
    stiff_max_steps: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate B models at once: ``xi`` (B, m, n), ``x0`` (B, m), ``t`` (T,).

    Returns ``(ys, ok)``: numpy ``(B, T, m)`` (rows after a failure are inf) and ``(B,)``
    bool. Rollouts stopped by the explicit solver's step limit are retried with the stiff
    solver once (with ``stiff_max_steps`` steps, default ``max_steps``); a state beyond
    ``blowup * (1 + max|x0|)`` stops the rollout as diverged.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of {list(SOLVERS)}")
    dtype = jnp.zeros(()).dtype  # float32, or float64 when jax_enable_x64 is on
    ts = jnp.asarray(t, dtype=dtype)
    xi_j = jnp.asarray(xi, dtype=dtype)
    x0_j = jnp.asarray(x0, dtype=dtype)
    stiff_tol = _tolerances(rtol, atol, dtype, stiff=True)
    tol = stiff_tol if solver == "kvaerno5" else _tolerances(rtol, atol, dtype)
    ys, ok, maxed = field.solver(solver, *tol, max_steps, blowup)(xi_j, x0_j, ts)
    ys, ok, maxed = np.array(ys), np.array(ok), np.array(maxed)
    if solver == "tsit5" and maxed.any():
        idx = np.flatnonzero(maxed)
        pad = idx[pow2_padding(idx.size)]  # one compiled stiff solver per 2^k, not per size
        stiff_steps = max_steps if stiff_max_steps is None else int(stiff_max_steps)
        ys2, ok2, _ = field.solver("kvaerno5", *stiff_tol, stiff_steps, blowup)(
            xi_j[pad], x0_j[pad], ts
        )
        ys[idx], ok[idx] = np.array(ys2)[: idx.size], np.array(ok2)[: idx.size]
    return ys, ok


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
        return [
            sympy.Eq(sym, expr, evaluate=False) for sym, expr in self.family.shared(self.symbols)
        ]

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
        from ._uncertainty import uncertainty

        return uncertainty(self)

    @property
    def field(self) -> VectorField:
        return vector_field(self.family, self.n_vars)

    # -------------------------------------------------------------- equations
    def equations(self, digits: int | None = None, *, intervals: bool = False) -> list[Any]:
        """One ``Eq(Derivative(x_i, t), g_i(x) * sum_k Xi[i, k] theta_k(x))`` per variable.

        Coefficients are exact (the floats integrated) unless ``digits`` rounds them for
        display. ``intervals=True`` (a model from ``dynafit.fit_ensemble``) returns the
        equations as text instead, each coefficient with its interval and inclusion
        probability, ``dx0/dt = -0.5 [-0.52, -0.48] (p=1.00)*x0 + ...`` (``digits``
        significant digits, 3 by default); a model without ensemble information
        raises ``ValueError``.
        """
        if intervals:
            if self.uncertainty is None:
                raise ValueError(
                    "this model has no coefficient intervals; fit it with "
                    "dynafit.fit_ensemble(traj, family, n_models=N) to get them"
                )
            from ._uncertainty import equations_with_intervals

            return equations_with_intervals(self, 3 if digits is None else digits)
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
            out.append(sympy.Eq(sympy.Derivative(s, _T), rhs, evaluate=False))
        return out

    def latex(self, digits: int | None = 4) -> str:
        """The equations as a LaTeX ``aligned`` block (``digits`` significant digits)."""
        rows = [
            rf"{sympy.latex(eq.lhs)} &= {sympy.latex(_rounded(eq.rhs, digits), order='none')}"
            for eq in self.shared
        ] + [
            rf"\frac{{d {sympy.latex(eq.lhs.expr)}}}{{dt}} &= {sympy.latex(eq.rhs)}"
            for eq in self.equations(digits)
        ]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def __str__(self) -> str:
        shared = [
            f"{eq.lhs} = {sympy.sstr(_rounded(eq.rhs, 4), order='none')}" for eq in self.shared
        ]
        return "\n".join(
            shared
            + [f"d{eq.lhs.expr}/dt = {sympy.sstr(eq.rhs)}" for eq in self.equations(digits=4)]
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

    def score(self, traj: Any, *, horizon: float | None = None, forecast: Any = None, **kw: Any):
        """Scores of this model on ``traj``; see :func:`dynafit._score.score`."""
        from ._score import score

        return score(self, traj, horizon=horizon, forecast=forecast, **kw)

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
            "terms": [exponents(e, over) for e in self.family.terms(z)],
            "prefactors": [exponents(e, z) for e in self.family.prefactors(z)],
            "coefficients": self._xi.tolist(),
            "options": self.options,
        }
        if shared:
            out["shared"] = [
                {"name": str(sym), "polynomial": polynomial_terms(expr, z)} for sym, expr in shared
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
        if not isinstance(data, dict) or data.get("schema") != MODEL_SCHEMA:
            got = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ValueError(
                f"{source}: not a dynafit model (schema {got!r}, expected {MODEL_SCHEMA!r})"
            )
        try:
            name = data["family"]
            names = data["names"]
            term_exp = data["terms"]
            pref_exp = data["prefactors"]
            coefs = data["coefficients"]
            options = data.get("options", {})
            params = data.get("family_params", {})
        except KeyError as err:
            raise ValueError(f"{source}: dynafit model file lacks {err}") from None
        if (
            not isinstance(name, str)
            or not isinstance(names, list)
            or not all(isinstance(n, str) for n in names)
        ):
            raise ValueError(f"{source}: 'family' must be a string and 'names' a list of strings")
        m = len(names)

        def exps(rows: Any, what: str, width: int = m) -> list[list[int]]:
            if not isinstance(rows, list) or not all(
                isinstance(r, list)
                and len(r) == width
                and all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in r)
                for r in rows
            ):
                raise ValueError(f"{source}: {what!r} must be lists of {width} non-negative ints")
            return rows

        shared = _shared_from_data(data.get("shared", []), m, names, source)
        term_exp = exps(term_exp, "terms", m + len(shared))
        pref_exp = exps(pref_exp, "prefactors")
        if len(pref_exp) != m:
            raise ValueError(f"{source}: expected {m} prefactors, got {len(pref_exp)}")
        if not isinstance(options, dict) or not isinstance(params, dict):
            raise ValueError(f"{source}: 'options' and 'family_params' must be objects")
        try:
            xi = np.array(coefs, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{source}: coefficients are not a numeric matrix") from None
        z = canonical_symbols(m)
        over = (*z, *(sympy.Symbol(n) for n, _ in shared))
        want_terms = tuple(monomial(over, e) for e in term_exp)
        want_prefs = tuple(monomial(z, e) for e in pref_exp)
        family: AbstractFamily | None = None
        if name in family_names():
            try:
                candidate = type(get_family(name))(**params)
            except (TypeError, ValueError):
                candidate = None
            if (
                candidate is not None
                and tuple(candidate.terms(z)) == want_terms
                and [(str(sym), polynomial_terms(e, z)) for sym, e in candidate.shared(z)] == shared
                and tuple(candidate.prefactors(z)) == want_prefs
            ):
                family = candidate
        if family is None:
            family = MonomialFamily(name, term_exp, pref_exp, shared or None)
        sweep = None
        if "sweep" in data:
            import pandas as pd

            try:
                sweep = pd.DataFrame(data["sweep"])
            except (TypeError, ValueError) as err:
                raise ValueError(f"{source}: malformed sweep ({err})") from None
        try:
            return cls(family, names, xi, options, sweep)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None


def polynomial_terms(expr: Any, symbols: Sequence[sympy.Symbol]) -> list[list[Any]]:
    """A polynomial over ``symbols`` as JSON data: ``[[coefficient, exponents], ...]``."""
    poly = sympy.Poly(sympy.sympify(expr), *symbols)
    return [[float(c), [int(e) for e in k]] for k, c in sorted(poly.terms())]


def _shared_from_data(value: Any, m: int, names: Sequence[str], source: str) -> list:
    """The ``"shared"`` entry of a saved model, checked: ``[(name, polynomial), ...]``."""
    bad = ValueError(
        f"{source}: 'shared' must be a list of {{'name': identifier, 'polynomial': "
        f"[[number, [{m} non-negative ints]], ...]}}"
    )
    if not isinstance(value, list):
        raise bad
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"name", "polynomial"}:
            raise bad
        name, poly = item["name"], item["polynomial"]
        if not isinstance(name, str) or not name.isidentifier() or name in names:
            raise bad
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


# ------------------------------------------------------------------ equilibria
def fixed_points(
    model: Model,
    *,
    max_subsets: int = 4096,
    starts: Any = None,
    n_starts: int = 64,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Equilibria of ``model`` with the Jacobian's eigenvalues there and stability.

    - affine right-hand side (linear family): solve A x + b = 0 (none if A is singular);
    - Lotka-Volterra form x_i (r_i + sum_j a_ij x_j): every feasible equilibrium, interior
      and boundary (each subset of surviving variables, up to ``max_subsets`` subsets);
    - anything else: Newton's method from ``starts`` (``(K, m)``, or random points in
      [-1, 1]^m), deduplicated, marked ``"method": "newton"``.

    Each entry: ``x`` (numpy (m,)), ``eigenvalues`` (complex (m,)), ``stable`` (all real
    parts < 0), ``feasible`` (all x >= 0), ``method``. Sorted stable first.
    """
    m = model.n_vars
    z = canonical_symbols(m)
    terms = list(expanded_terms(model.family, z))
    prefs = list(model.family.prefactors(z))
    affine = all(sympy.Poly(e, *z).total_degree() <= 1 for e in terms)
    xi = model.coefficients
    if affine:
        # theta(x) = c + L x  ->  Xi theta = b + A x
        lin = np.array([[float(sympy.Poly(e, *z).coeff_monomial(s)) for s in z] for e in terms])
        const = np.array([float(sympy.Poly(e, *z).coeff_monomial(1)) for e in terms])
        A, b = xi @ lin, xi @ const
    points: list[tuple[np.ndarray, str]] = []
    if affine and all(p == 1 for p in prefs):
        try:
            points.append((np.linalg.solve(A, -b), "linear"))
        except np.linalg.LinAlgError:
            pass
    elif affine and all(p == s for p, s in zip(prefs, z)):
        subsets = itertools.chain.from_iterable(
            itertools.combinations(range(m), k) for k in range(m + 1)
        )
        for S in itertools.islice(subsets, max_subsets):
            x = np.zeros(m)
            if S:
                idx = list(S)
                try:
                    x[idx] = np.linalg.solve(A[np.ix_(idx, idx)], -b[idx])
                except np.linalg.LinAlgError:
                    continue
            points.append((x, "lotka_volterra"))
    else:
        points = _newton_points(model, starts, n_starts, seed)
    out = []
    for x, method in points:
        if not np.all(np.isfinite(x)):
            continue
        jac = np.asarray(jax.jacfwd(lambda y: model.rhs(0.0, y))(jnp.asarray(x)), dtype=np.float64)
        eig = np.linalg.eigvals(jac)
        out.append(
            {
                "x": x,
                "eigenvalues": eig,
                "stable": bool(np.all(eig.real < 0)),
                "feasible": bool(np.all(x >= -1e-12)),
                "method": method,
            }
        )
    out.sort(key=lambda d: (not d["stable"], not d["feasible"]))
    return out


def _newton_points(model: Model, starts: Any, n_starts: int, seed: int) -> list:
    m = model.n_vars
    if starts is None:
        starts = np.random.default_rng(seed).uniform(-1.0, 1.0, (n_starts, m))
    starts = np.atleast_2d(np.asarray(starts, dtype=np.float64))
    f = jax.jit(jax.vmap(lambda y: model.rhs(0.0, y)))
    jac = jax.jit(jax.vmap(jax.jacfwd(lambda y: model.rhs(0.0, y))))
    x = jnp.asarray(starts)
    for _ in range(50):
        step = jnp.linalg.solve(jac(x), f(x)[..., None])[..., 0]
        x = x - step
    x = np.asarray(x)
    res = np.abs(np.asarray(f(jnp.asarray(x)))).max(axis=-1)
    found: list = []
    for p, r in zip(x, res):
        if (
            np.isfinite(r)
            and r < 1e-6 * (1 + np.abs(p).max())
            and not any(
                np.allclose(p, q, atol=1e-6 * (1 + math.fabs(np.abs(q).max()))) for q, _ in found
            )
        ):
            found.append((p, "newton"))
    return found
