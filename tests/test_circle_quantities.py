"""Per-circle read-out and gradient spectrum (dynafit.circle_readout / circle_quantities)
against a direct computation from a trainer's saved embeddings and weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynafit
from training import TrainConfig
from training import _model as tm
from training.trainer import train_result

C = TrainConfig(p=11, dim=8, hidden=12, steps=20, chunk=10, snapshot_every=10, snapshot_params=True)


@pytest.fixture(scope="module")
def run():
    return train_result(C, [3], progress=False)


def _direct_readout(E: np.ndarray, w1: np.ndarray) -> np.ndarray:
    """The read-out by an explicit DFT with cosines and sines (no FFT)."""
    p, dim = E.shape
    a = np.arange(p)
    out = []
    for k in range((p - 1) // 2 + 1):
        re = np.cos(2 * np.pi * k * a / p) @ E
        im = -np.sin(2 * np.pi * k * a / p) @ E
        total = 0.0
        for W in (w1[:, :dim], w1[:, dim:]):
            total += np.sqrt(np.sum((W @ re) ** 2 + (W @ im) ** 2))
        out.append(total)
    return np.array(out)


def test_readout_matches_direct_computation_from_snapshots(run):
    emb = run.extras["embeddings"][0]  # (n_snap, p, dim)
    w1 = run.extras["params__w1"][0]  # (n_snap, hidden, 2 dim)
    got = dynafit.circle_readout(emb, w1)
    assert got.shape == (emb.shape[0], 6)
    for i in range(emb.shape[0]):
        np.testing.assert_allclose(got[i], _direct_readout(emb[i], w1[i]), rtol=1e-5)
    # the layer moved during training: the read-out is not the same at every snapshot
    assert not np.allclose(got[0], got[-1])
    # and the signal is the trainer's own record at those steps
    q = dynafit.circle_quantities(emb, w1)
    steps = run.extras["snapshot_steps"]
    np.testing.assert_allclose(q["signal"][:, 1:], run.trajectory.x[0, steps], rtol=1e-5)


def test_gradient_spectrum_matches_the_trainers_record_at_init(run):
    E = run.extras["embeddings"][0, 0]
    net = tm.Net(
        jnp.asarray(E),
        *(
            jnp.asarray(run.extras[f"params__{k}"][0, 0])
            for k in ("w1", "b1", "w2", "b2", "w3", "b3")
        ),
    )
    static = tm.Static(
        p=C.p, lr=C.lr, wd=C.wd, n_train=tm.n_train(C.p, C.frac), freeze_embedding=False
    )
    split = tm.Split(jnp.asarray(tm.init_mask(3, p=C.p, n_train=static.n_train)))

    def loss(e):
        return tm.metrics(net, split, tm.labels(C.p), static, e)[0]

    grad = np.asarray(jax.grad(loss)(net.embedding))
    q = dynafit.circle_quantities(E, run.extras["params__w1"][0, 0], grad)
    np.testing.assert_allclose(q["gradient"], run.extras["init_grad_signal"][0], rtol=1e-4)


def test_bad_input_is_a_value_error(run):
    emb = run.extras["embeddings"][0]
    w1 = run.extras["params__w1"][0]
    with pytest.raises(ValueError, match="first layer"):
        dynafit.circle_readout(emb, None)
    with pytest.raises(ValueError, match="first_layer must have shape"):
        dynafit.circle_readout(emb, w1[..., :-1])  # not 2 dim inputs
    with pytest.raises(ValueError, match="first_layer must have shape"):
        dynafit.circle_readout(emb, w1[:1])  # fewer snapshots than embeddings
    with pytest.raises(ValueError, match="odd"):
        dynafit.circle_readout(emb[:, :-1], w1)
    with pytest.raises(ValueError, match="gradients must have"):
        dynafit.circle_quantities(emb, w1, emb[:, :, :-1])
    with pytest.raises(ValueError, match="finite"):
        dynafit.circle_readout(np.full_like(emb, np.nan), w1)
