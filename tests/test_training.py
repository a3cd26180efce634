"""The trainer (issue 2): signals, determinism, resume, vmap, interventions, errors, CLI.

Every fast test shares one small config (p=11, dim=16) and two seeds so the compiled
programs are reused; only the frozen-embedding, single-seed and float64 checks compile
their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dynafit
from training import TrainConfig, parse_seeds, train
from training.cli import main as cli_main
from training.trainer import TrainResult, load_extras, train_result

REPO = Path(__file__).resolve().parents[1]
C = TrainConfig(
    p=11, dim=16, hidden=32, steps=120, chunk=20, checkpoint_every=40, snapshot_every=10
)
SEEDS = [0, 1]
CLI_ARGS = [
    "--p", "11", "--dim", "16", "--hidden", "32", "--steps", "120", "--chunk", "20",
    "--checkpoint-every", "40", "--snapshot-every", "10", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def base() -> TrainResult:
    return train_result(C, SEEDS, progress=False)


def _full_spectrum(emb: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.fft.fft(emb.astype(np.float64), axis=-2), axis=-1)


# ------------------------------------------------------------------ the record
def test_trajectory_shape_and_meta(base):
    tr = base.trajectory
    m = (C.p - 1) // 2
    assert tr.x.shape == (2, C.steps + 1, m)
    np.testing.assert_array_equal(tr.t, np.arange(C.steps + 1))
    assert tr.names == tuple(f"S{k}" for k in range(1, m + 1))
    assert set(tr.aux) == {"s0", "train_loss", "test_loss", "train_acc", "test_acc"}
    assert all(v.shape == (2, C.steps + 1) for v in tr.aux.values())
    assert tr.x.dtype == np.float32
    runs = tr.meta["runs"]
    assert [r["seed"] for r in runs] == SEEDS
    for r, run in enumerate(runs):
        assert run["config"] == C.to_dict()
        assert (run["embed_seed"], run["mlp_seed"], run["split_seed"]) == (r, r, r)
        assert run["final_test_acc"] == pytest.approx(float(tr.aux["test_acc"][r, -1]))
        assert run["final_train_loss"] == pytest.approx(float(tr.aux["train_loss"][r, -1]))
        thresh = dynafit.survival_threshold(tr.x[r, -1], tr.aux["s0"][r, -1])
        alive = [n for n, s in zip(tr.names, tr.x[r, -1]) if s > thresh]
        assert run["survivors"] == alive and run["n_survivors"] == len(alive)
        assert run["platform"] in ("cpu", "gpu", "tpu", "cuda", "rocm")
        spike = run["loss_spike"]
        acc = tr.aux["train_acc"][r]
        if spike["first_full_train_acc_step"] is not None:
            first = spike["first_full_train_acc_step"]
            assert acc[first] == 1.0 and np.all(acc[:first] < 1.0)
            assert spike["max_loss_after"] == pytest.approx(tr.aux["train_loss"][r, first:].max())
    # training makes progress on the training set
    assert np.all(tr.aux["train_loss"][:, -1] < tr.aux["train_loss"][:, 0])
    assert np.all(tr.aux["train_acc"][:, -1] > tr.aux["train_acc"][:, 0])


def test_signals_equal_numpy_fft_at_snapshots(base):
    tr, ex = base.trajectory, base.extras
    steps = ex["snapshot_steps"]
    np.testing.assert_array_equal(steps, np.arange(0, C.steps + 1, C.snapshot_every))
    assert ex["embeddings"].shape == (2, len(steps), C.p, C.dim)
    spec = _full_spectrum(ex["embeddings"])  # (R, n, p): k = 0..p-1
    m = (C.p - 1) // 2
    np.testing.assert_allclose(tr.x[:, steps], spec[..., 1 : m + 1], rtol=1e-5)
    np.testing.assert_allclose(tr.aux["s0"][:, steps], spec[..., 0], rtol=1e-5, atol=1e-5)
    # S_k = S_{p-k}: the recorded S_k equal the FFT's bins p-k as well
    np.testing.assert_allclose(tr.x[:, steps], spec[..., :m:-1], rtol=1e-5)
    np.testing.assert_array_equal(ex["final_embedding"], ex["embeddings"][:, -1])


def test_init_gradient_spectrum_is_symmetric_and_finite(base):
    g = base.extras["init_grad_signal"]
    assert g.shape == (2, (C.p - 1) // 2 + 1)
    assert np.all(np.isfinite(g)) and np.all(g[:, 1:] > 0)


def test_same_seed_is_bitwise_identical(base):
    again = train(C, SEEDS, progress=False)
    np.testing.assert_array_equal(again.x, base.trajectory.x)
    for key, value in base.trajectory.aux.items():
        np.testing.assert_array_equal(again.aux[key], value)


def test_resumed_equals_uninterrupted(base, tmp_path):
    class Interrupt(Exception):
        pass

    def crash(step):
        if step == 80:
            raise Interrupt

    ckpt = tmp_path / ".checkpoints"
    with pytest.raises(Interrupt):
        train_result(C, SEEDS, checkpoint_dir=ckpt, progress=False, fault_hook=crash)
    assert any(ckpt.glob("*.eqx")) and any(ckpt.glob("*.json"))
    seen = []
    resumed = train_result(C, SEEDS, checkpoint_dir=ckpt, progress=False, fault_hook=seen.append)
    assert seen == [120]  # trained only the steps after the checkpoint at 80
    np.testing.assert_array_equal(resumed.trajectory.x, base.trajectory.x)
    for key, value in base.trajectory.aux.items():
        np.testing.assert_array_equal(resumed.trajectory.aux[key], value)
    for key, value in base.extras.items():
        np.testing.assert_array_equal(resumed.extras[key], value)
    # a finished checkpoint is reused without training
    seen.clear()
    again = train(C, SEEDS, checkpoint_dir=ckpt, progress=False, fault_hook=seen.append)
    assert seen == [] and np.array_equal(again.x, base.trajectory.x)


def test_run_saved_before_a_later_field_existed_still_resumes(base, tmp_path, capsys):
    """A checkpoint and manifest written before ``matmul_precision`` and
    ``snapshot_params`` existed are the same run as a command leaving them at default."""
    from training.config import LATER_FIELDS

    out = tmp_path / "runs"
    ckpt = out / ".checkpoints"
    with pytest.raises(RuntimeError):
        train_result(C, SEEDS, checkpoint_dir=ckpt, progress=False, fault_hook=_crash_at(80))
    old = {k: v for k, v in C.to_dict().items() if k not in LATER_FIELDS}  # the old format
    for meta in ckpt.glob("*.json"):
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "config": old}))
    manifest = {"kind": "dynafit.train/1", "config": old, "seeds": SEEDS, "status": "running"}
    (out / "manifest.json").write_text(json.dumps(manifest))

    seen = []
    resumed = train_result(C, SEEDS, checkpoint_dir=ckpt, progress=False, fault_hook=seen.append)
    assert seen == [120]  # trained only the steps after the old checkpoint at 80
    np.testing.assert_array_equal(resumed.trajectory.x, base.trajectory.x)
    assert cli_main([*CLI_ARGS, "--seeds", "0-1", "--out", str(out)]) == 0  # not refused
    np.testing.assert_array_equal(dynafit.load(out / "train.npz").x, base.trajectory.x)
    # set away from its default, a later field makes another run
    assert not C.replace(matmul_precision="default").same_run(old)
    assert C.same_run(old) and not C.same_run({"p": "eleven"}) and not C.same_run(None)


def test_checkpoint_named_while_later_fields_were_hashed_still_resumes(base, tmp_path):
    """Checkpoints written when the later fields entered the name even at their
    defaults (the full ``to_dict``) are found under that name and resumed."""
    from training.trainer import run_keys

    ckpt = tmp_path / ".checkpoints"
    with pytest.raises(RuntimeError):
        train_result(C, SEEDS, checkpoint_dir=ckpt, progress=False, fault_hook=_crash_at(80))
    new, old = run_keys(C, SEEDS)
    for path in list(ckpt.iterdir()):  # rename the run as the earlier version named it
        if path.suffix == ".json":
            path.write_text(path.read_text().replace(new, old))
        path.rename(ckpt / path.name.replace(new, old))
    seen = []
    resumed = train_result(C, SEEDS, checkpoint_dir=ckpt, progress=False, fault_hook=seen.append)
    assert seen == [120]  # resumed from the old-named checkpoint at 80
    np.testing.assert_array_equal(resumed.trajectory.x, base.trajectory.x)


def _crash_at(at):
    def crash(step):
        if step == at:
            raise RuntimeError("interrupted")

    return crash


def test_vmapped_seeds_equal_separate_runs(base):
    cfg = C.replace(snapshot_every=0)
    for r, seed in enumerate(SEEDS):
        single = train(cfg, [seed], progress=False)
        np.testing.assert_allclose(single.x[0], base.trajectory.x[r], rtol=1e-5, atol=1e-5)
        for key in ("s0", "train_loss", "test_loss"):
            np.testing.assert_allclose(
                single.aux[key][0], base.trajectory.aux[key][r], rtol=1e-5, atol=1e-6
            )


def test_interventions_change_exactly_the_asked_frequencies(base):
    cfg = C.replace(scale_freqs=(2, 4), scale_factor=3.0)
    tr = train(cfg, SEEDS, progress=False)
    before, after = base.trajectory.x[:, 0], tr.x[:, 0]
    np.testing.assert_allclose(after[:, [1, 3]], 3.0 * before[:, [1, 3]], rtol=1e-5)
    others = [0, 2, 4]
    np.testing.assert_allclose(after[:, others], before[:, others], rtol=1e-5)
    np.testing.assert_allclose(tr.aux["s0"][:, 0], base.trajectory.aux["s0"][:, 0], atol=1e-4)
    # and the dynamics differ afterwards
    assert not np.allclose(tr.x[:, -1], base.trajectory.x[:, -1])


def test_seed_overrides_vary_one_part_each(base):
    tr = train(C.replace(embed_seed=7), SEEDS, progress=False)
    runs = tr.meta["runs"]
    assert [r["embed_seed"] for r in runs] == [7, 7]
    assert [r["mlp_seed"] for r in runs] == SEEDS
    np.testing.assert_array_equal(tr.x[0, 0], tr.x[1, 0])  # same embedding init
    assert tr.aux["train_loss"][0, 0] != tr.aux["train_loss"][1, 0]  # MLP and split differ
    tr = train(C.replace(mlp_seed=0, split_seed=0), SEEDS, progress=False)
    base_x = base.trajectory.x
    np.testing.assert_array_equal(tr.x[:, 0], base_x[:, 0])  # embeddings follow the seed
    np.testing.assert_array_equal(tr.x[0], base_x[0])  # seed 0 is unchanged
    assert not np.array_equal(tr.x[1], base_x[1])


def test_freeze_embedding_keeps_signals_fixed():
    cfg = C.replace(freeze_embedding=True, snapshot_every=0, steps=40)
    tr = train(cfg, SEEDS, progress=False)
    np.testing.assert_array_equal(tr.x, np.broadcast_to(tr.x[:, :1], tr.x.shape))
    assert np.all(tr.aux["train_loss"][:, -1] < tr.aux["train_loss"][:, 0])


def test_save_load_roundtrip_without_pickle(base, tmp_path):
    path = base.save(tmp_path / "run.npz")
    with np.load(path, allow_pickle=False) as data:
        assert str(data["schema"]) == "dynafit.trajectory/1"
    tr = dynafit.load(path)
    np.testing.assert_array_equal(tr.x, base.trajectory.x)
    assert tr.meta == base.trajectory.meta
    extras = load_extras(path)
    assert set(extras) == set(base.extras)
    np.testing.assert_array_equal(extras["embeddings"], base.extras["embeddings"])


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(p=1), "p must be >= 3"),
        (dict(p=12), "p must be odd"),
        (dict(p=2.5), "p must be an integer"),
        (dict(dim=0), "dim must be >= 1"),
        (dict(hidden=0), "hidden must be >= 1"),
        (dict(steps=0), "steps must be >= 1"),
        (dict(frac=0.0), "frac"),
        (dict(frac=1.0), "frac"),
        (dict(frac=-0.2), "frac"),
        (dict(p=3, frac=0.05), "both the train and the test set"),
        (dict(lr=0.0), "lr must be > 0"),
        (dict(lr=float("nan")), "lr must be finite"),
        (dict(wd=-1.0), "wd must be >= 0"),
        (dict(dtype="float16"), "dtype"),
        (dict(embed_seed=-1), "embed_seed"),
        (dict(scale_freqs=(0,)), "outside 1..29"),
        (dict(scale_freqs=(30,)), "outside 1..29"),
        (dict(p=11, scale_freqs=(6,)), "outside 1..5"),
        (dict(scale_freqs=(3, 3)), "twice"),
        (dict(chunk=0), "chunk must be >= 1"),
        (dict(chunk=100, checkpoint_every=150), "multiple of chunk"),
        (dict(chunk=100, snapshot_every=30), "snapshot_every"),
        (dict(snapshot_every=-1), "snapshot_every must be >= 0"),
    ],
)
def test_config_errors(changes, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(".", r"\.")):
        TrainConfig(**changes).validate()


def test_config_dict_roundtrip_and_unknown_keys():
    cfg = TrainConfig(scale_freqs=(3, 5), scale_factor=2.0, embed_seed=4)
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d and d["scale_freqs"] == [3, 5]
    assert TrainConfig.from_dict(d) == cfg
    assert TrainConfig.from_dict({"p": 13}) == TrainConfig(p=13)
    with pytest.raises(ValueError, match="bogus"):
        TrainConfig.from_dict({"p": 13, "bogus": 1})
    with pytest.raises(ValueError, match="unknown"):
        cfg.replace(nope=1)
    TrainConfig().validate()  # the paper's defaults are valid


def test_parse_seeds():
    assert parse_seeds("0-7") == list(range(8))
    assert parse_seeds("0,3,5") == [0, 3, 5]
    assert parse_seeds("4") == [4]
    assert parse_seeds(" 0-2, 9 ") == [0, 1, 2, 9]
    assert parse_seeds(3) == [3]
    assert parse_seeds([5, 2]) == [5, 2]
    for bad, words in [
        ("", "empty"),
        ("7-3", "backwards"),
        ("a", "cannot read"),
        ("1,,2", "cannot read"),
        ("-1", "cannot read"),
        ([-1], "non-negative"),
        ([1.5], "integers"),
        (True, "integers"),
        ("1,1", "more than once"),
        ([], "no seeds"),
        (2**40, "too large"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_seeds(bad)


def test_train_rejects_bad_arguments():
    with pytest.raises(ValueError, match="TrainConfig"):
        train({"p": 11}, [0])
    with pytest.raises(ValueError, match="p must be odd"):
        train(C.replace(p=10), [0])
    with pytest.raises(ValueError, match="seeds"):
        train(C, "x")
    import jax

    if not jax.config.jax_enable_x64:
        with pytest.raises(ValueError, match="JAX_ENABLE_X64"):
            train(C.replace(dtype="float64"), [0])


def test_diverged_run_is_a_clear_error():
    from training.trainer import _check_finite, _History

    hist = _History(2, 5, 2, np.float32, 0, 5, 3)
    hist.series["train_loss"][1, 3:] = np.nan
    with pytest.raises(ValueError, match="seed 8 at step 3"):
        _check_finite([7, 8], hist)


# ---------------------------------------------------------------------- CLI
def test_cli_writes_resumes_and_refuses(base, tmp_path, capsys):
    out = tmp_path / "runs"
    assert cli_main([*CLI_ARGS, "--seeds", "0-1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "seed 0: test acc" in text and "seed 1: test acc" in text and "circles survive" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["seeds"] == SEEDS
    assert manifest["config"] == C.to_dict() and "version" in manifest
    assert (out / ".checkpoints").is_dir()
    tr = dynafit.load(out / "train.npz")
    np.testing.assert_array_equal(tr.x, base.trajectory.x)
    assert dynafit.load(out).x.shape == tr.x.shape  # the folder loads as well
    mtime = (out / "train.npz").stat().st_mtime_ns

    # the same command again: nothing retrained, nothing rewritten
    assert cli_main([*CLI_ARGS, "--seeds", "0-1", "--out", str(out)]) == 0
    assert "already complete" in capsys.readouterr().out
    assert (out / "train.npz").stat().st_mtime_ns == mtime

    # a different config or seeds: refused, files untouched
    assert cli_main([*CLI_ARGS, "--seeds", "2-3", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "train.npz").stat().st_mtime_ns == mtime
    assert json.loads((out / "manifest.json").read_text())["seeds"] == SEEDS

    assert cli_main([*CLI_ARGS, "--seeds", "2-3", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "manifest.json").read_text())["seeds"] == [2, 3]
    assert [r["seed"] for r in dynafit.load(out / "train.npz").meta["runs"]] == [2, 3]


def test_cli_refuses_foreign_folder_and_bad_input_before_work(tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert cli_main([*CLI_ARGS, "--out", str(foreign)]) == 2
    assert (foreign / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]

    blocker = tmp_path / "file"
    blocker.write_text("x")
    for args, words in [
        (["--out", str(blocker)], "not a folder"),
        (["--out", str(blocker / "sub")], "cannot write"),
        (["--p", "4", "--out", str(tmp_path / "a")], "p must be odd"),
        (["--steps", "0", "--out", str(tmp_path / "a")], "steps must be >= 1"),
        (["--frac", "1.5", "--out", str(tmp_path / "a")], "frac"),
        (["--dim", "0", "--out", str(tmp_path / "a")], "dim must be >= 1"),
        (["--scale-freq", "40", "--out", str(tmp_path / "a")], "outside 1..29"),
        (["--scale-freq", "x", "--out", str(tmp_path / "a")], "not an integer"),
        (["--seeds", "5-2", "--out", str(tmp_path / "a")], "backwards"),
    ]:
        assert cli_main(args) == 2
        assert words in capsys.readouterr().err
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert cli_main(["--out", str(locked / "x")]) == 2
        assert "cannot write" in capsys.readouterr().err
    assert cli_main(["--help"]) == 0


# ------------------------------------------------------------------ float64
def test_float64_in_subprocess_starts_from_the_float32_init(base, tmp_path):
    """`--dtype float64` turns on 64-bit JAX at process start; same init as float32."""
    out = tmp_path / "f64"
    args = [
        "--p", "11", "--dim", "16", "--hidden", "32", "--steps", "20", "--chunk", "20",
        "--checkpoint-every", "20", "--seeds", "0-1", "--dtype", "float64", "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run(
        [sys.executable, "-m", "training", *args, "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    tr = dynafit.load(out / "train.npz")
    assert tr.x.dtype == np.float64 and tr.aux["train_loss"].dtype == np.float64
    assert tr.meta["runs"][0]["config"]["dtype"] == "float64"
    ref = base.trajectory
    np.testing.assert_allclose(tr.x[:, 0], ref.x[:, 0], rtol=1e-5)
    np.testing.assert_allclose(tr.aux["train_loss"][:, 0], ref.aux["train_loss"][:, 0], rtol=1e-5)
    np.testing.assert_allclose(tr.aux["train_acc"][:, 0], ref.aux["train_acc"][:, 0], atol=1e-6)
    np.testing.assert_allclose(tr.x[:, 20], ref.x[:, 20], rtol=1e-3)


# --------------------------------------------------------------------- slow
@pytest.mark.slow
def test_paper_defaults_short_run():
    cfg = TrainConfig(steps=200)
    tr = train(cfg, [0, 1], progress=False)
    assert tr.x.shape == (2, 201, 29)
    assert np.all(np.isfinite(tr.x))
    assert np.all(tr.aux["train_loss"][:, -1] < tr.aux["train_loss"][:, 0])
