"""Train a batch of seeds as one compiled program and record circle signals every step.

The loop is ``jit(lax.scan)`` over chunks of steps with the step vmapped over seeds;
the host only sees each chunk's records (and checkpoints), never single steps.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

import dynafit
from dynafit import Trajectory, circles
from dynafit.internal import atomic_write, load_json, load_npz, save_json, save_npz, save_trajectory

from . import _model
from ._model import Record, Split, Static
from .config import TrainConfig, parse_seeds

__all__ = ["TrainResult", "train", "train_result", "clear_checkpoints", "load_extras"]

CHECKPOINT_SCHEMA = "training.checkpoint/1"
EXTRA_PREFIX = "extra__"
_AUX = ("s0", "train_loss", "test_loss", "train_acc", "test_acc")
_MLP_LAYERS = ("w1", "b1", "w2", "b2", "w3", "b3")
#: per-circle series kept with record_circles, each (R, T, m+1) for k = 0..m
_CIRCLES = ("readout", "gradient")


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """A trained batch: the trajectory plus plain-array extras.

    extras:
      ``init_grad_signal`` (R, m+1): spectrum || FFT_k(dL/dE) ||, k = 0..m, at init;
      ``final_grad_signal`` (R, m+1): the same after the last step.
      ``final_embedding`` (R, p, dim): E after the last step.
      ``snapshot_steps`` (n,) and ``embeddings`` (R, n, p, dim): only with snapshot_every.
      ``params__w1`` ... ``params__b3`` (R, n, ...): the MLP at the same steps, only with
      snapshot_params (the layers as :class:`training._model.Net` stores them).
    """

    trajectory: Trajectory
    extras: dict[str, np.ndarray]

    def save(self, path: str | os.PathLike) -> Path:
        """One ``.npz``: the trajectory schema plus ``extra__*`` arrays (atomic)."""
        extra = {EXTRA_PREFIX + k: v for k, v in self.extras.items()}
        return save_trajectory(self.trajectory, path, extra)


def load_extras(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The ``extra__*`` arrays of a file written by :meth:`TrainResult.save`."""
    arrays = load_npz(path)
    return {k[len(EXTRA_PREFIX) :]: v for k, v in arrays.items() if k.startswith(EXTRA_PREFIX)}


def train(
    config: TrainConfig,
    seeds: str | int | Iterable[int],
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    fault_hook: Callable[[int], None] | None = None,
) -> Trajectory:
    """Train ``len(seeds)`` networks together (vmapped) and return their batch Trajectory.

    t = 0..steps (row t is the state after t updates); x = S_1..S_m (R, T, m); aux holds
    s0, train/test loss and accuracy (R, T); meta["runs"] one dict per seed. With
    ``checkpoint_dir``, checkpoints are written there every ``config.checkpoint_every``
    steps and a matching checkpoint is resumed; ``fault_hook(step)`` (for tests) is
    called after each checkpoint is written. See :func:`train_result` for the extras.
    """
    return train_result(
        config, seeds, checkpoint_dir=checkpoint_dir, progress=progress, fault_hook=fault_hook
    ).trajectory


