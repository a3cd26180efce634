"""Coefficient uncertainty from ensembles of sparse fits.

:func:`fit_ensemble` fits a model as :func:`dynafit.fit` does (same threshold
selection), then refits it ``n_models`` times on bootstrap resamples of the time samples
(bagging) with a few library terms left out of each fit (library bagging), as pysindy's
``EnsembleOptimizer`` does. Each coefficient gets a mean, a median, a standard deviation,
a central interval and an inclusion probability (the fraction of fits in which it is
non-zero). The returned Model's coefficients are the ensemble median (a term absent from
most fits is zero); the summary is stored as plain JSON in
``model.options["uncertainty"]``, so it is saved and loaded with the model, and read back
as numpy arrays by :func:`uncertainty`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sympy
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._axes import figure_and_axes
from .._derivatives import recorded_method
from .._fit_family import DEFAULT_OPTIONS
from .._fit_family import fit_family as fit
from .._intervals import UNCERTAINTY_KEYS, uncertainty
from .._model import Model
from .._regression import _Data, _Rows, select
from .._trajectory import Trajectory
from ..families._base import AbstractFamily, get_family


def _check_ensemble(
    n_models: Any,
    level: Any,
    sample_fraction: Any,
    drop_terms: Any,
    aggregate: Any,
    fit_options: dict[str, Any],
) -> None:
    if isinstance(n_models, bool) or not isinstance(n_models, (int, np.integer)):
        raise ValueError(f"n_models must be an int >= 2, got {n_models!r}")
    if n_models < 2:
        raise ValueError(f"an ensemble needs at least 2 models, got n_models={n_models}")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if not (isinstance(sample_fraction, (int, float)) and 0 < sample_fraction <= 1):
        raise ValueError(f"sample_fraction must be in (0, 1], got {sample_fraction!r}")
    if (
        isinstance(drop_terms, bool)
        or not isinstance(drop_terms, (int, np.integer))
        or drop_terms < 0
    ):
        raise ValueError(f"drop_terms must be a non-negative int, got {drop_terms!r}")
    if aggregate not in ("median", "mean", "base"):
        raise ValueError(f"aggregate must be 'median', 'mean' or 'base', got {aggregate!r}")
    if fit_options.get("optimizer", "stlsq") != "stlsq":
        raise ValueError("fit_ensemble bags STLSQ fits; do not pass optimizer=")


def _member_options(base: Model, fit_options: dict[str, Any]) -> dict[str, Any]:
    """The members' regression options: they regress on the plain fit's own derivative
    estimate (the method and order that "auto" resolved to, not the options as given)."""
    opts = {**DEFAULT_OPTIONS, **{k: v for k, v in fit_options.items() if k in DEFAULT_OPTIONS}}
    opts["order"] = int(base.options["order"])
    if "window" in base.options:
        opts["window"] = base.options["window"]
    return opts


def fit_ensemble(
    traj: Trajectory,
    family: str | AbstractFamily = "linear",
    *,
    n_models: int = 20,
    level: float = 0.9,
    sample_fraction: float = 1.0,
    drop_terms: int = 0,
    aggregate: str = "median",
    member_threshold: bool = True,
    seed: int = 0,
    **fit_options: Any,
) -> Model:
    """An ensemble fit: a Model with per-coefficient uncertainty (see the module doc).

    - ``n_models``: ensemble size, at least 2.
    - ``level``: coverage of the central interval (0.9: the 5th to 95th percentile).
    - ``sample_fraction``: each fit draws this fraction of the time samples, with
      replacement (1.0: the classical bootstrap).
    - ``drop_terms``: library terms left out of each fit at random (library bagging; 0,
      the default: bagging over samples only). A term's statistics count only the fits
      whose library held it.
    - ``aggregate``: the returned coefficients, "median" (bragging, default), "mean", or
      "base" (the plain fit on all data).
    - ``member_threshold``: each member picks its own threshold with the plain fit's rule
      (held-out error on the held-out blocks, sparsest within tolerance) from the sweep
      thresholds near the plain fit's choice (True, default); or every member uses the
      plain fit's threshold (False: faster, but terms just below that threshold then
      enter about half of the fits).
    - ``**fit_options``: passed to :func:`dynafit.fit` (derivative, threshold, ...). With
      an explicit ``threshold=`` every member uses it.
    """
    _check_ensemble(n_models, level, sample_fraction, drop_terms, aggregate, fit_options)
    base = fit(traj, family, **fit_options)
    opts = _member_options(base, fit_options)
    data = _Data.build(traj, get_family(family), recorded_method(base.options["derivative"]), opts)
    threshold = float(base.options.get("threshold", 0.0))
    n_lib = data.n_lib
    if drop_terms >= n_lib:
        raise ValueError(f"drop_terms={drop_terms} leaves no library terms (library has {n_lib})")

    grid = _member_grid(base) if member_threshold else None

    if "threshold" in fit_options or "n_terms" in fit_options:
        grid = None
    rng = np.random.default_rng(seed)
    coefs = np.empty((n_models, *base.coefficients.shape))
    avail = np.ones_like(coefs, dtype=bool)
    thresholds = np.full(n_models, threshold)
    for j in range(n_models):
        dropped = rng.choice(n_lib, size=drop_terms, replace=False) if drop_terms else []
        avail[j][:, dropped] = False
        if grid is not None:
            train = _resample(data.train, sample_fraction, dropped, rng)
            thresholds[j] = _pick_threshold(data, train, grid, opts)
        sample = _resample(data.all, sample_fraction, dropped, rng)
        coefs[j] = data.regress(sample, float(thresholds[j]), "stlsq", opts)

    summary = summarize_coefficients(coefs, level, available=avail)
    xi = {"median": summary["median"], "mean": summary["mean"], "base": base.coefficients}[
        aggregate
    ]
    record = {
        "n_models": int(n_models),
        "level": float(level),
        "sample_fraction": float(sample_fraction),
        "drop_terms": int(drop_terms),
        "aggregate": aggregate,
        "member_threshold": bool(grid is not None),
        "thresholds": thresholds.tolist(),
        "seed": int(seed),
        **{key: np.asarray(v).tolist() for key, v in summary.items()},
    }
    return base.with_coefficients(xi, variant="ensemble", uncertainty=record)


def _resample(rows: _Rows, fraction: float, dropped: Any, rng: np.random.Generator) -> _Rows:
    """A bootstrap sample of the rows (with replacement), library columns ``dropped`` zeroed."""
    k = max(2, int(round(fraction * rows.n_rows)))
    idx = rng.integers(0, rows.n_rows, size=k)
    theta = rows.theta[idx]
    if len(dropped):
        theta = theta.copy()
        theta[:, dropped] = 0.0
    return _Rows(theta, rows.g[idx], rows.dxdt[idx], rows.blocks[idx])


def _member_grid(base: Model) -> np.ndarray | None:
    """The sweep thresholds from the lowest-error point to a few past the chosen one."""
    sweep = base.sweep
    if sweep is None or "heldout_error" not in getattr(sweep, "columns", ()):
        return None
    thr = sweep["threshold"].to_numpy(dtype=float)
    err = sweep["heldout_error"].to_numpy(dtype=float)
    chosen = int(np.flatnonzero(sweep["selected"].to_numpy())[0]) if "selected" in sweep else 0
    best = int(np.nanargmin(np.where(np.isfinite(err), err, np.inf)))
    lo = max(0, min(best, chosen - 2))
    return thr[lo : min(len(thr), chosen + 4)]


def _pick_threshold(data: _Data, train: _Rows, grid: np.ndarray, opts: dict) -> float:
    """The plain fit's rule on one resample: held-out error, sparsest within tolerance."""
    rows = []
    for thr in grid:
        xi = data.regress(train, float(thr), "stlsq", opts)
        err, se = data.heldout_error(xi)
        rows.append((float(thr), int(np.count_nonzero(xi)), err, se))
    sweep = pd.DataFrame(rows, columns=["threshold", "n_terms", "heldout_error", "heldout_se"])
    pick, _ = select(sweep, opts["tolerance"], opts["abs_tolerance"], data.floor)
    return float(grid[pick])


