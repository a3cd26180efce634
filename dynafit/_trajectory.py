"""Trajectories: the data every part of dynafit reads and writes.

A :class:`Trajectory` holds one run, ``x`` of shape ``(T, m)``, or a batch of ``R`` runs
sharing the same times, ``x`` of shape ``(R, T, m)``. On disk it is an ``.npz`` of plain
arrays (schema ``"dynafit.trajectory/1"``)::

    schema  str                  "dynafit.trajectory/1"
    t       float (T,)           times (for the trainer: step numbers 0..steps)
    x       float (T, m)|(R,T,m) states (for the trainer: circle signals S_1..S_m)
    names   unicode (m,)         variable names
    meta    str                  JSON object; for a batch, per-run dicts under "runs"
    aux__*  float (T,)|(R, T)    optional per-time series (the trainer's s0, losses, ...)

``s0`` (the trainer's S_0 over time) is stored as ``aux__s0`` and read back as
``traj.aux["s0"]``; the plain key ``s0`` is accepted on load as well.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Float

from ._io import load_npz, save_npz, to_jsonable

SCHEMA = "dynafit.trajectory/1"
_AUX_PREFIX = "aux__"


class Trajectory:
    """Times ``t`` of shape ``(T,)`` and states ``x`` of shape ``(T, m)`` or ``(R, T, m)``.

    Validated on construction: a ``ValueError`` names what is wrong (NaN or inf, times
    not strictly increasing, shapes that disagree, fewer than two points, bad names).
    """

    __slots__ = ("t", "x", "names", "meta", "aux")

    def __init__(
        self,
        t: Any,
        x: Any,
        names: Sequence[str] | None = None,
        meta: Mapping[str, Any] | None = None,
        aux: Mapping[str, Any] | None = None,
    ):
        t, x = _checked_arrays(np.asarray(t), np.asarray(x))
        names = _checked_names(names, x.shape[-1])
        meta = _checked_meta(meta, x)
        aux_checked: dict[str, np.ndarray] = {}
        for key, value in (aux or {}).items():
            value = np.asarray(value)
            if value.shape != x.shape[:-1]:
                raise ValueError(
                    f"aux series {key!r} has shape {value.shape}, expected {x.shape[:-1]}"
                )
            aux_checked[str(key)] = value
        self.t = t
        self.x = x
        self.names = names
        self.meta = meta
        self.aux = aux_checked

    # ------------------------------------------------------------------ shape
    @property
    def is_batch(self) -> bool:
        """True for a batch of runs, ``x`` of shape ``(R, T, m)``."""
        return self.x.ndim == 3

    @property
    def n_runs(self) -> int:
        """Number of runs (1 for a single run)."""
        return self.x.shape[0] if self.is_batch else 1

    @property
    def n_vars(self) -> int:
        return self.x.shape[-1]

    @property
    def n_times(self) -> int:
        return self.t.shape[0]

    def __len__(self) -> int:
        return self.n_times

    def __repr__(self) -> str:
        runs = f"{self.n_runs} runs, " if self.is_batch else ""
        names = ", ".join(self.names[:4]) + (", ..." if self.n_vars > 4 else "")
        return (
            f"Trajectory({runs}{self.n_times} times in [{self.t[0]:g}, {self.t[-1]:g}], "
            f"{self.n_vars} variables: {names})"
        )

    def _replace(self, **changes: Any) -> Trajectory:
        fields = dict(t=self.t, x=self.x, names=self.names, meta=self.meta, aux=self.aux)
        fields.update(changes)
        return Trajectory(**fields)

    # -------------------------------------------------------------- selection
    def window(self, t0: float | None = None, t1: float | None = None) -> Trajectory:
        """The part with ``t0 <= t <= t1`` (both ends included, label slicing)."""
        lo = -np.inf if t0 is None else t0
        hi = np.inf if t1 is None else t1
        if lo > hi:
            raise ValueError(f"window start {t0} is after its end {t1}")
        keep = (self.t >= lo) & (self.t <= hi)
        if keep.sum() < 2:
            raise ValueError(
                f"window [{t0}, {t1}] holds {int(keep.sum())} time points; need at least 2 "
                f"(data spans [{self.t[0]:g}, {self.t[-1]:g}])"
            )
        return self._replace(
            t=self.t[keep],
            x=self.x[..., keep, :],
            aux={k: v[..., keep] for k, v in self.aux.items()},
        )

    def select(self, names: Sequence[str] | str) -> Trajectory:
        """A trajectory with only the named variables, in the given order."""
        if isinstance(names, str):
            names = [names]
        missing = [n for n in names if n not in self.names]
        if missing:
            raise ValueError(f"unknown variables {missing}; this trajectory has {self.names}")
        idx = [self.names.index(n) for n in names]
        return self._replace(x=self.x[..., idx], names=tuple(names))

    def run(self, i: int) -> Trajectory:
        """Run ``i`` of a batch as a single-run trajectory (its own meta)."""
        if not self.is_batch:
            if i not in (0, -1):
                raise ValueError(f"run index {i} out of range for a single run")
            return self
        if not -self.n_runs <= i < self.n_runs:
            raise ValueError(f"run index {i} out of range for {self.n_runs} runs")
        runs = self.meta.get("runs")
        meta = dict(runs[i]) if runs is not None else {}
        return Trajectory(
            self.t, self.x[i], self.names, meta, {k: v[i] for k, v in self.aux.items()}
        )

    def runs(self) -> Iterator[Trajectory]:
        """Iterate over the runs (a single run yields itself)."""
        for i in range(self.n_runs):
            yield self.run(i)

    @classmethod
    def stack(cls, trajectories: Sequence[Trajectory]) -> Trajectory:
        """One batch from runs (single or batches) that share ``t`` and ``names``."""
        trajectories = list(trajectories)
        if not trajectories:
            raise ValueError("nothing to stack")
        first = trajectories[0]
        xs, metas, auxs = [], [], []
        for tr in trajectories:
            if tr.names != first.names:
                raise ValueError(
                    f"cannot stack runs with different variables: {first.names} vs {tr.names}"
                )
            if tr.t.shape != first.t.shape or not np.array_equal(tr.t, first.t):
                raise ValueError("cannot stack runs with different times t")
            if set(tr.aux) != set(first.aux):
                raise ValueError("cannot stack runs with different aux series")
            for run in tr.runs():
                xs.append(run.x)
                metas.append(run.meta)
                auxs.append(run.aux)
        aux = {k: np.stack([a[k] for a in auxs]) for k in first.aux}
        return cls(first.t, np.stack(xs), first.names, {"runs": metas}, aux)

    # --------------------------------------------------------------------- io
    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` (``.npz``) atomically; returns the path."""
        return self._save(path, {})

    def _save(self, path: str | os.PathLike, extra: dict[str, Any]) -> Path:
        """:meth:`save` with more plain arrays beside (the trainer's ``extra__*``)."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"{path}: a trajectory file must end in .npz")
        arrays = {
            "schema": np.array(SCHEMA),
            "t": self.t,
            "x": self.x,
            "names": np.array(self.names, dtype=np.str_),
            "meta": np.array(json.dumps(self.meta)),
        }
        for key, value in self.aux.items():
            arrays[_AUX_PREFIX + key] = value
        return save_npz(path, **arrays, **extra)

    @classmethod
    def from_dataframe(
        cls,
        df: Any,
        time: str = "t",
        names: Sequence[str] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Trajectory:
        """From a pandas DataFrame with a time column (for example a CSV read by pandas)."""
        if time not in df.columns:
            raise ValueError(f"no time column {time!r}; columns are {list(df.columns)}")
        cols = [c for c in df.columns if c != time] if names is None else list(names)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"columns {missing} not in the DataFrame")
        return cls(df[time].to_numpy(), df[cols].to_numpy(dtype=float), cols, meta)

    def to_dataframe(self) -> Any:
        """A long-free pandas DataFrame (single run: one column per variable plus ``t``)."""
        if self.is_batch:
            frames = []
            for i, run in enumerate(self.runs()):
                df = run.to_dataframe()
                df.insert(0, "run", i)
                frames.append(df)
            return pd.concat(frames, ignore_index=True)
        df = pd.DataFrame(self.x, columns=list(self.names))
        df.insert(0, "t", self.t)
        return df


def _from_arrays(arrays: Mapping[str, np.ndarray], source: str) -> Trajectory:
    schema = arrays.get("schema")
    if schema is None or str(schema) != SCHEMA:
        raise ValueError(
            f"{source}: not a dynafit trajectory (schema {None if schema is None else str(schema)!r},"
            f" expected {SCHEMA!r})"
        )
    for key in ("t", "x", "names", "meta"):
        if key not in arrays:
            raise ValueError(f"{source}: dynafit trajectory file lacks the array {key!r}")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as err:
        raise ValueError(f"{source}: meta is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: meta must be a JSON object")
    aux = {k[len(_AUX_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_AUX_PREFIX)}
    if "s0" in arrays and "s0" not in aux:
        aux["s0"] = arrays["s0"]
    try:
        return Trajectory(arrays["t"], arrays["x"], [str(n) for n in arrays["names"]], meta, aux)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


def load_runs(path: str | os.PathLike) -> list[Trajectory]:
    """Every trajectory in a file or a folder (its ``*.npz`` in name order)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.npz") if not p.name.startswith("."))
        if not files:
            raise ValueError(f"{path}: folder holds no .npz trajectory files")
        return [_from_arrays(load_npz(f), str(f)) for f in files]
    return [_from_arrays(load_npz(path), str(path))]


