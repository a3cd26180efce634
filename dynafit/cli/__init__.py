"""The ``dynafit`` command.

``dynafit train|sweep|reproduce`` reach into ``training/``, a client of dynafit imported
only by the command that runs it (the library itself knows nothing of training);
``dynafit fit`` is the fitting side; ``dynafit demo`` chains both on built-in defaults.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .._trajectory import load
from ._fit import main as fit_main
from ._fit import parse_window

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
        return fit_main(rest)
    if command == "demo":
        return demo(rest)
    print(f"dynafit: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def demo(argv: Sequence[str]) -> int:
    """Train a few seeds at the paper's defaults briefly, then fit every family.

    It is exactly ``dynafit train`` followed by ``dynafit fit`` on the trainer's file, so
    a rerun resumes or reuses what is already in ``--out``.
    """
    ap = argparse.ArgumentParser(
        prog="dynafit demo",
        description="Train a few seeds at the paper's defaults (p=59, dim=128) briefly, fit "
        "the linear, Lotka-Volterra and polynomial families to the early circle dynamics, "
        "print the leaderboard and the best model's equations, and write a report.",
    )
    ap.add_argument("--out", default="demo_out", help="output folder (default %(default)s)")
    ap.add_argument("--seeds", default="0-3", help="seeds to train (default %(default)s)")
    ap.add_argument("--steps", type=int, default=1500, help="training steps (%(default)s)")
    ap.add_argument("--window", default="0:1000", help="fitting window T0:T1 (%(default)s)")
    ap.add_argument("--families", default="linear,lotka_volterra,polynomial", help="(%(default)s)")
    ap.add_argument(
        "--circles",
        type=int,
        default=8,
        help="fit the N circles with the largest mean signal over the window (0 = all; "
        "the quadratic library on all 29 takes far longer) (default %(default)s)",
    )
    args = ap.parse_args(list(argv))
    out = Path(args.out)
    runs, report = out / "runs", out / "fit"

    from training.cli import main as train_main

    print(f"== dynafit demo: training seeds {args.seeds} for {args.steps} steps -> {runs}")
    rc = train_main(["--seeds", args.seeds, "--steps", str(args.steps), "--out", str(runs)])
    if rc:
        return rc
    chosen = []
    if args.circles:
        t0, t1 = parse_window(args.window)
        data = load(runs / "train.npz").window(t0, t1)
        mean = data.x.reshape(-1, data.n_vars).mean(axis=0)
        top = sorted(mean.argsort()[::-1][: args.circles])
        chosen = ["--vars", ",".join(data.names[i] for i in top)]
    what = f"circles {chosen[1]}" if chosen else "all circles"
    print(f"\n== fitting {args.families} to {what} on steps {args.window} -> {report}")
    return fit_main(
        [
            str(runs / "train.npz"),
            "--families",
            args.families,
            "--window",
            args.window,
            "--out",
            str(report),
            "--no-per-run",  # the pooled leaderboard only: the demo stays a few minutes
            *chosen,
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
