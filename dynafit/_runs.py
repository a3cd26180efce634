"""Tables of many runs: score distributions, win counts, R^2 against dimension.

Both functions read the long per-run table of :func:`dynafit.fit_many` (one row per run,
family and variant; the run's config such as ``dim`` and ``seed`` as columns; the scores
of :func:`dynafit.compare`). Several such tables (for example one per embedding
dimension) can be concatenated first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._axes import figure_and_axes
from ._score_names import RUN_SUMMARY_SCORES, Better, orientation

_RUN_KEYS = ("run", "seed", "dim", "p", "embed_seed", "mlp_seed", "split_seed", "source")


def _run_columns(table: pd.DataFrame, run_cols: Sequence[str] | None) -> list[str]:
    if run_cols is not None:
        missing = [c for c in run_cols if c not in table.columns]
        if missing:
            raise ValueError(f"run columns {missing} not in the table ({list(table.columns)})")
        return list(run_cols)
    cols = [c for c in _RUN_KEYS if c in table.columns]
    if not cols:
        raise ValueError("the table has no run column; give run_cols=")
    return cols


def summarize_runs(
    table: pd.DataFrame,
    *,
    scores: Sequence[str] | None = None,
    by: Sequence[str] = ("family", "variant"),
    win_by: str = "bic",
    run_cols: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per family (and variant): how its scores are distributed over runs and how often it wins.

    Columns: the ``by`` keys, ``n_runs``, ``n_diverged``, and for each score present
    ``<score>_mean``, ``<score>_std``, ``<score>_median`` (over runs whose value is
    finite: a diverged run's -inf would hide the rest; ``n_diverged`` counts them), then
    ``wins`` and ``win_rate``: in how many runs this row had the best ``win_by`` (larger
    is better for R^2 and skill scores, smaller for rmse, bic, aic, n_terms; ties share
    the win). A run is identified by ``run_cols`` (default: those of run, seed, dim, p,
    ... present). Sorted by wins, then by the first score's mean.
    """
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"summarize_runs needs a pandas DataFrame, got {type(table).__name__}")
    if table.empty:
        raise ValueError("the table is empty")
    by = [b for b in by if b in table.columns]
    if not by:
        raise ValueError("the table has none of the grouping columns (family, variant)")
    rc = _run_columns(table, run_cols)
    if scores is None:
        scores = [s for s in RUN_SUMMARY_SCORES if s in table.columns]
    else:
        missing = [s for s in scores if s not in table.columns]
        if missing:
            raise ValueError(f"scores {missing} not in the table")
    if win_by not in table.columns:
        raise ValueError(f"win_by={win_by!r} is not a column of the table")
    data = table.copy()
    if "status" in data.columns:
        ok = data["status"].isna() | (data["status"].astype(str) == "ok")
    else:
        ok = pd.Series(True, index=data.index)
    diverged = (
        data["diverged"].fillna(False).astype(bool)
        if "diverged" in data.columns
        else pd.Series(False, index=data.index)
    )

    # wins: per run, the rows with the best win_by value
    sign = orientation(win_by, default=Better.LOWER)  # a column of the user's: smaller wins
    val = pd.to_numeric(data[win_by], errors="coerce") * sign
    val = val.where(ok & np.isfinite(val), -np.inf)
    best = val.groupby([data[c] for c in rc]).transform("max")
    data["_win"] = (val == best) & np.isfinite(best)

    rows = []
    for key, g in data.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, key))
        row["n_runs"] = int(len(g))
        row["n_diverged"] = int(diverged.loc[g.index].sum())
        for s in scores:
            v = pd.to_numeric(g[s], errors="coerce").to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            row[f"{s}_mean"] = float(v.mean()) if v.size else math.nan
            row[f"{s}_std"] = float(v.std(ddof=1)) if v.size > 1 else math.nan
            row[f"{s}_median"] = float(np.median(v)) if v.size else math.nan
        row["wins"] = int(g["_win"].sum())
        rows.append(row)
    out = pd.DataFrame(rows)
    n_runs = data.groupby([data[c] for c in rc]).ngroups
    out["win_rate"] = out["wins"] / max(n_runs, 1)
    sort = ["wins"] + ([f"{scores[0]}_mean"] if scores else [])
    return out.sort_values(sort, ascending=False, kind="stable").reset_index(drop=True)


def plot_r2_vs_dim(
    table: pd.DataFrame,
    *,
    score: str | None = None,
    dim: str = "dim",
    by: str = "family",
    variant: str | None = "sindy",
    ax: Axes | None = None,
) -> Figure:
    """``score`` (default: the paper's one-step R^2, else deriv_r2) against ``dim`` per
    family: the mean over runs with a band of one standard deviation and the runs as
    dots, as in the paper's figure of linear-ODE R^2 over embedding sizes. Only rows of
    ``variant`` (None: all). Returns the matplotlib Figure."""
    if dim not in table.columns:
        raise ValueError(f"the table has no {dim!r} column (the runs' embedding dimension)")
    if score is None:
        score = next((s for s in ("onestep_r2", "deriv_r2", "rollout_r2") if s in table), None)
        if score is None:
            raise ValueError("the table has no R^2 column")
    elif score not in table.columns:
        raise ValueError(f"the table has no {score!r} column")
    data = table
    if variant is not None and "variant" in data.columns:
        data = data[data["variant"] == variant]
    fig, ax = figure_and_axes(ax, (5.5, 3.8))
    for name, g in data.groupby(by, sort=False):
        v = pd.to_numeric(g[score], errors="coerce")
        d = pd.to_numeric(g[dim], errors="coerce")
        keep = np.isfinite(v) & np.isfinite(d)
        if not keep.any():
            continue
        stats = v[keep].groupby(d[keep]).agg(["mean", "std"]).sort_index()
        (line,) = ax.plot(stats.index, stats["mean"], marker="o", label=str(name))
        ax.fill_between(
            stats.index,
            stats["mean"] - stats["std"].fillna(0),
            stats["mean"] + stats["std"].fillna(0),
            color=line.get_color(),
            alpha=0.2,
        )
        ax.scatter(d[keep], v[keep], s=8, color=line.get_color(), alpha=0.4)
    dims = np.unique(pd.to_numeric(data[dim], errors="coerce").dropna())
    if dims.size and dims.min() > 0 and dims.max() / dims.min() >= 8:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(f"embedding dimension ({dim})")
    ax.set_ylabel(score.replace("_", " "))
    ax.set_title(f"{score} over embedding dimension")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
