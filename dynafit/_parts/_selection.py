"""The selection stage: which point of the threshold path becomes the model.

``HeldOut`` (the default): a sweep fitted on the first part of every run, scored on the
held-out rest; the sparsest candidate whose held-out error is not meaningfully worse
than the best's, among those whose rollout over the data stays finite and close to the
best rollout. ``InformationCriterion``: the sweep point of least AIC or BIC.
``Threshold`` and ``NTerms``: a point chosen by hand.

Each part's ``choose(data, regression, traj)`` returns a :class:`Choice`: the
coefficients, the threshold, the sweep (when there is one) and what the record adds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import numpy as np
import pandas as pd

from .._discovery import ROLLOUT_INFORMATIVE
from .._regression import _Data, plateau_middle, select, threshold_grid
from .._trajectory import Trajectory
from ._regression import AbstractSparseRegression
from ._repr import describe
from ._rollouts import rollout_quality

CRITERIA = ("holdout", "aic", "bic")


@dataclasses.dataclass
class Choice:
    """What the selection stage chose: coefficients ``xi`` (m, n_lib) at ``threshold``,
    the ``sweep`` behind it (None for a fixed threshold), the record's additions, and for
    the matching stage the sweep's refits on all the data (``refits``, when screened)."""

    xi: np.ndarray
    threshold: float
    sweep: pd.DataFrame | None = None
    record: dict[str, Any] = dataclasses.field(default_factory=dict)
    refits: list[np.ndarray] | None = None
    grid: np.ndarray | None = None
    #: whether the empty-model check applies (swept choices)
    swept: bool = False


def _check_fraction(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"holdout must be in (0, 1) (the held-out fraction), got {value!r}")


def _check_grid(n_thresholds: Any, thresholds: Any) -> None:
    if thresholds is None:
        if (
            isinstance(n_thresholds, bool)
            or not isinstance(n_thresholds, (int, np.integer))
            or n_thresholds < 2
        ):
            raise ValueError(f"n_thresholds must be >= 2, got {n_thresholds!r}")
        return
    grid = np.asarray(thresholds, dtype=float).ravel()
    if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
        raise ValueError("thresholds must be a non-empty list of finite numbers >= 0")


def _as_grid(thresholds: Any) -> tuple[float, ...] | None:
    if thresholds is None:
        return None
    try:
        return tuple(float(v) for v in np.asarray(thresholds, dtype=float).ravel())
    except (TypeError, ValueError):
        raise ValueError("thresholds must be a non-empty list of finite numbers >= 0") from None


class AbstractSelection(eqx.Module):
    """A rule that picks a point of the regression's threshold path."""

    __repr__ = describe

    # every final part has ``fraction``: the held-out fraction of every run (the rows a
    # sweep is not fitted on)

    def choose(self, data: _Data, regression: AbstractSparseRegression, traj: Trajectory) -> Choice:
        raise NotImplementedError

    def record(self) -> dict[str, Any]:
        raise NotImplementedError


def _grid_options(part: Any, regression: AbstractSparseRegression) -> dict[str, Any]:
    return {
        **regression.settings(),
        "n_thresholds": part.n_thresholds,
        "thresholds": part.thresholds,
    }


class Threshold(AbstractSelection):
    """One relative threshold, fitted on all the data (coefficients are measured on
    unit-RMS library columns against unit-RMS targets: 0.05 drops terms contributing
    under ~5 % of a derivative's typical size)."""

    value: float
    fraction: float = 0.2

    def __check_init__(self):
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)):
            raise ValueError(f"threshold must be a finite number >= 0, got {v!r}")
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"threshold must be a finite number >= 0, got {v!r}")
        _check_fraction(self.fraction)

    def choose(self, data: _Data, regression: AbstractSparseRegression, traj: Trajectory) -> Choice:
        xi = data.regress(data.all, self.value, regression.name, regression.settings())
        return Choice(xi, float(self.value))

    def record(self) -> dict[str, Any]:
        return {"holdout": self.fraction}


class NTerms(AbstractSelection):
    """The densest point of the threshold path (fitted on all the data) with at most ``n``
    non-zero coefficients."""

    n: int
    n_thresholds: int = 24
    thresholds: tuple[float, ...] | None = eqx.field(default=None, converter=_as_grid)
    fraction: float = 0.2

    def __check_init__(self):
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise ValueError(f"n_terms must be a positive int, got {self.n!r}")
        _check_grid(self.n_thresholds, self.thresholds)
        _check_fraction(self.fraction)

    def choose(self, data: _Data, regression: AbstractSparseRegression, traj: Trajectory) -> Choice:
        opts = _grid_options(self, regression)
        grid = threshold_grid(data, regression.name, opts)
        fits = list(data.regress_path(data.all, grid, regression.name, opts))
        counts = np.array([np.count_nonzero(x) for x in fits])
        ok = np.flatnonzero(counts <= self.n)
        pick = ok[np.argmax(counts[ok])] if ok.size else int(np.argmin(counts))
        sweep = pd.DataFrame({"threshold": grid, "n_terms": counts})
        sweep["selected"] = np.arange(len(grid)) == pick
        return Choice(fits[pick], float(grid[pick]), sweep, {"n_terms_requested": int(self.n)})

    def record(self) -> dict[str, Any]:
        return {"holdout": self.fraction}