def train_result(
    config: TrainConfig,
    seeds: str | int | Iterable[int],
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    fault_hook: Callable[[int], None] | None = None,
    init_embeddings: np.ndarray | None = None,
) -> TrainResult:
    """:func:`train`, also returning the extras (final embedding, snapshots, init gradient).

    ``init_embeddings`` (R, p, dim), one per seed, replaces the drawn initial embeddings
    (rounded to float32 like every initial draw; ``scale_freqs`` still applies on top);
    the MLP and the split still come from each run's seeds. The paper's constructed and
    ablated initialisations use it. Training runs under JAX's default matmul precision
    ``config.matmul_precision``.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    config.validate()
    seeds = parse_seeds(seeds)
    if init_embeddings is not None:
        init_embeddings = np.asarray(init_embeddings)
        want = (len(seeds), config.p, config.dim)
        if init_embeddings.shape != want:
            raise ValueError(
                f"init_embeddings must have shape (seeds, p, dim) = {want}, got "
                f"{init_embeddings.shape}"
            )
        if not np.isfinite(init_embeddings).all():
            raise ValueError("init_embeddings holds NaN or inf")
        init_embeddings = init_embeddings.astype(np.float32)
    with jax.default_matmul_precision(config.matmul_precision):
        return _train_result(config, seeds, checkpoint_dir, progress, fault_hook, init_embeddings)


def _check_x64(config: TrainConfig) -> None:
    if config.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype float64 needs 64-bit JAX, chosen at process start: set JAX_ENABLE_X64=1 "
            "(or run `python -m training --dtype float64`, which does)"
        )


def _new_history(config, n_seeds: int, dtype, net) -> _History:
    """The per-step record of a run: circles always; each circle's read-out and gradient
    spectrum with ``record_circles``; the whole network's snapshots with ``snapshot_params``."""
    hist = _History(
        n_seeds, config.steps, config.n_circles, dtype, config.snapshot_every, config.p, config.dim
    )
    if config.record_circles:
        hist.add_circles()
    if config.snapshot_params:
        hist.add_params(net)
    return hist


def _train_result(config, seeds, checkpoint_dir, progress, fault_hook, init_embeddings):
    _check_x64(config)
    dtype = jnp.dtype(config.dtype)
    static = Static(
        p=config.p,
        lr=float(config.lr),
        wd=float(config.wd),
        n_train=_model.n_train(config.p, config.frac),
        freeze_embedding=config.freeze_embedding,
        record_circles=config.record_circles,
    )
    labels = _model.labels(config.p)
    state, split = _init(config, seeds, static, dtype, init_embeddings)
    _, init_grad = _probe(state[0], split, labels, static)

    steps = config.steps
    hist = _new_history(config, len(seeds), dtype, state[0])
    ckpt, start, state = _resume(checkpoint_dir, config, seeds, init_embeddings, state, hist)

    every = config.snapshot_every
    # snapshots in-scan, except with snapshot_params (the whole net, between chunks)
    in_scan = every and config.chunk % every == 0 and not config.snapshot_params
    block = every if in_scan else None
    bar = _progress(progress, steps, start, len(seeds))

    def pull(pending) -> None:  # chunk results to host; the bar counts finished steps
        t0, length, out = pending
        hist.put(t0, out, block)
        bar.update(length)

    pending = None
    t = start
    try:
        while t < steps:
            length = min(config.chunk, steps - t)
            if every and block is None and t % every == 0:
                hist.put_snapshot(t, np.asarray(state[0].embedding), state[0])
            state, out = _run_chunk(state, split, labels, static, length, block)
            if pending is not None:  # pull the previous chunk while this one runs
                pull(pending)
            pending = (t, length, out)
            t += length
            if ckpt is not None and (t % config.checkpoint_every == 0 or t == steps):
                pull(pending)
                pending = None
                ckpt.save(t, state, hist)
                if fault_hook is not None:
                    fault_hook(t)
        if pending is not None:
            pull(pending)
    finally:
        bar.close()

    final, final_grad = _probe(state[0], split, labels, static)
    hist.put_record(steps, jax.tree_util.tree_map(np.asarray, final))
    final_embedding = np.asarray(state[0].embedding)
    if every and steps % every == 0:
        hist.put_snapshot(steps, final_embedding, state[0])

    extras = {
        "init_grad_signal": np.asarray(init_grad),
        "final_grad_signal": np.asarray(final_grad),
        "final_embedding": final_embedding,
        **_history_extras(hist, every),
    }
    return TrainResult(_trajectory(config, seeds, hist), extras)


def _resume(checkpoint_dir, config, seeds, init_embeddings, state, hist):
    """The checkpointer (None without a checkpoint folder), the step to start from and
    the state there: a checkpoint's, its history loaded into ``hist``, or ``state`` at 0."""
    if checkpoint_dir is None:
        return None, 0, state
    ckpt = _Checkpointer(checkpoint_dir, config, seeds, init_embeddings)
    resumed = ckpt.load(state)
    if resumed is None:
        return ckpt, 0, state
    start, state = resumed
    ckpt.load_history(hist, start)
    return ckpt, start, state


