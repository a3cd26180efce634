"""The trainer's configuration and seed parsing.

``TrainConfig`` field names are the trainer's public vocabulary: the command line's
``--flags`` and the sweep spec's TOML keys are these names. Seeds are not part of the
config; they are passed to :func:`training.train` beside it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["TrainConfig", "parse_seeds"]

DTYPES = ("float32", "float64")
#: JAX's ``jax_default_matmul_precision`` values the trainer accepts. "highest" (= "float32")
#: is full float32 matmuls everywhere; "default" lets XLA choose, which on recent NVIDIA
#: GPUs is TF32 (10-bit mantissa) for float32 inputs, = "tensorfloat32". A CPU computes
#: float32 matmuls in full float32 whatever this says.
MATMUL_PRECISIONS = ("highest", "float32", "high", "tensorfloat32", "default", "bfloat16")
#: Fields added after runs were first saved. At their default (the behaviour from before
#: they existed) they stay out of a run's identity, so a run saved or checkpointed before
#: a field existed is still recognised, and resumed, by a command that leaves it at its
#: default.
LATER_FIELDS = ("snapshot_params", "matmul_precision", "record_circles")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training setup (the paper's defaults); seeds come separately.

    p: modulus (odd, >= 3); the circles are k = 1..(p-1)/2.
    dim: embedding width; hidden: width of the MLP's two hidden layers.
    steps: full-batch AdamW updates; lr, wd: AdamW learning rate and weight decay.
    frac: fraction of the p^2 pairs used for training (the rest is the test set).
    dtype: "float32" or "float64" (float64 needs jax_enable_x64 at process start).
    embed_seed, mlp_seed, split_seed: when set, override the run's seed for the
        embedding init, the MLP init, or the train/test split respectively.
    freeze_embedding: train the MLP only; the embedding stays at its init.
    scale_freqs, scale_factor: multiply the initial embedding's Fourier components
        k and p-k (for each k in scale_freqs) by scale_factor before training.
    snapshot_every: keep the full embedding every N steps (0: none). N must divide
        chunk or be a multiple of it.
    snapshot_params: with snapshot_every, keep the whole network (embedding and MLP)
        at the same steps (N must then be a multiple of chunk).
    record_circles: also record, every step, the first layer's read-out of each circle
        R_k = ||W_a F_k|| + ||W_b F_k|| and the loss gradient's spectrum
        G_k = ||FFT_k(dL/dE)||, k = 0..m (``dynafit.circle_quantities``'s quantities),
        as the trajectory's aux series ``readout_S<k>`` and ``gradient_S<k>``.
    matmul_precision: JAX's default matmul precision while training (see
        ``MATMUL_PRECISIONS``); "highest" makes float32 mean float32 on a GPU too.
    chunk: steps per compiled lax.scan chunk (progress and host transfer between chunks).
    checkpoint_every: steps between checkpoints; a multiple of chunk.
    """

    p: int = 59
    dim: int = 128
    hidden: int = 100
    steps: int = 30000
    lr: float = 0.01
    wd: float = 0.5
    frac: float = 0.8
    dtype: str = "float32"
    embed_seed: int | None = None
    mlp_seed: int | None = None
    split_seed: int | None = None
    freeze_embedding: bool = False
    scale_freqs: tuple[int, ...] = ()
    scale_factor: float = 1.0
    snapshot_every: int = 0
    snapshot_params: bool = False
    record_circles: bool = False
    matmul_precision: str = "highest"
    chunk: int = 100
    checkpoint_every: int = 1000

    def __post_init__(self) -> None:
        # Accept lists (from JSON/TOML) for the one tuple field; keep the dataclass hashable.
        if not isinstance(self.scale_freqs, tuple):
            try:
                object.__setattr__(self, "scale_freqs", tuple(self.scale_freqs))
            except TypeError:
                raise ValueError(
                    f"scale_freqs must be a list of frequencies, got {self.scale_freqs!r}"
                ) from None

    # ------------------------------------------------------------ validation
    def validate(self) -> TrainConfig:
        """Raise a ``ValueError`` naming the first bad field; return self when all is well."""
        self._check_task()
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        for name in ("embed_seed", "mlp_seed", "split_seed"):
            value = getattr(self, name)
            if value is not None:
                _int(value, name, lo=0)
        _bool(self.freeze_embedding, "freeze_embedding")
        self._check_scaling()
        if self.matmul_precision not in MATMUL_PRECISIONS:
            raise ValueError(
                f"matmul_precision must be one of {MATMUL_PRECISIONS}, got "
                f"{self.matmul_precision!r}"
            )
        _bool(self.snapshot_params, "snapshot_params")
        _bool(self.record_circles, "record_circles")
        self._check_schedule()
        return self

    def _check_task(self) -> None:
        """The task and the optimiser: p, dim, hidden, steps, lr, wd, frac."""
        _int(self.p, "p", lo=3)
        if self.p % 2 == 0:
            raise ValueError(f"p must be odd (the circles are k = 1..(p-1)/2), got {self.p}")
        _int(self.dim, "dim", lo=1)
        _int(self.hidden, "hidden", lo=1)
        _int(self.steps, "steps", lo=1)
        _float(self.lr, "lr")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        _float(self.wd, "wd")
        if self.wd < 0:
            raise ValueError(f"wd must be >= 0, got {self.wd}")
        _float(self.frac, "frac")
        if not 0.0 < self.frac < 1.0:
            raise ValueError(f"frac (the train fraction) must be in (0, 1), got {self.frac}")
        n_pairs = self.p * self.p
        n_train = int(round(self.frac * n_pairs))
        if n_train < 1 or n_train >= n_pairs:
            raise ValueError(
                f"frac={self.frac} with p={self.p} leaves {n_train} of {n_pairs} pairs for "
                "training; both the train and the test set need at least one pair"
            )

    def _check_scaling(self) -> None:
        """The frequencies scaled at initialisation and the factor."""
        m = (self.p - 1) // 2
        for k in self.scale_freqs:
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= m:
                raise ValueError(
                    f"scale_freqs: frequency {k!r} is outside 1..{m} (= (p-1)/2 for p={self.p})"
                )
        if len(set(self.scale_freqs)) != len(self.scale_freqs):
            raise ValueError(f"scale_freqs lists a frequency twice: {list(self.scale_freqs)}")
        _float(self.scale_factor, "scale_factor")

    def _check_schedule(self) -> None:
        """Snapshots, scan chunks and checkpoints: each interval a multiple of the other."""
        _int(self.snapshot_every, "snapshot_every", lo=0)
        _int(self.chunk, "chunk", lo=1)
        _int(self.checkpoint_every, "checkpoint_every", lo=1)
        if self.checkpoint_every % self.chunk:
            raise ValueError(
                f"checkpoint_every ({self.checkpoint_every}) must be a multiple of chunk "
                f"({self.chunk})"
            )
        n = self.snapshot_every
        if n and self.chunk % n and n % self.chunk:
            raise ValueError(
                f"snapshot_every ({n}) must divide chunk ({self.chunk}) or be a multiple of it"
            )
        if self.snapshot_params and (not n or n % self.chunk):
            raise ValueError(
                f"snapshot_params needs snapshot_every to be a multiple of chunk ({self.chunk}), "
                f"got {n}"
            )

    # --------------------------------------------------------------- derived
    @property
    def n_circles(self) -> int:
        """m = (p-1)/2, the number of circles (frequencies 1..m)."""
        return (self.p - 1) // 2

    def run_seeds(self, seed: int) -> dict[str, int]:
        """The effective embed/mlp/split seeds of a run with ``seed``."""
        return {
            "embed_seed": seed if self.embed_seed is None else self.embed_seed,
            "mlp_seed": seed if self.mlp_seed is None else self.mlp_seed,
            "split_seed": seed if self.split_seed is None else self.split_seed,
        }

    # ------------------------------------------------------------------ dict
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (scale_freqs as a list)."""
        d = dataclasses.asdict(self)
        d["scale_freqs"] = list(self.scale_freqs)
        return d

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run: :meth:`to_dict` less the ``LATER_FIELDS``
        left at their defaults (hashed into checkpoint names, compared on resume)."""
        d = self.to_dict()
        for f in dataclasses.fields(self):
            if f.name in LATER_FIELDS and d[f.name] == f.default:
                del d[f.name]
        return d

    def same_run(self, saved: Any) -> bool:
        """Whether a saved config dict (a manifest's or checkpoint's) describes this run;
        a dict that is not a config at all is simply not the same run."""
        try:
            return type(self).from_dict(saved).identity() == self.identity()
        except (TypeError, ValueError):
            return False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; an unknown key is a ``ValueError`` naming it.

        Missing keys take their defaults. The result is not validated (call ``validate``).
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"a config must be a mapping, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**dict(d))

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (unknown names are a ``ValueError``)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}")
        return dataclasses.replace(self, **changes)


