"""Readable models of the circle dynamics: survivors and forecasts from the early window.

    python benchmarks/circle_models.py RUNS.npz [--runs 1] [--windows 100,200,500,1000]
        [--forecast RUNS2.npz] [--forecast-runs 3] [--steps 400] [--only NAME,...]

Survivors (``RUNS.npz``: trainer runs to 30,000 steps whose meta names the survivors):
for every run and fit window 0..W, each candidate is fitted on the window and
``dynafit.compare_survivors`` integrates it from the state at W to the run's end; the
paper's threshold on the final state gives the survivors, so the count is the model's
own. Baselines at W: "alive at W" (above the threshold at W: the count from the data)
and "top-k at W (told k)" (the k largest at W, told the true k), and (issue 24) "growth
top-k at W (told k)" (the k largest per-capita growth rates over W-10..W). The runs may
also be cut at an earlier reference step (the survivors are then those alive at the
file's last step: say which).

Forecast (``--forecast``: runs of at least 2,000 steps): every candidate fitted on
0..1000 forecasts 1000..2000 from the state at 1000: relative RMSE (RMSE over the
horizon / RMS of the data there) and skill against persistence (1 - RMSE / RMSE of
holding the value at 1000), at horizons 50..1000.

Both through ``dynafit.early_window_table``. Candidates: ``budget_share`` (issue 24:
a shared inflow budget divided in proportion to w_i S_i^g, one decay; g = 0.75, 0.8,
0.85), ``mean_field_lv`` with and
without the inflow term, ``low_rank_lv`` rank 1 with the inflow, ``low_rank_linear``
rank 2 (each fitted on derivatives, then matched to the window's trajectory for
``--steps`` steps); the default linear fit; plain least-squares linear (threshold 0);
"start validated": ``dynafit.fit_recent``, the fit's start chosen by a forecast of the
window's last fifth (from 0, or the last half, quarter or eighth of the rest).
"""

from __future__ import annotations

import argparse
import functools
import os

import pandas as pd


def candidates(steps: int) -> dict:
    import dynafit
    from dynafit.families import BudgetShare, LowRankLinear, LowRankLV, MeanFieldLV

    return {
        # issue 24: the shared-budget law, fitted on the window's second half; its count
        # is read from its stable state (dynafit.budget_state). g tuned on even seeds.
        "budget_share g=0.75": (BudgetShare(0.75), {}),
        "budget_share g=0.8": (BudgetShare(0.8), {}),
        "budget_share g=0.85": (BudgetShare(0.85), {}),
        "mean_field_lv+inflow (start validated)": functools.partial(
            dynafit.fit_recent, family=MeanFieldLV(offset=True), steps=steps
        ),
        "mean_field_lv (start validated)": functools.partial(
            dynafit.fit_recent, family=MeanFieldLV(), steps=steps
        ),
        "mean_field_lv+inflow": (MeanFieldLV(offset=True), {"steps": steps}),
        "mean_field_lv": (MeanFieldLV(), {"steps": steps}),
        "low_rank_lv r1+inflow": (LowRankLV(rank=1, offset=True), {"steps": steps}),
        "low_rank_linear r2": (LowRankLinear(rank=2), {"steps": steps}),
        "linear (defaults)": ("linear", {}),
        "linear least squares": ("linear", {"threshold": 0.0}),
        "linear least squares (start validated)": functools.partial(
            dynafit.fit_recent, family="linear", threshold=0.0
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", help="runs to 30,000 steps (survivors)")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--windows", default="100,200,500,1000")
    p.add_argument("--forecast", default=None, help="runs of >= 2,000 steps (forecast)")
    p.add_argument("--forecast-runs", type=int, default=3)
    p.add_argument("--steps", type=int, default=400, help="trajectory-matching steps")
    p.add_argument("--only", default="", help="comma-separated candidate names")
    p.add_argument("--x64", action="store_true", help="JAX in float64")
    p.add_argument("--out", default=None, help="write the tables as CSV with this prefix")
    args = p.parse_args()
    if args.x64:
        os.environ["JAX_ENABLE_X64"] = "1"
    import dynafit

    cands = candidates(args.steps)
    only = [o for o in args.only.split(",") if o]
    if only:
        cands = {k: v for k, v in cands.items() if k in only}
    pd.set_option("display.width", 200)
    windows = [float(w) for w in args.windows.split(",") if w]
    if windows:  # --windows "" skips the survivors
        traj = dynafit.load(args.path)
        traj = dynafit.Trajectory.stack(list(traj.runs())[: args.runs])
        surv, _ = dynafit.early_window_table(
            traj, windows, cands, forecast_window=None, progress=lambda s: print(s, flush=True)
        )
        print("\nsurvivor F1 (mean over runs), by fit window 0..W:")
        print(surv.pivot_table(index="candidate", columns="window", values="f1").round(2))
        print("\nsurvivors predicted (count), by fit window:")
        print(surv.pivot_table(index="candidate", columns="window", values="n_predicted"))
        if args.out:
            surv.to_csv(f"{args.out}_survivors.csv", index=False)
    if args.forecast:
        fc_traj = dynafit.load(args.forecast)
        fc_traj = dynafit.Trajectory.stack(list(fc_traj.runs())[: args.forecast_runs])
        _, fc = dynafit.early_window_table(
            fc_traj, (), cands, forecast_window=1000.0, progress=lambda s: print(s, flush=True)
        )
        print("\nforecast from 0..1000: skill against persistence (mean over runs), by horizon:")
        print(fc.pivot_table(index="candidate", columns="horizon", values="skill").round(2))
        print("\nrelative RMSE over 1000..2000, per run:")
        last = fc[fc["horizon"] == fc["horizon"].max()]
        print(last.pivot_table(index="candidate", columns="run", values="rel_rmse").round(3))
        print("\nparameters per circle:")
        print(fc.groupby("candidate")["params_per_variable"].first().round(1))
        if args.out:
            fc.to_csv(f"{args.out}_forecast.csv", index=False)


if __name__ == "__main__":
    main()