def load(path: str | os.PathLike) -> Trajectory:
    """Load a trajectory from an ``.npz`` file, or all runs of a folder as one batch."""
    trajs = load_runs(path)
    if len(trajs) == 1:
        return trajs[0]
    try:
        return Trajectory.stack(trajs)
    except ValueError as err:
        raise ValueError(
            f"{path}: its files cannot form one batch ({err}); load them one by one"
        ) from None


def circle_signals(
    embeddings: Float[Array, "... p dim"],
) -> Float[Array, "... circles"]:
    """Circle signals S_k = || sum_a E[a] exp(-2 pi i k a / p) ||_2 for k = 0..(p-1)/2.

    ``embeddings`` has shape ``(..., p, dim)`` (for example ``(steps, p, dim)`` snapshots
    from any trainer); returns ``(..., (p - 1) / 2 + 1)``: column 0 is S_0, column k is
    S_k (S_{p-k} is equal to it for a real embedding). numpy in, numpy out; JAX in, JAX out.
    """
    xp = jnp if isinstance(embeddings, jax.Array) else np
    embeddings = xp.asarray(embeddings)
    if embeddings.ndim < 2:
        raise ValueError(f"embeddings must have shape (..., p, dim), got {embeddings.shape}")
    p = embeddings.shape[-2]
    if p < 3 or p % 2 == 0:
        raise ValueError(f"p (the second-to-last axis) must be odd and >= 3, got {p}")
    spectrum = xp.fft.fft(embeddings, axis=-2)[..., : (p - 1) // 2 + 1, :]
    return xp.sqrt(xp.sum(xp.real(spectrum) ** 2 + xp.imag(spectrum) ** 2, axis=-1))


def _checked_arrays(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``t`` (T,) and ``x`` (T, m) or (R, T, m) checked (shapes, finite, t increasing),
    as floats."""
    if t.ndim != 1:
        raise ValueError(f"t must be one-dimensional (T,), got shape {t.shape}")
    if not np.issubdtype(t.dtype, np.number) or not np.issubdtype(x.dtype, np.number):
        raise ValueError("t and x must be numeric arrays")
    if x.ndim not in (2, 3):
        raise ValueError(
            f"x must have shape (T, m) for one run or (R, T, m) for a batch, got {x.shape}"
        )
    if x.shape[-2] != t.shape[0]:
        raise ValueError(
            f"t and x disagree: t has {t.shape[0]} points but x has {x.shape[-2]} "
            f"along its time axis (x shape {x.shape})"
        )
    if t.shape[0] < 2:
        raise ValueError(f"a trajectory needs at least 2 time points, got {t.shape[0]}")
    if x.shape[-1] < 1:
        raise ValueError("x has no variables (its last axis is empty)")
    _check_values(t, x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not np.issubdtype(t.dtype, np.floating):
        t = t.astype(np.float64)
    return t, x


def _check_values(t: np.ndarray, x: np.ndarray) -> None:
    """Finite ``t`` and ``x``, ``t`` strictly increasing."""
    if not np.all(np.isfinite(t)):
        raise ValueError("t contains NaN or inf")
    if np.any(np.diff(t) <= 0):
        bad = int(np.argmax(np.diff(t) <= 0))
        raise ValueError(
            f"t must be strictly increasing; t[{bad}]={t[bad]} >= t[{bad + 1}]={t[bad + 1]}"
        )
    if not np.all(np.isfinite(x)):
        idx = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"x contains NaN or inf (first at index {tuple(int(i) for i in idx)}); "
            "clean or window the data before fitting"
        )


def _checked_names(names: Sequence[str] | None, m: int) -> tuple[str, ...]:
    """``m`` unique identifiers (default x0, x1, ...)."""
    if names is None:
        return tuple(f"x{i}" for i in range(m))
    names = tuple(str(n) for n in names)
    if len(names) != m:
        raise ValueError(f"got {len(names)} names for {m} variables")
    if len(set(names)) != m:
        raise ValueError(f"variable names must be unique, got {names}")
    for n in names:
        if not n.isidentifier():
            raise ValueError(f"variable name {n!r} is not a valid identifier")
    return names


def _checked_meta(meta: Mapping[str, Any] | None, x: np.ndarray) -> dict[str, Any]:
    """``meta`` as JSON-ready data; a batch's ``"runs"`` one dict per run."""
    try:
        out = cast("dict[str, Any]", to_jsonable({} if meta is None else dict(meta)))
    except TypeError as err:
        raise ValueError(f"meta must be JSON-serialisable: {err}") from None
    if x.ndim == 3 and "runs" in out:
        runs = out["runs"]
        if not isinstance(runs, list) or len(runs) != x.shape[0]:
            raise ValueError(
                f'meta["runs"] must be a list of {x.shape[0]} per-run dicts for a batch'
            )
    return out
