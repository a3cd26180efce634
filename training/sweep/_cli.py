"""``dynafit sweep SPEC.toml --out DIR``: the command line of the sweep engine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dynafit.internal import (
    add_backend_arguments,
    add_out_arguments,
    backend_options,
    check_backend_arguments,
    text_table,
)

from ._engine import SweepResult, run_experiments
from ._spec import _show


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
    return (
        text_table(head, rows, rule=True)
        + f"\n{len(result.blocks)} blocks: {len(result.trained)} trained, "
        f"{len(result.reused)} already done, {len(result.failed)} failed; "
        f"{result.wall_s:.1f} s ({result.backend})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``dynafit sweep SPEC.toml --out DIR [--backend local|ray] [--address ...]``."""
    parser = argparse.ArgumentParser(
        prog="dynafit sweep",
        description="Train a grid of configs x seeds from a TOML spec, block by block, "
        "locally or on Ray. Rerunning the same command resumes.",
    )
    parser.add_argument("spec", help="sweep spec (TOML)")
    add_out_arguments(parser, required=True, help="output folder (one .npz per block)")
    add_backend_arguments(parser)
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
            **backend_options(args),
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
