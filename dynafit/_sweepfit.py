"""Fit every run of a folder (a sweep's output) across an executor, into one table.

Each file of the folder is one task: load it, ``fit_many`` its runs in the worker, send
the rows back. Rows come back in the folder's order (the sweep manifest's block order,
else file names), whatever order the workers finish in, so the table is the same with
either backend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ._executors import AbstractExecutor, make_executor
from ._fit_many import fit_many
from ._io import load_json
from ._trajectory import load

__all__ = ["fit_folder", "run_files"]


def run_files(path: str | os.PathLike) -> list[Path]:
    """The trajectory files of a folder, in a fixed order.

    With a sweep ``manifest.json``: the finished blocks of its latest spec, in the spec's
    order. Otherwise every visible ``*.npz`` by name. A single file is itself.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or folder")
    manifest_path = path / "manifest.json"
    if manifest_path.is_file():
        manifest = load_json(manifest_path)
        if isinstance(manifest, dict) and manifest.get("schema") == "dynafit.sweep/1":
            files = [
                path / f"{e['name']}.npz"
                for e in manifest.get("blocks", [])
                if e.get("in_spec", True) and e.get("status") == "done"
            ]
            files = [f for f in files if f.is_file()]
            if files:
                return files
    files = sorted(p for p in path.glob("*.npz") if not p.name.startswith("."))
    if not files:
        raise ValueError(f"{path}: folder holds no .npz trajectory files")
    return files


def _fit_file(task: dict[str, Any]) -> pd.DataFrame:
    """Worker: ``fit_many`` on one file's runs (in this process)."""
    traj = load(task["path"])
    table = fit_many(traj, task["families"], **task["options"])
    if not task["keep_models"] and "model" in table.columns:
        table = table.drop(columns=["model"])
    table = table.rename(columns={"run": "run_in_file"})
    table.insert(0, "file", Path(task["path"]).name)
    return table


def fit_folder(
    path: str | os.PathLike,
    families: Sequence[Any] | str = ("linear", "lotka_volterra", "polynomial"),
    *,
    backend: str | AbstractExecutor = "local",
    address: str | None = None,
    workers: int | None = None,
    keep_models: bool = False,
    **fit_options: Any,
) -> pd.DataFrame:
    """One long table: every run of every file in ``path`` x every family.

    Columns: ``run`` (0.. over the whole folder), ``file``, ``run_in_file``, then
    ``fit_many``'s columns (the run's config and seed, family, variant, scores,
    predicted and actual survivors). ``backend`` is ``"local"``, ``"ray"`` or an
    executor from :mod:`dynafit._executors`; ``fit_options`` go to ``fit_many``.
    Model objects stay in the workers unless ``keep_models``.
    """
    files = run_files(path)
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    tasks = [
        {
            "path": str(f),
            "families": list(families),
            "options": dict(fit_options),
            "keep_models": keep_models,
        }
        for f in files
    ]
    own = not isinstance(backend, AbstractExecutor)
    executor = make_executor(backend, address=address, workers=workers)
    try:
        tables = executor.map(_fit_file, tasks)
    finally:
        if own:
            executor.close()
    offset = 0
    for table in tables:
        table.insert(0, "run", table["run_in_file"] + offset)
        offset += int(table["run_in_file"].max()) + 1 if len(table) else 0
    return pd.concat(tables, ignore_index=True)
