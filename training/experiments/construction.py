"""Two-circle construction: an embedding made of two circles of chosen strengths (ratio
r of the weaker to the stronger) and noise, one fixed MLP (reference
``training/manual_construction.py``, ``analysis/plot_init_signal_construction.py``)."""

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
    style,
)


def construct_embedding(
    seed: int, *, p: int, dim: int, scale: float, ratio: float, noise: float, circles
) -> tuple[np.ndarray, int, int]:
    """The reference's constructed E(0) for one seed, and its two circles (c1, c2).

    Bins k and p - k of E's FFT are a random unit direction (numpy's legacy RandomState
    (seed), drawn for k = 1..m in turn) times scale for c1, scale * ratio for c2 and
    noise for every other k; E = ifft(...).real. ``circles="random"`` draws (c1, c2)
    first from the same generator, as the reference's plot script does.
    """
    m = (p - 1) // 2
    rs = np.random.RandomState(seed)
    if circles == "random":
        c1, c2 = (int(c) for c in rs.choice(np.arange(1, m + 1), 2, replace=False))
    else:
        c1, c2 = (int(c) for c in circles)
    post = np.zeros((p, dim))
    for k in range(1, m + 1):
        d = rs.normal(0, 1, dim)
        d /= np.linalg.norm(d)
        s = scale if k == c1 else scale * ratio if k == c2 else noise
        post[k] = post[p - k] = d * s
    return np.fft.ifft(post, axis=0).real, c1, c2


class Construction(AbstractExperiment):
    name = "construction"
    paper_figure = "survival rate against the ratio r of the two constructed initial signals"
    reference = "training/manual_construction.py; analysis/plot_init_signal_construction.py"
    notes = (
        "The MLP and split are fixed (seed 0); each run seed constructs its own E(0). The "
        "released training script always uses circles 1 and 2 (circ1, circ2 = 1, 2), while "
        "the plot script scores circles drawn at random per seed "
        "(np.random.seed(seed); choice(1..29, 2)); circles = 'random' follows the plot "
        "script, a pair [c1, c2] the training script. Ratios exp(linspace(-4, 0, 16)), scale "
        "80, noise 1e-6 in the reference."
    )
    defaults = {
        "ratios": {"start": -4.0, "stop": 0.0, "num": 3, "log": True},
        "seeds": "0-3",
        "scale": 80.0,
        "noise": 1e-6,
        "circles": "random",
        "mlp_seed": 0,
    }

    def _ratios(self, params):
        return linspace_param(params["ratios"], "ratios")

    def _embeddings(self, base, params, ratio):
        seeds = seeds_of(params)
        out = [
            construct_embedding(
                s,
                p=base.p,
                dim=base.dim,
                scale=float(params["scale"]),
                ratio=float(ratio),
                noise=float(params["noise"]),
                circles=params["circles"],
            )
            for s in seeds
        ]
        return np.stack([o[0] for o in out]), [(o[1], o[2]) for o in out]

    def jobs(self, base, params):
        c = params["circles"]
        if c != "random":
            m = base.n_circles
            if not (isinstance(c, list) and len(c) == 2 and all(1 <= int(k) <= m for k in c)):
                raise ValueError(f"[construction] circles: 'random' or two circles in 1..{m}")
        cfg = base.replace(mlp_seed=int(params["mlp_seed"]), split_seed=int(params["mlp_seed"]))
        return [
            Job(cfg, seeds_of(params), self._embeddings(base, params, r)[0])
            for r in self._ratios(params)
        ]

    def analyse(self, base, params, results):
        rows = []
        for r, res in zip(self._ratios(params), results):
            pairs = self._embeddings(base, params, r)[1]
            alive = alive_sets(res.trajectory)
            n1 = sum(c1 in a for (c1, _), a in zip(pairs, alive))
            n2 = sum(c2 in a for (_, c2), a in zip(pairs, alive))
            n = len(alive)
            rows.append(
                {
                    "ratio": float(r),
                    "runs": n,
                    "rate_largest": n1 / n,
                    "rate_second": n2 / n,
                    "mean_test_acc": float(
                        np.mean([x["final_test_acc"] for x in res.trajectory.meta["runs"]])
                    ),
                }
            )
        table = pd.DataFrame(rows)
        fig = figure(5.5, 4)
        ax = fig.subplots()
        ax.plot(table["ratio"], table["rate_largest"], marker="o", ms=3, label="largest")
        ax.plot(table["ratio"], table["rate_second"], marker="o", ms=3, label="second largest")
        style(ax)
        ax.set_xlabel("ratio $r$ of the second to the largest initial signal")
        ax.set_ylabel("survival rate")
        ax.set_ylim(-0.05, 1.05)
        ax.set_title("Two constructed circles: survival rate against $r$", fontsize=10)
        ax.legend(title="initial signal", fontsize=8)
        fig.tight_layout()
        headline = {
            "rate_second_at_smallest_ratio": float(table["rate_second"].iloc[0]),
            "rate_second_at_ratio_1": float(table["rate_second"].iloc[-1]),
            "rate_largest_mean": float(table["rate_largest"].mean()),
        }
        return Result(table, fig, headline)
