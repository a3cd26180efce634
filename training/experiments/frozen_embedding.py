"""Frozen embedding: test loss of an MLP trained on a fixed random embedding, against the
dimension (reference ``analysis/plot_loss_embed_freeze.py``)."""

from __future__ import annotations

import pandas as pd

from ._base import AbstractExperiment, Job, Result, figure, seeds_of, style


class FrozenEmbedding(AbstractExperiment):
    name = "frozen_embedding"
    paper_figure = "test loss after training with a frozen embedding, against dimension"
    reference = "training/train_model.py --freeze_embedding; analysis/plot_loss_embed_freeze.py"
    notes = (
        "The embedding stays at its N(0, 1) draw (no gradient, no weight decay); the MLP "
        "trains. The reference reads the test loss after 500, 1000, 5000 and 10000 steps for "
        "every dim 16-128 x 5 seeds; steps beyond the run are skipped."
    )
    defaults = {"dims": [16, 32], "seeds": "0-1", "at_steps": [100, 200]}

    def jobs(self, base, params):
        seeds = seeds_of(params)
        return [Job(base.replace(dim=int(d), freeze_embedding=True), seeds) for d in params["dims"]]

    def analyse(self, base, params, results):
        steps = [int(s) for s in params["at_steps"] if int(s) <= base.steps]
        if not steps:
            raise ValueError(f"[frozen_embedding] at_steps: none within the {base.steps} steps")
        rows = []
        for d, res in zip(params["dims"], results):
            traj = res.trajectory
            for r, run in enumerate(traj.meta["runs"]):
                for s in steps:
                    rows.append(
                        {
                            "dim": int(d),
                            "seed": run["seed"],
                            "step": s,
                            "test_loss": float(traj.aux["test_loss"][r, s]),
                            "test_acc": float(traj.aux["test_acc"][r, s]),
                        }
                    )
        table = pd.DataFrame(rows)
        fig = figure(3.2 * len(steps), 3.4)
        axes = fig.subplots(1, len(steps), squeeze=False)
        for ax, s in zip(axes[0], steps):
            g = table[table["step"] == s]
            sc = ax.scatter(g["dim"], g["test_loss"], c=g["test_acc"], vmin=0, vmax=1, s=12)
            ax.axvline(base.p, color="red", ls="--", lw=1)
            ax.text(base.p, ax.get_ylim()[1] * 0.9, " d = p", color="red", fontsize=8)
            style(ax)
            ax.set_title(f"{s} steps", fontsize=10)
            ax.set_xlabel("dimension")
        axes[0][0].set_ylabel("test loss (frozen embedding)")
        fig.colorbar(sc, ax=axes[0].tolist(), label="test acc")
        fig.suptitle("Test loss after training with a frozen embedding", fontsize=11)
        last = table[table["step"] == steps[-1]]
        headline = {
            "step": steps[-1],
            "mean_test_loss_by_dim": {
                str(k): float(v) for k, v in last.groupby("dim")["test_loss"].mean().items()
            },
        }
        return Result(table, fig, headline)
