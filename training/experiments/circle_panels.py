"""Circle panels: the signals over time, and the final embedding projected on each
surviving circle's FFT plane and on PCA planes (reference ``analysis/plot_signal_spectrum.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._base import AbstractExperiment, Result, alive_by_final_signal, figure, style
from .collaboration import SNAPSHOT_DEFAULTS, snapshot_job


def delta(k: int, p: int) -> int:
    """The smallest step Delta with Delta * k = +-1 (mod p): neighbours on circle k."""
    for d in range(1, p):
        if (d * k) % p in (1, p - 1):
            return d
    return 0


class CirclePanels(AbstractExperiment):
    name = "circle_panels"
    paper_figure = "signal evolution; embeddings on FFT planes and on PCA planes"
    reference = "analysis/plot_signal_spectrum.py (run: data/fix_mlp/seed_10)"
    notes = (
        "The same run as collaboration (trained once, shared). FFT plane of circle k: the "
        "final embedding projected on the normalised real and imaginary parts of its FFT bin "
        "k; PCA planes: pairs (2i, 2i+1) of the final embedding's principal directions (numpy "
        "SVD of the centred embedding; the reference uses sklearn's PCA, which centres too). "
        "overlap = mean squared cosine of the principal angles between a circle's FFT plane "
        "and its PCA pair (1: the same plane)."
    )
    defaults = dict(SNAPSHOT_DEFAULTS)

    def jobs(self, base, params):
        return [snapshot_job(base, params)]

    def analyse(self, base, params, results):
        res = results[0]
        traj = res.trajectory
        p = base.p
        alive = alive_by_final_signal(traj)
        final = np.asarray(res.extras["final_embedding"][0], np.float64)
        spec = np.fft.fft(final, axis=0)
        centred = final - final.mean(axis=0)
        _, sing, vt = np.linalg.svd(centred, full_matrices=False)
        rows, planes = [], []
        for i, k in enumerate(alive):
            fft_plane = np.stack([spec[k].real, spec[k].imag])
            fft_plane /= np.linalg.norm(fft_plane, axis=1, keepdims=True)
            q_fft, _ = np.linalg.qr(fft_plane.T)
            row = {"k": k, "final_signal": float(traj.x[0, -1, k - 1]), "delta": delta(k, p)}
            if 2 * i + 1 < vt.shape[0]:
                pca = vt[2 * i : 2 * i + 2]
                cos = np.linalg.svd(q_fft.T @ pca.T, compute_uv=False)
                row.update(
                    pca_pair=i + 1,
                    pca_singular_values=f"{sing[2 * i]:.4g} {sing[2 * i + 1]:.4g}",
                    overlap_fft_pca=float(np.mean(cos**2)),
                )
                planes.append((k, fft_plane, pca))
            else:
                planes.append((k, fft_plane, None))
            rows.append(row)
        table = pd.DataFrame(rows)
        n = max(len(alive), 1)
        fig = figure(3.0 * max(n, 2), 9)
        grid = fig.add_gridspec(3, max(n, 2))
        ax = fig.add_subplot(grid[0, :])
        t = traj.t + 1
        for j in range(traj.n_vars):
            k = j + 1
            if k in alive:
                ax.plot(t, traj.x[0, :, j], label=f"k = {k}")
            else:
                ax.plot(t, traj.x[0, :, j], color="grey", alpha=0.2)
        ax.set_xscale("log")
        ax.set_xlabel("step + 1")
        ax.set_ylabel("signal $S_k$")
        ax.set_title("Evolution of frequency signals", fontsize=10)
        ax.legend(fontsize=7)
        style(ax)
        ids = np.arange(p)
        for i, (k, fft_plane, pca) in enumerate(planes):
            for r, (plane, what) in enumerate(((fft_plane, "FFT"), (pca, "PCA"))):
                a = fig.add_subplot(grid[1 + r, i])
                if plane is not None:
                    xy = final @ plane.T
                    a.scatter(xy[:, 0], xy[:, 1], c=ids, cmap="viridis", s=10)
                    for j in ids:
                        a.text(xy[j, 0], xy[j, 1], str(j), fontsize=5)
                if what == "FFT":
                    title = f"FFT plane, k = {k}, $\\Delta$ = {delta(k, p)}"
                else:  # the reference sets PCA pair i beside survivor i
                    title = f"PCA pair {i + 1} (beside k = {k})"
                a.set_title(title, fontsize=8)
                style(a)
        fig.tight_layout()
        headline = {
            "survivors": alive,
            "mean_overlap_fft_pca": float(table["overlap_fft_pca"].mean())
            if "overlap_fft_pca" in table
            else None,
        }
        return Result(table, fig, headline)
