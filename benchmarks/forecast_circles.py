"""Forecast skill on circle data: fit on steps 0..W, forecast past W, against persistence.

    python benchmarks/forecast_circles.py RUNS.npz [--window 1000] [--runs 2]
        [--horizons 50,100,250,500,1000] [--refine-steps 0]

For each run, models fitted on the window 0..W:
- ``linear (defaults)``: ``dynafit.fit(train, "linear")``, the library's default fit;
- ``linear (forward)``: the same on the paper's forward differences;
- ``lotka_volterra (defaults)``;
- ``linear stable``: ``dynafit.fit_stable`` (A Hurwitz by construction), full rank and
  on the top 8 principal components;
- with ``--refine-steps N > 0``: the default linear fit refined on rollouts.
Each is scored by ``model.score(run.window(0, W + h), horizon=h)`` for every horizon h:
forecast skill = 1 - RMSE_model / RMSE_persistence (holding the last in-window value);
positive skill beats persistence. Prints a table of skill per model and horizon (mean
over runs, and the number of runs with positive skill).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def candidates(dynafit, train, refine_steps: int) -> dict:
    out = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out[name] = (fn(), time.perf_counter() - t0)

    timed("linear (defaults)", lambda: dynafit.fit(train, "linear"))
    timed("linear (forward)", lambda: dynafit.fit(train, "linear", derivative="forward"))
    timed("lotka_volterra (defaults)", lambda: dynafit.fit(train, "lotka_volterra"))
    timed("linear stable", lambda: dynafit.fit_stable(train, steps=100))
    timed("linear stable rank 8", lambda: dynafit.fit_stable(train, rank=8, steps=100))
    if refine_steps > 0:
        base = out["linear (defaults)"][0]
        timed("linear refined", lambda: dynafit.refine(base, train, steps=refine_steps))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path")
    p.add_argument("--window", type=float, default=1000.0)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--horizons", default="50,100,250,500,1000")
    p.add_argument("--refine-steps", type=int, default=0)
    args = p.parse_args()
    import dynafit

    traj = dynafit.load(args.path)
    W = args.window
    horizons = [float(h) for h in args.horizons.split(",")]
    rows = []
    for r, run in enumerate(list(traj.runs())[: args.runs]):
        if run.t[-1] < W + max(horizons):
            raise SystemExit(f"run {r} ends at {run.t[-1]:g} < window + horizon")
        train = run.window(0, W)
        for name, (model, seconds) in candidates(dynafit, train, args.refine_steps).items():
            inside = model.score(train)
            for h in horizons:
                sc = model.score(run.window(0, W + h), horizon=h)
                rows.append(
                    {
                        "run": r,
                        "model": name,
                        "n_terms": model.n_terms,
                        "rollout_r2": float(inside["rollout_r2"]),
                        "horizon": h,
                        "forecast_r2": float(sc["forecast_r2"]),
                        "forecast_skill": float(sc["forecast_skill"]),
                        "fit_s": round(seconds, 1),
                    }
                )
            print(
                f"run {r} {name:28s} terms {model.n_terms:4d}  rollout R^2 "
                f"{float(inside['rollout_r2']):8.3f}  fit {seconds:6.1f} s  skill "
                + " ".join(f"{row['forecast_skill']:7.2f}" for row in rows[-len(horizons) :]),
                flush=True,
            )
    table = pd.DataFrame(rows)
    skill = table.pivot_table(index="model", columns="horizon", values="forecast_skill")
    wins = table.assign(win=table["forecast_skill"] > 0).pivot_table(
        index="model", columns="horizon", values="win", aggfunc="sum"
    )
    print("\nforecast skill (mean over runs; > 0 beats persistence), by horizon:")
    print(skill.round(2).to_string())
    print(f"\nruns with positive skill (of {table['run'].nunique()}):")
    print(wins.astype(int).to_string())


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
