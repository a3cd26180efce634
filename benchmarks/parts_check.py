"""Behaviour check of the fit pipeline: coefficients, selections, scores and rankings of
``fit`` and ``compare`` on the test systems (tests/_systems.py), the shared-rate
families and a small circle run, written to JSON; a second mode compares two records.

    python benchmarks/parts_check.py record before.json     # on the old code
    python benchmarks/parts_check.py record after.json      # on the new code
    python benchmarks/parts_check.py compare before.json after.json

Tolerances of ``compare``: the sparse-regression fits must agree to 1e-9 (relative, on
coefficients and scores) with identical supports and selections; fits that run
trajectory matching (the shared-rate families, short data) to 3 % of the largest
coefficient (float32 iterates whose order of summation may change).
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

MATCHED_RTOL = 0.03
EXACT_RTOL = 1e-9
SKIP_OPTIONS = {"seconds", "refine", "formulation_rollout_r2"}


def _clean(v):
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return _clean(v.tolist())
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else str(f)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v if isinstance(v, (int, str, bool, type(None))) else repr(v)


def _model_record(model, traj) -> dict:
    import dynafit  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = model.score(traj)
    rec = {
        "coefficients": np.asarray(model.coefficients).tolist(),
        "support": (np.asarray(model.coefficients) != 0).astype(int).tolist(),
        "scores": {k: scores[k] for k in ("deriv_r2", "rollout_r2", "rmse", "n_terms", "bic")},
        "options": {k: v for k, v in model.options.items() if k not in SKIP_OPTIONS},
        "equations": [str(e) for e in model.equations()],
    }
    if model.sweep is not None:
        rec["sweep"] = {c: model.sweep[c].tolist() for c in model.sweep.columns}
    return _clean(rec)


def record(path: str) -> None:
    import _systems as S

    import dynafit

    out: dict = {}
    timings: dict = {}

    def run(name, fn, traj, matched=False):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = fn()
        out[name] = {**_model_record(model, traj), "matched": matched}
        timings[name] = round(time.perf_counter() - t0, 2)
        print(f"{name}: {timings[name]} s", flush=True)

    lin, _ = S.linear_traj(m=4, seed=0)
    run("linear", lambda: dynafit.fit(lin, "linear"), lin)
    run("linear_sr3", lambda: dynafit.fit(lin, "linear", optimizer="sr3"), lin)
    run(
        "linear_ensemble",
        lambda: dynafit.fit(lin, "linear", optimizer="ensemble", n_models=4),
        lin,
    )
    run("linear_bic", lambda: dynafit.fit(lin, "linear", criterion="bic"), lin)
    run("linear_threshold", lambda: dynafit.fit(lin, "linear", threshold=0.05), lin)
    run("linear_nterms", lambda: dynafit.fit(lin, "linear", n_terms=6), lin)
    run("linear_forward", lambda: dynafit.fit(lin, "linear", derivative="forward"), lin)
    run(
        "linear_smoothed",
        lambda: dynafit.fit(lin, "linear", derivative="smoothed", window=9),
        lin,
    )
    run("linear_centered4", lambda: dynafit.fit(lin, "linear", derivative="centered", order=4), lin)
    noisy, _ = S.linear_traj(m=3, seed=1, noise=0.02)
    run("linear_noisy_auto", lambda: dynafit.fit(noisy, "linear"), noisy)
    run("linear_noisy_weak", lambda: dynafit.fit(noisy, "linear", regression="weak"), noisy)
    lv, _ = S.lv_traj(m=3, seed=0)
    run("lv", lambda: dynafit.fit(lv, "lotka_volterra"), lv)
    run("lv_percapita", lambda: dynafit.fit(lv, "lotka_volterra", weighting="per_capita"), lv)
    run("poly", lambda: dynafit.fit(lv, "polynomial"), lv)
    short, _ = S.lv_traj(m=2, seed=3, runs=2, T=30)
    run("lv_short", lambda: dynafit.fit(short, "lotka_volterra"), short, matched=True)

    t0 = time.perf_counter()
    board = dynafit.compare(lin, families=("linear", "lotka_volterra", "polynomial"))
    cols = [
        c for c in ("family", "variant", "status", "bic", "rollout_r2", "n_terms") if c in board
    ]
    out["compare_linear"] = _clean({c: board[c].tolist() for c in cols})
    board = dynafit.compare(lv, families=("linear", "lotka_volterra", "polynomial"))
    out["compare_lv"] = _clean({c: board[c].tolist() for c in cols})
    timings["compare"] = round(time.perf_counter() - t0, 2)
    print(f"compare: {timings['compare']} s", flush=True)

    from dynafit.families import LowRankLinear, LowRankLV, MeanFieldLV

    run("mean_field_ls", lambda: dynafit.fit(lv, MeanFieldLV(), steps=0), lv)
    run("mean_field", lambda: dynafit.fit(lv, MeanFieldLV(), steps=60), lv, matched=True)
    run(
        "mean_field_offset",
        lambda: dynafit.fit(lv, MeanFieldLV(offset=True), steps=40),
        lv,
        matched=True,
    )
    run("low_rank_lv", lambda: dynafit.fit(lv, LowRankLV(rank=1), steps=40), lv, matched=True)
    run(
        "low_rank_linear",
        lambda: dynafit.fit(lin, LowRankLinear(rank=2), steps=40),
        lin,
        matched=True,
    )

    from training import TrainConfig, train

    circ = train(
        TrainConfig(p=11, dim=16, hidden=32, steps=300, chunk=50, snapshot_every=10),
        [0],
        progress=False,
    )
    circ = circ.window(0, 200)
    run("circle_linear", lambda: dynafit.fit(circ, "linear"), circ)
    run(
        "circle_mean_field",
        lambda: dynafit.fit(circ, MeanFieldLV(offset=True), steps=60),
        circ,
        matched=True,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        board = dynafit.compare(circ, families=("linear", "lotka_volterra", "polynomial"))
    out["compare_circle"] = _clean({c: board[c].tolist() for c in cols})
    timings["compare_circle"] = round(time.perf_counter() - t0, 2)
    out["_timings"] = timings
    Path(path).write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


def _num(v):
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    return v


def _nums(v) -> np.ndarray:
    v = v if isinstance(v, list) else [v]
    return np.array([_num(x) for x in v], dtype=float)


def _close(a, b, rtol, scale=None) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    scale = np.nanmax(np.abs(a[np.isfinite(a)])) if scale is None and np.isfinite(a).any() else 1
    return bool(np.all(same | (np.abs(a - b) <= rtol * max(scale, 1e-300))))


def compare(before: str, after: str) -> int:
    a, b = json.loads(Path(before).read_text()), json.loads(Path(after).read_text())
    bad = 0
    for name in a:
        if name.startswith("_"):
            continue
        if name not in b:
            print(f"MISSING {name}")
            bad += 1
            continue
        ra, rb = a[name], b[name]
        if name.startswith("compare"):
            ok = ra.get("family") == rb.get("family") and ra.get("variant") == rb.get("variant")
            ok = ok and all(
                _close([_num(v) for v in ra[c]], [_num(v) for v in rb[c]], EXACT_RTOL)
                for c in ("bic", "rollout_r2", "n_terms")
                if c in ra
            )
            print(f"{'ok  ' if ok else 'DIFF'} {name}: ranking {ra.get('family')}")
            bad += not ok
            continue
        rtol = MATCHED_RTOL if ra["matched"] else EXACT_RTOL
        problems = []
        if not _close(ra["coefficients"], rb["coefficients"], rtol):
            ca, cb = np.asarray(ra["coefficients"]), np.asarray(rb["coefficients"])
            rel = np.max(np.abs(ca - cb)) / max(np.max(np.abs(ca)), 1e-300)
            problems.append(f"coefficients (max diff {rel:.2e} of the largest)")
        if not ra["matched"] and ra["support"] != rb["support"]:
            problems.append("support")
        for k, v in ra["scores"].items():
            tol = 0.05 if ra["matched"] else EXACT_RTOL
            va, vb = _nums(v), _nums(rb["scores"][k])
            finite = va[np.isfinite(va)]
            if not _close(va, vb, tol, scale=max(float(np.abs(finite).max(initial=0)), 1.0)):
                problems.append(f"score {k} {v} -> {rb['scores'][k]}")
        opts_a = {k: v for k, v in ra["options"].items()}
        opts_b = {k: v for k, v in rb["options"].items()}
        for k in sorted(set(opts_a) | set(opts_b)):
            if k not in opts_b or k not in opts_a:
                problems.append(f"option {k} only in {'before' if k in opts_a else 'after'}")
            elif opts_a[k] != opts_b[k] and not (ra["matched"] and isinstance(opts_a[k], float)):
                problems.append(f"option {k}: {opts_a[k]!r} -> {opts_b[k]!r}")
        if "sweep" in ra:
            sa, sb = ra["sweep"], rb.get("sweep", {})
            if sorted(sa) != sorted(sb):
                problems.append(f"sweep columns {sorted(sa)} -> {sorted(sb)}")
            else:
                for c in sa:
                    if c == "refined_rollout_r2":
                        ok = _close([_num(v) for v in sa[c]], [_num(v) for v in sb[c]], 0.05, 1)
                    else:
                        ok = _close([_num(v) for v in sa[c]], [_num(v) for v in sb[c]], rtol)
                    if not ok:
                        problems.append(f"sweep column {c}")
        status = "ok  " if not problems else "DIFF"
        print(f"{status} {name}" + (": " + "; ".join(problems) if problems else ""))
        bad += bool(problems)
    ta, tb = a.get("_timings", {}), b.get("_timings", {})
    print("seconds before/after:", {k: (ta[k], tb.get(k)) for k in ta})
    print(f"{bad} difference(s)")
    return bad


if __name__ == "__main__":
    if sys.argv[1] == "record":
        record(sys.argv[2])
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3]) > 0)
