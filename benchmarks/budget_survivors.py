"""Issue 24: survivors and their number from the early window, by the shared-budget law.

    OPENBLAS_NUM_THREADS=1 python benchmarks/budget_survivors.py RUNS.npz [RUNS2.npz ...]
        --gammas 0.7,0.75,0.8,0.85,0.9 --windows 100,200,500 --out rows.csv

For every file (runs whose survivors are those alive at the file's last step, or
recorded in its meta), window 0..W and g: ``families.BudgetShare(g)`` fitted on the
second half of the window, its count read from its stable state
(``dynafit.budget_state``); beside it, told the true k: the law's ranking (top-k of its
stable state), the per-capita growth over W-10..W, S_k at W; and "alive at W" (count
from the data). One row per run; tune g on even runs, report odd ones.
(Set OPENBLAS_NUM_THREADS=1 on a loaded machine: BLAS threads make each small least-
squares fit 100x slower there.)
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

import dynafit
from dynafit.families import BudgetShare


def f1(pred, act) -> float:
    pred, act = set(pred), set(act)
    tp = len(pred & act)
    if not tp:
        return 0.0
    p, r = tp / len(pred), tp / len(act)
    return 2 * p * r / (p + r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--gammas", default="0.75")
    ap.add_argument("--windows", default="100,200,500")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for path in args.paths:
        tr = dynafit.load(path)
        act_all = dynafit.actual_survivors(tr)
        for g in [float(v) for v in args.gammas.split(",")]:
            for W in [float(v) for v in args.windows.split(",")]:
                iW = int(np.flatnonzero(np.isclose(tr.t, W))[0])
                for r, run in enumerate(tr.runs()):
                    st = dynafit.budget_state(dynafit.fit(run.window(0, W), BudgetShare(g)))
                    act, names, x = act_all[r], run.names, run.x
                    k = len(act)

                    def top(v, k=k, names=names):
                        return [names[i] for i in np.argsort(-np.asarray(v))[:k]]

                    growth = (x[iW] - x[iW - 10]) / x[iW - 10]
                    s0 = run.aux["s0"][iW] if "s0" in run.aux else 0.0
                    thr = dynafit.survival_threshold(x[iW], s0)
                    alive = [n for n, v in zip(names, x[iW]) if v > thr]
                    rows.append(
                        dict(
                            file=path,
                            dim=run.meta.get("dim"),
                            W=W,
                            g=g,
                            run=r,
                            n_actual=k,
                            n_pred=st["count"],
                            f1=f1(st["survivors"], act),
                            f1_topk_model=f1(top(st["state"]), act),
                            f1_growth=f1(top(growth), act),
                            f1_topk=f1(top(x[iW]), act),
                            f1_alive=f1(alive, act),
                            n_alive=len(alive),
                        )  # fmt: skip
                    )
    df = pd.DataFrame(rows)
    df["count_error"] = df["n_pred"] - df["n_actual"]
    df["half"] = np.where(df["run"] % 2 == 0, "even", "odd")
    pd.set_option("display.width", 200)
    print(
        df.assign(abs_err=df["count_error"].abs())
        .groupby(["dim", "W", "g", "half"])[["f1", "abs_err", "f1_growth", "f1_topk"]]
        .mean()
        .round(2)
    )
    if args.out:
        df.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