def _int(value: Any, name: str, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")


def _bool(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def _float(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_ONE = re.compile(r"^\s*(\d+)\s*$")


def _seeds_from_text(spec: str) -> list[int]:
    """The seeds of ``"0-7"``, ``"0,3,5"``, ``"4"`` or a comma list of those."""
    if not spec.strip():
        raise ValueError("seeds: empty; give a range '0-7', a list '0,3,5' or one seed '4'")
    seeds: list[int] = []
    for item in spec.split(","):
        if m := _RANGE.match(item):
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise ValueError(f"seeds: range {item.strip()!r} runs backwards")
            seeds.extend(range(lo, hi + 1))
        elif m := _ONE.match(item):
            seeds.append(int(m.group(1)))
        else:
            raise ValueError(
                f"seeds: cannot read {item.strip()!r} in {spec!r}; give a range '0-7', "
                "a list '0,3,5' or one seed '4' (non-negative integers)"
            )
    return seeds


def parse_seeds(spec: str | int | Iterable[int]) -> list[int]:
    """Seeds from ``"0-7"`` (inclusive range), ``"0,3,5"``, ``"4"``, an int, or a list.

    Items of a comma list may themselves be ranges (``"0-3,8"``). Seeds are
    non-negative integers, listed once each; order is kept. Anything else is a
    ``ValueError`` that says what was wrong.
    """
    if isinstance(spec, bool):
        raise ValueError(f"seeds must be integers, got {spec!r}")
    if isinstance(spec, int):
        seeds = [spec]
    elif isinstance(spec, str):
        seeds = _seeds_from_text(spec)
    else:
        try:
            seeds = list(spec)
        except TypeError:
            raise ValueError(f"seeds must be a string, an int or a list, got {spec!r}") from None
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, int):
                raise ValueError(f"seeds must be integers, got {s!r}")
    _check_seeds(seeds)
    return seeds


def _check_seeds(seeds: list[int]) -> None:
    """At least one seed, each in 0..2**31 - 1 and listed once."""
    if not seeds:
        raise ValueError("seeds: no seeds given")
    for s in seeds:
        if s < 0:
            raise ValueError(f"seeds must be non-negative, got {s}")
        if s >= 2**31:
            raise ValueError(f"seed {s} is too large (must be < 2**31)")
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise ValueError(f"seeds: {dup} listed more than once")


def read_toml(path: str | os.PathLike, what: str = "spec") -> dict[str, Any]:
    """The TOML document at ``path`` (a sweep spec or a paper spec, ``what`` says which in
    messages); a missing, unreadable or malformed file is a ``ValueError`` naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read the {what} ({err})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from None
