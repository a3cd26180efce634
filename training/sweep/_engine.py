"""Sweeps: a TOML spec (trainer options, a grid, seeds) trained block by block, resumably.

A spec's top-level keys are :class:`~training.TrainConfig` field names with fixed
values; ``[grid]`` lists the options that vary (the grid is their product); ``seeds``
takes the trainer's forms (``"0-1023"``, ``"0,3,5"``, ``4``); ``block_size`` is how
many seeds train together as one vmapped program::

    p = 59
    steps = 30000
    seeds = "0-255"
    block_size = 64

    [grid]
    dim = [16, 32, 64, 128, 256]

The grid expands into blocks (one config x one chunk of ``block_size`` seeds), each
named by a hash of its config and seeds. Each block is one ``train`` call that writes
``DIR/<block>.npz`` atomically, checkpointing under ``DIR/.checkpoints/<block>/``;
``DIR/manifest.json`` records every block's config, seeds, status, device, wall time
and dynafit version. Running the same spec into the same folder resumes it: finished
blocks are skipped, unfinished ones continue from their checkpoints, and a grown spec
trains only its new blocks. The backend (``local`` or ``ray``, see
:mod:`dynafit.internal`) decides where blocks run, never what they compute.

A spec file may hold several sweeps as ``[experiments.NAME]`` tables sharing the
top-level options (:func:`load_experiments`, :func:`run_experiments`); experiment NAME
runs into ``DIR/NAME/``. The reproduce specs in ``training/specs/`` are written so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

import dynafit
from dynafit.internal import AbstractExecutor, make_executor, require_ray

from ._manifest import _ManifestWriter, _remove_own_files, _stale_tmp_files, claim
from ._plan import _plan
from ._spec import SweepSpec, default_block_size, expand, load_experiments, load_spec
from ._worker import _task_env, run_block


# ------------------------------------------------------------------- the engine
@dataclasses.dataclass
class SweepResult:
    """What a sweep did: the folder, its blocks (manifest entries) and counts."""

    out: Path
    blocks: list[dict[str, Any]]
    trained: list[str]
    reused: list[str]
    failed: list[str]
    backend: str
    wall_s: float

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclasses.dataclass
class _Prepared:
    spec: SweepSpec
    out: Path
    manifest: dict[str, Any] | None
    overwrite: bool


def _prepare(
    spec: SweepSpec | str | os.PathLike, out: str | os.PathLike, overwrite: bool
) -> _Prepared:
    """Every check on spec and folder, before any executor starts (ValueError)."""
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    folder = claim(spec, out, overwrite)
    out, manifest = folder.path, folder.previous
    return _Prepared(spec, out, manifest, overwrite)


def _check_backend(backend: Any, address: str | None) -> None:
    """Ray must be importable for --backend ray (checked before anything starts)."""
    if backend == "ray":
        try:
            require_ray(address)
        except ImportError as err:
            raise ValueError(str(err)) from None


def run_sweep(
    spec: SweepSpec | str | os.PathLike,
    out: str | os.PathLike,
    *,
    backend: str | AbstractExecutor = "local",
    address: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> SweepResult:
    """Train every block of ``spec`` not yet finished in ``out``; see the module docstring.

    Everything the spec and folder can get wrong is a ``ValueError`` raised before an
    executor starts or a task is submitted. A failed block does not stop the others;
    it is marked ``failed`` in the manifest (rerun to retry).
    """
    prepared = _prepare(spec, out, overwrite)
    _check_backend(backend, address)
    with _executor(backend, address, workers) as executor:
        return _run_prepared(prepared, executor, progress)


def run_experiments(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    backend: str | AbstractExecutor = "local",
    address: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    only: Sequence[str] | None = None,
) -> dict[str, SweepResult]:
    """Run every sweep of a spec file (see :func:`load_experiments`), one executor for all.

    A plain spec runs into ``out``; experiment NAME runs into ``out/NAME``. ``only``
    picks some experiments by name. All specs and folders are checked first.
    """
    specs = load_experiments(path)
    if only is not None:
        unknown = sorted(set(only) - set(specs))
        if unknown:
            raise ValueError(f"{path}: no experiment(s) {unknown}; it has {sorted(specs)}")
        specs = {k: v for k, v in specs.items() if k in only}
    out = Path(out)
    prepared = {
        name: _prepare(spec, out / name if name else out, overwrite) for name, spec in specs.items()
    }
    _check_backend(backend, address)
    with _executor(backend, address, workers) as executor:
        return {name: _run_prepared(p, executor, progress) for name, p in prepared.items()}


@contextlib.contextmanager
def _executor(backend, address, workers):
    if isinstance(backend, AbstractExecutor):
        yield backend
        return
    executor = make_executor(backend, address=address, workers=workers)
    try:
        yield executor
    finally:
        executor.close()


def _run_prepared(prepared: _Prepared, executor: AbstractExecutor, progress: bool) -> SweepResult:
    spec, out, manifest = prepared.spec, prepared.out, prepared.manifest
    t_start = time.perf_counter()
    if prepared.overwrite:
        _remove_own_files(out, manifest)
        manifest = None
    block_size = (
        spec.block_size
        or (manifest or {}).get("block_size")
        or default_block_size(executor.accelerator, len(spec.seeds))
    )
    blocks = expand(spec, block_size)
    entries, todo = _plan(spec, blocks, block_size, manifest, out)
    _stale_tmp_files(out)
    state = _ManifestWriter(out, spec, block_size, entries, manifest)
    state.write()
    trained, failed = _execute(executor, blocks, todo, out, state, progress)
    in_spec = {b.name for b in blocks}
    reused = [e["name"] for e in entries if e["name"] in in_spec and e["name"] not in todo]
    return SweepResult(
        out=out,
        blocks=[e for e in state.entries if e["name"] in in_spec],
        trained=trained,
        reused=reused,
        failed=failed,
        backend=executor.backend,
        wall_s=time.perf_counter() - t_start,
    )


def _execute(executor, blocks, todo, out, state, progress):
    run = [b for b in blocks if b.name in todo]
    if not run:
        return [], []
    tasks = [
        {"out": str(out), "name": b.name, "config": b.config.to_dict(), "seeds": list(b.seeds)}
        for b in run
    ]
    envs = [_task_env(b.config) for b in run]
    bar = _Progress(len(blocks), len(blocks) - len(run), sum(b.seed_steps for b in run), progress)
    trained, failed = [], []
    try:
        for outcome in executor.imap_unordered(run_block, tasks, envs=envs):
            b = run[outcome.index]
            if outcome.ok:
                info = outcome.value
                state.set(
                    b.name,
                    status="done",
                    device=info["device"],
                    host=info["host"],
                    wall_s=info["wall_s"],
                    resumed=info["resumed"],
                    backend=executor.backend,
                    dynafit_version=dynafit.__version__,
                    error=None,
                )
                trained.append(b.name)
            else:
                state.set(b.name, status="failed", error=_error_text(outcome.error))
                failed.append(b.name)
            state.write()
            bar.block_done(b.seed_steps)
    finally:
        bar.close()
    return trained, failed


def _error_text(err: BaseException | None) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    return text if len(text) < 2000 else text[:2000] + " ..."


class _Progress:
    """Blocks done of total, seed-steps per second and the time left (tqdm)."""

    def __init__(self, total_blocks, done_blocks, seed_steps, enabled):
        self.total, self.done = total_blocks, done_blocks
        self.bar = tqdm(
            total=seed_steps,
            unit="seed-step",
            unit_scale=True,
            disable=not enabled,
            dynamic_ncols=True,
            desc=self._desc(),
            bar_format="{desc} {percentage:3.0f}%|{bar}| {rate_fmt}, {remaining} left",
        )

    def _desc(self) -> str:
        return f"blocks {self.done}/{self.total}"

    def block_done(self, seed_steps: int) -> None:
        self.done += 1
        self.bar.set_description_str(self._desc(), refresh=False)
        self.bar.update(seed_steps)

    def close(self) -> None:
        self.bar.close()
