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
:mod:`dynafit._executors`) decides where blocks run, never what they compute.

A spec file may hold several sweeps as ``[experiments.NAME]`` tables sharing the
top-level options (:func:`load_experiments`, :func:`run_experiments`); experiment NAME
runs into ``DIR/NAME/``. The reproduce specs in ``training/specs/`` are written so.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import shutil
import socket
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dynafit
from dynafit._executors import AbstractExecutor, make_executor, require_ray
from dynafit._io import ensure_writable_dir, load_json, save_json
from dynafit.cli._base import add_backend_arguments, check_backend_arguments

from .config import TrainConfig, parse_seeds

__all__ = [
    "Block",
    "SweepSpec",
    "default_block_size",
    "expand",
    "load_experiments",
    "load_spec",
    "main",
    "parse_spec",
    "run_block",
    "run_experiments",
    "run_sweep",
]

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "dynafit.sweep/1"
CHECKPOINTS = ".checkpoints"
SUPERSEDED = ".superseded"
EXPERIMENTS = "experiments"
#: Test-only: path of a marker file; a worker whose block writes a checkpoint while the
#: marker does not exist creates it and dies (os._exit), once per marker.
FAULT_ENV = "DYNAFIT_TEST_FAULT_AFTER_CHECKPOINT"

_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_SPEC_KEYS = ("seeds", "block_size", "grid")
_GPU_BLOCK, _CPU_BLOCK = 256, 8


# ------------------------------------------------------------------------- spec
@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep spec.

    fixed: the top-level trainer options as given; grid: option -> tuple of values,
    in the spec's order; seeds: the seeds in order; block_size: None means "from the
    folder's manifest, else from the device".
    """

    fixed: Mapping[str, Any]
    grid: Mapping[str, tuple[Any, ...]]
    seeds: tuple[int, ...]
    block_size: int | None = None
    source: str = "<spec>"

    def configs(self) -> list[TrainConfig]:
        """One TrainConfig per grid point, in grid order (first axis slowest)."""
        keys = list(self.grid)
        return [
            TrainConfig.from_dict({**self.fixed, **dict(zip(keys, values))})
            for values in itertools.product(*(self.grid[k] for k in keys))
        ]

    def effective_fixed(self) -> dict[str, Any]:
        """Every trainer option not on the grid, with its default where not given."""
        defaults = TrainConfig().to_dict()
        return {
            k: _jsonable(self.fixed.get(k, v)) for k, v in defaults.items() if k not in self.grid
        }


@dataclasses.dataclass(frozen=True)
class Block:
    """One config x one chunk of seeds: one vmapped ``train`` call, one file."""

    name: str
    config: TrainConfig
    seeds: tuple[int, ...]

    @property
    def seed_steps(self) -> int:
        return len(self.seeds) * self.config.steps

    def grid_values(self, grid: Mapping[str, Any]) -> dict[str, Any]:
        return {k: _jsonable(getattr(self.config, k)) for k in grid}


def _read_toml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such sweep spec") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read the sweep spec ({err})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from None


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a TOML sweep spec; any problem is a ``ValueError`` naming it."""
    data = _read_toml(path)
    if EXPERIMENTS in data:
        raise ValueError(
            f"{path}: holds several experiments ([{EXPERIMENTS}.*]); read it with load_experiments"
        )
    return parse_spec(data, source=str(path))


def load_experiments(path: str | os.PathLike) -> dict[str, SweepSpec]:
    """The sweeps of a spec file: ``{"": spec}`` for a plain spec, or one per experiment.

    A file may hold several sweeps as ``[experiments.NAME]`` tables (each with its own
    options and ``[experiments.NAME.grid]``); top-level options and ``[grid]`` are
    shared defaults, and an experiment's own keys win over them. Each experiment is
    validated like a plain spec, all of them before anything runs.
    """
    data = _read_toml(path)
    if EXPERIMENTS not in data:
        return {"": parse_spec(data, source=str(path))}
    experiments = data[EXPERIMENTS]
    if not isinstance(experiments, Mapping) or not experiments:
        raise ValueError(f"{path}: [{EXPERIMENTS}] must hold one table per experiment")
    shared = {k: v for k, v in data.items() if k != EXPERIMENTS}
    shared_grid = shared.pop("grid", {})
    if not isinstance(shared_grid, Mapping):
        raise ValueError(f"{path}: [grid] must be a table of option = [values, ...]")
    specs = {}
    for name, table in experiments.items():
        if not isinstance(table, Mapping):
            raise ValueError(f"{path}: {EXPERIMENTS}.{name} must be a table")
        if not name.replace("-", "_").isidentifier():
            raise ValueError(f"{path}: experiment name {name!r} must be a plain word")
        own_grid = table.get("grid", {})
        if not isinstance(own_grid, Mapping):
            raise ValueError(f"{path}: [{EXPERIMENTS}.{name}.grid] must be a table")
        merged = {k: v for k, v in shared.items() if k not in own_grid}
        merged.update({k: v for k, v in table.items() if k != "grid"})
        grid = {k: v for k, v in shared_grid.items() if k not in table}
        grid.update(own_grid)
        if grid:
            merged["grid"] = grid
        specs[name] = parse_spec(merged, source=f"{path} [{EXPERIMENTS}.{name}]")
    return specs


