# ruff: noqa: F722
"""Evaluate a trained network with another embedding, e.g. one Fourier-filtered to a few
circles (the paper's circle-collaboration analysis, reference
``analysis/plot_loss_collaboration.py``).

- :func:`fourier_filter` keeps the Fourier components of chosen circles k (bins k and
  p - k of the token axis) and zeroes the others.
- :func:`evaluate` is the cross-entropy loss and accuracy of a network (the MLP's layers,
  as the trainer's ``params__*`` snapshots store them) on an embedding, over all p^2
  pairs (the reference's choice) or a 0/1 mask of pairs; leading axes of the MLP's and
  the embedding's arrays are broadcast and vmapped (one compiled call for many
  snapshots and filters).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._model import Net, labels

__all__ = ["MLP_LAYERS", "fourier_filter", "evaluate", "mlp_at"]

MLP_LAYERS = ("w1", "b1", "w2", "b2", "w3", "b3")


def fourier_filter(
    embedding: Float[np.ndarray, "... p dim"], keep: Iterable[int], *, keep_mean: bool = True
) -> np.ndarray:
    """The embedding with only circles ``keep`` (and, with ``keep_mean``, the k = 0 bin).

    FFT along the token axis (-2), zero every bin but k and p - k for k in ``keep``,
    inverse FFT, real part: the reference's ``get_loss`` filter (``keep_mean=True``) and
    its ablated initialisations (``training/ablation.py``, ``keep_mean=False``).
    """
    e = np.asarray(embedding, dtype=np.float64)
    if e.ndim < 2:
        raise ValueError(f"embedding must have shape (..., p, dim), got {e.shape}")
    p = e.shape[-2]
    m = (p - 1) // 2
    keep = [int(k) for k in keep]
    bad = [k for k in keep if not 1 <= k <= m]
    if bad:
        raise ValueError(f"fourier_filter: circle(s) {bad} outside 1..{m} (p = {p})")
    spec = np.fft.fft(e, axis=-2)
    mask = np.zeros(p, bool)
    mask[0] = keep_mean
    for k in keep:
        mask[k] = mask[p - k] = True
    spec[..., ~mask, :] = 0
    return np.fft.ifft(spec, axis=-2).real


def mlp_at(extras: Mapping[str, np.ndarray], run: int = 0) -> dict[str, np.ndarray]:
    """The MLP snapshots of one run from a trainer's extras (``snapshot_params``):
    ``{"w1": (n, hidden, 2 dim), ...}`` at ``extras["snapshot_steps"]``."""
    missing = [k for k in MLP_LAYERS if f"params__{k}" not in extras]
    if missing:
        raise ValueError(
            "these extras hold no MLP snapshots; train with snapshot_every and snapshot_params"
        )
    return {k: np.asarray(extras[f"params__{k}"][run]) for k in MLP_LAYERS}


def evaluate(
    mlp: Mapping[str, np.ndarray],
    embedding: Float[np.ndarray, "... p dim"],
    *,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(loss, accuracy) of the MLP ``mlp`` on ``embedding``, each of the broadcast
    leading shape of ``mlp["w1"][..., :, :]`` and ``embedding[..., :, :]``.

    The loss is the mean cross-entropy over all p^2 pairs, or over the pairs where
    ``mask`` (p^2,) is 1 (pair n = (a, b) = (n % p, n // p), the trainer's order).
    """
    missing = [k for k in MLP_LAYERS if k not in mlp]
    if missing:
        raise ValueError(f"mlp is missing layer(s) {missing}; give {list(MLP_LAYERS)}")
    e = np.asarray(embedding)
    if e.ndim < 2:
        raise ValueError(f"embedding must have shape (..., p, dim), got {e.shape}")
    p, dim = e.shape[-2:]
    w1 = np.asarray(mlp["w1"])
    if w1.shape[-1] != 2 * dim or np.asarray(mlp["w3"]).shape[-2] != p:
        raise ValueError(
            f"embedding (p = {p}, dim = {dim}) does not fit the MLP (input {w1.shape[-1]}, "
            f"output {np.asarray(mlp['w3']).shape[-2]})"
        )
    dtype = np.result_type(e.dtype, w1.dtype)
    if mask is None:
        mask = np.ones(p * p)
    mask = np.asarray(mask, dtype)
    if mask.shape != (p * p,) or mask.sum() < 1:
        raise ValueError(f"mask must be (p^2,) = ({p * p},) with at least one pair")
    lead_e = e.shape[:-2]
    lead_m = w1.shape[:-2]
    lead = np.broadcast_shapes(lead_e, lead_m)
    layers = {
        k: np.broadcast_to(
            np.asarray(mlp[k], dtype), lead + np.asarray(mlp[k]).shape[len(lead_m) :]
        )
        for k in MLP_LAYERS
    }
    e = np.broadcast_to(e.astype(dtype), lead + (p, dim))
    n = int(np.prod(lead)) if lead else 1
    flat = {k: v.reshape((n,) + v.shape[len(lead) :]) for k, v in layers.items()}
    loss, acc = _evaluate(
        {k: jnp.asarray(v) for k, v in flat.items()},
        jnp.asarray(e.reshape((n, p, dim))),
        jnp.asarray(mask),
        labels(p),
    )
    return np.asarray(loss).reshape(lead), np.asarray(acc).reshape(lead)


@jax.jit
def _evaluate(layers, embeddings, mask, y) -> tuple[Array, Array]:
    def one(layer, e):
        logits = Net(embedding=e, **layer).logits()
        onehot = jax.nn.one_hot(y, e.shape[0], dtype=logits.dtype)
        ce = -jnp.sum(jax.nn.log_softmax(logits) * onehot, axis=1)
        correct = (jnp.argmax(logits, axis=1) == y).astype(ce.dtype)
        return jnp.sum(ce * mask) / jnp.sum(mask), jnp.sum(correct * mask) / jnp.sum(mask)

    return jax.lax.map(lambda args: one(*args), (layers, embeddings), batch_size=64)
