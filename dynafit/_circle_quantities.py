"""Per-circle quantities beyond the signal S_k, from snapshots of any trainer.

For an embedding E (p, dim) and the first layer W = [W_a | W_b] (hidden, 2 dim) that
reads the two inputs' embeddings (weights stored (out, in), as torch and equinox
store them), with F_k = sum_a E[a] exp(-2 pi i k a / p) the embedding's Fourier
component k (a complex dim-vector, ||F_k|| = S_k):

- read-out R_k = ||W_a F_k|| + ||W_b F_k||: how strongly the first layer reads circle k;
- gradient G_k = ||FFT_k(dL/dE)||: the loss gradient's share on circle k (the
  spectrum of a gradient with respect to E, by :func:`dynafit.circle_signals`).

Both for k = 0..(p-1)/2, like ``circle_signals``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._trajectory import circle_signals


def circle_readout(embeddings: Any, first_layer: Any) -> np.ndarray:
    """R_k = ||W_a F_k|| + ||W_b F_k|| for k = 0..(p-1)/2.

    ``embeddings``: (..., p, dim) snapshots; ``first_layer``: (..., hidden, 2 dim), the
    matching first-layer weights (leading axes equal to the embeddings'). Returns
    (..., (p - 1) / 2 + 1). ``ValueError`` when the first layer is missing or the
    shapes do not match.
    """
    if first_layer is None:
        raise ValueError(
            "circle_readout needs the first layer's weights (hidden, 2 dim) beside the "
            "embeddings; none were given (save them with the snapshots, e.g. the "
            "trainer's --snapshot-params)"
        )
    e = np.asarray(embeddings)
    w = np.asarray(first_layer)
    for name, a in (("embeddings", e), ("first_layer", w)):
        if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite numbers")
    if e.ndim < 2:
        raise ValueError(f"embeddings must have shape (..., p, dim), got {e.shape}")
    p, dim = e.shape[-2:]
    if p < 3 or p % 2 == 0:
        raise ValueError(f"p (the embeddings' second-to-last axis) must be odd and >= 3, got {p}")
    if w.ndim != e.ndim or w.shape[-1] != 2 * dim or w.shape[:-2] != e.shape[:-2]:
        raise ValueError(
            f"first_layer must have shape (..., hidden, 2 dim) = {e.shape[:-2] + ('hidden', 2 * dim)}"
            f" to match embeddings {e.shape}, got {w.shape}"
        )
    m = (p - 1) // 2
    spectrum = np.fft.fft(e.astype(np.float64), axis=-2)[..., : m + 1, :]  # (..., m+1, dim)
    w = w.astype(np.float64)
    out = np.zeros(e.shape[:-2] + (m + 1,))
    for half in (w[..., :dim], w[..., dim:]):  # W_a, W_b: (..., hidden, dim)
        read = np.einsum("...hd,...kd->...kh", half, spectrum)
        out += np.sqrt(np.sum(np.abs(read) ** 2, axis=-1))
    return out


def circle_quantities(
    embeddings: Any, first_layer: Any, gradients: Any = None
) -> dict[str, np.ndarray]:
    """S_k, the read-out R_k and (with ``gradients``, dL/dE of the same shape as the
    embeddings) the gradient spectrum G_k of each snapshot, k = 0..(p-1)/2:
    ``{"signal", "readout"[, "gradient"]}``, each (..., (p - 1) / 2 + 1)."""
    e = np.asarray(embeddings)
    out = {"readout": circle_readout(e, first_layer), "signal": circle_signals(e)}
    if gradients is not None:
        g = np.asarray(gradients)
        if g.shape != e.shape:
            raise ValueError(f"gradients must have the embeddings' shape {e.shape}, got {g.shape}")
        if not np.all(np.isfinite(g)):
            raise ValueError("gradients contain NaN or inf")
        out["gradient"] = circle_signals(g)
    return out
