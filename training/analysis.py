"""The paper's analyses of circle trajectories, shared by ``dynafit reproduce`` and the notebooks.

arXiv 2405.17420 ("Survival of the Fittest Representation") makes five claims about
networks trained on modular addition; each function here computes the numbers behind
one of them from trainer trajectories (a batch ``Trajectory`` whose per-run meta holds
the trainer's config), and each ``plot_*`` draws the matching figure:

- only a few circles survive (p = 59, dim = 128)      :func:`survivor_counts`
- more survive with a larger embedding                 :func:`survivor_counts` by ``dim``
- the fittest (high initial signal, high initial
  gradient) survive: ROC AUC                          :func:`fittest_auc`
- scaling a circle's initial signal up makes it
  more likely to survive                              :func:`intervention_table`
- a linear ODE describes the early dynamics (R^2
  against the embedding dimension)                    :func:`linear_r2`

Survival follows the reference code (docs/guide/circles.md): circle k is
alive at the end of training when S_k is above twice the spectrum's mean,
``dynafit.circles.survival_threshold`` and ``alive``; the initial gradient of circle k is
(S_k(4) - S_k(3)) / S_k(0), read from the trajectory itself.

Everything returns pandas DataFrames or plain dicts; figures are matplotlib ``Figure``
objects built without pyplot (they work headless).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression

import dynafit
from dynafit import Trajectory, circles
from dynafit.families import MeanFieldLV
from dynafit.internal import onestep_r2

__all__ = [
    "circle_models",
    "circle_table",
    "euler_r2",
    "fittest_auc",
    "intervention_table",
    "linear_r2",
    "load_experiment",
    "plot_fittest",
    "plot_intervention",
    "plot_r2_vs_dim",
    "plot_spectrum",
    "plot_survivors_vs_dim",
    "plot_trajectories",
    "r2_by_dim",
    "survivor_counts",
    "survivors_by_dim",
]

#: The step whose difference to the step before gives the paper's "initial gradient".
GRADIENT_STEP = 4


# ------------------------------------------------------------------------- data
def load_experiment(folder: str | Path) -> Trajectory:
    """All runs of a sweep folder (one ``.npz`` per block) as one batch Trajectory."""
    traj = dynafit.load(folder)
    return traj if traj.is_batch else Trajectory.stack([traj])


def _runs_meta(traj: Trajectory) -> list[dict[str, Any]]:
    runs = traj.meta.get("runs") if traj.is_batch else [traj.meta]
    if not runs or len(runs) != traj.n_runs:
        raise ValueError("trajectory meta lacks the trainer's per-run dicts ('runs')")
    return runs


def _config(run: Mapping[str, Any]) -> dict[str, Any]:
    config = run.get("config")
    if not isinstance(config, Mapping):
        raise ValueError("a run's meta lacks its trainer config ('config')")
    return dict(config)


def run_table(traj: Trajectory) -> pd.DataFrame:
    """One row per run: seed, the config values that vary in the paper's sweeps, accuracy."""
    rows = []
    for r, run in enumerate(_runs_meta(traj)):
        cfg = _config(run)
        rows.append(
            {
                "run": r,
                "seed": run.get("seed"),
                "embed_seed": run.get("embed_seed"),
                "p": cfg.get("p"),
                "dim": cfg.get("dim"),
                "steps": cfg.get("steps"),
                "dtype": cfg.get("dtype"),
                "scale_freqs": tuple(cfg.get("scale_freqs") or ()),
                "scale_factor": float(cfg.get("scale_factor", 1.0)),
                "final_test_acc": run.get("final_test_acc"),
            }
        )
    return pd.DataFrame(rows)


