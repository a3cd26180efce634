"""Figures for fitted models (matplotlib; every function returns a ``Figure``).

Nothing here calls ``plt.show`` or needs a display: figures are built with the
object-oriented API on the Agg canvas, so they work headless and in threads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from .._survival import recorded_survivors
from .._trajectory import Trajectory

if TYPE_CHECKING:  # for annotations only
    from .._model import Model


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _models_from(models: Any) -> dict[str, Any]:
    """``{label: Model}`` from a mapping, a leaderboard DataFrame or a single Model."""
    if isinstance(models, pd.DataFrame):
        out = {}
        for _, row in models.iterrows():
            if row.get("model") is None or row.get("status", "ok") != "ok":
                continue
            variant = row.get("variant", "sindy")
            label = row["family"] if variant in ("sindy", None) else f"{row['family']} ({variant})"
            out[label] = row["model"]
        return out
    if isinstance(models, Mapping):
        return dict(models)
    return {_family_label(models): models}


def plot_rollouts(
    traj: Trajectory,
    models: Mapping[str, Model] | pd.DataFrame | Model,
    *,
    run: int = 0,
    variables: Sequence[str] | None = None,
    max_variables: int = 12,
) -> Figure:
    """Each variable's data (points) against each model's rollout from the first state.

    ``models``: a ``{label: Model}`` mapping, a leaderboard from ``compare`` (its
    ``model`` column) or one Model. For a batch, run ``run`` is drawn. Diverged
    rollouts are drawn up to where they stop being finite. ``variables``: which to draw;
    default :func:`shown_variables` (the run's survivors, then a sample of the rest, at
    most ``max_variables``).
    """
    data = traj.run(run) if traj.is_batch else traj
    # every run's first state at once: the same shapes as batch scoring, so no new compile
    x0 = traj.x[:, 0] if traj.is_batch else traj.x[0]
    models = _models_from(models)
    if variables is not None:
        names = list(variables)
        what = ""
    else:
        names, what = shown_variables(data, max_variables)
    idx = [data.names.index(n) for n in names]
    ncols = min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = _figure(3.2 * ncols, 2.4 * nrows + 0.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    rollouts = {}
    for label, model in models.items():
        try:
            with np.errstate(all="ignore"):
                xs = np.asarray(model.simulate(data.t, x0), dtype=float)
                rollouts[label] = xs[run] if traj.is_batch else xs
        except Exception as err:  # a rollout that cannot run is shown as missing
            rollouts[label] = err
    lo, hi = data.x.min(axis=0), data.x.max(axis=0)
    survived = set(_survivors_shown(data))
    for ax, name, j in zip(axes, names, idx):
        ax.plot(data.t, data.x[:, j], ".", ms=2.5, color="0.35", label="data")
        for k, (label, xs) in enumerate(rollouts.items()):
            if isinstance(xs, Exception):
                continue
            y = np.where(np.isfinite(xs[:, j]), xs[:, j], np.nan)
            ax.plot(data.t, y, "-", lw=1.4, color=f"C{k}", label=label)
        span = hi[j] - lo[j] or max(abs(hi[j]), 1.0)
        ax.set_ylim(lo[j] - 0.5 * span, hi[j] + 0.5 * span)  # a blow-up does not hide the data
        ax.set_title(f"{name} (survivor)" if name in survived else name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"data vs rollouts{what}", fontsize=10)
    return fig


def _survivors_shown(run: Trajectory) -> list[str]:
    """The survivors a run records, among its variables (a selection of variables keeps
    the run's record of all of them; the others are left out here)."""
    try:
        return recorded_survivors(run) or []
    except ValueError:
        value = run.meta.get("survivors")
        value = value if isinstance(value, (list, tuple)) else []
        return [str(v) for v in value if str(v) in run.names]


def shown_variables(run: Trajectory, max_variables: int = 12) -> tuple[list[str], str]:
    """Which variables of one run a figure draws, and a caption saying so.

    Every variable when there are at most ``max_variables``; else the survivors the run
    records (meta ``"survivors"``, at most ``max_variables``), then the rest sampled
    evenly over their order to fill the figure, drawn in the variables' order.
    """
    if max_variables < 1:
        raise ValueError(f"max_variables must be >= 1, got {max_variables}")
    names = list(run.names)
    if len(names) <= max_variables:
        return names, ""
    survived = _survivors_shown(run)[:max_variables]
    rest = [n for n in names if n not in survived]
    k = max_variables - len(survived)
    sample = [rest[i] for i in np.unique(np.linspace(0, len(rest) - 1, k).round().astype(int))]
    chosen = set(survived) | set(sample)
    shown = [n for n in names if n in chosen]
    if survived:
        what = (
            f" (the {len(survived)} survivors and {len(sample)} of the other {len(rest)} variables)"
        )
    else:
        what = f" ({len(shown)} of {len(names)} variables, evenly spread)"
    return shown, what


def plot_coefficients(
    model: Model, *, title: str | None = None, annotate: bool | None = None
) -> Figure:
    """The coefficient matrix as a heatmap: library terms (rows) x variables (columns).

    Zero coefficients are blank; the colour scale is symmetric around zero.
    """
    coef = np.asarray(model.coefficients, dtype=float)  # (m, n_terms)
    names = list(model.names)
    terms = [str(t) for t in model.terms]
    keep = np.flatnonzero(np.any(coef != 0, axis=0))
    if keep.size == 0:
        keep = np.arange(coef.shape[1])
    mat = coef[:, keep].T  # terms x variables
    labels = [terms[k] for k in keep]
    fig = _figure(1.0 + 0.45 * max(len(names), 4), 1.0 + 0.3 * max(len(labels), 4))
    ax = fig.add_subplot()
    vmax = float(np.nanmax(np.abs(mat))) if mat.size else 1.0
    vmax = vmax if np.isfinite(vmax) and vmax > 0 else 1.0
    shown = np.ma.masked_where(mat == 0, mat)
    im = ax.imshow(shown, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -vmax, vmax), aspect="auto")
    ax.set_xticks(range(len(names)), [f"d{n}/dt" for n in names], rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("equation")
    ax.set_ylabel("term (zero rows hidden)" if keep.size < coef.shape[1] else "term")
    if annotate is None:
        annotate = mat.size <= 150
    if annotate:
        for (r, c), v in np.ndenumerate(mat):
            if v != 0:
                ax.text(c, r, f"{v:.2g}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, shrink=0.8, label="coefficient")
    ax.set_title(title or f"{_family_label(model)}: coefficients", fontsize=10)
    return fig


def _family_label(model: Any) -> str:
    fam = getattr(model, "family", None)
    name = getattr(fam, "name", None) or (fam if isinstance(fam, str) else None)
    return str(name or "model")


def _sweep_columns(sweep: pd.DataFrame) -> tuple[str, str]:
    """(terms column, error column) of a model's threshold sweep."""
    terms = next((c for c in ("n_terms", "terms") if c in sweep.columns), None)
    error = next(
        (
            c
            for c in ("heldout_error", "held_out_error", "error", "criterion")
            if c in sweep.columns
        ),
        None,
    )
    if terms is None or error is None:
        raise ValueError(f"sweep lacks n_terms / held-out error columns: {list(sweep.columns)}")
    return terms, error


def plot_sweep(model: Model, *, title: str | None = None) -> Figure:
    """The threshold sweep behind a fit: number of terms against held-out error, the
    Pareto front highlighted and the chosen model marked."""
    sweep = getattr(model, "sweep", None)
    if sweep is None or len(sweep) == 0:
        raise ValueError("this model has no threshold sweep (it was fitted at a fixed point)")
    sweep = pd.DataFrame(sweep)
    tcol, ecol = _sweep_columns(sweep)
    n = sweep[tcol].to_numpy(dtype=float)
    err = sweep[ecol].to_numpy(dtype=float)
    fig = _figure(5.5, 3.8)
    ax = fig.add_subplot()
    finite = np.isfinite(err) & np.isfinite(n)
    ax.plot(n[finite], err[finite], "o", color="0.6", ms=4, label="threshold sweep")
    front = _pareto(n, err)
    ax.plot(n[front], err[front], "-o", color="C0", ms=4, label="Pareto front")
    chosen = _chosen_index(sweep, model, tcol)
    if chosen is not None:
        ax.plot(n[chosen], err[chosen], "*", color="C3", ms=15, label="chosen", zorder=5)
    if finite.any() and np.all(err[finite] > 0) and err[finite].max() / err[finite].min() > 50:
        ax.set_yscale("log")
    ax.set_xlabel("number of terms")
    ax.set_ylabel(ecol.replace("_", " "))
    ax.legend(fontsize=8)
    ax.set_title(title or f"{_family_label(model)}: sparsity vs held-out error", fontsize=10)
    return fig


def _pareto(n: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both terms and error, by terms."""
    ok = np.flatnonzero(np.isfinite(n) & np.isfinite(err))
    order = ok[np.lexsort((err[ok], n[ok]))]
    front, best = [], np.inf
    for i in order:
        if err[i] < best:
            front.append(i)
            best = err[i]
    return np.asarray(front, dtype=int)


def _chosen_index(sweep: pd.DataFrame, model: Any, tcol: str) -> int | None:
    for col in ("chosen", "selected"):
        if col in sweep.columns and sweep[col].astype(bool).any():
            return int(np.flatnonzero(sweep[col].astype(bool).to_numpy())[0])
    n_terms = int(np.count_nonzero(np.asarray(model.coefficients)))
    hits = np.flatnonzero(sweep[tcol].to_numpy() == n_terms)
    return int(hits[0]) if hits.size else None


def plot_leaderboard(board: pd.DataFrame, by: str | None = None) -> Figure:
    """A bar per leaderboard row (family and variant) of the ranking criterion, best on top;
    diverged and not-applicable rows are labelled instead of drawn."""
    by = by or str(board.attrs.get("by", "bic"))
    labels, values, notes = [], [], []
    for _, row in board.iterrows():
        variant = row.get("variant", "sindy")
        labels.append(row["family"] + ("" if variant == "sindy" else f" ({variant})"))
        v = pd.to_numeric(pd.Series([row.get(by)]), errors="coerce").iloc[0]
        if row.get("status", "ok") != "ok":
            values.append(np.nan)
            notes.append("not applicable")
        elif bool(row.get("diverged", False)) or not np.isfinite(v):
            values.append(np.nan)
            notes.append("diverged")
        else:
            values.append(float(v))
            notes.append("")
    fig = _figure(6.0, 0.9 + 0.45 * max(len(labels), 2))
    ax = fig.add_subplot()
    y = np.arange(len(labels))[::-1]
    vals = np.asarray(values, dtype=float)
    ax.barh(y, np.nan_to_num(vals, nan=0.0), color=[f"C{i % 10}" for i in range(len(labels))])
    for yi, v, note in zip(y, vals, notes):
        ax.text(0, yi, f"  {note}" if note else f" {v:.4g}", va="center", fontsize=8)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(by)
    ax.set_title(f"leaderboard by {by} (best on top)", fontsize=10)
    return fig
