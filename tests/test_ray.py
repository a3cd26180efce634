"""Sweeps and folder fits on a local Ray cluster (2 CPUs, loopback only, no dashboard).

The cluster is the one ``RayExecutor`` starts itself; it is shut down after the module.
Every comparison is against the local backend (spawned workers, one XLA thread each)
and is bitwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]
ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from dynafit._executors import LocalExecutor, RayExecutor  # noqa: E402
from dynafit._io import load_json, load_npz  # noqa: E402
from training import sweep as sw  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SPEC = """
p = 11
hidden = 16
steps = 200
chunk = 50
checkpoint_every = 100
seeds = "{seeds}"
block_size = 2

[grid]
dim = [4, 8]
"""


def spec_file(tmp_path: Path, seeds: str = "0-3") -> Path:
    path = tmp_path / f"spec_{seeds}.toml"
    path.write_text(SPEC.format(seeds=seeds))
    return path


def assert_same_files(a: Path, b: Path) -> None:
    fa = {p.name: load_npz(p) for p in a.glob("*.npz")}
    fb = {p.name: load_npz(p) for p in b.glob("*.npz")}
    assert sorted(fa) == sorted(fb) and fa
    for name in fa:
        assert sorted(fa[name]) == sorted(fb[name]), name
        for key in fa[name]:
            np.testing.assert_array_equal(fa[name][key], fb[name][key], err_msg=f"{name}:{key}")


def mtimes(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory):
    """One persistent XLA compile cache for every worker process of this module."""
    saved = dict(os.environ)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(tmp_path_factory.mktemp("jax_cache")))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def cluster(shared_env):
    assert not ray.is_initialized()
    ex = RayExecutor(workers=2)
    yield ex
    ex.close()
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return spec_file(tmp_path_factory.mktemp("spec"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, spec, shared_env):
    """The sweep on the local backend: 2 spawned workers, one XLA thread each."""
    out = tmp_path_factory.mktemp("local")
    with LocalExecutor(workers=2, in_process=False) as ex:
        result = sw.run_sweep(spec, out, backend=ex, progress=False)
    assert result.ok and len(result.trained) == 4
    return out


def cluster_processes() -> list:
    me = psutil.Process()
    return [me, *me.children(recursive=True)]


def test_cluster_listens_on_loopback_only(cluster):
    listening = []
    for proc in cluster_processes():
        try:
            conns = proc.net_connections(kind="inet")
            name = proc.name()
        except psutil.Error:
            continue
        listening += [
            (name, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN
        ]
    names = {n for n, _, _ in listening}
    assert "gcs_server" in names and "raylet" in names, listening
    loopback = ("127.", "::ffff:127.", "::1")
    assert all(ip.startswith(loopback) for _, ip, _ in listening), listening
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    assert cluster.accelerator == "cpu" and cluster.workers == 2


def test_ray_sweep_equals_local(cluster, reference, spec, tmp_path):
    result = sw.run_sweep(spec, tmp_path, backend=cluster, progress=False)
    assert result.ok and len(result.trained) == 4 and result.backend == "ray"
    assert_same_files(tmp_path, reference)
    assert {e["backend"] for e in load_json(tmp_path / "manifest.json")["blocks"]} == {"ray"}


def test_killed_worker_is_retried_and_resumes(cluster, reference, spec, tmp_path, monkeypatch):
    marker = tmp_path / "killed-once"
    monkeypatch.setenv(sw.FAULT_ENV, str(marker))
    out = tmp_path / "out"
    out.mkdir()
    bad: list[str] = []
    stop = threading.Event()

    def watch():  # every visible .npz must be complete at every moment
        while not stop.is_set():
            for p in out.glob("*.npz"):
                try:
                    load_npz(p)
                except (ValueError, FileNotFoundError) as err:
                    bad.append(f"{p.name}: {err}")
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = sw.run_sweep(spec, out, backend=cluster, progress=False)
    finally:
        stop.set()
        watcher.join()
    assert marker.exists(), "the fault hook never fired"
    assert "after checkpoint at step 100" in marker.read_text()
    assert result.ok and not bad
    assert_same_files(out, reference)
    resumed = [e for e in load_json(out / "manifest.json")["blocks"] if e["resumed"]]
    assert len(resumed) == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".checkpoints", "manifest.json", *(p.name for p in reference.glob("*.npz"))]
    )
    assert not any((out / ".checkpoints").rglob("*"))


def _sweep_cmd(spec: Path, out: Path, address: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "training.sweep",
        str(spec),
        "--out",
        str(out),
        "--backend",
        "ray",
        "--address",
        address,
        "--quiet",
    ]


def _wait_for_idle_workers(timeout: float = 60) -> None:
    """Until no worker of the killed driver's job still runs a block."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        busy = []
        for p in cluster_processes():
            try:
                if "run_block" in " ".join(p.cmdline()) or "run_block" in p.name():
                    busy.append(p)
            except psutil.Error:
                pass
        if not busy:
            return
        time.sleep(0.5)


def test_driver_killed_then_rerun(cluster, reference, spec, tmp_path):
    out = tmp_path / "out"
    cmd = _sweep_cmd(spec, out, cluster.address)
    driver = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not list(out.glob("*.npz")) and time.monotonic() < deadline:
        assert driver.poll() is None, driver.stdout.read().decode()
        time.sleep(0.2)
    driver.kill()
    driver.wait()
    done_before = len(list(out.glob("*.npz")))
    assert 1 <= done_before
    _wait_for_idle_workers()

    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert_same_files(out, reference)
    reused = re.search(r"(\d+) already done", second.stdout)
    assert reused and int(reused.group(1)) >= done_before, second.stdout

    before = mtimes(out)
    third = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "0 trained, 4 already done" in third.stdout, third.stdout
    assert mtimes(out) == before


def test_fit_table_is_the_same_for_ray_and_local(cluster, reference):
    import pandas as pd

    from dynafit._sweepfit import fit_folder

    with LocalExecutor(workers=2, in_process=False) as ex:
        local = fit_folder(reference, ["linear"], backend=ex)
    remote = fit_folder(reference, ["linear"], backend=cluster)
    assert len(local) == 8 and list(local["run"]) == list(range(8))
    assert {"seed", "dim", "family", "deriv_r2", "rollout_r2"} <= set(local.columns)
    pd.testing.assert_frame_equal(local, remote, check_exact=True)


def test_grown_spec_trains_only_new_blocks(cluster, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    before = mtimes(out)
    grown = spec_file(tmp_path, seeds="0-5")
    result = sw.run_sweep(grown, out, backend=cluster, progress=False)
    new = [b.name for b in sw.expand(sw.load_spec(grown), 2) if b.seeds == (4, 5)]
    assert sorted(result.trained) == sorted(new) and len(result.reused) == 4
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p.suffix == ".npz")


def test_bad_spec_fails_before_ray_work(cluster, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('seeds = "0-3"\nblock_size = 0\n')
    assert sw.main([str(bad), "--out", str(tmp_path / "o"), "--backend", "ray"]) == 2
    assert "block_size must be an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "o" / "manifest.json").exists()
