"""Sweeps: a TOML spec (trainer options, a grid, seeds) trained block by block, resumably.

By concern: the spec and its blocks (``_spec``), the worker that trains one block
(``_worker``), the folder and its manifest (``_manifest``), the plan of a run (what is
done, resumed or new: ``_plan``), the engine that runs the plan on an executor
(``_engine``), and the command line (``_cli``). See ``_engine`` for the whole story.
"""

from ._cli import main as main
from ._cli import summary_table as summary_table
from ._engine import SweepResult as SweepResult
from ._engine import run_experiments as run_experiments
from ._engine import run_sweep as run_sweep
from ._spec import FAULT_ENV as FAULT_ENV
from ._spec import MANIFEST as MANIFEST
from ._spec import Block as Block
from ._spec import SweepSpec as SweepSpec
from ._spec import block_name as block_name
from ._spec import default_block_size as default_block_size
from ._spec import expand as expand
from ._spec import load_experiments as load_experiments
from ._spec import load_spec as load_spec
from ._spec import parse_spec as parse_spec
from ._worker import run_block as run_block

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