def _heldout_sweep(data: _Data, regression: AbstractSparseRegression, grid, opts) -> pd.DataFrame:
    """The candidates fitted on the training rows, their held-out errors and AIC/BIC."""
    if data.train.n_rows < data.n_lib or data.test.n_rows < 2:
        raise ValueError(
            f"too few points for a held-out threshold sweep ({data.train.n_rows} training rows "
            f"for {data.n_lib} library terms); give threshold= or more data"
        )
    xis = data.regress_path(data.train, grid, regression.name, opts)
    err, se = data.heldout_errors(xis)
    aic, bic = data.information(xis, data.train)
    sweep = pd.DataFrame(
        {
            "threshold": grid,
            "n_terms": np.count_nonzero(xis, axis=(1, 2)),
            "heldout_error": err,
            "heldout_se": se,
            "aic": aic,
            "bic": bic,
        }
    )
    return sweep


class InformationCriterion(AbstractSelection):
    """The sweep point (fitted on the training rows) of least ``criterion``: "aic" or
    "bic" of the derivative residuals, with the derivative error as the variance floor."""

    criterion: str = "bic"
    n_thresholds: int = 24
    thresholds: tuple[float, ...] | None = eqx.field(default=None, converter=_as_grid)
    fraction: float = 0.2

    def __check_init__(self):
        if self.criterion not in ("aic", "bic"):
            raise ValueError(
                f"unknown criterion {self.criterion!r}; choose one of {list(CRITERIA)}"
            )
        _check_grid(self.n_thresholds, self.thresholds)
        _check_fraction(self.fraction)

    def choose(self, data: _Data, regression: AbstractSparseRegression, traj: Trajectory) -> Choice:
        opts = _grid_options(self, regression)
        grid = threshold_grid(data, regression.name, opts)
        sweep = _heldout_sweep(data, regression, grid, opts)
        sweep["criterion"] = sweep[self.criterion]
        pick = int(np.argmin(sweep[self.criterion].to_numpy()))
        sweep["selected"] = np.arange(len(sweep)) == pick
        thr = plateau_middle(sweep, pick)
        xi = data.regress(data.all, thr, regression.name, opts)
        return Choice(xi, thr, sweep, grid=grid, swept=True)

    def record(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "holdout": self.fraction}


class HeldOut(AbstractSelection):
    """The sparsest sweep point whose held-out derivative error is within a tolerance of
    the best (``tolerance``: fixed, relative; None adapts it to the derivative's error
    floor; errors below ``abs_tolerance`` of the variance are equal), the sweep fitted on
    all but the last ``fraction`` of every run. With ``check_rollout``, only candidates
    whose rollout over the data stays finite are eligible and, when the best of them
    tracks the data (R^2 >= 0.9), only those within ``rollout_slack`` (R^2) of it."""

    fraction: float = 0.2
    n_thresholds: int = 24
    thresholds: tuple[float, ...] | None = eqx.field(default=None, converter=_as_grid)
    tolerance: float | None = None
    abs_tolerance: float = 1e-6
    check_rollout: bool = True
    rollout_slack: float = 0.1

    def __check_init__(self):
        _check_fraction(self.fraction)
        _check_grid(self.n_thresholds, self.thresholds)
        slack = self.rollout_slack
        if isinstance(slack, bool) or not isinstance(slack, (int, float)) or not slack >= 0:
            raise ValueError(f"rollout_slack must be a number >= 0 (R^2 units), got {slack!r}")
        tol = self.tolerance
        if tol is not None and (
            isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0
        ):
            raise ValueError(f"tolerance must be a number >= 0 or None, got {tol!r}")

    def record(self) -> dict[str, Any]:
        return {"criterion": "holdout", "holdout": self.fraction}

    def choose(self, data: _Data, regression: AbstractSparseRegression, traj: Trajectory) -> Choice:
        opts = _grid_options(self, regression)
        grid = threshold_grid(data, regression.name, opts)
        sweep = _heldout_sweep(data, regression, grid, opts)
        sweep["criterion"] = sweep["heldout_error"]
        screen = None
        if self.check_rollout:
            refits = list(data.regress_path(data.all, grid, regression.name, opts))
            screen = self._screen(data, refits, sweep, traj)
        eligible = np.ones(len(sweep), dtype=bool) if screen is None else screen.eligible
        idx = np.flatnonzero(eligible)
        # the weak formulation's residuals are integrals over overlapping test functions:
        # neither the derivative-error floor nor a likelihood applies, the held-out band
        # alone decides (the sparsest candidate within one standard error of the best)
        columns = ["bic"] if data.weak is not None else []
        sub, tol = select(
            sweep.iloc[idx].drop(columns=columns).reset_index(drop=True),
            self.tolerance,
            self.abs_tolerance,
            data.floor,
        )
        pick = int(idx[sub])
        sweep["selected"] = np.arange(len(sweep)) == pick
        thr = plateau_middle(sweep, pick)
        xi = data.regress(data.all, thr, regression.name, opts)
        record = {"selection_tolerance": tol, "derivative_error_floor": data.floor}
        choice = Choice(xi, thr, sweep, record, grid=grid, swept=True)
        if screen is not None:
            choice = _plateau_rolls_out(choice, pick, screen, data, traj)
        return choice

    def _screen(self, data: _Data, refits: list, sweep: pd.DataFrame, traj: Trajectory) -> _Screen:
        """Which candidates may be selected, judged on each threshold's refit on all the
        data (the model returned): a model whose own rollout blows up over the data it was
        fitted on, or strays much further from them than the best candidate's, is no model
        of those data, however well it fits derivatives."""
        finite, r2 = rollout_quality(data.field, refits, traj)
        sweep["rollout_finite"], sweep["rollout_r2"] = finite, r2
        # informative only when some candidate with terms rolls out closer to the data
        # than dx/dt = 0 (a pooled model of runs with different dynamics may not);
        # otherwise only finiteness is asked
        empty = np.array([not np.any(xi) for xi in refits])
        with_terms = finite & ~empty
        informative = bool(finite.any() and r2[finite].max() >= ROLLOUT_INFORMATIVE)
        eligible = np.ones(len(sweep), dtype=bool)
        if (
            informative
            and with_terms.any()
            and (not (finite & empty).any() or r2[with_terms].max() > r2[finite & empty].max())
        ):
            eligible = finite & (r2 >= r2[finite].max() - float(self.rollout_slack))
        elif finite.any():
            eligible = finite
        return _Screen(refits, eligible, informative)


