"""The ``dynafit`` command.

``dynafit train|sweep|reproduce`` reach into ``training/`` (imported lazily, here only);
``dynafit fit`` is the fitting side; ``dynafit demo`` chains both on built-in defaults.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: dynafit COMMAND [options]

commands:
  train      train networks on modular addition, record circle signals (python -m training)
  fit        fit candidate ODE families to trajectories; leaderboard, equations, report
  sweep      run a TOML sweep spec (grid x seeds) locally or on Ray
  reproduce  reproduce the paper's findings (--scale small|full)
  demo       train a few seeds briefly, fit every family, print the best equations

`dynafit COMMAND --help` describes each command."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        from training.cli import main as train_main

        return train_main(rest)
    if command == "sweep":
        from training.sweep import main as sweep_main

        return sweep_main(rest)
    if command == "reproduce":
        from training.reproduce import main as reproduce_main

        return reproduce_main(rest)
    if command == "fit":
        from ._fit_cli import main as fit_main

        return fit_main(rest)
    if command == "demo":
        return demo(rest)
    print(f"dynafit: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def demo(argv: Sequence[str]) -> int:
    """Train a few seeds at the paper's defaults briefly, then fit all families."""
    raise SystemExit("dynafit demo: not yet wired (trainer and fitting land first)")


if __name__ == "__main__":
    raise SystemExit(main())