def summarize_coefficients(
    coefs: np.ndarray, level: float = 0.9, available: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Mean, median, std, central ``level`` interval and inclusion probability over axis 0
    (the models), counting for each coefficient only the models where it was
    ``available`` (its term was in the library; default: all)."""
    coefs = np.asarray(coefs, dtype=np.float64)
    if coefs.ndim < 2 or coefs.shape[0] < 2:
        raise ValueError(f"need coefficients of at least 2 models, got shape {coefs.shape}")
    lo, hi = (1 - level) / 2, (1 + level) / 2
    if available is None or np.all(available):
        return {
            "mean": coefs.mean(axis=0),
            "median": np.median(coefs, axis=0),
            "std": coefs.std(axis=0, ddof=1),
            "lower": np.quantile(coefs, lo, axis=0),
            "upper": np.quantile(coefs, hi, axis=0),
            "inclusion": (coefs != 0).mean(axis=0),
        }
    masked = np.where(available, coefs, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = {
            "mean": np.nanmean(masked, axis=0),
            "median": np.nanmedian(masked, axis=0),
            "std": np.nanstd(masked, axis=0, ddof=1),
            "lower": np.nanquantile(masked, lo, axis=0),
            "upper": np.nanquantile(masked, hi, axis=0),
            "inclusion": (coefs != 0).sum(axis=0) / np.maximum(available.sum(axis=0), 1),
        }
    return {k: np.nan_to_num(v, nan=0.0) for k, v in out.items()}


def plot_inclusion(model: Model, *, ax: Axes | None = None, annotate: bool | None = None) -> Figure:
    """The coefficient matrix as a heatmap of inclusion probabilities (rows: equations,
    columns: library terms), each cell annotated with the coefficient (when small enough
    to read). Without ensemble information, the support (1 where non-zero). Returns the
    matplotlib Figure."""
    unc = uncertainty(model)
    prob = unc["inclusion"] if unc is not None else (model.coefficients != 0).astype(float)
    m, n = prob.shape
    fig, ax = figure_and_axes(ax, (min(2 + 0.45 * n, 18), min(1.5 + 0.4 * m, 16)))
    im = ax.imshow(prob, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(n))
    ax.set_xticklabels([sympy.sstr(t) for t in model.terms], rotation=90, fontsize=7)
    ax.set_yticks(range(m))
    ax.set_yticklabels([f"d{nm}/dt" for nm in model.names], fontsize=7)
    title = f"inclusion probability ({unc['n_models']} models)" if unc is not None else "support"
    ax.set_title(f"{model.family.name}: {title}")
    fig.colorbar(im, ax=ax, fraction=0.03)
    if annotate is None:
        annotate = m * n <= 400
    if annotate:
        xi = model.coefficients
        for i in range(m):
            for k in range(n):
                if xi[i, k] != 0 or prob[i, k] > 0:
                    ax.text(
                        k,
                        i,
                        f"{xi[i, k]:.2g}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if prob[i, k] < 0.6 else "black",
                    )
    fig.tight_layout()
    return fig


def inclusion_table(model: Model) -> pd.DataFrame:
    """A long DataFrame: equation, term, coefficient, mean, lower, upper, inclusion."""
    unc = uncertainty(model)
    if unc is None:
        raise ValueError("model has no ensemble information; fit it with dynafit.fit_ensemble")
    rows = []
    terms: Sequence[Any] = model.terms
    for i, name in enumerate(model.names):
        for k, term in enumerate(terms):
            rows.append(
                {
                    "equation": name,
                    "term": sympy.sstr(term),
                    "coefficient": float(model.coefficients[i, k]),
                    **{key: float(unc[key][i, k]) for key in UNCERTAINTY_KEYS},
                }
            )
    return pd.DataFrame(rows)
