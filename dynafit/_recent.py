"""A model for forecasting: the fit's start chosen by a held-out forecast.

Data from the start of a window may follow dynamics the model family cannot express
(a transient: in training runs, the first steps of the optimiser), and a fit that must
also explain them is biased where a forecast begins, at the window's end. The remedy of
time-series forecasting is rolling-origin validation: hold out the window's last part,
fit each candidate start on the data before it, forecast the held-out part from its
first state, and keep the start whose forecast is closest; the model is then refitted
from that start to the window's end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._fit import fit
from ._model import Model
from ._trajectory import Trajectory
from .families import AbstractFamily

#: candidate starts, as fractions of the part of the window before the held-out part:
#: the whole of it, the last half, quarter and eighth
STARTS = (0.0, 0.5, 0.75, 0.875)
#: fewest samples a candidate fit may have
MIN_POINTS = 10


def fit_recent(
    traj: Trajectory,
    family: str | AbstractFamily = "linear",
    *,
    starts: Sequence[float] = STARTS,
    holdout: float = 0.2,
    **options: Any,
) -> Model:
    """``dynafit.fit`` from the start whose forecast of held-out data is closest.

    The last ``holdout`` fraction of ``traj``'s times (one run or a batch) is held out;
    for each start ``s`` in ``starts`` (fractions of the span before the held-out part,
    0 = its beginning) ``family`` is fitted on ``s..V`` (V = the held-out part's first
    time; ``options`` as :func:`dynafit.fit`) and integrated from
    each run's state at V to the window's end. The start with the least forecast error
    (relative RMSE over runs, times and variables; the earlier start on a tie) is kept,
    and the model is refitted from it to the window's end.

    The returned model's ``options["recent"]`` records the held-out time, every
    candidate start with its validation error, the error of holding the state at V
    (persistence) and the chosen start; ``options["t_range"]`` is the refit's span.
    Raises ``ValueError`` for a bad ``holdout`` or ``starts``, or when no candidate
    has ``MIN_POINTS`` samples.
    """
    if not isinstance(traj, Trajectory):
        raise ValueError(f"fit_recent needs a dynafit.Trajectory, got {type(traj).__name__}")
    if (
        isinstance(holdout, bool)
        or not isinstance(holdout, (int, float))
        or not (math.isfinite(holdout) and 0 < holdout < 1)
    ):
        raise ValueError(f"holdout must be a fraction strictly between 0 and 1, got {holdout!r}")
    fracs = _check_starts(starts)
    t = traj.t
    T = t.shape[0]
    iv = int(round((1.0 - holdout) * (T - 1)))
    if T - 1 - iv < 1:
        raise ValueError(f"holdout {holdout} leaves no held-out sample of {T}")
    x = traj.x if traj.is_batch else traj.x[None]
    held = x[:, iv:]
    rms = float(np.sqrt(np.mean(held[:, 1:] ** 2)))
    rms = rms if rms > 0 else 1.0
    persistence = float(np.sqrt(np.mean((held[:, 1:] - held[:, :1]) ** 2))) / rms

    rows = []
    for f in fracs:
        i0 = int(round(f * iv))
        if iv - i0 + 1 < MIN_POINTS:
            rows.append({"start": float(t[i0]), "rel_rmse": None, "skipped": "too few samples"})
            continue
        model = fit(traj.window(float(t[i0]), float(t[iv])), family, **options)
        ys = model.simulate(t[iv:] - t[iv], held[:, 0])
        err = float(np.sqrt(np.mean((ys[:, 1:] - held[:, 1:]) ** 2))) / rms
        rows.append({"start": float(t[i0]), "rel_rmse": err if math.isfinite(err) else None})
    scored = [(r["rel_rmse"], k) for k, r in enumerate(rows) if r["rel_rmse"] is not None]
    if not any("skipped" not in r for r in rows):
        raise ValueError(
            f"no candidate start leaves {MIN_POINTS} samples before the held-out part "
            f"(times {t[0]:g}..{t[iv]:g}); give a longer trajectory or a smaller holdout"
        )
    # every candidate diverged on the held-out part: keep the whole window
    k = min(scored)[1] if scored else next(k for k, r in enumerate(rows) if "skipped" not in r)
    start = rows[k]["start"]
    model = fit(traj.window(start, float(t[-1])), family, **options)
    record = {
        "holdout_start": float(t[iv]),
        "candidates": rows,
        "persistence_rel_rmse": persistence,
        "start": start,
    }
    return model.with_coefficients(model.coefficients, recent=record)


def _check_starts(starts: Sequence[float]) -> list[float]:
    try:
        fracs = [float(s) for s in starts]
    except (TypeError, ValueError):
        raise ValueError(
            f"starts must be a sequence of fractions in [0, 1), got {starts!r}"
        ) from None
    if not fracs or any(
        isinstance(s, bool) or not (math.isfinite(f) and 0 <= f < 1) for s, f in zip(starts, fracs)
    ):
        raise ValueError(
            f"starts must be a non-empty sequence of fractions in [0, 1), got {starts!r}"
        )
    return sorted(set(fracs))
