"""The paper's experiments, one file each, behind ``dynafit reproduce --only NAME``.

Each regenerates one figure of arXiv 2405.17420 with the reference code's definitions
(github.com/carlguo866/circle-survival) and writes one table and one figure; the specs
``training/specs/paper/<scale>.toml`` size them (smoke: seconds on a CPU; small: minutes;
full: one GPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ._base import AbstractExperiment, Job, Result, parse_paper_spec, run_experiment, select
from .ablation import Ablation
from .circle_panels import CirclePanels
from .collaboration import Collaboration
from .construction import Construction
from .fittest_controlled import FittestControlled
from .frozen_embedding import FrozenEmbedding
from .perturbation import Perturbation
from .survivors_dim import SurvivorsDim
from .survivors_p import SurvivorsP
from .survivors_wd import SurvivorsWd

__all__ = [
    "EXPERIMENTS",
    "AbstractExperiment",
    "Job",
    "Result",
    "load_paper_spec",
    "run",
    "select",
    "spec_path",
]

EXPERIMENTS: dict[str, AbstractExperiment] = {
    e.name: e
    for e in (
        FittestControlled(),
        Perturbation(),
        Construction(),
        Ablation(),
        Collaboration(),
        CirclePanels(),
        FrozenEmbedding(),
        SurvivorsDim(),
        SurvivorsP(),
        SurvivorsWd(),
    )
}

SPECS = Path(__file__).resolve().parents[1] / "specs" / "paper"


def load_paper_spec(path: str | Path) -> dict[str, tuple[TrainConfig, dict[str, Any]]]:
    """The experiments a paper spec runs: {name: (base trainer config, parameters)}, in
    the file's order, every one validated; a problem is a ``ValueError`` naming it. (A
    sweep spec, the other kind of spec file, is read by :func:`training.sweep.load_spec`.)
    """
    return parse_paper_spec(path, EXPERIMENTS)


def spec_path(scale: str) -> Path:
    """``training/specs/paper/<scale>.toml``."""
    return SPECS / f"{scale}.toml"


def run(
    spec: str | Path,
    out: str | Path,
    *,
    only: str | Sequence[str] | None = None,
    matmul_precision: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the experiments of ``spec`` (those ``only`` names) into ``out``; their headlines.

    ``matmul_precision`` overrides the spec's for every training.
    """
    table = load_paper_spec(spec)
    names = select(list(table), only)
    out = Path(out)
    headlines = {}
    for name in names:
        base, params = table[name]
        if matmul_precision is not None:
            base = base.replace(matmul_precision=matmul_precision).validate()
        result = run_experiment(EXPERIMENTS[name], base, params, out, progress=progress)
        headlines[name] = result.headline
    return headlines
