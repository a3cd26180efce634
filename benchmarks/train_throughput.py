"""Trainer throughput: seed-steps/s, achieved GFLOP/s, and two yardsticks.

    python benchmarks/train_throughput.py                    # paper defaults, 1/8/64 seeds
    python benchmarks/train_throughput.py --steps 200 --seeds 1,8 --no-float64   # short

For each batch size it times ``training.train`` after a warm-up that compiles the
programs (so compile time is excluded, host transfers and the init are included).
float64 runs in a subprocess (64-bit JAX is chosen at process start). The yardsticks,
measured in the same run on the same device:

* a large dense float32 matmul (``--matmul-size``): the device's practical peak;
* a plain PyTorch loop of the same model and step (forward on the train pairs,
  backward, AdamW, circle signals, test forward), when torch is importable.

Two FLOP counts are reported per seed-step. "model" is the paper's step as written
(gather concat(E[a], E[b]) for every train pair, forward and backward through the MLP,
plus the test forward pass): ~7.5e8 at the defaults. "executed" is what this trainer
computes: the first layer as two (p, dim) x (dim, hidden) products broadcast over the
p x p grid, the rest of the MLP once over all p^2 pairs (train and test together),
backward on the same grid. Model-GFLOP/s is the like-for-like figure against torch;
executed-GFLOP/s against the matmul says how well the hardware is used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def model_flops(p: int, dim: int, hidden: int, frac: float) -> float:
    """The reference's step: 3x forward FLOPs on train pairs (fwd + bwd) + test forward."""
    n_train = int(p * p * frac)
    n_test = p * p - n_train
    per_pair = 2 * (2 * dim * hidden + hidden * hidden + hidden * p)
    return 3 * n_train * per_pair + n_test * per_pair


def executed_flops(p: int, dim: int, hidden: int) -> float:
    """This trainer's step: grid forward (all p^2 pairs) and its backward (~2x)."""
    first = 2 * (2 * p * dim * hidden)  # E @ W_a^T and E @ W_b^T
    rest = 2 * p * p * (hidden * hidden + hidden * p)
    return 3 * (first + rest)