def _history_extras(hist, every) -> dict[str, np.ndarray]:
    """The snapshots (with ``snapshot_every``) and parameter snapshots of ``hist``."""
    extras = {}
    if every:
        extras["snapshot_steps"] = hist.snapshot_steps
        extras["embeddings"] = hist.embeddings
    for name, arr in hist.params.items():
        extras[f"params__{name}"] = arr
    return extras


# ------------------------------------------------------------------ compiled parts
def _init(config: TrainConfig, seeds: list[int], static: Static, dtype, init_embeddings=None):
    """Stacked initial (net, optimizer state) and splits for all runs (leading axis R)."""
    projector = _model.intervention_projector(config.p, config.scale_freqs, config.scale_factor)
    params, masks = [], []
    for r, seed in enumerate(seeds):  # host-side draws, once per run (never inside the loop)
        s = config.run_seeds(seed)
        params.append(
            _model.init_params(
                s["embed_seed"],
                s["mlp_seed"],
                p=config.p,
                dim=config.dim,
                hidden=config.hidden,
                projector=projector,
            )
        )
        if init_embeddings is not None:
            e = init_embeddings[r]
            if projector is not None:
                e = (projector @ e.astype(np.float64)).astype(np.float32)
            params[-1]["embedding"] = e
        masks.append(_model.init_mask(s["split_seed"], p=config.p, n_train=static.n_train))
    nets = _model.Net(
        **{k: jnp.asarray(np.stack([q[k] for q in params]), dtype) for k in params[0]}
    )
    split = Split(jnp.asarray(np.stack(masks), dtype))
    return (nets, _opt_init(nets, static)), split


@functools.partial(jax.jit, static_argnames=("static",))
def _opt_init(nets, static):
    return jax.vmap(_model.optimizer(static).init)(nets)


@functools.partial(jax.jit, static_argnames=("static",))
def _probe(nets, splits, labels, static) -> tuple[Record, jax.Array]:
    fn = functools.partial(_model.probe, labels=labels, static=static)
    return jax.vmap(fn)(nets, splits)


@functools.partial(
    jax.jit, static_argnames=("static", "n_blocks", "block_len", "emit"), donate_argnames="state"
)
def _scan_blocks(state, splits: Split, labels, *, static, n_blocks, block_len, emit):
    """``n_blocks`` x ``block_len`` vmapped steps; with ``emit``, E at each block's start."""
    vstep = jax.vmap(functools.partial(_model.step, labels=labels, static=static))

    def one(carry, _):
        return vstep(carry, splits)

    def blk(carry, _):
        snap = carry[0].embedding if emit else None
        carry, records = jax.lax.scan(one, carry, None, length=block_len)
        return carry, (records, snap)

    state, (records, snaps) = jax.lax.scan(blk, state, None, length=n_blocks)
    records = jax.tree_util.tree_map(lambda r: r.reshape((-1,) + r.shape[2:]), records)
    return state, (records, snaps)


def _run_chunk(state, splits, labels, static, length: int, block: int | None):
    """Run ``length`` steps; returns device arrays (records over steps, E snapshots)."""
    if block is None:
        return _scan_blocks(
            state, splits, labels, static=static, n_blocks=1, block_len=length, emit=False
        )
    n, tail = divmod(length, block)
    parts = []
    if n:
        state, out = _scan_blocks(
            state, splits, labels, static=static, n_blocks=n, block_len=block, emit=True
        )
        parts.append(out)
    if tail:
        state, out = _scan_blocks(
            state, splits, labels, static=static, n_blocks=1, block_len=tail, emit=True
        )
        parts.append(out)
    return state, parts if len(parts) > 1 else parts[0]


