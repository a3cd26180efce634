"""Issue 24: the shared-budget law's forecast of steps 1000..2000, and what the trainer's
per-circle read-out and gradient (``--record-circles``) say about the survivors.

    OPENBLAS_NUM_THREADS=1 python benchmarks/budget_forecast.py RUNS.npz [RUNS2.npz ...]
        --gamma 0.75 --out rows.csv

Forecast: ``families.BudgetShare(g)`` fitted on 0..1000 (its default: the second half,
500..1000), integrated from the state at 1000 over 1000..2000; skill = 1 - RMSE(law) /
RMSE(persistence: the state at 1000 held), over all circles, at each horizon.
Survival (files from ``python -m training --record-circles``): ROC AUC, pooled over runs
and circles, of S_k, the read-out R_k and the gradient spectrum G_k at steps 0 and W,
and of the per-capita growth over W-10..W, for the circles alive at the file's last step.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

import dynafit
from dynafit.families import BudgetShare

HORIZONS = (100, 250, 500, 1000)


def forecast_rows(run: dynafit.Trajectory, g: float, fit_end: float = 1000.0) -> list[dict]:
    law = dynafit.fit(run.window(0, fit_end), BudgetShare(g))
    ahead = run.window(fit_end, fit_end + max(HORIZONS))
    pred = law.simulate(ahead.t, ahead.x[0])
    rows = []
    for h in HORIZONS:
        n = int(np.searchsorted(ahead.t, fit_end + h, side="right"))
        err = np.sqrt(np.mean((pred[:n] - ahead.x[:n]) ** 2))
        hold = np.sqrt(np.mean((ahead.x[0] - ahead.x[:n]) ** 2))
        rows.append(dict(horizon=h, rmse=err, rmse_persistence=hold, skill=1 - err / hold))
    return rows


def survival_features(run: dynafit.Trajectory, W: int) -> pd.DataFrame | None:
    """One row per circle: the features at 0 and W, and whether it is alive at the end."""
    m = len(run.names)
    if f"readout_S{m}" not in run.aux:
        return None
    alive = set(dynafit.actual_survivors(run)[0])
    x = run.x
    iW = int(np.flatnonzero(np.isclose(run.t, W))[0])
    out = dict(alive=[n in alive for n in run.names])
    for i, name in ((0, "0"), (iW, str(W))):
        out[f"S_{name}"] = x[i]
        for key in ("readout", "gradient"):
            out[f"{key}_{name}"] = [run.aux[f"{key}_S{k}"][i] for k in range(1, m + 1)]
    out[f"growth_{W}"] = (x[iW] - x[iW - 10]) / x[iW - 10]
    return pd.DataFrame(out)


def _told_k(values: pd.Series, run: pd.DataFrame) -> float:
    """F1 of the top k circles by ``values``, told the true count k (= precision)."""
    k = int(run["alive"].sum())
    top = np.argsort(-values.to_numpy())[:k]
    return float(run["alive"].to_numpy()[top].sum() / k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--gamma", type=float, default=0.75)
    ap.add_argument("--windows", default="100,200", help="W of the survival features")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    windows = [int(w) for w in args.windows.split(",")]
    rows, feats = [], []
    for path in args.paths:
        for run in dynafit.load(path).runs():
            seed = run.meta.get("seed")
            rows += [dict(file=path, seed=seed, **r) for r in forecast_rows(run, args.gamma)]
            for W in windows:
                f = survival_features(run, W)
                if f is not None:
                    feats.append(f.assign(seed=seed, W=W))
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    summary = df.groupby("horizon").agg(
        skill_mean=("skill", "mean"),
        skill_median=("skill", "median"),
        beats_persistence=("skill", lambda s: f"{int((s > 0).sum())} of {len(s)}"),
    )
    print("forecast of 1000..2000 from a fit on 0..1000, by horizon:\n", summary.round(3))
    if feats:
        print("\nsurvival: ROC AUC pooled over runs and circles; F1 told k (mean over runs)")
        for W, pooled in pd.concat(feats).groupby("W"):
            cols = [c for c in pooled.columns if c not in ("alive", "seed", "W")]
            cols = [c for c in cols if not pooled[c].isna().all()]
            told = pooled.groupby("seed").apply(
                lambda g, cols=cols: g[cols].apply(lambda v: _told_k(v, g))
            )
            table = pd.DataFrame(
                {
                    "auc": [roc_auc_score(pooled["alive"], pooled[c]) for c in cols],
                    "f1_told_k": told.mean().to_numpy(),
                },
                index=cols,
            )
            print(f"W = {W}:\n", table.round(3))
    if args.out:
        df.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
