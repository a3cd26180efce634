"""The regression stage: which sparse regressor fits the coefficients, on which rows.

``STLSQ`` (every threshold of the sweep at once), ``SR3`` and ``Ensemble`` (pysindy's
optimisers) are the sparse regressors of the term-library families; ``SharedRate`` is
the least squares and variable projection of the shared-rate families. Each sparse part
also says the formulation (``Formulation``: regress the derivative estimate or the weak,
integral form; None lets noisy data choose) and, for families with a prefactor g_i(x),
the weighting of the rows.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import equinox as eqx
import numpy as np

from ._repr import describe

#: shorthand names of the sparse regressors (``fit(traj, optimizer="sr3")``)
OPTIMIZERS = ("stlsq", "sr3", "ensemble")


class Formulation(enum.Enum):
    """What the sparse regression fits: the derivative estimate, or the weak
    (integral) form of the equations (:mod:`dynafit._regression._weak`)."""

    DERIVATIVE = "derivative"
    WEAK = "weak"


class Weighting(enum.Enum):
    """Families with a prefactor g_i(x): regress dx_i/dt on g_i(x) theta(x) equation by
    equation (noise stays additive), or (dx_i/dt) / g_i(x) on theta(x)."""

    DERIVATIVE = "derivative"
    PER_CAPITA = "per_capita"


def _positive_int(name: str, value: Any, least: int = 1) -> None:
    """An int (not a bool) of at least ``least``, else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


def _number(name: str, value: Any, *, positive: bool = False) -> None:
    """A number (not a bool) >= 0, or > 0 when ``positive``, else a ``ValueError``."""
    is_number = not isinstance(value, bool) and isinstance(value, (int, float))
    if not (is_number and (value > 0 if positive else value >= 0)):
        raise ValueError(f"{name} must be a number {'>' if positive else '>='} 0, got {value!r}")


def _formulation(value: Any) -> Formulation | None:
    if value is None or isinstance(value, Formulation):
        return value
    try:
        return Formulation(value)
    except ValueError:
        raise ValueError(
            f"regression must be one of {[f.value for f in Formulation]} or None, got {value!r}"
        ) from None


def _weighting(value: Any) -> Weighting:
    if isinstance(value, Weighting):
        return value
    try:
        return Weighting(value)
    except ValueError:
        raise ValueError(f"weighting must be 'derivative' or 'per_capita', got {value!r}") from None


class AbstractSparseRegression(eqx.Module):
    """A sparse regressor of the term-library families. Concrete parts say ``name`` (the
    optimiser :class:`dynafit._regression._Data` runs) and ``settings()`` (its
    parameters), and carry ``formulation``, ``weighting`` and ``seed`` (the weak form's
    test functions; the ensemble's resampling)."""

    __repr__ = describe

    if TYPE_CHECKING:  # every final part has these fields, each in its own order (the
        # order of positional arguments), which fields declared here would change
        alpha: float
        max_iter: int
        formulation: Formulation | None
        weighting: Weighting
        seed: int

    @property
    def name(self) -> str:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The optimiser's parameters, as the regression code reads them."""
        return {"alpha": self.alpha, "max_iter": self.max_iter, "seed": self.seed}

    def record(self) -> dict[str, Any]:
        """What ``model.options`` records of this part (besides formulation, weighting)."""
        return {"optimizer": self.name, "alpha": self.alpha, "max_iter": self.max_iter}

    def _check(self) -> None:
        _number("alpha", self.alpha)
        _positive_int("max_iter", self.max_iter)
        _positive_int("seed", self.seed, least=0)


class STLSQ(AbstractSparseRegression):
    """Sequentially thresholded least squares with a ridge of strength ``alpha``
    (relative to the unit-RMS library), ``max_iter`` rounds; every threshold of a sweep
    at once (:func:`dynafit._regression.stlsq_path`)."""

    alpha: float = 1e-6
    max_iter: int = 20
    formulation: Formulation | None = eqx.field(default=None, converter=_formulation)
    weighting: Weighting = eqx.field(default=Weighting.DERIVATIVE, converter=_weighting)
    seed: int = 0

    def __check_init__(self):
        self._check()

    @property
    def name(self) -> str:
        return "stlsq"


