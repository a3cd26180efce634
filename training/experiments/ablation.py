"""Ablation: train from an initial embedding that keeps only a few of its circles
(reference ``training/ablation.py``: test loss over training, experiments O and A-D)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._model import init_params
from ..evaluate import fourier_filter
from ._base import AbstractExperiment, Job, Result, alive_sets, figure, style


class Ablation(AbstractExperiment):
    name = "ablation"
    paper_figure = "test loss over training from ablated initial embeddings (O, A-D)"
    reference = "training/ablation.py"
    notes = (
        "One seed fixes E(0), the MLP and the split. O trains E(0) as drawn; each other "
        "variant keeps only some circles of E(0) (bins k and p - k; the k = 0 bin is zeroed "
        "too, as in the reference): the strongest 1 and 2 circles by initial signal (A, B; "
        "the reference hard-codes 11 and 11, 8, its seed's strongest) and fixed ones (C: "
        "circle 1, D: circles 1, 2, which the reference calls random)."
    )
    defaults = {"seed": 0, "strongest": [1, 2], "fixed": [[1], [1, 2]]}

    def _variants(self, base, params):
        e0 = init_params(
            int(params["seed"]),
            int(params["seed"]),
            p=base.p,
            dim=base.dim,
            hidden=base.hidden,
            projector=None,
        )["embedding"]
        signal = np.linalg.norm(np.fft.fft(e0.astype(np.float64), axis=0), axis=1)
        m = base.n_circles
        order = [int(k) for k in np.argsort(-signal[1 : m + 1]) + 1]
        out = [("O", None, e0)]
        for i, n in enumerate(params["strongest"]):
            keep = sorted(order[: int(n)])
            out.append((chr(ord("A") + i), keep, fourier_filter(e0, keep, keep_mean=False)))
        for j, keep in enumerate(params["fixed"]):
            keep = [int(k) for k in keep]
            label = chr(ord("A") + len(params["strongest"]) + j)
            out.append((label, keep, fourier_filter(e0, keep, keep_mean=False)))
        return out

    def jobs(self, base, params):
        seed = (int(params["seed"]),)
        return [
            Job(base, seed, None if keep is None else e[None])
            for _, keep, e in self._variants(base, params)
        ]

    def analyse(self, base, params, results):
        rows, curves = [], {}
        for (label, keep, _), res in zip(self._variants(base, params), results):
            traj = res.trajectory
            test_loss = traj.aux["test_loss"][0]
            curves[label] = (keep, test_loss)
            acc = traj.aux["test_acc"][0]
            hit = np.flatnonzero(acc >= 0.99)
            rows.append(
                {
                    "variant": label,
                    "kept_circles": "all" if keep is None else " ".join(map(str, keep)),
                    "final_test_loss": float(test_loss[-1]),
                    "final_test_acc": float(acc[-1]),
                    "first_step_test_acc_0.99": int(hit[0]) if hit.size else None,
                    "survivors": " ".join(str(k) for k in sorted(alive_sets(traj)[0])),
                }
            )
        table = pd.DataFrame(rows)
        fig = figure(6, 4)
        ax = fig.subplots()
        t = np.arange(1, len(next(iter(curves.values()))[1]) + 1)
        for label, (keep, loss) in curves.items():
            what = "no ablation" if keep is None else "keep " + ", ".join(map(str, keep))
            ax.plot(t, np.maximum(loss, 1e-12), label=f"{label}: {what}", alpha=0.8)
        style(ax)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("step + 1")
        ax.set_ylabel("test loss")
        ax.set_title("Test loss from ablated initial embeddings", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        headline = {
            r["variant"]: {"kept": r["kept_circles"], "final_test_loss": r["final_test_loss"]}
            for r in rows
        }
        return Result(table, fig, headline)
