"""Per-circle read-out and gradient spectrum (dynafit.circle_readout / circle_quantities)
against a direct computation from a trainer's saved embeddings and weights."""

from __future__ import annotations

import dataclasses

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


@pytest.fixture(scope="module")
def recorded():
    return train_result(dataclasses.replace(C, record_circles=True), [3], progress=False)


def _net_at(run, i: int) -> tm.Net:
    layers = (run.extras[f"params__{k}"][0, i] for k in ("w1", "b1", "w2", "b2", "w3", "b3"))
    return tm.Net(jnp.asarray(run.extras["embeddings"][0, i]), *map(jnp.asarray, layers))


def test_recorded_readout_and_gradient_match_the_snapshots(run, recorded):
    traj, m = recorded.trajectory, (C.p - 1) // 2
    readout = np.stack([traj.aux[f"readout_S{k}"][0] for k in range(m + 1)], axis=-1)
    gradient = np.stack([traj.aux[f"gradient_S{k}"][0] for k in range(m + 1)], axis=-1)
    assert readout.shape == gradient.shape == (C.steps + 1, m + 1)
    # recording changes nothing else
    np.testing.assert_array_equal(traj.x, run.trajectory.x)
    static = tm.Static(
        p=C.p, lr=C.lr, wd=C.wd, n_train=tm.n_train(C.p, C.frac), freeze_embedding=False
    )
    split = tm.Split(jnp.asarray(tm.init_mask(3, p=C.p, n_train=static.n_train)))
    steps = recorded.extras["snapshot_steps"]
    emb, w1 = recorded.extras["embeddings"][0], recorded.extras["params__w1"][0]
    for i, t in enumerate(steps):
        net = _net_at(recorded, i)
        grad = jax.grad(lambda e, n=net: tm.metrics(n, split, tm.labels(C.p), static, e)[0])
        q = dynafit.circle_quantities(emb[i], w1[i], np.asarray(grad(net.embedding)))
        np.testing.assert_allclose(readout[t], q["readout"], rtol=1e-5)
        np.testing.assert_allclose(gradient[t], q["gradient"], rtol=1e-4, atol=1e-7)
    assert not np.allclose(gradient[0], gradient[-1])


def test_recorded_quantities_save_and_resume(recorded, tmp_path):
    path = recorded.save(tmp_path / "run.npz")
    back = dynafit.load(path)
    np.testing.assert_array_equal(back.aux["readout_S1"], recorded.trajectory.aux["readout_S1"])
    cfg = dataclasses.replace(C, record_circles=True, checkpoint_every=10)
    first = train_result(cfg, [3], checkpoint_dir=tmp_path / "ck", progress=False)
    resumed = train_result(cfg, [3], checkpoint_dir=tmp_path / "ck", progress=False)
    for key in ("readout_S2", "gradient_S2"):
        np.testing.assert_array_equal(resumed.trajectory.aux[key], first.trajectory.aux[key])
        np.testing.assert_allclose(first.trajectory.aux[key], recorded.trajectory.aux[key])
    with pytest.raises(ValueError, match="record_circles"):
        TrainConfig(record_circles=1).validate()  # pyright: ignore[reportArgumentType]