@dataclasses.dataclass
class _Screen:
    """The rollout screen of the held-out sweep: every threshold's refit on all the data,
    which may be selected, and whether rollouts could tell candidates apart."""

    refits: list[np.ndarray]
    eligible: np.ndarray
    informative: bool


def _plateau_rolls_out(
    choice: Choice, pick: int, screen: _Screen, data: _Data, traj: Trajectory
) -> Choice:
    """The refit at the plateau's middle must integrate as well; else the selected
    threshold itself (whose refit does). The screen's refits go with the choice (the
    matching stage starts from them)."""
    sweep, grid, refits = choice.sweep, choice.grid, screen.refits
    assert sweep is not None and grid is not None
    choice = dataclasses.replace(choice, refits=refits)
    eligible = np.flatnonzero(screen.eligible)
    screened = any(np.array_equal(choice.xi != 0, refits[j] != 0) for j in eligible)
    if not sweep["rollout_finite"].iloc[pick] or choice.threshold == grid[pick] or screened:
        return choice
    finite, r2 = rollout_quality(data.field, [choice.xi], traj)
    close = r2[0] >= sweep["rollout_r2"].iloc[pick] - 1e-3 or not screen.informative
    if finite[0] and close:
        return choice
    return dataclasses.replace(choice, xi=refits[pick], threshold=float(grid[pick]))


def selection_part(
    criterion: str | AbstractSelection,
    threshold: float | None,
    n_terms: int | None,
    options: dict[str, Any],
) -> AbstractSelection:
    """The selection part the shorthands stand for (``criterion``, ``threshold=``,
    ``n_terms=`` and the legacy options holdout, n_thresholds, thresholds, tolerance,
    abs_tolerance, check_rollout, rollout_slack, which are removed from ``options``)."""
    keys = {
        "holdout": "fraction",
        "n_thresholds": "n_thresholds",
        "thresholds": "thresholds",
        "tolerance": "tolerance",
        "abs_tolerance": "abs_tolerance",
        "check_rollout": "check_rollout",
        "rollout_slack": "rollout_slack",
    }
    kw = {field: options.pop(k) for k, field in keys.items() if k in options}
    if isinstance(criterion, AbstractSelection):
        if kw or threshold is not None or n_terms is not None:
            given = (
                [k for k in keys if keys[k] in kw]
                + (["threshold"] if threshold is not None else [])
                + (["n_terms"] if n_terms is not None else [])
            )
            raise ValueError(f"give {given} in the selection part, not beside it: {criterion!r}")
        return criterion
    if criterion not in CRITERIA:
        raise ValueError(
            f"unknown criterion {criterion!r}; choose one of {list(CRITERIA)} or pass a "
            "dynafit.parts selection part"
        )
    if threshold is not None and n_terms is not None:
        raise ValueError("give threshold or n_terms, not both")
    if "fraction" in kw:
        _check_fraction(kw["fraction"])
    if "rollout_slack" in kw:
        HeldOut(rollout_slack=kw["rollout_slack"])
    if threshold is not None:
        return Threshold(threshold, **_only(kw, ("fraction",)))
    if n_terms is not None:
        return NTerms(n_terms, **_only(kw, ("fraction", "n_thresholds", "thresholds")))
    if criterion == "holdout":
        return HeldOut(**kw)
    return InformationCriterion(criterion, **_only(kw, ("fraction", "n_thresholds", "thresholds")))


def _only(kw: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The legacy options a part takes (the others did not apply to it and are dropped,
    as before the parts)."""
    return {k: v for k, v in kw.items() if k in fields}