# ---------------------------------------------------------------------- history
class _History:
    """Host arrays for every row t = 0..steps, filled chunk by chunk."""

    def __init__(self, R, steps, m, dtype, snapshot_every, p, dim):
        T = steps + 1
        self.signals = np.zeros((R, T, m + 1), dtype)
        self.series = {k: np.zeros((R, T), dtype) for k in _AUX[1:]}
        self.every = snapshot_every
        n_snap = steps // snapshot_every + 1 if snapshot_every else 0
        self.snapshot_steps = np.arange(n_snap, dtype=np.int64) * max(snapshot_every, 1)
        self.embeddings = np.zeros((R, n_snap, p, dim), dtype) if snapshot_every else None
        self.params: dict[str, np.ndarray] = {}
        self.circles: dict[str, np.ndarray] = {}  # readout, gradient (R, T, m+1)

    def add_circles(self) -> None:
        """Also keep each circle's read-out and gradient every step (``record_circles``)."""
        self.circles = {k: np.zeros_like(self.signals) for k in _CIRCLES}

    def add_params(self, nets) -> None:
        """Also keep the MLP's layers at every snapshot (``snapshot_params``)."""
        n_snap = self.snapshot_steps.shape[0]
        for name in _MLP_LAYERS:
            leaf = np.asarray(getattr(nets, name))
            self.params[name] = np.zeros((leaf.shape[0], n_snap) + leaf.shape[1:], leaf.dtype)

    def put_record(self, t0: int, record: Record) -> None:
        """Records of shape (n, R, ...) (or (R, ...) for one row) starting at row t0."""
        sig = np.asarray(record.signals)
        if sig.ndim == 2:
            record = jax.tree_util.tree_map(lambda r: np.asarray(r)[None], record)
            sig = record.signals
        n = sig.shape[0]
        self.signals[:, t0 : t0 + n] = np.swapaxes(sig, 0, 1)
        for key in _AUX[1:]:
            self.series[key][:, t0 : t0 + n] = np.asarray(getattr(record, key)).T
        for key, arr in self.circles.items():
            arr[:, t0 : t0 + n] = np.swapaxes(np.asarray(getattr(record, key)), 0, 1)

    def put_snapshot(self, t: int, embedding: np.ndarray, nets=None) -> None:
        if t % self.every == 0:
            self.embeddings[:, t // self.every] = embedding
            if self.params and nets is not None:
                for name, arr in self.params.items():
                    arr[:, t // self.every] = np.asarray(getattr(nets, name))

    def put(self, t0: int, out, block: int | None) -> None:
        parts = out if isinstance(out, list) else [out]
        for records, snaps in parts:
            records = jax.tree_util.tree_map(np.asarray, records)
            n = records.signals.shape[0]
            if snaps is not None:
                snaps = np.asarray(snaps)  # (n_blocks, R, p, dim), at block starts
                for i in range(snaps.shape[0]):
                    self.put_snapshot(t0 + i * block, snaps[i])
            self.put_record(t0, records)
            t0 += n

    def rows(self, a: int, b: int) -> dict[str, np.ndarray]:
        out = {"signals": self.signals[:, a:b]}
        out.update({k: v[:, a:b] for k, v in self.series.items()})
        out.update({k: v[:, a:b] for k, v in self.circles.items()})
        if self.every:
            idx = (self.snapshot_steps >= a) & (self.snapshot_steps < b)
            out["snapshot_steps"] = self.snapshot_steps[idx]
            out["embeddings"] = self.embeddings[:, idx]
            out.update({f"params__{k}": v[:, idx] for k, v in self.params.items()})
        return out

    def set_rows(self, a: int, arrays: dict[str, np.ndarray]) -> None:
        n = arrays["signals"].shape[1]
        self.signals[:, a : a + n] = arrays["signals"]
        for k in self.series:
            self.series[k][:, a : a + n] = arrays[k]
        for k, v in self.circles.items():
            v[:, a : a + n] = arrays[k]
        if self.every:
            for i, t in enumerate(arrays["snapshot_steps"]):
                self.embeddings[:, int(t) // self.every] = arrays["embeddings"][:, i]
                for k, v in self.params.items():
                    v[:, int(t) // self.every] = arrays[f"params__{k}"][:, i]


# ------------------------------------------------------------------ checkpoints
def _key(config: TrainConfig, seeds: list[int], init_embeddings=None) -> str:
    """The run's name: a hash of its identity (:meth:`TrainConfig.identity`) and seeds."""
    return run_keys(config, seeds, init_embeddings)[0]


def run_keys(config: TrainConfig, seeds: list[int], init_embeddings=None) -> list[str]:
    """The run's name, then the names an earlier version gave it, if different: runs
    saved while the later fields were hashed even at their defaults are still found."""
    keys = [
        _hash(config.identity(), seeds, init_embeddings),
        _hash(config.to_dict(), seeds, init_embeddings),
    ]
    return list(dict.fromkeys(keys))


def _hash(config: dict, seeds: list[int], init_embeddings) -> str:
    what = {"config": config, "seeds": seeds}
    if init_embeddings is not None:  # a given initial embedding is part of the run
        what["init_embeddings"] = hashlib.sha256(
            np.ascontiguousarray(init_embeddings, np.float32).tobytes()
        ).hexdigest()
    text = json.dumps(what, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Checkpointer:
    """Files ``train-<key>.json`` (written last, the commit point), ``.eqx`` state and
    ``.npz`` history segments in ``directory``; ``key`` hashes config and seeds, so
    several blocks can share one folder."""

    def __init__(self, directory, config: TrainConfig, seeds: list[int], init_embeddings=None):
        self.dir = Path(directory)
        self.config = config
        self.seeds = seeds
        keys = run_keys(config, seeds, init_embeddings)
        # resume under an earlier name where only that one has a checkpoint
        self.key = next((k for k in keys if (self.dir / f"train-{k}.json").exists()), keys[0])
        self.meta_path = self.dir / f"train-{self.key}.json"

    def _read_meta(self) -> dict | None:
        if not self.meta_path.exists():
            return None
        meta = load_json(self.meta_path)
        if not isinstance(meta, dict) or meta.get("schema") != CHECKPOINT_SCHEMA:
            raise ValueError(f"{self.meta_path}: not a training checkpoint; delete it to restart")
        if not self.config.same_run(meta.get("config")) or meta.get("seeds") != self.seeds:
            raise ValueError(f"{self.meta_path}: checkpoint is for another config or seeds")
        return meta

    def load(self, like_state):
        meta = self._read_meta()
        if meta is None:
            return None
        path = self.dir / meta["state"]
        try:
            state = eqx.tree_deserialise_leaves(path, like_state)
        except Exception as err:  # noqa: BLE001 - any failure means an unusable file
            raise ValueError(f"{path}: unreadable checkpoint state ({err}); delete it") from None
        return int(meta["step"]), state

    def load_history(self, hist: _History, step: int) -> None:
        meta = self._read_meta()
        for name, a in zip(meta["segments"], meta["segment_starts"]):
            arrays = load_npz(self.dir / name)
            hist.set_rows(a, arrays)

    def save(self, step: int, state, hist: _History) -> None:
        meta = self._read_meta() or {
            "schema": CHECKPOINT_SCHEMA,
            "config": self.config.to_dict(),
            "seeds": self.seeds,
            "segments": [],
            "segment_starts": [],
            "step": 0,
            "state": None,
        }
        last = int(meta["step"])
        seg = f"train-{self.key}.hist-{last:09d}-{step:09d}.npz"
        save_npz(self.dir / seg, **hist.rows(last, step))
        state_name = f"train-{self.key}.state-{step:09d}.eqx"
        atomic_write(self.dir / state_name, lambda tmp: eqx.tree_serialise_leaves(tmp, state))
        old_state = meta["state"]
        meta.update(
            step=step,
            state=state_name,
            segments=meta["segments"] + [seg],
            segment_starts=meta["segment_starts"] + [last],
            platform=_platform(),
            version=dynafit.__version__,
        )
        save_json(self.meta_path, meta)
        if old_state and old_state != state_name:
            (self.dir / old_state).unlink(missing_ok=True)


def clear_checkpoints(
    checkpoint_dir: str | os.PathLike,
    config: TrainConfig,
    seeds: str | int | Iterable[int],
    init_embeddings: np.ndarray | None = None,
) -> None:
    """Delete the checkpoint files of (config, seeds[, init_embeddings]) in ``checkpoint_dir``."""
    directory = Path(checkpoint_dir)
    if directory.is_dir():
        for key in run_keys(config, parse_seeds(seeds), init_embeddings):
            for path in directory.glob(f"train-{key}.*"):
                path.unlink(missing_ok=True)


# ----------------------------------------------------------------------- output
def _platform() -> dict[str, str]:
    dev = jax.devices()[0]
    return {"platform": dev.platform, "device": getattr(dev, "device_kind", str(dev))}


def _loss_spike(train_loss: np.ndarray, train_acc: np.ndarray) -> dict[str, Any]:
    """Largest train loss after the run first reaches 100 % train accuracy, and where."""
    full = np.flatnonzero(train_acc >= 1.0)
    if full.size == 0:
        return {"first_full_train_acc_step": None, "max_loss_after": None, "step": None}
    first = int(full[0])
    after = train_loss[first:]
    i = int(np.argmax(after))
    return {
        "first_full_train_acc_step": first,
        "max_loss_after": float(after[i]),
        "step": first + i,
    }


def _check_finite(seeds: list[int], hist: _History) -> None:
    """A run whose signals or losses went NaN/inf is an error that says which and when."""
    bad = ~np.isfinite(hist.signals).all(axis=-1)
    for series in hist.series.values():
        bad |= ~np.isfinite(series)
    if bad.any():
        runs = np.flatnonzero(bad.any(axis=1))
        where = ", ".join(f"seed {seeds[r]} at step {int(np.argmax(bad[r]))}" for r in runs)
        raise ValueError(f"training diverged (NaN or inf): {where}; lower lr, or use dtype float64")


def _trajectory(config: TrainConfig, seeds: list[int], hist: _History) -> Trajectory:
    _check_finite(seeds, hist)
    m = config.n_circles
    names = [f"S{k}" for k in range(1, m + 1)]
    x = hist.signals[..., 1:]
    s0 = hist.signals[..., 0]
    final = x[:, -1]
    thresh = circles.survival_threshold(final, s0[:, -1])
    is_alive = circles.alive(final, s0[:, -1])
    plat = _platform()
    runs = []
    for r, seed in enumerate(seeds):
        alive = [names[k] for k in np.flatnonzero(is_alive[r])]
        runs.append(
            {
                "config": config.to_dict(),
                "seed": seed,
                **config.run_seeds(seed),
                "final_train_acc": float(hist.series["train_acc"][r, -1]),
                "final_test_acc": float(hist.series["test_acc"][r, -1]),
                "final_train_loss": float(hist.series["train_loss"][r, -1]),
                "final_test_loss": float(hist.series["test_loss"][r, -1]),
                "survivors": alive,
                "n_survivors": len(alive),
                "survival_threshold": float(thresh[r]),
                "loss_spike": _loss_spike(
                    hist.series["train_loss"][r], hist.series["train_acc"][r]
                ),
                **plat,
                "matmul_precision": config.matmul_precision,
                "jax_version": jax.__version__,
            }
        )
    aux = {"s0": s0, **hist.series}
    for key, arr in hist.circles.items():  # readout_S0..readout_Sm, gradient_S0..
        aux.update({f"{key}_S{k}": arr[..., k] for k in range(m + 1)})
    t = np.arange(config.steps + 1, dtype=np.float64)
    return Trajectory(t, x, names, {"runs": runs}, aux)


def _progress(enabled: bool, total: int, initial: int, n_seeds: int):
    return tqdm(
        total=total,
        initial=initial,
        disable=not enabled,
        desc=f"train {n_seeds} seed{'s' if n_seeds != 1 else ''}",
        unit="step",
        dynamic_ncols=True,
    )
