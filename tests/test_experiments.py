"""The paper's experiments (training/experiments/) and the APIs behind them.

Fast: Fourier filtering and evaluating a trained network on another embedding, the
trainer's given initial embeddings and MLP snapshots, each experiment's set-up, spec
parsing and ``--only``. Slow (second stage): every experiment's smoke setting end to end.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dynafit import circle_signals
from training import TrainConfig
from training import experiments as X
from training._model import init_mask, n_train
from training.evaluate import evaluate, fourier_filter, mlp_at
from training.experiments.circle_panels import delta
from training.experiments.construction import construct_embedding
from training.reproduce import main
from training.trainer import train_result

C = TrainConfig(p=11, dim=16, hidden=32, steps=60, chunk=20, checkpoint_every=20, snapshot_every=20)


def _spectrum(e):
    return np.linalg.norm(np.fft.fft(e, axis=-2), axis=-1)


def test_fourier_filter_keeps_only_the_chosen_circles():
    e = np.random.default_rng(0).normal(size=(2, 11, 5))
    np.testing.assert_allclose(fourier_filter(e, range(1, 6)), e, atol=1e-12)
    s = _spectrum(fourier_filter(e, [2]))
    full = _spectrum(e)
    np.testing.assert_allclose(s[:, [0, 2, 9]], full[:, [0, 2, 9]], atol=1e-12)
    assert np.abs(np.delete(s, [0, 2, 9], axis=1)).max() < 1e-12
    assert np.abs(_spectrum(fourier_filter(e, [2], keep_mean=False))[:, 0]).max() < 1e-12
    with pytest.raises(ValueError, match="outside 1..5"):
        fourier_filter(e, [6])


@pytest.fixture(scope="module")
def snap():
    return train_result(C.replace(snapshot_params=True), "0-1", progress=False)


def test_evaluate_matches_the_trainers_own_loss(snap):
    """The train loss the trainer recorded at each snapshot step equals evaluate() of the
    snapshot's MLP on its embedding over the training pairs."""
    steps = snap.extras["snapshot_steps"]
    for run, seed in enumerate((0, 1)):
        mask = init_mask(seed, p=C.p, n_train=n_train(C.p, C.frac))
        loss, acc = evaluate(mlp_at(snap.extras, run), snap.extras["embeddings"][run], mask=mask)
        np.testing.assert_allclose(loss, snap.trajectory.aux["train_loss"][run, steps], rtol=1e-5)
        np.testing.assert_allclose(acc, snap.trajectory.aux["train_acc"][run, steps], atol=1e-6)
    # a filtered embedding changes the loss; keeping every circle does not
    mlp, emb = mlp_at(snap.extras), snap.extras["embeddings"][0]
    same, _ = evaluate(mlp, fourier_filter(emb, range(1, 6)))
    np.testing.assert_allclose(same, evaluate(mlp, emb)[0], rtol=1e-5)
    one, _ = evaluate(mlp, fourier_filter(emb, [1]))
    assert one[-1] > same[-1]
    # broadcasting: one MLP over a stack of filtered embeddings
    stack = np.stack([fourier_filter(emb, [k]) for k in (1, 2, 3)])
    loss, _ = evaluate({k: v[None] for k, v in mlp.items()}, stack)
    assert loss.shape == (3, len(emb))
    np.testing.assert_allclose(loss[0], one, rtol=1e-5)
    with pytest.raises(ValueError, match="does not fit"):
        evaluate(mlp, emb[:, :, :8])
    with pytest.raises(ValueError, match="snapshot_params"):
        mlp_at({"embeddings": emb})


def test_snapshot_params_and_init_embeddings(snap):
    plain = train_result(C, "0-1", progress=False)
    np.testing.assert_array_equal(plain.trajectory.x, snap.trajectory.x)
    assert snap.extras["params__w1"].shape == (2, 4, 32, 32)
    with pytest.raises(ValueError, match="snapshot_params needs"):
        C.replace(snapshot_params=True, snapshot_every=10).validate()
    with pytest.raises(ValueError, match="matmul_precision"):
        C.replace(matmul_precision="fast").validate()
    e = np.random.default_rng(1).normal(size=(2, 11, 16))
    given = train_result(
        C.replace(steps=20, snapshot_every=0), "0-1", progress=False, init_embeddings=e
    )
    s = circle_signals(e.astype(np.float32))
    np.testing.assert_allclose(given.trajectory.x[:, 0], s[:, 1:], rtol=1e-5)
    assert given.trajectory.meta["runs"][0]["matmul_precision"] == "highest"
    with pytest.raises(ValueError, match="shape"):
        train_result(C, "0-1", progress=False, init_embeddings=e[:1])


def test_construct_embedding_has_the_asked_signals():
    e, c1, c2 = construct_embedding(
        3, p=23, dim=8, scale=10.0, ratio=0.25, noise=1e-6, circles="random"
    )
    s = _spectrum(e)
    assert c1 != c2 and 1 <= c1 <= 11 and 1 <= c2 <= 11
    assert s[c1] == pytest.approx(10.0) and s[c2] == pytest.approx(2.5)
    others = [k for k in range(1, 12) if k not in (c1, c2)]
    np.testing.assert_allclose(s[others], 1e-6, rtol=1e-6)
    again = construct_embedding(3, p=23, dim=8, scale=10.0, ratio=1.0, noise=1e-6, circles="random")
    assert again[1:] == (c1, c2)  # same seed: same circles and directions at every ratio
    _, d1, d2 = construct_embedding(0, p=23, dim=8, scale=1, ratio=1, noise=0, circles=[1, 2])
    assert (d1, d2) == (1, 2)


