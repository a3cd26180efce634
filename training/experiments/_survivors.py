"""The shared part of "number of surviving circles against one trainer option"."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from ._base import AbstractExperiment, Job, Result, figure, seeds_of, style


class AbstractSurvivorsVs(AbstractExperiment):
    """Survivors against ``field`` (a TrainConfig option) over ``values`` x seeds."""

    field: ClassVar[str]
    label: ClassVar[str]
    log_x: ClassVar[bool] = False

    def _values(self, params):
        values = params["values"]
        if not isinstance(values, list) or not values:
            raise ValueError(f"[{self.name}] values: give a non-empty list")
        return values

    def jobs(self, base, params):
        seeds = seeds_of(params)
        return [Job(base.replace(**{self.field: v}), seeds) for v in self._values(params)]

    def analyse(self, base, params, results):
        rows = []
        for v, res in zip(self._values(params), results):
            for run in res.trajectory.meta["runs"]:
                rows.append(
                    {
                        self.field: v,
                        "seed": run["seed"],
                        "n_survivors": run["n_survivors"],
                        "circles": (run["config"]["p"] - 1) // 2,
                        "final_test_acc": run["final_test_acc"],
                        "survivors": " ".join(s[1:] for s in run["survivors"]),
                    }
                )
        table = pd.DataFrame(rows)
        stats = table.groupby(self.field)["n_survivors"].agg(["mean", "std", "count"])
        fig = figure(5.5, 4)
        ax = fig.subplots()
        ax.errorbar(
            stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", ms=4, capsize=3
        )
        style(ax)
        if self.log_x:
            ax.set_xscale("log")
        ax.set_xlabel(self.label)
        ax.set_ylabel("number of surviving circles (mean +- sd)")
        ax.set_title(f"Number of circles in relation to {self.label}", fontsize=10)
        fig.tight_layout()
        rho = _spearman(table[self.field], table["n_survivors"])
        headline = {
            "mean_by_value": {str(k): float(v) for k, v in stats["mean"].items()},
            "runs_per_value": int(stats["count"].min()),
            "spearman_rho": rho,
        }
        return Result(table, fig, headline)


def _spearman(a, b) -> float:
    a, b = pd.Series(np.asarray(a, float)), pd.Series(np.asarray(b, float))
    if a.nunique() < 2 or b.nunique() < 2:
        return float("nan")
    return float(a.rank().corr(b.rank()))
