"""Sweep scaling: the same 8 blocks on the local backend and on Ray with 1 and 2 workers.

For each backend: start it, warm its workers up (process start, imports and XLA compile
of the block's program, timed apart), then train the 8 blocks into a fresh folder and
report the wall time, the seed-steps per second, the speed-up from 1 to 2 Ray workers
and the overhead per block (wall time x workers - time inside ``train``, per block).
Every run's files are compared with the local backend's: they must be bitwise equal.

Then, on paper: what the paper's embedding-dimension grid (examples/sweeps/paper_dim.toml)
costs in seed-steps and FLOPs, and its wall time on 1, 8 and 64 GPUs at a per-GPU rate
(``--gpu-rate``, seed-steps/s at the paper's default config; take it from
benchmarks/train_throughput.py on the GPU).

    python benchmarks/sweep_scaling.py                 # p 59, dim 32, 8 blocks x 1 seed
    python benchmarks/sweep_scaling.py --steps 300     # a quick check that it works
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback-only Ray

import numpy as np  # noqa: E402

from dynafit.internal import LocalExecutor, RayExecutor, load_json, load_npz  # noqa: E402
from training import TrainConfig  # noqa: E402
from training import sweep as sw  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def seed_step_flops(p: int, dim: int, hidden: int, frac: float) -> float:
    """Analytic FLOPs of one seed-step: forward + backward on the train pairs (3x a
    forward pass) and a forward pass on the test pairs, for the MLP 2 dim -> h -> h -> p."""
    per_pair = 2 * (2 * dim * hidden + hidden * hidden + hidden * p)
    n_train = round(frac * p * p)
    return per_pair * (3 * n_train + (p * p - n_train))


def make_spec(args: argparse.Namespace, seeds: range) -> sw.SweepSpec:
    return sw.parse_spec(
        {
            "p": args.p,
            "dim": args.dim,
            "steps": args.steps,
            "chunk": min(100, args.steps),
            "checkpoint_every": min(100, args.steps) * max(1, args.steps // 100),
            "seeds": list(seeds),
            "block_size": args.block_size,
        },
        source="benchmark",
    )


def run_backend(label: str, executor, args, scratch: Path) -> dict:
    n = args.blocks * args.block_size
    warm = make_spec(args, range(10_000, 10_000 + executor.workers * args.block_size))
    t0 = time.perf_counter()
    sw.run_sweep(warm, scratch / f"{label}-warm", backend=executor, progress=False)
    warm_s = time.perf_counter() - t0
    spec = make_spec(args, range(n))
    out = scratch / label
    t0 = time.perf_counter()
    result = sw.run_sweep(spec, out, backend=executor, progress=False)
    wall = time.perf_counter() - t0
    assert result.ok and len(result.trained) == args.blocks, result
    inside = sum(e["wall_s"] for e in load_json(out / "manifest.json")["blocks"])
    return {
        "label": label,
        "workers": executor.workers,
        "warm_s": warm_s,
        "wall_s": wall,
        "train_s": inside,
        "overhead_per_block_s": (wall * executor.workers - inside) / args.blocks,
        "seed_steps_per_s": n * args.steps / wall,
        "out": out,
    }


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("*.npz"))
    if names != sorted(p.name for p in b.glob("*.npz")):
        return False
    for name in names:
        x, y = load_npz(a / name), load_npz(b / name)
        if sorted(x) != sorted(y) or any(not np.array_equal(x[k], y[k]) for k in x):
            return False
    return True


def paper_grid(gpu_rate: float) -> None:
    specs = sw.load_experiments(REPO / "examples" / "sweeps" / "paper_dim.toml")
    spec = specs[""]
    blocks = sw.expand(spec, spec.block_size)
    seed_steps = sum(b.seed_steps for b in blocks)
    flops = sum(
        b.seed_steps * seed_step_flops(b.config.p, b.config.dim, b.config.hidden, b.config.frac)
        for b in blocks
    )
    ref = TrainConfig()
    ref_flops = seed_step_flops(ref.p, ref.dim, ref.hidden, ref.frac)
    # the rate is measured at dim 128; smaller dims cost fewer FLOPs per seed-step
    equiv = flops / ref_flops
    print("\nthe paper's embedding-dimension grid (examples/sweeps/paper_dim.toml), on paper:")
    print(f"  {len(blocks)} blocks, {len(spec.seeds)} seeds each, {spec.fixed['steps']} steps")
    print(
        f"  {seed_steps:.3g} seed-steps, {flops:.3g} FLOP "
        f"({ref_flops:.3g} FLOP per seed-step at dim 128, {spec.fixed.get('dtype')})"
    )
    print(f"  at {gpu_rate:.3g} dim-128 seed-steps/s per GPU:")
    for gpus in (1, 8, 64):
        # whole blocks per GPU: the slowest GPU gets ceil(blocks / gpus) blocks
        per_block = equiv / len(blocks) / gpu_rate
        waves = -(-len(blocks) // gpus)
        print(
            f"    {gpus:3d} GPU(s): {waves * per_block / 3600:8.2f} h "
            f"({waves} block(s) per GPU, {per_block / 60:.1f} min per block)"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--p", type=int, default=59)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=1)
    parser.add_argument(
        "--gpu-rate",
        type=float,
        default=4.7e4,
        help="seed-steps/s of one GPU at the default config (dim 128); "
        "the default is 35 TFLOP/s / 7.5e8 FLOP per seed-step",
    )
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args(argv)
    n = args.blocks * args.block_size
    print(
        f"{args.blocks} blocks of {args.block_size} seed(s): p {args.p}, dim {args.dim}, "
        f"{args.steps} steps ({n * args.steps:.3g} seed-steps); {os.cpu_count()} CPUs"
    )
    scratch = Path(tempfile.mkdtemp(prefix="sweep_scaling."))
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(scratch / "jax_cache"))
    rows = []
    try:
        with LocalExecutor(in_process=False) as ex:
            rows.append(run_backend(f"local x{ex.workers}", ex, args, scratch))
        if not args.skip_ray:
            for workers in (1, 2):
                t0 = time.perf_counter()
                ex = RayExecutor(workers=workers)
                start_s = time.perf_counter() - t0
                try:
                    row = run_backend(f"ray x{workers}", ex, args, scratch)
                finally:
                    ex.close()
                row["start_s"] = start_s
                rows.append(row)
        ref = rows[0]["out"]
        print(
            f"\n{'backend':10} {'start s':>8} {'warm-up s':>10} {'wall s':>8} "
            f"{'seed-steps/s':>13} {'overhead/block s':>17} {'same files':>10}"
        )
        for r in rows:
            start = f"{r['start_s']:.1f}" if "start_s" in r else "-"
            print(
                f"{r['label']:10} {start:>8} {r['warm_s']:10.1f} {r['wall_s']:8.1f} "
                f"{r['seed_steps_per_s']:13.0f} {r['overhead_per_block_s']:17.2f} "
                f"{str(same_files(ref, r['out'])):>10}"
            )
        ray_rows = {r["workers"]: r for r in rows if r["label"].startswith("ray")}
        if 1 in ray_rows and 2 in ray_rows:
            print(
                f"\nspeed-up from 1 to 2 Ray workers: "
                f"{ray_rows[1]['wall_s'] / ray_rows[2]['wall_s']:.2f}x"
            )
        print(
            "warm-up = worker start, imports and XLA compile of the block's program "
            "(reported apart from the timed run); start = starting the Ray cluster"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    paper_grid(args.gpu_rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
