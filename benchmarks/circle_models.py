"""Readable models of the circle dynamics: survivors and forecasts from the early window.

    python benchmarks/circle_models.py RUNS.npz [--runs 1] [--windows 100,200,500,1000]
        [--forecast RUNS2.npz] [--forecast-runs 3] [--steps 400] [--x64]

Survivors (``RUNS.npz``: trainer runs to 30,000 steps whose meta names the survivors):
for every run and fit window 0..W, each candidate is fitted on the window and
``dynafit.compare_survivors(model, run, until=last step)`` integrates it from the state
at W to the run's end; the paper's threshold on the final state gives the survivors, so
the count is the model's own. Baselines at W: ``alive_at_t`` (above the threshold at W,
count from the data) and ``top_k_at_t`` (the k largest at W, told the true k).

Forecast (``--forecast``: runs of at least 2,000 steps): every candidate fitted on
0..1000 forecasts 1000..2000 from the state at 1000: relative RMSE (RMSE over the
horizon / RMS of the data there) and skill against persistence (1 - RMSE / RMSE of
holding the value at 1000), at horizons 50..1000.

Candidates: the structured families (``mean_field_lv`` with an inflow term,
``mean_field_lv`` without, ``low_rank_lv`` rank 1 with the inflow, ``low_rank_linear``
rank 2), each fitted on derivatives then matched to the window's trajectory for
``--steps`` steps; the default linear fit (``dynafit.fit(window, "linear")``); plain
least-squares linear (threshold 0).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd


def candidates(steps: int) -> dict:
    from dynafit.families import LowRankLinear, LowRankLV, MeanFieldLV

    return {
        "mean_field_lv+inflow (matched)": (MeanFieldLV(offset=True), {"steps": steps}),
        "mean_field_lv (matched)": (MeanFieldLV(), {"steps": steps}),
        "low_rank_lv r1+inflow (matched)": (LowRankLV(rank=1, offset=True), {"steps": steps}),
        "low_rank_linear r2 (matched)": (LowRankLinear(rank=2), {"steps": steps}),
        "linear (defaults)": ("linear", {}),
        "linear least squares": ("linear", {"threshold": 0.0}),
    }


def params_per_variable(model) -> float:
    n = model.n_terms
    w = getattr(model.family, "weights", None)
    if w is not None:
        n += int(np.count_nonzero(w))
    return n / model.n_vars


def survivors(dynafit, traj, windows, steps, n_runs, only) -> pd.DataFrame:
    rows = []
    for r, run in enumerate(list(traj.runs())[:n_runs]):
        until = float(run.t[-1])
        for W in windows:
            win = run.window(0, W)
            base_done = False
            for name, (family, kw) in candidates(steps).items():
                if only and not any(o in name for o in only):
                    continue
                t0 = time.perf_counter()
                model = dynafit.fit(win, family, **kw)
                seconds = time.perf_counter() - t0
                table = dynafit.compare_survivors(model, run, until).set_index("method")
                inside = float(np.mean(model.score(win)["rollout_r2"]))
                for method in ("model", "top_k_model"):
                    rows.append(
                        {
                            "run": r,
                            "window": W,
                            "candidate": name if method == "model" else f"{name} [told k]",
                            "predicted": table.loc[method, "predicted"],
                            "n_predicted": int(table.loc[method, "n_predicted"]),
                            "f1": float(table.loc[method, "f1"]),
                            "rollout_r2": inside,
                            "per_variable": params_per_variable(model),
                            "fit_s": round(seconds, 1),
                        }
                    )
                if not base_done:
                    for method, label in (
                        ("alive_at_t", "baseline: alive at W (count from data)"),
                        ("top_k_at_t", "baseline: top-k at W (told k)"),
                    ):
                        rows.append(
                            {
                                "run": r,
                                "window": W,
                                "candidate": label,
                                "predicted": table.loc[method, "predicted"],
                                "n_predicted": int(table.loc[method, "n_predicted"]),
                                "f1": float(table.loc[method, "f1"]),
                            }
                        )
                    base_done = True
                print(
                    f"run {r} W {W:5d} {name:34s} F1 {float(table.loc['model', 'f1']):.2f} "
                    f"({table.loc['model', 'predicted'] or '-'}; actual "
                    f"{table.loc['model', 'actual']}) rollout R^2 {inside:.3f} fit {seconds:.0f} s",
                    flush=True,
                )
    return pd.DataFrame(rows)


def forecasts(dynafit, traj, steps, n_runs, only, W=1000.0, horizons=(50, 100, 250, 500, 1000)):
    rows = []
    for r, run in enumerate(list(traj.runs())[:n_runs]):
        train = run.window(0, W)
        for name, (family, kw) in candidates(steps).items():
            if only and not any(o in name for o in only):
                continue
            t0 = time.perf_counter()
            model = dynafit.fit(train, family, **kw)
            seconds = time.perf_counter() - t0
            for h in horizons:
                sc = model.score(run.window(0, W + h), horizon=float(h))
                truth = run.window(W, W + h).x[..., 1:, :]
                rms = float(np.sqrt(np.mean(truth**2)))
                rows.append(
                    {
                        "run": r,
                        "candidate": name,
                        "horizon": h,
                        "rel_rmse": float(np.mean(sc["forecast_rmse"])) / rms,
                        "skill": float(np.mean(sc["forecast_skill"])),
                        "per_variable": params_per_variable(model),
                        "fit_s": round(seconds, 1),
                    }
                )
            print(
                f"forecast run {r} {name:34s} rel RMSE 1000: {rows[-1]['rel_rmse']:.3f} skill "
                + " ".join(f"{row['skill']:7.2f}" for row in rows[-len(horizons) :])
                + f"  fit {seconds:.0f} s",
                flush=True,
            )
        for h in horizons:
            truth = run.window(W, W + h).x[..., 1:, :]
            hold = run.window(W, W).x[..., -1:, :]
            rmse = float(np.sqrt(np.mean((truth - hold) ** 2)))
            rows.append(
                {
                    "run": r,
                    "candidate": "persistence",
                    "horizon": h,
                    "rel_rmse": rmse / float(np.sqrt(np.mean(truth**2))),
                    "skill": 0.0,
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", help="runs to 30,000 steps (survivors)")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--windows", default="100,200,500,1000")
    p.add_argument("--forecast", default=None, help="runs of >= 2,000 steps (forecast)")
    p.add_argument("--forecast-runs", type=int, default=3)
    p.add_argument("--steps", type=int, default=400, help="trajectory-matching steps")
    p.add_argument("--only", default="", help="comma-separated substrings of candidates")
    p.add_argument("--x64", action="store_true", help="JAX in float64")
    p.add_argument("--out", default=None, help="write the tables as CSV with this prefix")
    args = p.parse_args()
    if args.x64:
        os.environ["JAX_ENABLE_X64"] = "1"
    import dynafit

    only = [o for o in args.only.split(",") if o]
    windows = [int(w) for w in args.windows.split(",")]
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 60)
    traj = dynafit.load(args.path)
    surv = survivors(dynafit, traj, windows, args.steps, args.runs, only)
    f1 = surv.pivot_table(index="candidate", columns="window", values="f1", aggfunc="mean")
    print("\nsurvivor F1 (mean over runs), by fit window 0..W:")
    print(f1.round(2).to_string())
    if args.out:
        surv.to_csv(f"{args.out}_survivors.csv", index=False)
    if args.forecast:
        fc = forecasts(dynafit, dynafit.load(args.forecast), args.steps, args.forecast_runs, only)
        print("\nforecast from 0..1000: skill against persistence (mean over runs), by horizon:")
        print(fc.pivot_table(index="candidate", columns="horizon", values="skill").round(2))
        print("\nrelative RMSE over 1000..2000, per run:")
        print(
            fc[fc["horizon"] == 1000]
            .pivot_table(index="candidate", columns="run", values="rel_rmse")
            .round(3)
            .to_string()
        )
        if args.out:
            fc.to_csv(f"{args.out}_forecast.csv", index=False)


if __name__ == "__main__":
    main()
