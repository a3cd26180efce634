"""Issue 24: the cost per step of the trainer's ``record_circles`` (read-out and gradient
spectrum of every circle, every step), against the same run without it.

    python benchmarks/record_circles_cost.py --steps 400 --seeds 0-3 --repeats 3

Each configuration is compiled once (a first short run), then timed ``--repeats`` times,
alternating, so that a load that changes over time touches both alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from training import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seeds", default="0-3")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    base = TrainConfig(dim=args.dim, steps=args.steps, checkpoint_every=args.steps, chunk=100)
    configs = {on: dataclasses.replace(base, record_circles=on) for on in (False, True)}
    for cfg in configs.values():  # compile
        train(dataclasses.replace(cfg, steps=100, checkpoint_every=100), args.seeds, progress=False)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):
        for on, cfg in configs.items():
            t0 = time.perf_counter()
            train(cfg, args.seeds, progress=False)
            times[on].append(time.perf_counter() - t0)
    for stat in (np.min, np.median):  # the minimum: the run least disturbed by other load
        off, on = stat(times[False]), stat(times[True])
        print(
            f"{stat.__name__} of {args.repeats} runs: off {off:.2f} s, on {on:.2f} s: "
            f"record_circles costs {100 * (on / off - 1):+.1f} % per step"
        )
    print(f"all: {times}")


if __name__ == "__main__":
    main()
