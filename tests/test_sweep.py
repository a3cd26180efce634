"""Sweep specs, block expansion and the engine with the local backend (fast tests).

The engine tests train in this process (``LocalExecutor(in_process=True)``) on a tiny
config; the Ray backend and process workers are covered in test_ray.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dynafit
from dynafit._executors import (
    ONE_THREAD_ENV,
    AbstractExecutor,
    LocalExecutor,
    Outcome,
    RayExecutor,
    make_executor,
)
from dynafit._io import load_json, load_npz
from training import TrainConfig
from training import sweep as sw

TINY = """
p = 5
hidden = 8
steps = 20
chunk = 10
checkpoint_every = 10
"""


def write_spec(tmp_path: Path, body: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def tiny_spec(tmp_path: Path, seeds: str = "0-3", extra: str = "", name="spec.toml") -> Path:
    return write_spec(
        tmp_path, TINY + f'seeds = "{seeds}"\nblock_size = 2\n{extra}\n[grid]\ndim = [2]\n', name
    )


@pytest.fixture(scope="module")
def inproc():
    with LocalExecutor(in_process=True) as ex:
        yield ex


class NoTasks(AbstractExecutor):
    """An executor that fails the test if anything is submitted to it."""

    backend = "local"
    accelerator = "cpu"
    workers = 1

    def imap_unordered(self, fn, tasks, *, envs=None):
        raise AssertionError("a task was submitted")

    def close(self):
        pass


class Failing(AbstractExecutor):
    """Every task fails, as a crashed worker would report."""

    backend = "local"
    accelerator = "cpu"
    workers = 1

    def imap_unordered(self, fn, tasks, *, envs=None):
        for i, _ in enumerate(tasks):
            yield Outcome(i, error=RuntimeError("worker died"))

    def close(self):
        pass


def file_arrays(out: Path) -> dict[str, dict[str, np.ndarray]]:
    return {p.name: load_npz(p) for p in sorted(out.glob("*.npz"))}


def assert_same_files(a: Path, b: Path) -> None:
    fa, fb = file_arrays(a), file_arrays(b)
    assert sorted(fa) == sorted(fb)
    for name in fa:
        assert sorted(fa[name]) == sorted(fb[name]), name
        for key in fa[name]:
            np.testing.assert_array_equal(fa[name][key], fb[name][key], err_msg=f"{name}:{key}")


# ------------------------------------------------------------------------- spec
def test_spec_parses_fixed_grid_and_seed_forms(tmp_path):
    path = write_spec(
        tmp_path,
        """
        p = 59
        steps = 300
        lr = 1
        seeds = "0-3,8"
        block_size = 2

        [grid]
        dim = [16, 32]
        scale_freqs = [[], [3]]
        """,
    )
    spec = sw.load_spec(path)
    assert spec.fixed == {"p": 59, "steps": 300, "lr": 1.0}
    assert isinstance(spec.fixed["lr"], float)
    assert spec.grid == {"dim": (16, 32), "scale_freqs": ((), (3,))}
    assert spec.seeds == (0, 1, 2, 3, 8)
    assert spec.block_size == 2
    configs = spec.configs()
    assert [(c.dim, c.scale_freqs) for c in configs] == [(16, ()), (16, (3,)), (32, ()), (32, (3,))]
    assert sw.parse_spec({"seeds": 4}).seeds == (4,)
    assert sw.parse_spec({"seeds": "0,3,5"}).seeds == (0, 3, 5)
    assert sw.parse_spec({"seeds": 2}).block_size is None


@pytest.mark.parametrize(
    "body, message",
    [
        ("seeds = 1\nlearning_rate = 0.1", "unknown key"),
        ("seeds = 1\n[grid]\ndim = 16", "non-empty list"),
        ("seeds = 1\n[grid]\ndim = []", "non-empty list"),
        ("seeds = 1\n[grid]\nwidth = [1, 2]", "unknown option 'width'"),
        ("seeds = 1\ndim = 0", "dim must be >= 1"),
        ("seeds = 1\n[grid]\ndim = [8, 0]", "grid point dim=0: dim must be >= 1"),
        ("seeds = 1\n[grid]\ndim = [8, 8]", "more than once"),
        ("seeds = 1\ndim = 8\n[grid]\ndim = [8, 16]", "both as a fixed option and in [grid]"),
        ('seeds = "0-x"', "seeds"),
        ('seeds = "5-2"', "backwards"),
        ("p = 5", "no seeds"),
        ("seeds = 1\nblock_size = 0", "block_size must be an integer >= 1"),
        ("seeds = 1\nblock_size = true", "block_size must be an integer >= 1"),
        ("seeds = 1\np = 4", "p must be odd"),
        ("seeds = 1\nsteps = ", "not valid TOML"),
    ],
)
def test_bad_spec_is_a_clear_error_before_any_task(tmp_path, body, message):
    path = write_spec(tmp_path, body)
    with pytest.raises(ValueError, match=f"{path}.*" + _re(message)):
        sw.load_spec(path)
    with pytest.raises(ValueError, match=_re(message)):
        sw.run_sweep(path, tmp_path / "out", backend=NoTasks(), progress=False)


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_unwritable_out_folder_is_refused_before_any_task(tmp_path):
    spec = tiny_spec(tmp_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "sub"):
        with pytest.raises(ValueError, match="--out"):
            sw.run_sweep(spec, out, backend=NoTasks(), progress=False)
    assert blocker.read_text() == "not a folder"


def test_missing_spec_file(tmp_path):
    with pytest.raises(ValueError, match="no such sweep spec"):
        sw.load_spec(tmp_path / "nope.toml")


# ----------------------------------------------------------------------- blocks
def test_blocks_are_chunks_of_seeds_named_by_config_and_seeds():
    spec = sw.parse_spec({"p": 5, "seeds": "0-4", "grid": {"dim": [2, 3]}})
    blocks = sw.expand(spec, 2)
    assert [(b.config.dim, b.seeds) for b in blocks] == [
        (2, (0, 1)),
        (2, (2, 3)),
        (2, (4,)),
        (3, (0, 1)),
        (3, (2, 3)),
        (3, (4,)),
    ]
    names = [b.name for b in blocks]
    assert len(set(names)) == len(names)
    assert all(n.startswith("b-") and len(n) == 18 for n in names)
    # the name depends on config and seeds only, not on how the spec wrote them
    again = sw.parse_spec({"p": 5, "lr": 0.01, "seeds": [0, 1, 2, 3, 4], "grid": {"dim": [2, 3]}})
    assert [b.name for b in sw.expand(again, 2)] == names
    assert sw.block_name(TrainConfig(p=5, dim=2), [0, 1]) == names[0]
    with pytest.raises(ValueError, match="block_size"):
        sw.expand(spec, 0)


def test_default_block_size_depends_on_device_kind_only():
    assert sw.default_block_size("cpu", 100) == 8
    assert sw.default_block_size("gpu", 1000) == 256
    assert sw.default_block_size("gpu", 3) == 3


# ----------------------------------------------------------------------- engine
def test_sweep_trains_blocks_resumes_and_rewrites_nothing(tmp_path, inproc):
    from training.trainer import train_result

    spec = tiny_spec(tmp_path)
    out = tmp_path / "out"
    first = sw.run_sweep(spec, out, backend=inproc, progress=False)
    assert first.ok and len(first.trained) == 2 and first.reused == []
    manifest = load_json(out / "manifest.json")
    assert manifest["schema"] == "dynafit.sweep/1"
    assert manifest["block_size"] == 2 and manifest["fixed"]["steps"] == 20
    for entry in manifest["blocks"]:
        assert entry["status"] == "done"
        assert entry["dynafit_version"] == dynafit.__version__
        assert entry["device"].startswith("cpu") and entry["wall_s"] > 0
        assert entry["config"]["dim"] == 2 and entry["grid"] == {"dim": 2}
    assert not any((out / ".checkpoints").glob("*/*"))

    # a block's file is exactly one train() call of its config and seeds
    entry = manifest["blocks"][1]
    direct = train_result(TrainConfig.from_dict(entry["config"]), entry["seeds"], progress=False)
    direct.save(tmp_path / "direct.npz")
    got, want = load_npz(out / f"{entry['name']}.npz"), load_npz(tmp_path / "direct.npz")
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    traj = dynafit.load(out)
    assert traj.n_runs == 4 and [r["seed"] for r in traj.meta["runs"]] == [0, 1, 2, 3]

    # the same command again: nothing trained, nothing rewritten (manifest included)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = sw.run_sweep(spec, out, backend=NoTasks(), progress=False)
    assert again.trained == [] and len(again.reused) == 2
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes

    # a driver that died after a block's file was written but before the manifest
    # recorded it: the file counts as finished
    doc = load_json(out / "manifest.json")
    doc["blocks"][0]["status"] = "pending"
    (out / "manifest.json").write_text(json.dumps(doc))
    again = sw.run_sweep(spec, out, backend=NoTasks(), progress=False)
    assert again.trained == [] and len(again.reused) == 2
    assert load_json(out / "manifest.json")["blocks"][0]["status"] == "done"
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}

    # grown by two seeds: only the new block trains; the old files are untouched
    grown = tiny_spec(tmp_path, seeds="0-5", name="grown.toml")
    result = sw.run_sweep(grown, out, backend=inproc, progress=False)
    new = sw.expand(sw.load_spec(grown), 2)[-1]
    assert result.trained == [new.name] and new.seeds == (4, 5)
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items() if p.suffix == ".npz")
    assert dynafit.load(out).n_runs == 6
    print(sw.summary_table(result))


def test_changed_fixed_option_is_refused_unless_overwrite(tmp_path, inproc):
    spec = tiny_spec(tmp_path, seeds="0-1")
    out = tmp_path / "out"
    sw.run_sweep(spec, out, backend=inproc, progress=False)
    (out / "notes.txt").write_text("mine")
    other = write_spec(
        tmp_path,
        TINY.replace("steps = 20", "steps = 30") + 'seeds = "0-1"\n'
        "block_size = 2\n[grid]\ndim = [2]\n",
        "other.toml",
    )
    with pytest.raises(ValueError, match=r"steps = 20 in the folder, 30 in the spec"):
        sw.run_sweep(other, out, backend=NoTasks(), progress=False)
    bigger = (
        tiny_spec(tmp_path, seeds="0-1", name="b.toml")
        .read_text()
        .replace("block_size = 2", "block_size = 1")
    )
    (tmp_path / "b.toml").write_text(bigger)
    with pytest.raises(ValueError, match="block_size = 2 in the folder, 1 in the spec"):
        sw.run_sweep(tmp_path / "b.toml", out, backend=NoTasks(), progress=False)

    old_files = sorted(p.name for p in out.glob("*.npz"))
    result = sw.run_sweep(other, out, backend=inproc, overwrite=True, progress=False)
    assert result.ok and len(result.trained) == 1
    assert (out / "notes.txt").read_text() == "mine"
    assert not set(old_files) & {p.name for p in out.glob("*.npz")}
    assert dynafit.load(out).t[-1] == 30


def test_folder_with_foreign_npz_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="not written by a sweep"):
        sw.run_sweep(tiny_spec(tmp_path), out, backend=NoTasks(), progress=False)


def test_unfinished_block_continues_from_its_checkpoint(tmp_path, inproc):
    from training.trainer import train_result

    spec = tiny_spec(tmp_path, seeds="0-1")
    (block,) = sw.expand(sw.load_spec(spec), 2)
    out = tmp_path / "out"

    class Stop(Exception):
        pass

    def stop(step):
        raise Stop(step)

    with pytest.raises(Stop):  # interrupted right after the first checkpoint
        train_result(
            block.config,
            list(block.seeds),
            progress=False,
            fault_hook=stop,
            checkpoint_dir=out / ".checkpoints" / block.name,
        )
    result = sw.run_sweep(spec, out, backend=inproc, progress=False)
    (entry,) = result.blocks
    assert entry["resumed"] is True and entry["status"] == "done"
    train_result(block.config, list(block.seeds), progress=False).save(tmp_path / "ref.npz")
    got, want = load_npz(out / f"{block.name}.npz"), load_npz(tmp_path / "ref.npz")
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_failed_blocks_are_recorded_and_retried_on_rerun(tmp_path, inproc, capsys):
    spec = tiny_spec(tmp_path, seeds="0-1")
    out = tmp_path / "out"
    result = sw.run_sweep(spec, out, backend=Failing(), progress=False)
    assert not result.ok and len(result.failed) == 1
    (entry,) = load_json(out / "manifest.json")["blocks"]
    assert entry["status"] == "failed" and "worker died" in entry["error"]
    assert sw.run_sweep(spec, out, backend=inproc, progress=False).trained == [entry["name"]]


def test_cli(tmp_path, capsys):
    bad = write_spec(tmp_path, 'seeds = "0-1"\n[grid]\ndim = 4\n', "bad.toml")
    assert sw.main([str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "non-empty list" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sw.main([str(bad), "--out", str(tmp_path / "o"), "--address", "auto"])
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_cli_runs_a_spec(tmp_path, capsys, monkeypatch):
    # in-process executor through the CLI path: make_executor("local") on this machine
    monkeypatch.setattr(sw._engine, "make_executor", lambda *a, **k: LocalExecutor(in_process=True))
    spec = tiny_spec(tmp_path, seeds="0-1")
    assert sw.main([str(spec), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 blocks: 1 trained, 0 already done, 0 failed" in out
    assert sw.main([str(spec), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert "0 trained, 1 already done" in capsys.readouterr().out


# -------------------------------------------------------------------- executors
def test_local_workers_get_one_xla_thread():
    with LocalExecutor(workers=1, in_process=False) as ex:
        assert ex.workers == 1 and ex.accelerator == "cpu"
        got = ex.map(
            os.getenv, ["NPROC", "XLA_FLAGS", "JAX_ENABLE_X64"], env={"JAX_ENABLE_X64": "0"}
        )
    assert got[0] == ONE_THREAD_ENV["NPROC"]
    assert ONE_THREAD_ENV["XLA_FLAGS"] in got[1]
    assert got[2] == "0"


def test_executor_map_keeps_order_and_reports_errors(inproc):
    assert inproc.map(abs, [-3, 2, -1]) == [3, 2, 1]
    outcomes = list(inproc.imap_unordered(int, ["1", "x", "3"]))
    assert [o.ok for o in outcomes] == [True, False, True]
    with pytest.raises(RuntimeError, match="1 of 3 tasks failed; task 1"):
        inproc.map(int, ["1", "x", "3"])
    with pytest.raises(ValueError, match="unknown backend"):
        make_executor("slurm")


def test_ray_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ImportError, match=_re('pip install "dynafit[ray]"')):
        RayExecutor()
    with pytest.raises(ValueError, match=_re('pip install "dynafit[ray]"')):
        sw.run_sweep(tiny_spec(tmp_path), tmp_path / "out", backend="ray", progress=False)


def test_import_dynafit_imports_neither_training_nor_ray():
    code = (
        "import sys, dynafit, dynafit._executors, dynafit._sweepfit\n"
        "bad = [m for m in ('ray', 'training') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


# ------------------------------------------------------------------ experiments
def test_multi_experiment_spec_merges_shared_options(tmp_path, inproc):
    path = write_spec(
        tmp_path,
        TINY
        + """
        seeds = "0-1"
        block_size = 2
        dim = 2

        [experiments.base]

        [experiments.wide]
        seeds = "0"
        [experiments.wide.grid]
        dim = [2, 3]
        """,
    )
    specs = sw.load_experiments(path)
    assert list(specs) == ["base", "wide"]
    assert specs["base"].fixed["dim"] == 2 and specs["base"].seeds == (0, 1)
    assert "dim" not in specs["wide"].fixed and specs["wide"].grid == {"dim": (2, 3)}
    with pytest.raises(ValueError, match="load_experiments"):
        sw.load_spec(path)
    results = sw.run_experiments(path, tmp_path / "out", backend=inproc, progress=False)
    assert {k: len(r.trained) for k, r in results.items()} == {"base": 1, "wide": 2}
    assert (tmp_path / "out" / "wide" / "manifest.json").is_file()
    only = sw.run_experiments(
        path, tmp_path / "out", backend=NoTasks(), progress=False, only=["wide"]
    )
    assert list(only) == ["wide"] and only["wide"].trained == []
    with pytest.raises(ValueError, match="no experiment"):
        sw.run_experiments(path, tmp_path / "out", backend=NoTasks(), only=["nope"])


def test_bad_experiment_is_refused_before_any_task(tmp_path):
    path = write_spec(
        tmp_path, 'seeds = "0"\n[experiments.ok]\ndim = 4\n[experiments.bad]\ndim = 0\n'
    )
    with pytest.raises(ValueError, match=r"experiments.bad.*dim must be >= 1"):
        sw.run_experiments(path, tmp_path / "out", backend=NoTasks(), progress=False)
    assert not (tmp_path / "out" / "ok" / "manifest.json").exists()


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parent.parent / "examples" / "sweeps").glob("*.toml"))
    + sorted((Path(__file__).parent.parent / "training" / "specs").glob("*.toml")),
    ids=lambda p: p.name,
)
def test_shipped_specs_are_valid(path):
    specs = sw.load_experiments(path)
    for spec in specs.values():
        assert sw.expand(spec, spec.block_size or 8)
    if path.name.startswith("reproduce_"):
        assert {"dims", "scaling"} <= set(specs)
        assert 128 in specs["dims"].grid["dim"]
        assert specs["scaling"].fixed["scale_freqs"] == (25,)


# ------------------------------------------------------------------ folder fits
def test_fit_folder_one_row_per_run_and_family_in_folder_order(tmp_path, inproc):
    from dynafit._sweepfit import fit_folder, run_files

    out = tmp_path / "out"
    sw.run_sweep(tiny_spec(tmp_path), out, backend=inproc, progress=False)
    names = [e["name"] for e in load_json(out / "manifest.json")["blocks"]]
    assert [p.stem for p in run_files(out)] == names
    table = fit_folder(out, ["linear"], backend=inproc)
    assert list(table["run"]) == [0, 1, 2, 3]
    assert list(table["seed"]) == [0, 1, 2, 3]
    assert list(table["file"]) == [f"{n}.npz" for n in names for _ in range(2)]
    assert list(table["run_in_file"]) == [0, 1, 0, 1]
    assert {"dim", "family", "deriv_r2", "rollout_r2", "survivors_actual"} <= set(table.columns)
    assert "model" not in table.columns
    with pytest.raises(ValueError, match="no such file or folder"):
        run_files(tmp_path / "nope")