def test_experiment_set_ups():
    base = TrainConfig(p=59, dim=16, steps=10)
    fit = X.EXPERIMENTS["fittest_controlled"]
    jobs = fit.jobs(base, fit.params({"embed_seeds": [3, 4], "seeds": "0-2"}))
    assert [j.config.embed_seed for j in jobs] == [3, 4] and jobs[0].seeds == (0, 1, 2)
    per = X.EXPERIMENTS["perturbation"]
    jobs = per.jobs(base, per.params({"embed_seeds": [0], "factors": [0.9, 1.1]}))
    assert [(j.config.scale_freqs, j.config.scale_factor) for j in jobs] == [
        ((25,), 0.9),
        ((25,), 1.1),
    ]
    con = X.EXPERIMENTS["construction"]
    jobs = con.jobs(base, con.params({"seeds": "0-1"}))
    assert len(jobs) == 3 and all(j.config.mlp_seed == 0 for j in jobs)
    assert jobs[0].init_embeddings.shape == (2, 59, 16)
    assert len({j.key() for j in jobs}) == 3
    abl = X.EXPERIMENTS["ablation"]
    variants = abl._variants(base, abl.params({}))
    assert [v[0] for v in variants] == ["O", "A", "B", "C", "D"]
    e0 = variants[0][2]
    strongest = int(np.argmax(_spectrum(e0)[1:30])) + 1
    assert variants[1][1] == [strongest]
    s = _spectrum(variants[1][2])
    assert np.delete(s, [strongest, 59 - strongest]).max() < 1e-9
    col, pan = X.EXPERIMENTS["collaboration"], X.EXPERIMENTS["circle_panels"]
    (a,) = col.jobs(base, col.params({}))
    (b,) = pan.jobs(base, pan.params({}))
    assert a.key() == b.key() and a.config.snapshot_params  # one shared training
    # neighbours on circle k are Delta apart, Delta * k = +-1 (mod p); the reference's
    # hand-written labels give Delta or p - Delta (k = 2: 30, k = 8: 22)
    assert delta(2, 59) == 29 and delta(8, 59) == 22 and delta(3, 59) == 20


def test_spec_parsing_and_only(tmp_path, capsys):
    for scale in ("smoke", "small", "full"):
        table = X.load_paper_spec(X.spec_path(scale))
        assert set(table) == set(X.EXPERIMENTS)
        for name, (base, params) in table.items():
            assert X.EXPERIMENTS[name].jobs(base, params)
    full = X.load_paper_spec(X.spec_path("full"))
    assert full["perturbation"][0].p == 59 and full["frozen_embedding"][0].steps == 10000
    spec = tmp_path / "s.toml"
    spec.write_text("p = 11\n[nope]\n")
    with pytest.raises(ValueError, match="unknown experiment"):
        X.load_paper_spec(spec)
    spec.write_text("p = 11\n[ablation]\nsed = 1\n")
    with pytest.raises(ValueError, match="unknown parameter"):
        X.load_paper_spec(spec)
    spec.write_text("p = 12\n[ablation]\n")
    with pytest.raises(ValueError, match=r"\[ablation\]: p must be odd"):
        X.load_paper_spec(spec)
    spec.write_text("p = 11\n[ablation\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        X.load_paper_spec(spec)
    with pytest.raises(ValueError, match="no such paper spec"):
        X.load_paper_spec(tmp_path / "missing.toml")
    assert X.select(["a", "b", "c"], "c,a") == ["a", "c"]
    with pytest.raises(ValueError, match="unknown experiment"):
        X.select(["a"], "b")
    assert main(["--scale", "smoke", "--out", str(tmp_path / "o"), "--only", "nope"]) == 2
    assert "unknown experiment(s) ['nope']" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_every_experiment_smoke(tmp_path):
    out = tmp_path / "paper"
    names = ",".join(X.EXPERIMENTS)
    assert main(["--scale", "smoke", "--out", str(out), "--only", names, "--quiet"]) == 0
    for name in X.EXPERIMENTS:
        table = pd.read_csv(out / name / f"{name}.csv")
        assert len(table) > 0, name
        assert (out / name / f"{name}.png").stat().st_size > 5000
        meta = json.loads((out / name / f"{name}.json").read_text())
        assert meta["paper_figure"] and meta["headline"] is not None
    runs = sorted((out / "_runs").glob("*.npz"))
    col = json.loads((out / "collaboration" / "collaboration.json").read_text())
    pan = json.loads((out / "circle_panels" / "circle_panels.json").read_text())
    assert col["jobs"] == pan["jobs"]  # the panels reuse collaboration's training
    collab = pd.read_csv(out / "collaboration" / "collaboration.csv")
    assert set(collab["n_circles"]) >= {1, 2}  # the smoke run has survivors to build on
    assert np.isfinite(collab["loss"]).all()
    # running again trains nothing: every training is reused
    stamps = {p: p.stat().st_mtime_ns for p in runs}
    assert main(["--scale", "smoke", "--out", str(out), "--only", names, "--quiet"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "_runs").glob("*.npz")} == stamps
