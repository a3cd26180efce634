"""The persistent compilation cache (issue 23): on by default in the user's cache
directory, moved or turned off by DYNAFIT_CACHE_DIR, a user's JAX setting kept; a second
process loads dynafit's compiled programs instead of compiling them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# a small model integrated once; prints the cache dir and the cache hits of this process
PROGRAM = """
import json, numpy as np, jax, jax.monitoring
hits = []
jax.monitoring.register_event_listener(
    lambda name, **kw: hits.append(name) if name == "/jax/compilation_cache/cache_hits" else None
)
import dynafit
t = np.linspace(0.0, 2.0, 41)
x = np.stack([np.exp(-t), 2.0 * np.exp(-0.5 * t)], axis=1)
model = dynafit.fit(dynafit.Trajectory(t, x), "linear", threshold=0.05)
model.simulate(t, x[0])
print(json.dumps({"dir": dynafit._cache.cache_dir(), "hits": len(hits)}))
"""


# where the cache is, without compiling anything
WHERE = "import json, dynafit; print(json.dumps({'dir': dynafit._cache.cache_dir()}))"


def _run(env_extra: dict[str, str], code: str = WHERE) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION", "DYNAFIT_"))}
    env.update({"JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}, **env_extra)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cache_dir_moves_and_second_process_hits(tmp_path):
    cache = tmp_path / "cache"
    first = _run({"DYNAFIT_CACHE_DIR": str(cache)}, PROGRAM)
    assert first["dir"] == str(cache)
    assert any(cache.rglob("*")), "the first process wrote nothing to the cache"
    second = _run({"DYNAFIT_CACHE_DIR": str(cache)}, PROGRAM)
    assert second["hits"] > 0, "the second process compiled everything again"


@pytest.mark.parametrize("value", ["off", ""])
def test_cache_off(tmp_path, value):
    got = _run({"DYNAFIT_CACHE_DIR": value, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)})
    assert got["dir"] is None
    assert not (tmp_path / "dynafit").exists()


def test_default_dir_and_user_setting_kept(tmp_path):
    got = _run({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert got["dir"] == str(tmp_path / "xdg" / "dynafit" / "jax")
    mine = tmp_path / "mine"
    got = _run({"JAX_COMPILATION_CACHE_DIR": str(mine), "DYNAFIT_CACHE_DIR": str(tmp_path / "x")})
    assert got["dir"] == str(mine)
