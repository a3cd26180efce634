"""``python -m training`` (= ``dynafit train``): train seeds, save one batch file.

``--out DIR`` receives ``train.npz`` (the batch Trajectory plus ``extra__*`` arrays),
``manifest.json`` (config, seeds, status, version) and checkpoints under
``DIR/.checkpoints/``. Running the same command again resumes an interrupted run or
reports a finished one; a different config into a non-empty folder is refused unless
``--overwrite``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax

import dynafit
from dynafit.internal import CHECKPOINTS, MANIFEST, add_out_arguments, claim_out_dir, save_json

from .config import DTYPES, MATMUL_PRECISIONS, TrainConfig, parse_seeds
from .trainer import clear_checkpoints, train_result

OUTPUT = "train.npz"
KIND = "dynafit.train/1"


def _parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    ap = argparse.ArgumentParser(
        prog="python -m training",
        description="Train MLPs on (a + b) mod p with a learnable embedding and record "
        "the circle signals S_k(t) of every step (Ding et al. 2024, arXiv 2405.17420).",
    )
    ap.add_argument("--seeds", default="0", help="'0-7', '0,3,5' or '4' (default %(default)s)")
    for field in dataclasses.fields(TrainConfig):
        _add_option(ap, field.name, getattr(d, field.name))
    add_out_arguments(ap, default="runs", help="output folder (default %(default)s)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


#: the command-line help of each TrainConfig field (the options are made from the fields)
_HELP = {
    "p": "odd modulus >= 3 (default %(default)s)",
    "dim": "embedding width (%(default)s)",
    "hidden": "MLP width (%(default)s)",
    "steps": "updates (%(default)s)",
    "lr": "AdamW lr (%(default)s)",
    "wd": "AdamW weight decay (%(default)s)",
    "frac": "train fraction (%(default)s)",
    "dtype": f"one of {DTYPES} (%(default)s)",
    "embed_seed": "fix the embedding init",
    "mlp_seed": "fix the MLP init",
    "split_seed": "fix the train/test split",
    "freeze_embedding": "train the MLP only",
    "scale_freqs": "scale the initial signal of frequency K (and p-K); repeat or '3,5'",
    "scale_factor": "factor (%(default)s)",
    "snapshot_every": "keep E every N steps",
    "snapshot_params": "with --snapshot-every, keep the whole network (embedding and MLP)",
    "record_circles": "also record each circle's read-out by the first layer and gradient "
    "every step (aux readout_S<k>, gradient_S<k>)",
    "matmul_precision": "JAX's default matmul precision; 'default' or 'tensorfloat32' is TF32 "
    "on recent NVIDIA GPUs, 'highest' full float32 (default %(default)s; a CPU is full "
    "float32 always)",
    "chunk": "steps per compiled chunk",
    "checkpoint_every": "multiple of --chunk",
}


def _add_option(ap: argparse.ArgumentParser, name: str, default) -> None:
    """``--name-with-dashes`` for the TrainConfig field ``name``, typed by its default."""
    flag, help = "--" + name.replace("_", "-"), _HELP[name]
    if name == "scale_freqs":  # repeatable, each a K or a list 'K,K'
        ap.add_argument(
            "--scale-freq", dest=name, action="append", default=[], metavar="K", help=help
        )
    elif name == "matmul_precision":
        ap.add_argument(flag, default=default, choices=MATMUL_PRECISIONS, help=help)
    elif isinstance(default, bool):
        ap.add_argument(flag, action="store_true", help=help)
    else:
        ap.add_argument(
            flag, type=int if default is None else type(default), default=default, help=help
        )


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
        options = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
        config = TrainConfig(**{**options, "scale_freqs": _freqs(args.scale_freqs)}).validate()
        seeds = parse_seeds(args.seeds)
        out = Path(args.out)
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
    """'new', 'resume' or 'done' (the one ``--out`` rule of :func:`dynafit.internal.claim_out_dir`)."""

    def differs(previous: dict) -> str | None:
        if config.same_run(previous.get("config")) and previous.get("seeds") == seeds:
            return None
        return "a run with a different config or seeds"

    folder = claim_out_dir(
        out, kind=KIND, what="`dynafit train`", differs=differs, overwrite=overwrite
    )
    folder.check_free([OUTPUT])
    if folder.resume:
        if folder.previous.get("status") == "complete" and (out / OUTPUT).exists():
            return "done"
        return "resume"
    if folder.replacing:
        _clear_old_checkpoints(out, folder.previous)
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
    clear_checkpoints(out / CHECKPOINTS, old, seeds)


def _run(config: TrainConfig, seeds: list[int], out: Path, *, quiet: bool) -> int:
    if config.dtype == "float64":
        jax.config.update("jax_enable_x64", True)  # before any JAX computation here
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
