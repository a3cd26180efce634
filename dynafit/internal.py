"""Declared internal names: what dynafit's own clients (``training/``, the CLI) share with it.

Not a user API: these may change with dynafit. They live here so that ``training/``
imports nothing private (``dynafit._x``); ``tests/test_face.py`` checks it (and the
benchmarks use the same names).

- files: :func:`atomic_write`, :func:`save_json`, :func:`load_json`, :func:`save_npz`,
  :func:`load_npz`, :func:`save_trajectory` (a trajectory with extra arrays beside),
  :func:`claim_out_dir` and :class:`OwnedFolder` (the one ``--out`` rule), the names
  :data:`CHECKPOINTS` and :data:`MANIFEST`;
- where work runs: :class:`AbstractExecutor` (:class:`LocalExecutor`, :class:`RayExecutor`),
  :func:`make_executor`, :func:`require_ray`;
- the command line: :func:`add_out_arguments`, :func:`add_backend_arguments`,
  :func:`backend_options`, :func:`check_backend_arguments`;
- report text: :func:`markdown_table`, :func:`text_table`;
- scores: :func:`onestep_r2` (the paper's Euler-step R^2), the score names
  (:data:`SCORES`, :class:`Better`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._executors import AbstractExecutor as AbstractExecutor
from ._executors import LocalExecutor as LocalExecutor
from ._executors import Mapper as Mapper
from ._executors import RayExecutor as RayExecutor
from ._executors import make_executor as make_executor
from ._executors import require_ray as require_ray
from ._io import CHECKPOINTS as CHECKPOINTS
from ._io import MANIFEST as MANIFEST
from ._io import OwnedFolder as OwnedFolder
from ._io import atomic_write as atomic_write
from ._io import claim_out_dir as claim_out_dir
from ._io import load_json as load_json
from ._io import load_npz as load_npz
from ._io import save_json as save_json
from ._io import save_npz as save_npz
from ._report import markdown_table as markdown_table
from ._report import text_table as text_table
from ._score import onestep_r2 as onestep_r2
from ._score_names import SCORES as SCORES
from ._score_names import Better as Better
from ._trajectory import Trajectory
from .cli._base import add_backend_arguments as add_backend_arguments
from .cli._base import add_out_arguments as add_out_arguments
from .cli._base import backend_options as backend_options
from .cli._base import check_backend_arguments as check_backend_arguments


def save_trajectory(
    traj: Trajectory, path: str | os.PathLike, extra: dict[str, Any] | None = None
) -> Path:
    """``traj.save(path)`` with more plain arrays beside it in the same ``.npz`` (the
    trainer's ``extra__*`` arrays); written atomically. Returns the path."""
    return traj._save(path, dict(extra or {}))
