"""The paper's headline at full length on one device: many seeds x 30,000 steps.

    python benchmarks/gpu_survival.py --seeds 0-255 --steps 30000 --json out.json

Trains the seeds as one vmapped program at the paper's defaults (p 59, dim 128), then
reports the wall time, seed-steps/s, final test accuracy, how many circles survive
(the paper's rule) and the "fittest" ROC AUCs (initial signal, initial gradient), and
keeps every 100th state of every run in a small .npz (float32) for figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-255")
    ap.add_argument("--steps", type=int, default=30000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument(
        "--matmul-precision",
        default="highest",
        help="JAX default matmul precision: highest (full float32) or tensorfloat32 (TF32, "
        "what JAX's default gives on recent NVIDIA GPUs)",
    )
    ap.add_argument("--every", type=int, default=100, help="keep every N-th state")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--npz", type=Path, default=None)
    args = ap.parse_args()

    import jax

    import dynafit
    from training import TrainConfig, parse_seeds, train

    seeds = parse_seeds(args.seeds)
    cfg = TrainConfig(
        steps=args.steps, dim=args.dim, dtype=args.dtype, matmul_precision=args.matmul_precision
    ).validate()
    t0 = time.perf_counter()
    traj = train(cfg, seeds, progress=False)
    wall = time.perf_counter() - t0
    runs = traj.meta["runs"]
    n_alive = np.array([r["n_survivors"] for r in runs])
    acc = np.array([r["final_test_acc"] for r in runs])
    fit = dynafit.fittest(traj)
    result = {
        "device": str(jax.devices()[0]),
        "seeds": len(seeds),
        "steps": args.steps,
        "dim": args.dim,
        "dtype": args.dtype,
        "matmul_precision": cfg.matmul_precision,
        "wall_s_including_compile": round(wall, 1),
        "seed_steps_per_s": round(len(seeds) * args.steps / wall, 1),
        "final_test_acc_mean": float(acc.mean()),
        "final_test_acc_min": float(acc.min()),
        "survivors_mean": float(n_alive.mean()),
        "survivors_sd": float(n_alive.std(ddof=1)) if len(seeds) > 1 else 0.0,
        "survivors_min": int(n_alive.min()),
        "survivors_max": int(n_alive.max()),
        "survivors_hist": {int(k): int(v) for k, v in zip(*np.unique(n_alive, return_counts=True))},
        "circles": traj.n_vars,
        "auc_signal": fit["auc_signal"],
        "auc_gradient": fit["auc_gradient"],
        "loss_spikes": sum(
            1 for r in runs if ((r.get("loss_spike") or {}).get("max_loss_after") or 0.0) > 1.0
        ),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.npz:
        keep = slice(None, None, args.every)
        small = dynafit.Trajectory(
            traj.t[keep], traj.x[:, keep].astype(np.float32), traj.names, traj.meta
        )
        small.save(args.npz)


if __name__ == "__main__":
    main()