def parse_spec(data: Mapping[str, Any], source: str = "<spec>") -> SweepSpec:
    """Validate a spec given as a mapping (a parsed TOML document)."""

    def bad(msg: str) -> ValueError:
        return ValueError(f"{source}: {msg}")

    if not isinstance(data, Mapping):
        raise bad("a sweep spec must be a table of options")
    unknown = [k for k in data if k not in _FIELDS and k not in _SPEC_KEYS]
    if unknown:
        raise bad(
            f"unknown key(s) {unknown}; a spec's keys are the trainer's options "
            f"{sorted(_FIELDS)} and {list(_SPEC_KEYS)}"
        )

    fixed = {k: _normalise(k, v) for k, v in data.items() if k in _FIELDS}

    grid_raw = data.get("grid", {})
    if not isinstance(grid_raw, Mapping):
        raise bad("[grid] must be a table of option = [values, ...]")
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid_raw.items():
        if key not in _FIELDS:
            raise bad(f"[grid] has unknown option {key!r}; options are {sorted(_FIELDS)}")
        if key in fixed:
            raise bad(f"{key!r} is given both as a fixed option and in [grid]; keep one")
        if not isinstance(values, list) or not values:
            raise bad(f"[grid] {key} must be a non-empty list of values, got {values!r}")
        norm = tuple(_normalise(key, v) for v in values)
        seen = [json.dumps(_jsonable(v)) for v in norm]
        dup = sorted({s for s in seen if seen.count(s) > 1})
        if dup:
            raise bad(f"[grid] {key} lists {', '.join(dup)} more than once")
        grid[key] = norm

    if "seeds" not in data:
        raise bad('no seeds; add for example seeds = "0-7" (a range, a list "0,3,5" or an int)')
    try:
        seeds = tuple(parse_seeds(data["seeds"]))
    except ValueError as err:
        raise bad(str(err)) from None

    block_size = data.get("block_size")
    if block_size is not None and (
        isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1
    ):
        raise bad(f"block_size must be an integer >= 1, got {block_size!r}")

    spec = SweepSpec(fixed, grid, seeds, block_size, source)
    for values in itertools.product(*grid.values()) if grid else [()]:
        point = dict(zip(grid, values))
        try:
            TrainConfig.from_dict({**fixed, **point}).validate()
        except ValueError as err:
            where = (
                "at grid point " + ", ".join(f"{k}={_show(v)}" for k, v in point.items()) + ": "
                if point
                else ""
            )
            raise bad(f"{where}{err}") from None
    return spec


