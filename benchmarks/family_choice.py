"""Which family ``compare`` ranks first, by BIC on derivative residuals and by the AICc
of rollout residuals, on the regime benchmark's data (issue 22: "the right family first
in ``compare`` in at least 95 % of fits at 0-1 % noise").

Data: ``regimes.make_case`` (laws, shapes, sizes and noise as ``benchmarks/regimes.py``
draws them). Each case is fitted ONCE per family (``dynafit.compare`` of linear,
lotka_volterra where the data are positive, polynomial, ``by="rollout_aicc"``); the
board's scores are stored and ranked by both rules when the table is made
(``dynafit._board.rank`` with its default bands: 2 for the AICc, 10 for BIC), so the two
columns differ only in the rule. The right family is the smallest library holding the law
(``regimes.System.family``). Nothing here is tuned: AICc has no constant, BIC's band (10)
is the leaderboard's default. Records are cached per case under
``benchmarks/results/family_choice/`` with the regime benchmark's code key, stale ones
recomputed.

    python benchmarks/family_choice.py --draws 1 3 --budget 1200   # run / resume
    python benchmarks/family_choice.py --table                     # print the table
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import regimes  # noqa: E402

OUT = HERE / "results" / "family_choice"
#: the regime benchmark's kinds whose law one of the compared families holds
KINDS = tuple(k for k in regimes.KINDS if not k.startswith("dysts_"))
SIZES = (20, 100, 1000)
NOISES = (0.0, 0.01)


def run_case(kind: str, size: int, noise: float, draw: int) -> dict:
    import dynafit

    system, t, noisy, _clean, _unseen = regimes.make_case(kind, size, noise, draw)
    traj = dynafit.Trajectory(t, noisy if noisy.shape[0] > 1 else noisy[0], list(system.names))
    fams = [f for f in regimes.COMPARE_FAMILIES if f != "lotka_volterra" or (noisy > 0).all()]
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        board = dynafit.compare(traj, tuple(fams), by="rollout_aicc")
    cols = ["family", "status", "n_library", "n_terms", "bic", "rollout_aicc", "rollout_r2"]
    rows = board[cols + ["diverged"]].replace([float("inf"), -float("inf")], None)
    return {
        "kind": kind,
        "size": size,
        "noise": noise,
        "draw": draw,
        "right": system.family,
        "board": rows.to_dict(orient="records"),
        "seconds": round(time.time() - t0, 2),
    }


def first(rec: dict, by: str) -> str:
    """The family ranked first by ``by`` on the record's board (``dynafit._board.rank``,
    its default band for ``by``)."""
    import numpy as np
    import pandas as pd

    from dynafit._board import rank

    board = pd.DataFrame(rec["board"]).fillna({"bic": np.inf, "rollout_aicc": np.inf})
    board["diverged"] = board["diverged"].fillna(False).astype(bool)
    return str(rank(board, by)["family"].iloc[0])


def cases(draws: list[int]):
    for draw in draws:
        for size in SIZES:
            for noise in NOISES:
                for kind in KINDS:
                    yield kind, size, noise, draw


def path_of(kind: str, size: int, noise: float, draw: int) -> Path:
    return OUT / f"{kind}_n{size}_noise{noise:g}_d{draw}.json"


def run(draws: list[int], budget: float) -> None:
    key = regimes.code_key()
    OUT.mkdir(parents=True, exist_ok=True)
    start = time.time()
    for case in cases(draws):
        path = path_of(*case)
        if path.exists() and json.loads(path.read_text()).get("key") == key:
            continue
        if time.time() - start > budget:
            print(f"budget of {budget:g} s spent; rerun to resume")
            return
        try:
            rec = run_case(*case)
        except Exception as e:  # noqa: BLE001  (a case that fails is a row, not a stop)
            rec = dict(zip(("kind", "size", "noise", "draw"), case), error=f"{e}"[:200])
        rec["key"] = key
        path.write_text(json.dumps(rec))
        print(json.dumps({k: v for k, v in rec.items() if k not in ("key", "board")}), flush=True)


def table() -> None:
    key = regimes.code_key()
    recs = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    fresh = [r for r in recs if r.get("key") == key and "error" not in r]
    for r in fresh:
        r["first_aicc"], r["first_bic"] = first(r, "rollout_aicc"), first(r, "bic")
    print(f"{len(fresh)} fresh records ({len(recs) - len(fresh)} stale or failed left out)")
    print("| size | noise | fits | right first: AICc of rollout | BIC of derivatives | s/case |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in SIZES:
        for noise in NOISES:
            rows = [r for r in fresh if r["size"] == size and r["noise"] == noise]
            if not rows:
                continue
            a = sum(r["first_aicc"] == r["right"] for r in rows)
            b = sum(r["first_bic"] == r["right"] for r in rows)
            s = sum(r["seconds"] for r in rows) / len(rows)
            print(f"| {size} | {noise:g} | {len(rows)} | {a} | {b} | {s:.1f} |")
    wrong = [r for r in fresh if r["first_aicc"] != r["right"]]
    for r in wrong:
        print(f"  AICc wrong: {r['kind']} n={r['size']} noise={r['noise']} draw={r['draw']}: "
              f"{r['first_aicc']} (right {r['right']}; BIC {r['first_bic']})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, nargs="+", default=[1])
    ap.add_argument("--budget", type=float, default=1200.0, help="seconds before stopping")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    if args.table:
        table()
    else:
        run(args.draws, args.budget)


if __name__ == "__main__":
    main()
