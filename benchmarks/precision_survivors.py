"""Which circles survive in float64, float32 and TF32, on the same seeds.

    python benchmarks/precision_survivors.py --out DIR --seeds 0-1 --steps 30000 \
        [--variants float64,float32,tf32] [--csv benchmarks/results/precision_survivors.csv]

Each variant is one `python -m training` run (p 59, dim 128 unless given) into
DIR/<variant>/ (resumable; a finished run is read, not retrained):

- float64: --dtype float64 (the paper's precision);
- float32: --dtype float32 --matmul-precision highest (full float32 matmuls);
- tf32:    --dtype float32 --matmul-precision tensorfloat32 (what JAX's default gives on
  recent NVIDIA GPUs). A CPU has no TF32 and computes it as float32, so this variant is
  skipped unless JAX sees a GPU.

All variants start from the same float32 initialisation. The table has one row per
seed and variant: the survivors by the paper's rule, the final accuracy, and the
largest training loss after first reaching 100 % train accuracy (the loss spike) and,
where that loss exceeds 1, the survivors 100 steps before it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {
    "float64": ["--dtype", "float64", "--matmul-precision", "highest"],
    "float32": ["--dtype", "float32", "--matmul-precision", "highest"],
    "tf32": ["--dtype", "float32", "--matmul-precision", "tensorfloat32"],
}


def _has_gpu() -> bool:
    import jax

    return any(d.platform == "gpu" for d in jax.devices())


def _train(variant: str, out: Path, args) -> None:
    done = out / "manifest.json"
    if done.is_file() and json.loads(done.read_text()).get("status") == "complete":
        return  # read what is there (also a run made before --matmul-precision existed)
    cmd = [
        sys.executable,
        "-m",
        "training",
        "--p",
        str(args.p),
        "--dim",
        str(args.dim),
        "--seeds",
        args.seeds,
        "--steps",
        str(args.steps),
        "--quiet",
        "--out",
        str(out),
        *VARIANTS[variant],
    ]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, env=dict(os.environ))


def table(out: Path, variants: list[str]) -> pd.DataFrame:
    import dynafit

    rows = []
    for variant in variants:
        path = out / variant / "train.npz"
        if not path.is_file():
            continue
        traj = dynafit.load(path)
        for r, run in enumerate(traj.meta["runs"]):
            spike = run.get("loss_spike") or {}
            before = ""
            if (spike.get("max_loss_after") or 0.0) > 1.0:  # survivors 100 steps before it
                t = max(int(spike["step"]) - 100, 0)
                x, s0 = traj.x[r, t], traj.aux["s0"][r, t]
                alive = np.flatnonzero(x > dynafit.survival_threshold(x, s0)) + 1
                before = " ".join(map(str, alive))
            rows.append(
                {
                    "seed": run["seed"],
                    "variant": variant,
                    "dtype": run["config"]["dtype"],
                    # a run made before the option existed ran at JAX's default (on a
                    # CPU: the dtype's full precision, no TF32)
                    "matmul_precision": run.get("matmul_precision", "default (before the option)"),
                    "device": run.get("device", ""),
                    "steps": run["config"]["steps"],
                    "survivors": " ".join(s[1:] for s in run["survivors"]),
                    "n_survivors": run["n_survivors"],
                    "final_test_acc": run["final_test_acc"],
                    "max_train_loss_after_100pct": spike.get("max_loss_after"),
                    "at_step": spike.get("step"),
                    "survivors_100_steps_before_spike": before,
                }
            )
    df = pd.DataFrame(rows)
    if "float64" in set(df.get("variant", [])):
        ref = df[df["variant"] == "float64"].set_index("seed")["survivors"]
        df["same_survivors_as_float64"] = [
            bool(ref.get(s) == v) if s in ref.index else np.nan
            for s, v in zip(df["seed"], df["survivors"])
        ]
    return df.sort_values(["seed", "variant"]).reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", default="0-1")
    ap.add_argument("--steps", type=int, default=30000)
    ap.add_argument("--p", type=int, default=59)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--variants", default="float64,float32,tf32")
    ap.add_argument("--csv", type=Path, default=None, help="also write the table here")
    ap.add_argument("--table-only", action="store_true", help="read DIR, train nothing")
    args = ap.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = sorted(set(variants) - set(VARIANTS))
    if bad:
        ap.error(f"unknown variant(s) {bad}; known: {list(VARIANTS)}")
    if not args.table_only:
        gpu = _has_gpu()
        for variant in variants:
            if variant == "tf32" and not gpu:
                print("tf32: skipped, JAX sees no GPU (a CPU computes TF32 as float32)")
                continue
            _train(variant, args.out / variant, args)
    df = table(args.out, variants)
    print(df.to_string(index=False))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
