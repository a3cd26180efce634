"""Forecast skill on circle data: fit on steps 0..W, forecast W..2W, against persistence.

    python benchmarks/forecast_circles.py RUNS.npz [--window 1000] [--runs 2]

For each run: the plain linear SINDy fit (the paper's forward differences), the same
refined on rollouts (dynafit.refine), the stable linear fit (dynafit.fit_stable), and
the stable fit on the top principal components (rank 4 and 8). Prints rollout R^2 in the
window and forecast R^2 / forecast skill (1 - RMSE_model / RMSE_persistence) on the
next W steps.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path")
    p.add_argument("--window", type=float, default=1000.0)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--steps", type=int, default=150)
    args = p.parse_args()
    import dynafit

    traj = dynafit.load(args.path)
    W = args.window
    rows = []
    for r, run in enumerate(list(traj.runs())[: args.runs]):
        both = run.window(0, 2 * W)
        train = both.window(0, W)
        candidates = {}
        t0 = time.perf_counter()
        base = dynafit.fit(train, "linear", derivative="forward")
        candidates["linear sindy"] = (base, time.perf_counter() - t0)
        for family in ("linear", "lotka_volterra"):
            t0 = time.perf_counter()
            candidates[f"{family} sindy (defaults)"] = (
                dynafit.fit(train, family),
                time.perf_counter() - t0,
            )
        t0 = time.perf_counter()
        candidates["linear refined"] = (
            dynafit.refine(base, train, steps=args.steps),
            time.perf_counter() - t0,
        )
        for rank in (None, 8, 4):
            t0 = time.perf_counter()
            model = dynafit.fit_stable(train, rank=rank, steps=args.steps)
            candidates[f"stable{'' if rank is None else f' rank {rank}'}"] = (
                model,
                time.perf_counter() - t0,
            )
        for name, (model, seconds) in candidates.items():
            sc = model.score(both, horizon=W)
            rows.append(
                {
                    "run": r,
                    "model": name,
                    "n_terms": model.n_terms,
                    "rollout_r2": sc["rollout_r2"],
                    "forecast_r2": sc["forecast_r2"],
                    "forecast_skill": sc["forecast_skill"],
                    "seconds": round(seconds, 1),
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.groupby("model")[["rollout_r2", "forecast_r2", "forecast_skill"]].mean())


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
