"""The sweep spec: TOML (trainer options, a grid, seeds, block size; several
experiments in one file), checked and expanded into blocks of one config x a chunk of
seeds, each named by a hash of both."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dynafit.internal import CHECKPOINTS as CHECKPOINTS
from dynafit.internal import MANIFEST as MANIFEST

from ..config import TrainConfig, parse_seeds, read_toml

MANIFEST_SCHEMA = "dynafit.sweep/1"
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


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a TOML sweep spec; any problem is a ``ValueError`` naming it."""
    data = read_toml(path, "sweep spec")
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
    data = read_toml(path, "sweep spec")
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
    grid = _parse_grid(data.get("grid", {}), fixed, bad)

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
    _check_points(fixed, grid, bad)
    return spec


def _check_points(
    fixed: Mapping[str, Any],
    grid: Mapping[str, tuple[Any, ...]],
    bad: Callable[[str], ValueError],
) -> None:
    """Every grid point a valid trainer config; the first that is not names itself."""
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


def _parse_grid(
    grid_raw: Any, fixed: Mapping[str, Any], bad: Callable[[str], ValueError]
) -> dict[str, tuple[Any, ...]]:
    """``[grid]``: option -> its values (normalised, each listed once), in order."""
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
    return grid


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
