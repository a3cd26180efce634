"""The shared base of the paper's experiments: a job, an experiment, a spec, a runner.

An experiment (one file each in this folder) turns its parameters into training
:class:`Job`\\ s and their results into one table and one figure. The runner trains each
job once (jobs with the same config, seeds and initial embeddings are shared between
experiments), keeps it as ``OUT/_runs/<key>.npz`` (resumable through checkpoints in
``OUT/_runs/.checkpoints/``) and writes ``OUT/<name>/<name>.csv``, ``<name>.png`` and
``<name>.json`` (parameters, headline numbers, notes on the reference's definitions).
"""

from __future__ import annotations

import abc
import dataclasses
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dynafit import load
from dynafit.internal import atomic_write, save_json

from ..config import TrainConfig, parse_seeds, read_toml
from ..trainer import TrainResult, _key, clear_checkpoints, load_extras, run_keys, train_result

RUNS = "_runs"


@dataclasses.dataclass(frozen=True, eq=False)
class Job:
    """One vmapped training: a config, its seeds, optionally given initial embeddings."""

    config: TrainConfig
    seeds: tuple[int, ...]
    init_embeddings: np.ndarray | None = None

    def key(self) -> str:
        return _key(self.config, list(self.seeds), self.init_embeddings)


@dataclasses.dataclass(frozen=True)
class Result:
    """What an experiment's analysis returns: its table, figure, headline numbers."""

    table: pd.DataFrame
    figure: Any
    headline: dict[str, Any]


class AbstractExperiment(abc.ABC):
    """One of the paper's experiments. ``defaults`` lists every parameter it takes."""

    name: ClassVar[str]
    paper_figure: ClassVar[str]  # which figure of arXiv 2405.17420 it regenerates
    reference: ClassVar[str]  # the reference code it follows
    notes: ClassVar[str] = ""  # where the reference's released scripts differ
    defaults: ClassVar[Mapping[str, Any]]

    @abc.abstractmethod
    def jobs(self, base: TrainConfig, params: Mapping[str, Any]) -> list[Job]:
        """The trainings this experiment needs."""

    @abc.abstractmethod
    def analyse(self, base: TrainConfig, params: Mapping[str, Any], results: list) -> Result:
        """Table, figure and headline from the jobs' :class:`training.trainer.TrainResult`."""

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(self.defaults) - {"train"})
        if unknown:
            raise ValueError(
                f"[{self.name}]: unknown parameter(s) {unknown}; known: {sorted(self.defaults)}"
            )
        out = dict(self.defaults)
        out.update({k: v for k, v in given.items() if k != "train"})
        return out


# ------------------------------------------------------------------------- spec
def parse_paper_spec(
    path: str | Path, registry: Mapping[str, AbstractExperiment]
) -> dict[str, tuple[TrainConfig, dict[str, Any]]]:
    """A paper spec: top-level TrainConfig keys (shared), ``[name]`` tables of parameters
    for the experiments of ``registry`` and ``[name.train]`` TrainConfig overrides.
    Returns {name: (base config, params)}."""
    spec = read_toml(path, "paper spec")
    shared = {k: v for k, v in spec.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in spec.items() if isinstance(v, dict)}
    unknown = sorted(set(tables) - set(registry))
    if unknown:
        raise ValueError(f"{path}: unknown experiment(s) {unknown}; known: {sorted(registry)}")
    out = {}
    for name, table in tables.items():
        try:
            base = TrainConfig.from_dict({**shared, **table.get("train", {})}).validate()
        except ValueError as err:
            raise ValueError(f"{path}: [{name}]: {err}") from None
        out[name] = (base, registry[name].params(table))
    return out


def select(names: Sequence[str], only: str | Sequence[str] | None) -> list[str]:
    """The names ``only`` picks (comma list or sequence), in spec order; all when None."""
    if only is None:
        return list(names)
    wanted = [s.strip() for s in only.split(",")] if isinstance(only, str) else list(only)
    wanted = [w for w in wanted if w]
    bad = sorted(set(wanted) - set(names))
    if bad or not wanted:
        raise ValueError(f"--only: unknown experiment(s) {bad or wanted}; known: {list(names)}")
    return [n for n in names if n in wanted]


