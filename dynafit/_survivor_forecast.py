"""Survivors predicted by a model against the rank-at-time-t baselines, in one table.

:func:`compare_survivors` answers "which circles will be alive at step ``until``?" from
what is known at the end of a fit window ``t``, three ways, for every run:

- ``model``: :func:`dynafit.survivors`: the model integrated from the run's state at
  ``t`` (``start="end"``, default) or at its first time (``start="first"``) up to
  ``until``, and the paper's threshold applied to the final state. The number of
  survivors is the model's own prediction.
- ``alive_at_t``: the circles above the paper's threshold at time ``t`` (with S_0 at
  ``t`` when the run records it). The count comes from the data at ``t``; no model.
- ``top_k_at_t``: the k largest circles at time ``t``, k the TRUE number of survivors:
  the issue's rank baseline, which is told the count.
- ``top_k_model``: the k largest variables of the model's final state, k told as well:
  the model's ranking, separated from its count.

Scores are precision, recall and F1 against the survivors the run records (meta
``"survivors"``) or, failing that, those above the threshold at its last time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._survival import _above, _final_state, _prf, actual_survivors
from ._trajectory import Trajectory

METHODS = ("model", "alive_at_t", "top_k_at_t", "top_k_model")


def compare_survivors(
    model: Any,
    traj: Trajectory,
    until: float | None = None,
    *,
    t: float | None = None,
    start: str = "end",
    threshold: float | None = None,
    n_points: int = 401,
) -> pd.DataFrame:
    """Survivors at time ``until`` predicted from time ``t``: the model against the rank
    baselines (see the module docstring), one row per run and method.

    - ``traj``: the runs (one or a batch), holding the model's variables at time ``t``;
      their actual survivors come from meta ``"survivors"`` or their last state.
    - ``until``: when survival is judged (data time units); default the trajectory's
      last time.
    - ``t``: the end of the fit window (default the model's ``options["t_range"][1]``).
    - ``start``: integrate from the state at ``t`` ("end") or at the first time ("first").

    Columns: run, method, predicted, n_predicted, actual, n_actual, precision, recall,
    f1 (0 when nothing is predicted but something survives; NaN when nothing survives).
    ``n_predicted`` of "model" and "alive_at_t" are predicted
    counts; the two top-k methods are told ``n_actual``.
    """
    if not isinstance(traj, Trajectory):
        raise ValueError(f"compare_survivors needs a dynafit.Trajectory, got {type(traj).__name__}")
    if start not in ("end", "first"):
        raise ValueError(f"start must be 'end' or 'first', got {start!r}")
    missing = [n for n in model.names if n not in traj.names]
    if missing:
        raise ValueError(f"traj lacks the model's variables {missing}")
    if t is None:
        t_range = getattr(model, "options", {}).get("t_range")
        if not (isinstance(t_range, (list, tuple)) and len(t_range) == 2):
            raise ValueError("give t= (the end of the fit window): the model does not record it")
        t = float(t_range[1])
    t = _number(t, "t")
    hit = np.flatnonzero(np.isclose(traj.t, t))
    if not hit.size:
        raise ValueError(
            f"traj has no time {t:g} (the fit window's end); its times run "
            f"{traj.t[0]:g}..{traj.t[-1]:g}"
        )
    it = int(hit[0])
    until = float(traj.t[-1]) if until is None else _number(until, "until")
    t_from = t if start == "end" else float(traj.t[0])
    if until <= t:
        raise ValueError(f"until ({until:g}) must lie after the window's end t ({t:g})")
    if threshold is not None and (isinstance(threshold, bool) or not math.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    actual_all = actual_survivors(traj)
    names = list(model.names)
    rows = []
    for r, run in enumerate(traj.runs()):
        sub = run.select(names) if run.names != tuple(names) else run
        s0_t = float(run.aux["s0"][it]) if "s0" in run.aux else 0.0
        i0 = it if start == "end" else 0
        s0_from = float(run.aux["s0"][i0]) if "s0" in run.aux else 0.0
        act = [a for a in actual_all[r] if a in names]
        k = len(act)
        horizon = until - t_from
        ts = np.linspace(0.0, horizon, n_points)
        ys = model.simulate(ts, sub.x[i0])
        final = _final_state(ys)
        at_t = sub.x[it]
        preds = {
            "model": _above(final, names, threshold, s0_from),
            "alive_at_t": _above(at_t, names, threshold, s0_t),
            "top_k_at_t": _top(at_t, names, k),
            "top_k_model": _top(np.where(np.isfinite(final), final, -np.inf), names, k),
        }
        for method in METHODS:
            pred = preds[method]
            score = _prf(pred, act)
            if act and not pred:
                score["f1"] = 0.0
            rows.append(
                {
                    "run": r,
                    "method": method,
                    "n_predicted": len(pred),
                    "n_actual": k,
                    **score,
                }
            )
    out = pd.DataFrame(rows)
    cols = ["run", "method", "predicted", "n_predicted", "actual", "n_actual"]
    return out[cols + ["precision", "recall", "f1"]]


def _top(values: np.ndarray, names: Sequence[str], k: int) -> list[str]:
    order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")[:k]
    return [names[i] for i in sorted(order)]


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {v}")
    return v
