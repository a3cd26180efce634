"""``python -m training`` (= ``dynafit train``): train seeds, save one batch file.

``--out DIR`` receives ``train.npz`` (the batch Trajectory plus ``extra__*`` arrays),
``manifest.json`` (config, seeds, status, version) and checkpoints under
``DIR/.checkpoints/``. Running the same command again resumes an interrupted run or
reports a finished one; a different config into a non-empty folder is refused unless
``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dynafit._io import ensure_writable_dir

from .config import DTYPES, MATMUL_PRECISIONS, TrainConfig, parse_seeds

OUTPUT = "train.npz"
MANIFEST = "manifest.json"
CHECKPOINTS = ".checkpoints"
KIND = "dynafit.train/1"


def _parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    ap = argparse.ArgumentParser(
        prog="python -m training",
        description="Train MLPs on (a + b) mod p with a learnable embedding and record "
        "the circle signals S_k(t) of every step (Ding et al. 2024, arXiv 2405.17420).",
    )
    ap.add_argument("--p", type=int, default=d.p, help="odd modulus >= 3 (default %(default)s)")
    ap.add_argument("--dim", type=int, default=d.dim, help="embedding width (%(default)s)")
    ap.add_argument("--hidden", type=int, default=d.hidden, help="MLP width (%(default)s)")
    ap.add_argument("--steps", type=int, default=d.steps, help="updates (%(default)s)")
    ap.add_argument("--lr", type=float, default=d.lr, help="AdamW lr (%(default)s)")
    ap.add_argument("--wd", type=float, default=d.wd, help="AdamW weight decay (%(default)s)")
    ap.add_argument("--frac", type=float, default=d.frac, help="train fraction (%(default)s)")
    ap.add_argument("--dtype", default=d.dtype, help=f"one of {DTYPES} (%(default)s)")
    ap.add_argument(
        "--matmul-precision",
        default=d.matmul_precision,
        choices=MATMUL_PRECISIONS,
        help="JAX's default matmul precision; 'default' or 'tensorfloat32' is TF32 on recent "
        "NVIDIA GPUs, 'highest' full float32 (default %(default)s; a CPU is full float32 always)",
    )
    ap.add_argument("--seeds", default="0", help="'0-7', '0,3,5' or '4' (default %(default)s)")
    ap.add_argument("--embed-seed", type=int, default=None, help="fix the embedding init")
    ap.add_argument("--mlp-seed", type=int, default=None, help="fix the MLP init")
    ap.add_argument("--split-seed", type=int, default=None, help="fix the train/test split")
    ap.add_argument("--freeze-embedding", action="store_true", help="train the MLP only")
    ap.add_argument(
        "--scale-freq",
        action="append",
        default=[],
        metavar="K",
        help="scale the initial signal of frequency K (and p-K); repeat or '3,5'",
    )
    ap.add_argument(
        "--scale-factor", type=float, default=d.scale_factor, help="factor (%(default)s)"
    )
    ap.add_argument(
        "--snapshot-every", type=int, default=d.snapshot_every, help="keep E every N steps"
    )
    ap.add_argument("--chunk", type=int, default=d.chunk, help="steps per compiled chunk")
    ap.add_argument(
        "--checkpoint-every", type=int, default=d.checkpoint_every, help="multiple of --chunk"
    )
    ap.add_argument("--out", default="runs", help="output folder (default %(default)s)")
    ap.add_argument("--overwrite", action="store_true", help="replace a different run in --out")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def _freqs(values: list[str]) -> tuple[int, ...]:
    out = []
    for value in values:
        for item in value.split(","):
            try:
                out.append(int(item))
            except ValueError:
                raise ValueError(f"--scale-freq: {item!r} is not an integer frequency") from None
    return tuple(out)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or argparse's own usage error
        return int(exc.code or 0)
    try:
        config = TrainConfig(
            p=args.p,
            dim=args.dim,
            hidden=args.hidden,
            steps=args.steps,
            lr=args.lr,
            wd=args.wd,
            frac=args.frac,
            dtype=args.dtype,
            matmul_precision=args.matmul_precision,
            embed_seed=args.embed_seed,
            mlp_seed=args.mlp_seed,
            split_seed=args.split_seed,
            freeze_embedding=args.freeze_embedding,
            scale_freqs=_freqs(args.scale_freq),
            scale_factor=args.scale_factor,
            snapshot_every=args.snapshot_every,
            chunk=args.chunk,
            checkpoint_every=args.checkpoint_every,
        ).validate()
        seeds = parse_seeds(args.seeds)
        out = Path(args.out)
        ensure_writable_dir(out)
        resume = _check_existing(out, config, seeds, args.overwrite)
    except ValueError as err:
        print(f"dynafit train: error: {err}", file=sys.stderr)
        return 2
    if resume == "done":
        print(f"{out / OUTPUT}: already complete for this config and seeds")
        _print_summary(_load(out / OUTPUT))
        return 0
    return _run(config, seeds, out, quiet=args.quiet)


def _check_existing(out: Path, config: TrainConfig, seeds: list[int], overwrite: bool) -> str:
    """'new', 'resume' or 'done'; refuses to replace another run without ``overwrite``."""
    from dynafit._io import load_json

    manifest_path = out / MANIFEST
    manifest = None
    if manifest_path.exists():
        try:
            manifest = load_json(manifest_path)
        except ValueError:
            if not overwrite:
                raise
        same = (
            isinstance(manifest, dict)
            and manifest.get("kind") == KIND
            and manifest.get("config") == config.to_dict()
            and manifest.get("seeds") == seeds
        )
        if same:
            if manifest.get("status") == "complete" and (out / OUTPUT).exists():
                return "done"
            return "resume"
    elif not any(out.iterdir()):
        return "new"
    if not overwrite:
        what = "a run with a different config or seeds" if manifest_path.exists() else "files"
        raise ValueError(
            f"--out {out} already holds {what}; choose another folder or pass --overwrite "
            "(which replaces dynafit's own files there)"
        )
    _clear_old_checkpoints(out, manifest)
    return "new"


def _clear_old_checkpoints(out: Path, manifest) -> None:
    """With --overwrite: drop the replaced run's checkpoints (its data file is replaced
    atomically when the new run finishes)."""
    if not (isinstance(manifest, dict) and manifest.get("kind") == KIND):
        return
    try:
        old = TrainConfig.from_dict(manifest["config"])
        seeds = parse_seeds(manifest["seeds"])
    except (KeyError, TypeError, ValueError):
        return
    from .trainer import clear_checkpoints

    clear_checkpoints(out / CHECKPOINTS, old, seeds)


def _run(config: TrainConfig, seeds: list[int], out: Path, *, quiet: bool) -> int:
    if config.dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)  # before any JAX computation here
    import jax

    import dynafit
    from dynafit._io import save_json

    from .trainer import clear_checkpoints, train_result

    manifest = {
        "kind": KIND,
        "version": dynafit.__version__,
        "config": config.to_dict(),
        "seeds": seeds,
        "status": "running",
        "files": [OUTPUT],
        "platform": jax.devices()[0].platform,
    }
    save_json(out / MANIFEST, manifest)
    n_steps = len(seeds) * config.steps
    print(
        f"training {len(seeds)} seed(s) x {config.steps} steps, p={config.p} dim={config.dim} "
        f"{config.dtype} (matmul precision {config.matmul_precision}) on "
        f"{jax.devices()[0].platform} -> {out / OUTPUT}",
        flush=True,
    )
    start = time.perf_counter()
    result = train_result(config, seeds, checkpoint_dir=out / CHECKPOINTS, progress=not quiet)
    seconds = time.perf_counter() - start
    result.save(out / OUTPUT)
    manifest.update(status="complete", seconds=round(seconds, 3))
    save_json(out / MANIFEST, manifest)
    clear_checkpoints(out / CHECKPOINTS, config, seeds)
    _print_summary(result.trajectory)
    print(f"done in {seconds:.1f} s ({n_steps / seconds:.0f} seed-steps/s)")
    return 0


def _load(path: Path):
    import dynafit

    return dynafit.load(path)


def _print_summary(traj) -> None:
    for run in traj.meta["runs"]:
        m = (run["config"]["p"] - 1) // 2
        alive = run["survivors"]
        line = (
            f"seed {run['seed']}: test acc {run['final_test_acc']:.3f} "
            f"(train {run['final_train_acc']:.3f}), {len(alive)}/{m} circles survive: "
            f"{' '.join(alive) if alive else '-'}"
        )
        spike = run["loss_spike"]
        if spike["max_loss_after"] is not None and spike["max_loss_after"] > 0.5:
            line += f"; loss spike {spike['max_loss_after']:.3g} at step {spike['step']}"
        print(line)
