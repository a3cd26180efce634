"""Perturbation curve: scale one circle's initial signal by 0.85-1.15 on several fixed
embeddings (reference ``training/perturbation.py``, ``analysis/plot_init_signal_perturb.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._base import (
    AbstractExperiment,
    Job,
    Result,
    alive_sets,
    figure,
    linspace_param,
    seeds_of,
    spectrum_mean,
    style,
)


class Perturbation(AbstractExperiment):
    name = "perturbation"
    paper_figure = "survival rate against the difference to the initial signal mean"
    reference = "training/perturbation.py --fix_embedding; analysis/plot_init_signal_perturb.py"
    notes = (
        "E(0) of each embedding seed has bins k and p - k multiplied by the factor "
        "(np.linspace(0.85, 1.15, 50) in the reference); MLP and split vary with the run "
        "seed. x = S_k(0) - mean of the whole initial spectrum, both of the run's own "
        "(perturbed) E(0). The reference's plot script reads S_k and the mean from the "
        "file of factor index 0 (already scaled by 0.85) and multiplies by the factor "
        "again; here each point uses its own perturbed embedding."
    )
    defaults = {
        "k": 25,
        "embed_seeds": [0, 1],
        "factors": {"start": 0.85, "stop": 1.15, "num": 3},
        "seeds": "0-3",
    }

    def _factors(self, params):
        return linspace_param(params["factors"], "factors")

    def jobs(self, base, params):
        seeds = seeds_of(params)
        k = int(params["k"])
        return [
            Job(base.replace(embed_seed=int(e), scale_freqs=(k,), scale_factor=float(f)), seeds)
            for e in params["embed_seeds"]
            for f in self._factors(params)
        ]

    def analyse(self, base, params, results):
        k = int(params["k"])
        rows = []
        it = iter(results)
        for e in params["embed_seeds"]:
            for f in self._factors(params):
                traj = next(it).trajectory
                alive = alive_sets(traj)
                n = sum(k in a for a in alive)
                s_k = float(traj.x[0, 0, k - 1])
                mean = float(spectrum_mean(traj, 0)[0])
                rows.append(
                    {
                        "embed_seed": int(e),
                        "factor": float(f),
                        "k": k,
                        "init_signal": s_k,
                        "init_mean": mean,
                        "diff": s_k - mean,
                        "survived": n,
                        "runs": traj.n_runs,
                        "survival_rate": n / traj.n_runs,
                    }
                )
        table = pd.DataFrame(rows)
        fig = figure(5.5, 4)
        ax = fig.subplots()
        for e, g in table.groupby("embed_seed"):
            ax.plot(g["diff"], g["survival_rate"], marker="o", ms=3, label=f"E seed {e}")
        style(ax)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel(f"$S_{{{k}}}(0)$ - mean of the initial spectrum")
        ax.set_ylabel(f"survival rate of circle {k}")
        ax.set_title("Survival rate against difference to the initial signal mean", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        slope = _slope(table)
        headline = {
            "k": k,
            "rate_at_lowest_factor": float(
                table[table["factor"] == table["factor"].min()]["survival_rate"].mean()
            ),
            "rate_at_highest_factor": float(
                table[table["factor"] == table["factor"].max()]["survival_rate"].mean()
            ),
            "mean_slope_per_unit_signal": slope,
        }
        return Result(table, fig, headline)


def _slope(table: pd.DataFrame) -> float:
    """Mean over embeddings of the least-squares slope of survival rate against diff."""
    slopes = []
    for _, g in table.groupby("embed_seed"):
        if g["diff"].nunique() > 1:
            slopes.append(float(np.polyfit(g["diff"], g["survival_rate"], 1)[0]))
    return float(np.mean(slopes)) if slopes else float("nan")