# ----------------------------------------------------------------------- runner
def train_job(job: Job, runs_dir: Path, *, progress: bool = False):
    """Train ``job`` into ``runs_dir/<key>.npz`` or load it when it is there already."""
    paths = [
        runs_dir / f"{k}.npz" for k in run_keys(job.config, list(job.seeds), job.init_embeddings)
    ]
    for saved in paths:  # the run's name, then any an earlier version gave it
        if saved.is_file():
            return TrainResult(load(saved), load_extras(saved))
    path = paths[0]
    ckpt = runs_dir / ".checkpoints"
    result = train_result(
        job.config,
        list(job.seeds),
        checkpoint_dir=ckpt,
        progress=progress,
        init_embeddings=job.init_embeddings,
    )
    result.save(path)
    clear_checkpoints(ckpt, job.config, list(job.seeds), job.init_embeddings)
    return result


def run_experiment(
    experiment: AbstractExperiment,
    base: TrainConfig,
    params: Mapping[str, Any],
    out: Path,
    *,
    progress: bool = False,
) -> Result:
    """Train (or reuse) the jobs of one experiment, analyse, write its three files."""
    runs_dir = out / RUNS
    runs_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = experiment.jobs(base, params)
    results = []
    for i, job in enumerate(jobs):
        if progress:
            print(
                f"  {experiment.name}: job {i + 1}/{len(jobs)} ({len(job.seeds)} seeds x "
                f"{job.config.steps} steps)",
                file=sys.stderr,
                flush=True,
            )
        results.append(train_job(job, runs_dir))
    train_s = time.perf_counter() - t0
    result = experiment.analyse(base, params, results)
    folder = out / experiment.name
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / experiment.name
    atomic_write(stem.with_suffix(".csv"), lambda tmp: result.table.to_csv(tmp, index=False))
    atomic_write(
        stem.with_suffix(".png"), lambda tmp: result.figure.savefig(tmp, format="png", dpi=110)
    )
    save_json(
        stem.with_suffix(".json"),
        {
            "experiment": experiment.name,
            "paper_figure": experiment.paper_figure,
            "reference": experiment.reference,
            "notes": experiment.notes,
            "config": base.to_dict(),
            "params": dict(params),
            "jobs": [{"key": j.key(), "seeds": list(j.seeds)} for j in jobs],
            "headline": result.headline,
            "train_wall_s": round(train_s, 1),
            "analysis_wall_s": round(time.perf_counter() - t0 - train_s, 1),
        },
    )
    return result


# ---------------------------------------------------------------- shared helpers
def seeds_of(params: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(parse_seeds(params["seeds"]))


def alive_sets(traj) -> list[set[int]]:
    """Each run's surviving circles k (the trainer's rule, as the reference decides)."""
    return [{int(name[1:]) for name in run["survivors"]} for run in traj.meta["runs"]]


def alive_by_final_signal(traj, run: int = 0) -> list[int]:
    """One run's survivors, strongest final signal first (the reference's order)."""
    alive = alive_sets(traj)[run]
    final = traj.x[run, -1]
    return sorted(alive, key=lambda k: -final[k - 1])


def spectrum_mean(traj, row: int = 0) -> np.ndarray:
    """Mean of the whole spectrum S_0..S_{p-1} at ``row``, (S_0 + 2 sum_k S_k) / p, per run."""
    p = 2 * traj.n_vars + 1
    return (traj.aux["s0"][:, row] + 2 * traj.x[:, row].sum(axis=1)) / p


def linspace_param(value: Any, name: str) -> np.ndarray:
    """A list of numbers, or {start, stop, num[, log]} (log: exp of a linspace)."""
    if isinstance(value, Mapping):
        try:
            grid = np.linspace(float(value["start"]), float(value["stop"]), int(value["num"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"{name}: give a list or {{start, stop, num}}, got {value!r}"
            ) from None
        return np.exp(grid) if value.get("log") else grid
    try:
        out = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: give a list of numbers, got {value!r}") from None
    if out.ndim != 1 or out.size == 0:
        raise ValueError(f"{name}: give a non-empty list of numbers, got {value!r}")
    return out


def figure(width: float, height: float) -> Figure:
    """A matplotlib Figure outside pyplot (no global state; freed with its last reference)."""
    return Figure(figsize=(width, height))


def style(ax) -> None:
    """The reference's ``format_subplot``: no top/right spines, dashed grid."""
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(linestyle="--", alpha=0.4)