def circle_table(traj: Trajectory) -> pd.DataFrame:
    """One row per run and circle: initial signal and gradient, final signal, alive.

    Columns: ``run, seed, embed_seed, dim, scale_factor, k, name, scaled`` (k is one of
    the run's intervened frequencies), ``init_signal`` S_k(0), ``init_gradient``
    (S_k(4) - S_k(3)) / S_k(0), ``final_signal``, ``threshold`` (twice the final
    spectrum's mean) and ``alive``.
    """
    if traj.n_times <= GRADIENT_STEP:
        raise ValueError(
            f"the initial gradient needs steps 0..{GRADIENT_STEP}; this trajectory has "
            f"{traj.n_times} points"
        )
    x = traj.x if traj.is_batch else traj.x[None]
    s0 = traj.aux.get("s0")
    s0_final = np.zeros(x.shape[0]) if s0 is None else np.asarray(s0).reshape(x.shape[0], -1)[:, -1]
    runs = run_table(traj)
    init = x[:, 0]
    grad = (x[:, GRADIENT_STEP] - x[:, GRADIENT_STEP - 1]) / init
    final = x[:, -1]
    threshold = circles.survival_threshold(final, s0_final)
    alive = circles.alive(final, s0_final)
    m = x.shape[-1]
    ks = np.arange(1, m + 1)
    frames = []
    for r, info in runs.iterrows():
        frames.append(
            pd.DataFrame(
                {
                    "run": r,
                    "seed": info["seed"],
                    "embed_seed": info["embed_seed"],
                    "dim": info["dim"],
                    "scale_factor": info["scale_factor"],
                    "k": ks,
                    "name": list(traj.names),
                    "scaled": np.isin(ks, list(info["scale_freqs"])),
                    "init_signal": init[r],
                    "init_gradient": grad[r],
                    "final_signal": final[r],
                    "threshold": threshold[r],
                    "alive": alive[r],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------ the claims
def survivor_counts(traj_or_table: Trajectory | pd.DataFrame) -> pd.DataFrame:
    """Surviving circles per run: ``run, seed, dim, scale_factor, n_alive, alive``."""
    table = _table(traj_or_table)
    rows = []
    for run, grp in table.groupby("run", sort=True):
        first = grp.iloc[0]
        alive = grp.loc[grp["alive"].astype(bool), "name"]
        rows.append(
            {
                "run": run,
                "seed": first["seed"],
                "dim": first["dim"],
                "scale_factor": first["scale_factor"],
                "n_alive": int(len(alive)),
                "alive": ",".join(alive),
            }
        )
    out = pd.DataFrame(rows)
    return out


def survivors_by_dim(data: Trajectory | pd.DataFrame) -> pd.DataFrame:
    """Surviving circles against the embedding dimension: mean, sd, min, max, runs.

    ``data``: runs, their circle table, or the per-run counts of :func:`survivor_counts`.
    """
    is_counts = isinstance(data, pd.DataFrame) and "n_alive" in data
    counts = data if is_counts else survivor_counts(data)
    stats = counts.groupby("dim")["n_alive"].agg(["mean", "std", "min", "max", "count"])
    return stats.rename(columns={"count": "runs"}).reset_index()


def fittest_auc(traj_or_table: Trajectory | pd.DataFrame) -> dict[str, Any]:
    """How well the initial signal and the initial gradient predict survival (ROC AUC).

    Pooled over every (run, circle) of the table, as the reference code pools seeds:
    ``auc_signal``, ``auc_gradient``, and ``auc_both`` for a logistic regression on both
    (standardised; in-sample, so an upper bound). Also the mean AUC within a run
    (``auc_signal_per_run``, ``auc_gradient_per_run``, over runs with both classes), and
    the counts ``n_circles``, ``n_alive``, ``n_runs``. 0.5 is chance, 1 a perfect ranking.
    The AUCs are :func:`dynafit.circles.survival_auc` on the circle table, whose
    intervened circles are left out; ``dynafit.circles.fittest`` gives the same numbers
    from the trajectories when no circle was intervened on.
    """
    table = _table(traj_or_table)
    table = table[~table["scaled"]]  # an intervened circle's signal is not its natural one
    y = table["alive"].to_numpy()
    out: dict[str, Any] = {
        "n_runs": int(table["run"].nunique()),
        "n_circles": int(len(table)),
        "n_alive": int(y.sum()),
        "auc_signal": circles.survival_auc(table["init_signal"], y),
        "auc_gradient": circles.survival_auc(table["init_gradient"], y),
        "auc_both": math.nan,
    }
    if 0 < y.sum() < len(y):
        feats = table[["init_signal", "init_gradient"]].to_numpy(dtype=float)
        feats = (feats - feats.mean(0)) / np.where(feats.std(0) > 0, feats.std(0), 1.0)
        clf = LogisticRegression().fit(feats, y)
        out["auc_both"] = circles.survival_auc(clf.decision_function(feats), y)
    for key, col in (("signal", "init_signal"), ("gradient", "init_gradient")):
        out[f"auc_{key}_per_run"] = circles.survival_auc(table[col], y, table["run"])
    return out


def intervention_table(traj_or_table: Trajectory | pd.DataFrame) -> pd.DataFrame:
    """Survival of the intervened circle(s) against the scale factor of their initial signal.

    One row per (scale_factor, k): ``runs``, ``survived`` (how many of them), ``rate``,
    and the mean initial signal after scaling. Needs runs with ``scale_freqs`` set.
    """
    table = _table(traj_or_table)
    scaled = table[table["scaled"]]
    if scaled.empty:
        raise ValueError("no intervened circles (runs with scale_freqs) in these runs")
    out = (
        scaled.groupby(["scale_factor", "k"])
        .agg(
            runs=("alive", "size"),
            survived=("alive", "sum"),
            init_signal=("init_signal", "mean"),
        )
        .reset_index()
    )
    out["survived"] = out["survived"].astype(int)
    out["rate"] = out["survived"] / out["runs"]
    return out


def linear_r2(
    traj: Trajectory,
    window: float = 1000.0,
    *,
    dynafit_fit: bool = True,
    executor: Any = None,
    n_thresholds: int = 12,
) -> pd.DataFrame:
    """The linear ODE's one-step R^2 on the first ``window`` steps of every run.

    Columns ``run, seed, dim``, then:

    - ``lasso_r2``: the paper's method (reference code ``ode_fit_mult_dims.py``):
      scikit-learn ``Lasso(alpha=0.01)`` of x[t+1] - x[t] on x[t], its R^2;
    - ``lstsq_r2``: the same with plain least squares (the reference's "Linear
      Regression" line);
    - with ``dynafit_fit``: the linear family fitted per run by ``dynafit.fit_many``
      (the paper's forward difference; sparsity chosen by held-out error over
      ``n_thresholds`` thresholds; ``executor`` spreads the fits over workers):
      ``dynafit_onestep_r2``, the Euler step f(x_t) against x[t+1] - x[t] (the paper's
      score, computed from the model's right-hand side, so it stays finite when the
      rollout diverges), ``dynafit_rollout_r2`` (fit_many's score: -inf when the
      rollout diverged), ``dynafit_diverged`` and ``dynafit_n_terms``.
    """
    end = min(float(window), float(traj.t[-1]))
    win = traj.window(float(traj.t[0]), end)
    batch = win if win.is_batch else Trajectory.stack([win])
    runs = run_table(batch)
    rows = []
    for r in range(batch.n_runs):
        x = batch.x[r].astype(float)
        X, Y = x[:-1], np.diff(x, axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # as in the reference code
            lasso = Lasso(alpha=0.01, max_iter=10000).fit(X, Y).score(X, Y)
        rows.append({"lasso_r2": lasso, "lstsq_r2": LinearRegression().fit(X, Y).score(X, Y)})
    out = pd.concat([runs[["run", "seed", "dim"]], pd.DataFrame(rows)], axis=1)
    if dynafit_fit:
        table = dynafit.fit_many(
            batch,
            families=("linear",),
            derivative="forward",
            n_thresholds=n_thresholds,
            executor=executor,
        ).sort_values("run")
        out["dynafit_onestep_r2"] = [
            euler_r2(model, batch.run(r)) for r, model in zip(table["run"], table["model"])
        ]
        out["dynafit_rollout_r2"] = table["rollout_r2"].to_numpy(dtype=float)
        out["dynafit_diverged"] = table["diverged"].to_numpy(dtype=bool)
        out["dynafit_n_terms"] = table["n_terms"].to_numpy()
    out.attrs["window"] = (float(traj.t[0]), end)
    return out


def euler_r2(model: Any, run: Trajectory) -> float:
    """The paper's one-step R^2: the Euler step f(x_t) dt against x[t+1] - x[t]
    (``dynafit``'s ``onestep_r2``, finite also where the model's rollout diverges)."""
    return onestep_r2(model, run)


def r2_by_dim(r2: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd of every R^2 column of :func:`linear_r2` per embedding dimension."""
    cols = [c for c in r2.columns if c.endswith("_r2")]
    clean = r2[["dim", *cols]].replace([np.inf, -np.inf], np.nan)
    stats = clean.groupby("dim")[cols].agg(["mean", "std"])
    stats.columns = [f"{c}_{s}" for c, s in stats.columns]
    if "dynafit_diverged" in r2:
        stats["dynafit_diverged_runs"] = r2.groupby("dim")["dynafit_diverged"].sum().astype(int)
    if "dynafit_n_terms" in r2:
        stats["dynafit_n_terms_mean"] = r2.groupby("dim")["dynafit_n_terms"].mean()
    stats["runs"] = r2.groupby("dim").size()
    return stats.reset_index()


def _table(traj_or_table: Trajectory | pd.DataFrame) -> pd.DataFrame:
    if isinstance(traj_or_table, pd.DataFrame):
        return traj_or_table
    if isinstance(traj_or_table, Trajectory):
        return circle_table(traj_or_table)
    raise ValueError(f"expected a Trajectory or a circle table, got {type(traj_or_table).__name__}")


# ----------------------------------------------------------------------- figures
def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_spectrum(traj: Trajectory, run: int = 0) -> Figure:
    """One run's circle spectrum at initialisation and at the end, survivors marked."""
    data = traj.run(run) if traj.is_batch else traj
    table = circle_table(Trajectory.stack([data]))
    fig = _figure(7.0, 3.2)
    ax = fig.add_subplot()
    k = table["k"].to_numpy()
    ax.bar(k - 0.2, table["init_signal"], width=0.4, color="0.6", label="initialisation")
    colors = np.where(table["alive"], "C3", "C0")
    ax.bar(k + 0.2, table["final_signal"], width=0.4, color=colors, label="end (red: survivor)")
    ax.axhline(table["threshold"].iloc[0], color="C3", ls="--", lw=1, label="survival threshold")
    ax.set_xlabel("frequency k")
    ax.set_ylabel("signal $S_k$")
    top = max(table["init_signal"].max(), table["final_signal"].max())
    ax.set_ylim(0, 1.35 * top)
    cfg = _config(data.meta)
    ax.set_title(
        f"p = {cfg['p']}, dim = {cfg['dim']}, seed {data.meta.get('seed')}: "
        f"{int(table['alive'].sum())} of {len(table)} circles survive",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=3, loc="upper center")
    return fig


def plot_trajectories(traj: Trajectory, run: int = 0, *, t1: float | None = None) -> Figure:
    """S_k(t) of one run, survivors in colour and the rest in grey."""
    data = traj.run(run) if traj.is_batch else traj
    if t1 is not None:
        data = data.window(float(data.t[0]), float(t1))
    table = circle_table(Trajectory.stack([traj.run(run) if traj.is_batch else traj]))
    alive = table["alive"].to_numpy()
    fig = _figure(7.0, 3.6)
    ax = fig.add_subplot()
    for i in range(data.n_vars):
        if not alive[i]:
            ax.plot(data.t, data.x[:, i], color="0.75", lw=0.7)
    for j, i in enumerate(np.flatnonzero(alive)):
        ax.plot(data.t, data.x[:, i], color=f"C{j % 10}", lw=1.6, label=data.names[i])
    ax.set_xlabel("step")
    ax.set_ylabel("signal $S_k$")
    ax.set_title("circle signals (colour: survivors at the end of training)", fontsize=10)
    if alive.any():
        ax.legend(fontsize=8, ncol=2)
    return fig


def plot_survivors_vs_dim(counts: pd.DataFrame) -> Figure:
    """Surviving circles per run against the embedding dimension (mean +- sd)."""
    fig = _figure(5.0, 3.4)
    ax = fig.add_subplot()
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(counts))
    dims = np.sort(counts["dim"].unique())
    pos = {d: i for i, d in enumerate(dims)}
    xs = counts["dim"].map(pos).to_numpy() + jitter
    ax.scatter(xs, counts["n_alive"], s=10, color="0.6", zorder=2)
    stats = counts.groupby("dim")["n_alive"].agg(["mean", "std"]).reindex(dims)
    ax.errorbar(
        np.arange(len(dims)),
        stats["mean"],
        yerr=stats["std"].fillna(0),
        fmt="-o",
        color="C0",
        capsize=3,
        zorder=3,
    )
    ax.set_xticks(np.arange(len(dims)), [str(d) for d in dims])
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("surviving circles")
    ax.set_title("more circles survive in larger embeddings", fontsize=10)
    return fig


def plot_fittest(table: pd.DataFrame, auc: Mapping[str, Any] | None = None) -> Figure:
    """Initial gradient against initial signal, survivors in red, with the AUCs."""
    table = table[~table["scaled"]]
    auc = fittest_auc(table) if auc is None else auc
    fig = _figure(5.5, 4.0)
    ax = fig.add_subplot()
    dead, alive = table[~table["alive"]], table[table["alive"]]
    ax.scatter(dead["init_gradient"], dead["init_signal"], s=8, color="C0", alpha=0.6, label="died")
    ax.scatter(alive["init_gradient"], alive["init_signal"], s=14, color="C3", label="survived")
    ax.set_xlabel("initial gradient $(S_k(4) - S_k(3)) / S_k(0)$")
    ax.set_ylabel("initial signal $S_k(0)$")
    ax.set_title(
        f"AUC: signal {auc['auc_signal']:.2f}, gradient {auc['auc_gradient']:.2f}, "
        f"both {auc['auc_both']:.2f}  ({auc['n_alive']} of {auc['n_circles']} survive)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    return fig


def plot_intervention(inter: pd.DataFrame) -> Figure:
    """Survival rate of the intervened circle against the scale factor of its signal."""
    fig = _figure(5.0, 3.4)
    ax = fig.add_subplot()
    for j, (k, grp) in enumerate(inter.groupby("k")):
        grp = grp.sort_values("scale_factor")
        ax.plot(
            grp["scale_factor"],
            grp["rate"],
            "-o",
            color=f"C{j}",
            label=f"k = {k} ({int(grp['runs'].iloc[0])} runs per point)",
        )
    ax.axvline(1.0, color="0.5", lw=0.8, ls=":")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("scale factor of the initial signal")
    ax.set_ylabel("survival rate")
    ax.set_title("scaling a circle's initial signal up helps it survive", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_r2_vs_dim(r2: pd.DataFrame) -> Figure:
    """One-step R^2 of the linear ODE against the embedding dimension (mean +- sd), one
    line per method: ``dynafit.plot_r2_vs_dim`` on :func:`linear_r2`'s columns."""
    labels = {
        "lasso_r2": "Lasso $\\alpha$=0.01 (paper's method)",
        "lstsq_r2": "least squares",
        "dynafit_onestep_r2": "dynafit linear (SINDy, held-out threshold), one-step",
    }
    cols = [c for c in labels if c in r2]
    long = r2.melt(id_vars=["dim"], value_vars=cols, var_name="method", value_name="r2")
    long["method"] = long["method"].map(labels)
    fig = dynafit.plot_r2_vs_dim(long, score="r2", by="method", variant=None)
    window = r2.attrs.get("window")
    span = f" over steps {window[0]:g}-{window[1]:g}" if window else ""
    fig.axes[0].set_title(f"linear ODE fit{span}", fontsize=10)
    fig.axes[0].set_ylabel("$R^2$")
    return fig


# ------------------------------------------------------------- circle models (issue 14)
#: fit windows 0..W of the early-window table (those shorter than the runs are used)
CIRCLE_MODEL_WINDOWS = (100, 200, 500, 1000)


def circle_models(
    traj: Trajectory, *, runs: int = 1, steps: int = 100
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Survivor F1 by fit window and forecast skill of readable models against the rank
    and persistence baselines, on the first ``runs`` runs of ``traj``
    (:func:`dynafit.early_window_table`): ``mean_field_lv`` (trajectory matching for
    ``steps`` steps), ``mean_field_lv`` with the inflow term fitted from the start a
    held-out forecast chooses (:func:`dynafit.fit_recent`) and plain least-squares
    linear. Survival is judged at the runs'
    end; the forecast starts at 1,000 or half the run, whichever is earlier."""
    sub = Trajectory.stack([traj.run(i) for i in range(min(runs, traj.n_runs))])
    end = float(sub.t[-1])
    windows = [w for w in CIRCLE_MODEL_WINDOWS if w < end and np.isclose(sub.t, w).any()]
    half = float(sub.t[int(np.searchsorted(sub.t, end / 2))])
    forecast = min(1000.0, half)
    horizons = [h for h in (50, 100, 250, 500, 1000) if forecast + h <= end]
    candidates = {
        "mean_field_lv": (MeanFieldLV(), {"steps": int(steps)}),
        "mean_field_lv+inflow (start validated)": functools.partial(
            dynafit.fit_recent, family=MeanFieldLV(offset=True), steps=int(steps)
        ),
        "linear least squares": ("linear", {"threshold": 0.0}),
    }
    return dynafit.early_window_table(
        sub, windows, candidates, forecast_window=forecast, horizons=horizons
    )
