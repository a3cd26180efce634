"""The worker: one block, one ``train`` call writing ``DIR/<block>.npz`` atomically."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax

from ..config import TrainConfig
from ..trainer import train_result
from ._spec import CHECKPOINTS, FAULT_ENV


# ------------------------------------------------------------------- the worker
def run_block(task: Mapping[str, Any]) -> dict[str, Any]:
    """Train one block and write ``DIR/<name>.npz`` atomically (runs in a worker).

    Resumes from ``DIR/.checkpoints/<name>/`` when a checkpoint is there; removes the
    checkpoints once the file is written. Returns what the manifest records.
    """
    out = Path(task["out"])
    name = task["name"]
    config = TrainConfig.from_dict(task["config"])
    seeds = list(task["seeds"])
    ckpt = out / CHECKPOINTS / name
    resumed = ckpt.is_dir() and any(ckpt.glob("*.json"))
    start = time.perf_counter()
    result = train_result(
        config, seeds, checkpoint_dir=ckpt, progress=False, fault_hook=_fault_hook()
    )
    result.save(out / f"{name}.npz")
    wall = time.perf_counter() - start
    shutil.rmtree(ckpt, ignore_errors=True)
    dev = jax.devices()[0]
    return {
        "name": name,
        "wall_s": round(wall, 3),
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', str(dev))}",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "resumed": bool(resumed),
    }


def _fault_hook() -> Callable[[int], None] | None:
    marker = os.environ.get(FAULT_ENV)
    if not marker:
        return None

    def hook(step: int) -> None:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"killed pid {os.getpid()} after checkpoint at step {step}\n".encode())
        os.close(fd)
        os._exit(17)

    return hook


def _task_env(config: TrainConfig) -> dict[str, str]:
    return {"JAX_ENABLE_X64": "1" if config.dtype == "float64" else "0"}