class SR3(AbstractSparseRegression):
    """pysindy's SR3 with an L0 penalty, relaxation ``nu`` (at least 30 iterations)."""

    nu: float = 1.0
    alpha: float = 1e-6
    max_iter: int = 20
    formulation: Formulation | None = eqx.field(default=None, converter=_formulation)
    weighting: Weighting = eqx.field(default=Weighting.DERIVATIVE, converter=_weighting)
    seed: int = 0

    def __check_init__(self):
        self._check()
        _number("nu", self.nu, positive=True)

    @property
    def name(self) -> str:
        return "sr3"

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "nu": self.nu}

    def record(self) -> dict[str, Any]:
        return {**super().record(), "nu": self.nu}


class Ensemble(AbstractSparseRegression):
    """pysindy's bagged STLSQ: ``n_models`` fits on resampled rows (``seed``), median
    coefficients."""

    n_models: int = 20
    seed: int = 0
    alpha: float = 1e-6
    max_iter: int = 20
    formulation: Formulation | None = eqx.field(default=None, converter=_formulation)
    weighting: Weighting = eqx.field(default=Weighting.DERIVATIVE, converter=_weighting)

    def __check_init__(self):
        self._check()
        _positive_int("n_models", self.n_models, least=2)

    @property
    def name(self) -> str:
        return "ensemble"

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "n_models": self.n_models}

    def record(self) -> dict[str, Any]:
        return {**super().record(), "n_models": self.n_models, "seed": self.seed}


class SharedRate(eqx.Module):
    """The shared-rate families' regression on the derivatives: per equation, least
    squares in the 2 + K (+1) coefficients with the shared weights v fixed; v by variable
    projection (scipy's ``least_squares``, at most ``als_iter`` Jacobians).
    ``competitive``: self-limitation and competition kept <= 0 (None: for the per-capita
    families)."""

    __repr__ = describe

    als_iter: int = 10
    competitive: bool | None = None

    def __check_init__(self):
        _positive_int("als_iter", self.als_iter)
        if self.competitive is not None and not isinstance(self.competitive, bool):
            raise ValueError(f"competitive must be True, False or None, got {self.competitive!r}")


class BudgetLeastSquares(eqx.Module):
    """The budget_share family's regression (:mod:`dynafit._budget`): nonlinear least
    squares of the derivatives over the weights, the budget and the decay (scipy's
    ``least_squares``, at most ``max_nfev`` evaluations), on the window after its first
    ``start`` fraction (the transient every circle shares)."""

    __repr__ = describe

    start: float = 0.5
    max_nfev: int = 2000

    def __check_init__(self):
        s = self.start
        if isinstance(s, bool) or not isinstance(s, (int, float, np.floating)) or not 0 <= s < 1:
            raise ValueError(f"start must be a fraction in [0, 1), got {s!r}")
        n = self.max_nfev
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"max_nfev must be a positive int, got {n!r}")


def regression_part(
    optimizer: str | AbstractSparseRegression, options: dict[str, Any]
) -> AbstractSparseRegression:
    """The sparse part a shorthand stands for, configured from the legacy ``options``
    (alpha, max_iter, nu, n_models, seed, regression, weighting; the keys it takes are
    removed from ``options``); a part is returned as it is."""
    keys = ("alpha", "max_iter", "seed", "weighting")
    if isinstance(optimizer, AbstractSparseRegression):
        given = [k for k in (*keys, "nu", "n_models", "regression") if k in options]
        if given:
            raise ValueError(f"give {given} in the regression part, not beside it: {optimizer!r}")
        return optimizer
    kw = {k: options.pop(k) for k in keys if k in options}
    if "regression" in options:
        kw["formulation"] = options.pop("regression")
    nu, n_models = options.pop("nu", None), options.pop("n_models", None)
    if optimizer == "stlsq":
        return STLSQ(**kw)
    if optimizer == "sr3":
        return SR3(**kw, **({} if nu is None else {"nu": nu}))
    if optimizer == "ensemble":
        return Ensemble(**kw, **({} if n_models is None else {"n_models": n_models}))
    raise ValueError(
        f"unknown optimizer {optimizer!r}; choose one of {list(OPTIMIZERS)} or pass a "
        "dynafit.parts regression part"
    )
