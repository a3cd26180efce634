"""Trajectory: validation, windows, batches, the .npz schema, circle signals."""

import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import dynafit
from dynafit import Trajectory


def _traj(T=11, m=3, seed=0):
    rng = np.random.default_rng(seed)
    return Trajectory(
        np.arange(T, dtype=float), rng.random((T, m)) + 0.1, names=["a", "b", "c"][:m]
    )


def test_window_is_label_slicing_with_both_ends():
    tr = Trajectory(np.arange(2001.0), np.ones((2001, 2)))
    w = tr.window(0, 1000)
    assert w.n_times == 1001 and w.t[0] == 0 and w.t[-1] == 1000
    assert tr.window(1000, None).t[0] == 1000


def test_select_and_names():
    tr = _traj()
    sub = tr.select(["c", "a"])
    assert sub.names == ("c", "a")
    np.testing.assert_array_equal(sub.x[:, 0], tr.x[:, 2])
    with pytest.raises(ValueError, match="unknown variables"):
        tr.select(["z"])


@pytest.mark.parametrize(
    "t, x, match",
    [
        (np.arange(5.0), np.ones((4, 2)), "disagree"),
        (np.array([0.0, 1.0, 1.0]), np.ones((3, 2)), "strictly increasing"),
        (np.arange(3.0), np.array([[1.0, np.nan]] * 3), "NaN or inf"),
        (np.arange(3.0), np.array([[1.0, np.inf]] * 3), "NaN or inf"),
        (np.arange(1.0), np.ones((1, 2)), "at least 2"),
        (np.ones((3, 1)), np.ones((3, 2)), "one-dimensional"),
        (np.arange(3.0), np.ones(3), r"shape \(T, m\)"),
    ],
)
def test_bad_input_is_a_clear_value_error(t, x, match):
    with pytest.raises(ValueError, match=match):
        Trajectory(t, x)


def test_bad_names_and_meta():
    with pytest.raises(ValueError, match="names"):
        Trajectory(np.arange(3.0), np.ones((3, 2)), names=["a"])
    with pytest.raises(ValueError, match="unique"):
        Trajectory(np.arange(3.0), np.ones((3, 2)), names=["a", "a"])
    with pytest.raises(ValueError, match="identifier"):
        Trajectory(np.arange(3.0), np.ones((3, 2)), names=["a b", "c"])
    with pytest.raises(ValueError, match="JSON"):
        Trajectory(np.arange(3.0), np.ones((3, 2)), meta={"f": object()})


def test_save_load_round_trip_is_plain_data(tmp_path):
    tr = Trajectory(
        np.arange(5.0), np.random.rand(5, 2), ["S1", "S2"], {"seed": 3}, aux={"s0": np.ones(5)}
    )
    path = tr.save(tmp_path / "run.npz")
    back = dynafit.load(path)
    np.testing.assert_array_equal(back.x, tr.x)
    assert back.names == ("S1", "S2") and back.meta == {"seed": 3}
    np.testing.assert_array_equal(back.aux["s0"], np.ones(5))
    with np.load(path, allow_pickle=False) as data:  # readable without pickle
        assert str(data["schema"]) == "dynafit.trajectory/1"
        assert json.loads(str(data["meta"])) == {"seed": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]  # no temp files left


def test_foreign_and_corrupt_files_are_value_errors(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not a dynafit trajectory"):
        dynafit.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable"):
        dynafit.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        dynafit.load(tmp_path / "obj.npz")
    with pytest.raises(ValueError, match="no such file"):
        dynafit.load(tmp_path / "missing.npz")


def test_batches_stack_split_and_load_from_folder(tmp_path):
    runs = [
        Trajectory(np.arange(4.0), np.full((4, 2), i + 1.0), ["u", "v"], {"seed": i})
        for i in range(3)
    ]
    batch = Trajectory.stack(runs)
    assert batch.is_batch and batch.x.shape == (3, 4, 2) and batch.n_runs == 3
    assert batch.run(2).meta == {"seed": 2}
    assert batch.window(1, 2).x.shape == (3, 2, 2)
    for i, r in enumerate(runs):
        r.save(tmp_path / f"r{i}.npz")
    loaded = dynafit.load(tmp_path)
    np.testing.assert_array_equal(loaded.x, batch.x)
    assert [r.meta["seed"] for r in loaded.runs()] == [0, 1, 2]


def test_from_dataframe():
    df = pd.DataFrame({"time": [0.0, 1.0, 2.0], "a": [1.0, 2.0, 3.0], "b": [3.0, 2.0, 1.0]})
    tr = Trajectory.from_dataframe(df, time="time")
    assert tr.names == ("a", "b") and tr.x.shape == (3, 2)
    with pytest.raises(ValueError, match="no time column"):
        Trajectory.from_dataframe(df)


def test_circle_signals_match_numpy_fft_and_symmetry():
    rng = np.random.default_rng(1)
    E = rng.normal(size=(4, 13, 6))
    S = dynafit.circle_signals(E)
    full = np.linalg.norm(np.fft.fft(E, axis=1), axis=-1)  # (4, 13)
    np.testing.assert_allclose(S, full[:, :7], rtol=1e-12)
    np.testing.assert_allclose(full[:, 1:7], full[:, 12:6:-1], rtol=1e-10)  # S_k = S_{p-k}
    np.testing.assert_allclose(
        np.asarray(dynafit.circle_signals(jnp.asarray(E, jnp.float32))), S, rtol=1e-4
    )
    with pytest.raises(ValueError, match="odd"):
        dynafit.circle_signals(np.ones((12, 3)))


def test_survival_threshold_is_twice_the_spectrum_mean():
    S = np.array([[1.0, 2.0, 3.0]])  # p = 7
    thr = dynafit.survival_threshold(S, s0=0.5)
    np.testing.assert_allclose(thr, 2 * (0.5 + 2 * 6.0) / 7)


def test_import_dynafit_imports_neither_training_nor_ray():
    code = "import sys, dynafit; print('training' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