def _normalise(key: str, value: Any) -> Any:
    """TOML values as TrainConfig holds them: floats for float fields, tuples for lists."""
    ftype = str(_FIELDS[key].type)
    if isinstance(value, int) and not isinstance(value, bool) and ftype.startswith("float"):
        return float(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _show(value: Any) -> str:
    return json.dumps(_jsonable(value))


def block_name(config: TrainConfig, seeds: Sequence[int]) -> str:
    """``b-`` + 16 hex digits of sha256 over the full config and the seeds."""
    text = json.dumps({"config": config.to_dict(), "seeds": list(seeds)}, sort_keys=True)
    return "b-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def expand(spec: SweepSpec, block_size: int) -> list[Block]:
    """The spec's blocks: for each grid point, its seeds in chunks of ``block_size``."""
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    blocks = []
    for config in spec.configs():
        for i in range(0, len(spec.seeds), block_size):
            seeds = spec.seeds[i : i + block_size]
            blocks.append(Block(block_name(config, seeds), config, seeds))
    return blocks


def default_block_size(accelerator: str, n_seeds: int) -> int:
    """Seeds per block when the spec does not say: 256 on a GPU/TPU, 8 on a CPU.

    It depends on the device kind only (never on the number of workers), so a local and
    a Ray run on the same kind of device cut the same blocks.
    """
    return max(1, min(n_seeds, _CPU_BLOCK if accelerator == "cpu" else _GPU_BLOCK))


# ------------------------------------------------------------------- the worker
def run_block(task: Mapping[str, Any]) -> dict[str, Any]:
    """Train one block and write ``DIR/<name>.npz`` atomically (runs in a worker).

    Resumes from ``DIR/.checkpoints/<name>/`` when a checkpoint is there; removes the
    checkpoints once the file is written. Returns what the manifest records.
    """
    from .trainer import train_result

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
    import jax

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


# ------------------------------------------------------------------- the folder
check_out_dir = ensure_writable_dir


def _read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    manifest = load_json(path)
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise ValueError(f"{path}: not a dynafit sweep manifest; choose another --out")
    return manifest


def _check_compatible(spec: SweepSpec, manifest: dict[str, Any], out: Path) -> None:
    """Fixed options (and block_size) must equal those recorded in the folder."""
    recorded = manifest.get("fixed", {})
    now = spec.effective_fixed()
    diffs = [
        f"{k} = {_show(recorded[k])} in the folder, {_show(now[k])} in the spec"
        for k in now
        if k in recorded and recorded[k] != now[k]
    ]
    if spec.block_size is not None and manifest.get("block_size") not in (None, spec.block_size):
        diffs.append(
            f"block_size = {manifest['block_size']} in the folder, {spec.block_size} in the spec"
        )
    if diffs:
        raise ValueError(
            f"--out {out} holds a sweep with other fixed options: "
            + "; ".join(diffs)
            + ". Use another --out, or --overwrite to replace dynafit's files there."
        )


def _remove_own_files(out: Path, manifest: dict[str, Any] | None) -> None:
    """--overwrite: remove what a previous sweep wrote here (nothing else)."""
    for entry in (manifest or {}).get("blocks", []):
        (out / f"{entry['name']}.npz").unlink(missing_ok=True)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    shutil.rmtree(out / SUPERSEDED, ignore_errors=True)
    (out / MANIFEST).unlink(missing_ok=True)


def _stale_tmp_files(out: Path) -> None:
    """Remove temporary files left by a writer killed mid-write (never visible as .npz)."""
    for tmp in out.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


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
    out = check_out_dir(out)
    manifest = _read_manifest(out)
    if manifest is None and not overwrite:
        foreign = sorted(p.name for p in out.glob("*.npz"))
        if foreign:
            raise ValueError(
                f"--out {out} already holds .npz files not written by a sweep "
                f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                "choose another --out, or --overwrite"
            )
    if manifest is not None and not overwrite:
        _check_compatible(spec, manifest, out)
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


def _plan(spec, blocks, block_size, manifest, out):
    """Manifest entries for every block (old ones kept), and the names left to train."""
    old = {e["name"]: e for e in (manifest or {}).get("blocks", [])}
    entries: list[dict[str, Any]] = []
    todo: set[str] = set()
    for b in blocks:
        prev = old.pop(b.name, None)
        # A block's file is written (atomically) only when the block is complete, and
        # its name hashes config and seeds: a file there is a finished block, even when
        # the driver died before recording it.
        done = (out / f"{b.name}.npz").is_file()
        if done and prev is not None and prev.get("status") == "done":
            entry = dict(prev)
        else:
            entry = {
                "name": b.name,
                "config": b.config.to_dict(),
                "grid": b.grid_values(spec.grid),
                "seeds": list(b.seeds),
                "status": "pending",
            }
            if done:
                entry.update(status="done", recovered=True, dynafit_version=dynafit.__version__)
        entry["in_spec"] = True
        entries.append(entry)
        if not done:
            todo.add(b.name)
    # Blocks of earlier specs: kept; moved aside when they hold runs (same config and
    # seed) that a block of this spec also holds, so the folder never has a run twice.
    current = {(json.dumps(b.config.to_dict(), sort_keys=True), s) for b in blocks for s in b.seeds}
    for entry in old.values():
        cfg = json.dumps(entry["config"], sort_keys=True)
        entry["in_spec"] = False
        path = out / f"{entry['name']}.npz"
        if path.is_file() and any((cfg, s) in current for s in entry["seeds"]):
            (out / SUPERSEDED).mkdir(exist_ok=True)
            os.replace(path, out / SUPERSEDED / path.name)
            entry["status"] = "superseded"
        entries.append(entry)
    return entries, todo


class _ManifestWriter:
    """The driver's copy of the manifest; written atomically, and only when it changed."""

    def __init__(self, out, spec, block_size, entries, old):
        self.path = out / MANIFEST
        self.entries = entries
        self.head = {
            "schema": MANIFEST_SCHEMA,
            "dynafit_version": dynafit.__version__,
            "spec": {
                "source": spec.source,
                "fixed": {k: _jsonable(v) for k, v in spec.fixed.items()},
                "grid": {k: [_jsonable(v) for v in vs] for k, vs in spec.grid.items()},
                "seeds": list(spec.seeds),
            },
            "fixed": spec.effective_fixed(),
            "block_size": block_size,
        }
        self._last = json.dumps(old, sort_keys=True) if old else None

    def set(self, name: str, **fields: Any) -> None:
        for e in self.entries:
            if e["name"] == name:
                e.update(fields)

    def write(self) -> None:
        doc = {**self.head, "blocks": self.entries}
        text = json.dumps(doc, sort_keys=True)
        if text != self._last:
            save_json(self.path, doc)
            self._last = text


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
        from tqdm.auto import tqdm

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


# -------------------------------------------------------------------------- CLI
def summary_table(result: SweepResult) -> str:
    """One line per block of the spec: grid values, seeds, status, device, wall time."""
    rows = []
    for e in result.blocks:
        seeds = e["seeds"]
        seed_text = (
            f"{seeds[0]}-{seeds[-1]}"
            if seeds == list(range(seeds[0], seeds[-1] + 1))
            else ",".join(map(str, seeds))
        )
        status = e["status"]
        if e["name"] in result.reused:
            status = "reused"
        elif status == "done" and e.get("resumed"):
            status = "resumed"
        elif status == "done":
            status = "trained"
        grid = " ".join(f"{k}={_show(v)}" for k, v in e.get("grid", {}).items()) or "-"
        wall = f"{e['wall_s']:.1f}" if e.get("wall_s") is not None else "-"
        rows.append((e["name"], grid, seed_text, status, e.get("device", "-"), wall))
    head = ("block", "grid", "seeds", "status", "device", "wall s")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(
        f"{len(result.blocks)} blocks: {len(result.trained)} trained, {len(result.reused)} "
        f"already done, {len(result.failed)} failed; {result.wall_s:.1f} s ({result.backend})"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``dynafit sweep SPEC.toml --out DIR [--backend local|ray] [--address ...]``."""
    parser = argparse.ArgumentParser(
        prog="dynafit sweep",
        description="Train a grid of configs x seeds from a TOML spec, block by block, "
        "locally or on Ray. Rerunning the same command resumes.",
    )
    parser.add_argument("spec", help="sweep spec (TOML)")
    parser.add_argument("--out", required=True, help="output folder (one .npz per block)")
    add_backend_arguments(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the sweep files in --out (other files there are left alone)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated experiment names of a multi-experiment spec (default: all)",
    )
    args = parser.parse_args(argv)
    check_backend_arguments(parser, args)
    try:
        results = run_experiments(
            args.spec,
            args.out,
            backend=args.backend,
            address=args.address,
            workers=args.workers,
            overwrite=args.overwrite,
            progress=not args.quiet,
            only=None if args.only is None else [x.strip() for x in args.only.split(",")],
        )
    except (ValueError, ImportError) as err:
        print(f"dynafit sweep: error: {err}", file=sys.stderr)
        return 2
    ok = True
    for name, result in results.items():
        if name:
            print(f"\nexperiment {name} -> {result.out}")
        print(summary_table(result))
        for block in result.failed:
            entry = next(e for e in result.blocks if e["name"] == block)
            print(f"block {block} failed: {entry.get('error')}", file=sys.stderr)
        ok = ok and result.ok
    if not ok:
        print("rerun the same command to retry the failed blocks", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
