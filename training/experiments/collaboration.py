"""Circle collaboration: the trained network's loss with its embedding Fourier-filtered
to one, two or three circles, over training (reference
``analysis/plot_loss_collaboration.py``)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd

from ..evaluate import evaluate, fourier_filter, mlp_at
from ._base import AbstractExperiment, Job, Result, alive_by_final_signal, figure, style


def snapshot_job(base, params) -> Job:
    """One run with the whole network kept every ``every`` steps (shared with the panels)."""
    every = int(params["every"])
    chunk = min(base.chunk, every)
    if every % chunk:
        raise ValueError(f"every ({every}) must be a multiple of the chunk ({chunk})")
    cfg = base.replace(
        embed_seed=int(params["seed"]),
        mlp_seed=int(params["mlp_seed"]),
        split_seed=int(params["mlp_seed"]),
        snapshot_every=every,
        snapshot_params=True,
        chunk=chunk,
        checkpoint_every=max(base.checkpoint_every // every, 1) * every,
    )
    return Job(cfg, (int(params["seed"]),))


SNAPSHOT_DEFAULTS = {"seed": 10, "mlp_seed": 0, "every": 100}


class Collaboration(AbstractExperiment):
    name = "collaboration"
    paper_figure = "test loss over time using one, two and three circles (interactions)"
    reference = "analysis/plot_loss_collaboration.py (run: data/fix_mlp/seed_10)"
    notes = (
        "One run (embedding seed 10, MLP and split of seed 0: the reference's fix_mlp run), "
        "the whole network kept every 100 steps. At each kept step the network is evaluated "
        "(cross-entropy over all p^2 pairs, as the reference does though its axis says test "
        "loss) on its embedding filtered to the circles of a set (the k = 0 bin kept): {k} for "
        "every k; {s1, k}; {s1, s3, k}, where s1, s2, ... are the run's survivors by final "
        "signal (the reference's 2 and 22 are its run's first and third)."
    )
    defaults = {**SNAPSHOT_DEFAULTS, "pair_ranks": [1], "triple_ranks": [1, 3]}

    def jobs(self, base, params):
        return [snapshot_job(base, params)]

    def analyse(self, base, params, results):
        res = results[0]
        traj = res.trajectory
        alive = alive_by_final_signal(traj)
        m = traj.n_vars
        mlp = mlp_at(res.extras)
        steps = res.extras["snapshot_steps"]
        emb = res.extras["embeddings"][0]  # (n, p, dim)
        panels = {1: []}
        for n, ranks in ((2, params["pair_ranks"]), (3, params["triple_ranks"])):
            if all(1 <= int(r) <= len(alive) for r in ranks):
                panels[n] = [alive[int(r) - 1] for r in ranks]
        rows = []
        for n, base_set in panels.items():
            ks = [k for k in range(1, m + 1) if k not in base_set]
            filt = np.stack([fourier_filter(emb, base_set + [k]) for k in ks])  # (K, n, p, d)
            loss, acc = evaluate({k: v[None] for k, v in mlp.items()}, filt)
            for i, k in enumerate(ks):
                for j, step in enumerate(steps):
                    rows.append(
                        {
                            "n_circles": n,
                            "base": " ".join(map(str, base_set)),
                            "k": k,
                            "survivor_rank": alive.index(k) + 1 if k in alive else 0,
                            "step": int(step),
                            "loss": float(loss[i, j]),
                            "acc": float(acc[i, j]),
                        }
                    )
        full_loss, _ = evaluate(mlp, emb)
        table = pd.DataFrame(rows)
        fig = figure(12, 3.4)
        axes = fig.subplots(1, 3, sharey=True)
        cmap = matplotlib.colormaps["viridis"]
        for ax, (n, base_set) in zip(axes, panels.items()):
            g = table[table["n_circles"] == n]
            for k, gk in g.groupby("k"):
                rank = int(gk["survivor_rank"].iloc[0])
                if rank:
                    ax.plot(
                        gk["step"],
                        gk["loss"],
                        color=cmap(rank / (len(alive) + 1)),
                        label=f"k = {k} (survivor {rank})",
                    )
                else:
                    ax.plot(gk["step"], gk["loss"], color="grey", alpha=0.2)
            ax.plot(steps, full_loss, "k--", lw=1, label="unfiltered")
            style(ax)
            title = {1: "one circle {k}", 2: "two circles {%s, k}", 3: "three circles {%s, k}"}
            ax.set_title(
                title[n] % (", ".join(map(str, base_set))) if n > 1 else title[n], fontsize=9
            )
            ax.set_xlabel("step")
            ax.legend(fontsize=6)
        axes[0].set_ylabel("loss (all pairs), filtered embedding")
        fig.suptitle("Loss of the trained network using different circles", fontsize=11)
        fig.tight_layout()
        last = table[table["step"] == table["step"].max()]
        headline = {
            "survivors": alive,
            "final_loss_unfiltered": float(full_loss[-1]),
            "final_loss_best_single": float(last[last["n_circles"] == 1]["loss"].min()),
            "final_loss_top2": _loss_of(last, alive[:2]),
            "final_loss_top3": _loss_of(last, alive[:3]),
        }
        return Result(table, fig, headline)


def _loss_of(last: pd.DataFrame, circles: list[int]) -> float | None:
    """Final loss of the set ``circles`` if one panel holds it."""
    want = set(circles)
    for _, r in last.iterrows():
        if set(map(int, str(r["base"]).split())) | {int(r["k"])} == want and r["n_circles"] == len(
            want
        ):
            return float(r["loss"])
    return None
