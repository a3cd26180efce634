"""The trajectory-matching stage: coefficients moved to minimise the error of the
integrated trajectory (optax through diffrax, :mod:`dynafit._matching`).

For the shared-rate families it is the last stage of every fit (``steps`` optimiser
steps; 0 or ``matching=None`` skips it). For the term-library families it applies on
short data (fewer than 100 samples per run), where every support on the threshold path
is matched before the choice (:func:`dynafit._discovery.choose_refined`).
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import numpy as np

from .._matching._rollout_opt import make_optimizer
from ._repr import describe


class Matching(eqx.Module):
    """Trajectory matching: ``steps`` steps of ``optimizer`` ("adam", "adabelief", "sgd"
    or an optax transformation) at learning rate ``lr``, multiple shooting on a curriculum
    of ``horizons`` ("auto": shorter first where the start blows up), the ODE solved at
    ``rtol``/``atol`` in at most ``max_steps`` steps, stopped after ``time_limit`` seconds
    (None: no limit)."""

    __repr__ = describe

    steps: int = 400
    lr: float = 1e-2
    horizons: Any = "auto"
    optimizer: Any = "adam"
    time_limit: float | None = None
    rtol: float = 1e-5
    atol: float = 1e-7
    max_steps: int = 4096

    def __check_init__(self):
        steps = self.steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps must be a non-negative int, got {steps!r}")
        lr = self.lr
        if (
            isinstance(lr, bool)
            or not isinstance(lr, (int, float))
            or not (math.isfinite(lr) and lr > 0)
        ):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        tl = self.time_limit
        if tl is not None and not (
            isinstance(tl, (int, float))
            and not isinstance(tl, bool)
            and math.isfinite(tl)
            and tl > 0
        ):
            raise ValueError(f"time_limit must be a positive number of seconds, got {tl!r}")
        make_optimizer(self.optimizer, float(lr))
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"{name} must be a number > 0, got {v!r}")
        ms = self.max_steps
        if isinstance(ms, bool) or not isinstance(ms, (int, np.integer)) or ms < 1:
            raise ValueError(f"max_steps must be a positive int, got {ms!r}")
