"""Record dynafit's answers on a fixed set of problems to JSON, or compare with a record.

The speed work (issue 23) must not change answers: run this before a change
(``--out before.json``) and after (``--out after.json --compare before.json``). The set:
two systems of ``tests/_systems.py`` (linear, Lotka-Volterra), Lorenz clean and at 1 %
noise (``tests/test_discovery.py``), the 21 lynx-hare points (fit + refine), and a
circle run (a trajectory file given by ``--circle``, first 8 circles, steps 0..300:
``compare`` of three families). Coefficients compare to ``--rtol``, supports exactly.

    python benchmarks/answers_check.py --out before.json [--circle run.npz]
    python benchmarks/answers_check.py --out after.json --compare before.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def _model_record(model, traj) -> dict:
    s = model.score(traj)
    return {
        "coefficients": np.asarray(model.coefficients, dtype=float).tolist(),
        "deriv_r2": float(np.mean(s["deriv_r2"])),
        "rollout_r2": float(np.mean(s["rollout_r2"])),
        "n_terms": int(model.n_terms),
    }


def cases(circle: str | None):
    import dynafit
    from tests import _systems
    from tests.test_discovery import HARE, LYNX, YEARS, _lorenz

    traj, _ = _systems.linear_traj(m=4, seed=1)
    yield "linear_m4", lambda: {"fit": _model_record(dynafit.fit(traj, "linear"), traj)}
    traj2, _ = _systems.lv_traj(m=3, seed=2)
    yield "lv_m3", lambda: {"fit": _model_record(dynafit.fit(traj2, "lotka_volterra"), traj2)}
    for noise in (0.0, 0.01):
        lz, _ = _lorenz(noise)
        yield (
            f"lorenz_{noise}",
            lambda lz=lz: {"fit": _model_record(dynafit.fit(lz, "polynomial"), lz)},
        )
    lh = dynafit.Trajectory(YEARS, np.stack([HARE, LYNX], axis=1), ["hare", "lynx"])

    def lynx():
        m = dynafit.fit(lh, family="lotka_volterra")
        r = dynafit.refine(m, lh)
        return {"fit": _model_record(m, lh), "refine": _model_record(r, lh)}

    yield "lynx_hare", lynx
    if circle:
        ct = dynafit.load(circle)
        if ct.is_batch:
            ct = dynafit.Trajectory(ct.t, ct.x[0], ct.names)
        ct = ct.window(0, 300).select(list(ct.names[:8]))

        def board():
            b = dynafit.compare(ct, families=("linear", "lotka_volterra", "polynomial"))
            out = {}
            for _, row in b.iterrows():
                out[f"{row['family']}/{row['variant']}"] = {
                    "n_terms": int(row["n_terms"]),
                    "bic": float(row["bic"]),
                    "rollout_r2": float(row["rollout_r2"]),
                    "rank": int(_),
                }
            out["order"] = [str(f) for f in b["family"]]
            return out

        yield "circle8_compare", board


def _compare(a, b, rtol: float, path: str = "") -> list[str]:
    diffs = []
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                diffs.append(f"{path}/{k}: only in {'after' if k not in a else 'before'}")
                continue
            if k == "seconds":
                continue
            diffs += _compare(a[k], b[k], rtol, f"{path}/{k}")
        return diffs
    if isinstance(a, list) and a and isinstance(a[0], str):
        return [] if a == b else [f"{path}: {a} != {b}"]
    if isinstance(a, (list, float, int)):
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if x.shape != y.shape:
            return [f"{path}: shape {x.shape} != {y.shape}"]
        if not np.array_equal(x != 0, y != 0) and path.endswith("coefficients"):
            return [f"{path}: support differs"]
        if not np.allclose(x, y, rtol=rtol, atol=1e-9, equal_nan=True):
            err = np.nanmax(np.abs(x - y) / (np.abs(y) + 1e-9))
            return [f"{path}: max rel diff {err:.2e}"]
    return diffs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--compare", default=None)
    p.add_argument("--circle", default=None, help="a trainer's trajectory file (.npz)")
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--only", default=None, help="comma-separated case names")
    args = p.parse_args()
    only = set(args.only.split(",")) if args.only else None
    record = {}
    for name, fn in cases(args.circle):
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            record[name] = fn()
        record[name]["seconds"] = round(time.perf_counter() - t0, 2)
        print(f"{name}: {record[name]['seconds']} s", flush=True)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
    if args.compare:
        with open(args.compare) as f:
            before = json.load(f)
        before = {k: v for k, v in before.items() if k in record}
        diffs = _compare(record, before, args.rtol)
        print("\n".join(diffs) if diffs else f"answers unchanged (rtol {args.rtol})")


if __name__ == "__main__":
    main()