def time_jax(p, dim, hidden, steps, seeds, dtype, chunk) -> dict:
    import jax

    from training import TrainConfig, train

    cfg = TrainConfig(
        p=p, dim=dim, hidden=hidden, steps=steps, dtype=dtype, chunk=min(chunk, steps)
    )
    cfg.validate()
    seed_list = list(range(seeds))
    train(cfg.replace(steps=cfg.chunk), seed_list, progress=False)  # compile
    t0 = time.perf_counter()
    tr = train(cfg, seed_list, progress=False)
    seconds = time.perf_counter() - t0
    assert tr.x.shape == (seeds, steps + 1, (p - 1) // 2)
    return {
        "seeds": seeds,
        "dtype": dtype,
        "steps": steps,
        "seconds": seconds,
        "seed_steps_per_s": seeds * steps / seconds,
        "device": jax.devices()[0].device_kind,
        "platform": jax.devices()[0].platform,
    }


def time_matmul(n: int, repeats: int = 10) -> float:
    """GFLOP/s of an (n, n) @ (n, n) float32 matmul, best of ``repeats``."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def time_torch(p, dim, hidden, steps, frac=0.8) -> dict | None:
    """The same model and step as a plain PyTorch float32 loop on CPU (None without torch)."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    emb = torch.nn.Parameter(torch.randn(p, dim, generator=gen))
    mlp = torch.nn.Sequential(
        torch.nn.Linear(2 * dim, hidden),
        torch.nn.SiLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.SiLU(),
        torch.nn.Linear(hidden, p),
    )
    opt = torch.optim.AdamW([emb, *mlp.parameters()], lr=0.01, weight_decay=0.5)
    pairs = torch.cartesian_prod(torch.arange(p), torch.arange(p))
    labels = (pairs[:, 0] + pairs[:, 1]) % p
    perm = torch.randperm(p * p, generator=gen)
    n_train = int(p * p * frac)
    tr, te = perm[:n_train], perm[n_train:]
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        x = torch.cat([emb[pairs[tr, 0]], emb[pairs[tr, 1]]], dim=1)
        logits = mlp(x)
        loss = loss_fn(logits, labels[tr])
        acc = (logits.argmax(1) == labels[tr]).float().mean()
        with torch.no_grad():
            signals = torch.fft.fft(emb, dim=0).abs().pow(2).sum(1).sqrt()[: (p - 1) // 2 + 1]
            xt = torch.cat([emb[pairs[te, 0]], emb[pairs[te, 1]]], dim=1)
            lt = mlp(xt)
            test_loss = loss_fn(lt, labels[te])
            test_acc = (lt.argmax(1) == labels[te]).float().mean()
        loss.backward()
        opt.step()
        return signals, loss.detach(), test_loss, acc, test_acc

    for _ in range(min(20, steps)):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - t0
    return {"steps": steps, "seconds": seconds, "steps_per_s": steps / seconds,
            "threads": torch.get_num_threads(), "version": torch.__version__}  # fmt: skip


def _child(args) -> None:
    """Run one measurement in this (fresh) process and print it as JSON."""
    res = time_jax(args.p, args.dim, args.hidden, args.steps, 1, "float64", args.chunk)
    print("RESULT " + json.dumps(res))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--p", type=int, default=59)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--steps", type=int, default=1000, help="timed steps per measurement")
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--seeds", default="1,8,64", help="batch sizes (float32)")
    ap.add_argument("--no-float64", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--torch-steps", type=int, default=None, help="default: --steps")
    ap.add_argument("--matmul-size", type=int, default=4096)
    ap.add_argument("--json", type=Path, default=None, help="also write results here")
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        _child(args)
        return 0

    import jax

    mflop = model_flops(args.p, args.dim, args.hidden, 0.8)
    xflop = executed_flops(args.p, args.dim, args.hidden)
    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}), {os.cpu_count()} CPU cores, "
          f"jax {jax.__version__}")  # fmt: skip
    print(f"config: p={args.p} dim={args.dim} hidden={args.hidden}; {args.steps} timed steps")
    print(f"FLOP per seed-step: model {mflop:.3g}, executed {xflop:.3g}")
    peak = time_matmul(args.matmul_size)
    print(f"dense float32 matmul {args.matmul_size}^2: {peak:.1f} GFLOP/s")

    results = []
    for r in [int(s) for s in args.seeds.split(",") if s]:
        results.append(time_jax(args.p, args.dim, args.hidden, args.steps, r, "float32",
                                args.chunk))  # fmt: skip
    if not args.no_float64:
        env = {**os.environ, "JAX_ENABLE_X64": "1"}
        cmd = [sys.executable, __file__, "--_child", "--p", str(args.p), "--dim", str(args.dim),
               "--hidden", str(args.hidden), "--steps", str(args.steps),
               "--chunk", str(args.chunk)]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"float64 subprocess failed:\n{proc.stderr[-2000:]}")
        else:
            results.append(json.loads(line[0][len("RESULT ") :]))

    print(f"\n{'seeds':>5} {'dtype':>7} {'seed-steps/s':>13} {'model GFLOP/s':>14} "
          f"{'exec GFLOP/s':>13} {'exec/matmul':>12}")  # fmt: skip
    for res in results:
        rate = res["seed_steps_per_s"]
        res["model_gflops"] = rate * mflop / 1e9
        res["executed_gflops"] = rate * xflop / 1e9
        res["executed_over_matmul"] = res["executed_gflops"] / peak
        print(f"{res['seeds']:>5} {res['dtype']:>7} {rate:>13.1f} {res['model_gflops']:>14.1f} "
              f"{res['executed_gflops']:>13.1f} {res['executed_over_matmul']:>12.2f}")  # fmt: skip

    torch_res = None
    if not args.no_torch:
        torch_res = time_torch(args.p, args.dim, args.hidden, args.torch_steps or args.steps)
        if torch_res is None:
            print("\ntorch not installed: PyTorch comparison skipped")
        else:
            one = next((r for r in results if r["seeds"] == 1 and r["dtype"] == "float32"), None)
            print(f"\ntorch {torch_res['version']} float32 loop ({torch_res['threads']} threads): "
                  f"{torch_res['steps_per_s']:.1f} steps/s = "
                  f"{torch_res['steps_per_s'] * mflop / 1e9:.1f} model GFLOP/s")  # fmt: skip
            if one:
                ratio = one["seed_steps_per_s"] / torch_res["steps_per_s"]
                torch_res["jax_1seed_over_torch"] = ratio
                print(f"JAX (1 seed, float32) / torch: {ratio:.2f}x")
    if args.json:
        payload = {"matmul_gflops": peak, "model_flop_per_seed_step": mflop,
                   "executed_flop_per_seed_step": xflop, "jax": results, "torch": torch_res}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
