"""Controlled "fittest": a fixed embedding, varied MLP seeds (paper: survival rate
against initial signal; reference ``analysis/plot_init_signal_empirical.py``)."""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats

from ._base import AbstractExperiment, Job, Result, alive_sets, figure, seeds_of, style


class FittestControlled(AbstractExperiment):
    name = "fittest_controlled"
    paper_figure = "survival rate against initial signal (fixed embeddings, varied MLP seeds)"
    reference = "training/train_model.py --fix_embedding; analysis/plot_init_signal_empirical.py"
    notes = (
        "Each embedding seed fixes E(0); every run seed draws its own MLP and train/test split "
        "(the reference's fix_embedding mode, get_model(seed, embedding=E) and "
        "get_train_test(seed)). Survival rate of circle k = the fraction of run seeds in which "
        "k survives; the reference plots all (embedding, k) points and reports Pearson's r."
    )
    defaults = {"embed_seeds": [0, 1], "seeds": "0-3"}

    def jobs(self, base, params):
        seeds = seeds_of(params)
        return [Job(base.replace(embed_seed=int(e)), seeds) for e in params["embed_seeds"]]

    def analyse(self, base, params, results):
        rows = []
        for e, res in zip(params["embed_seeds"], results):
            traj = res.trajectory
            alive = alive_sets(traj)
            init = traj.x[0, 0]  # the same E(0) in every run of the job
            for k in range(1, traj.n_vars + 1):
                n = sum(k in a for a in alive)
                rows.append(
                    {
                        "embed_seed": int(e),
                        "k": k,
                        "init_signal": float(init[k - 1]),
                        "survived": n,
                        "runs": traj.n_runs,
                        "survival_rate": n / traj.n_runs,
                    }
                )
        table = pd.DataFrame(rows)
        if table["survival_rate"].nunique() > 1 and table["init_signal"].nunique() > 1:
            r, pval = stats.pearsonr(table["init_signal"], table["survival_rate"])
        else:
            r, pval = math.nan, math.nan
        fig = figure(5.5, 4)
        ax = fig.subplots()
        for e, g in table.groupby("embed_seed"):
            ax.scatter(g["init_signal"], g["survival_rate"], s=14, alpha=0.7, label=f"E seed {e}")
        style(ax)
        ax.set_xlabel("initial signal $S_k(0)$")
        ax.set_ylabel("survival rate over MLP seeds")
        ax.set_title(f"Survival rate against initial signal (Pearson r = {r:.2f})", fontsize=10)
        if table["embed_seed"].nunique() <= 10:
            ax.legend(fontsize=7)
        fig.tight_layout()
        headline = {
            "pearson_r": float(r),
            "pearson_p": float(pval),
            "points": len(table),
            "runs_per_embedding": int(table["runs"].iloc[0]),
            "mean_survivors": float(table.groupby("embed_seed")["survived"].sum().mean())
            / int(table["runs"].iloc[0]),
        }
        return Result(table, fig, headline)
