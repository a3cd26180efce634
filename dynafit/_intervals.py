"""A model's ensemble summary (``dynafit.fit_ensemble`` records it in its options) and
its equations with coefficient intervals: the implementation behind ``Model.uncertainty``
and ``Model.equations_with_intervals``, the two ways in for users.

``dynafit.uncertainty`` and ``dynafit.equations_with_intervals`` were a second way in to
the same; they remain as deprecated aliases (:func:`deprecated_uncertainty`,
:func:`deprecated_equations_with_intervals`) that warn and point to the Model."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

if TYPE_CHECKING:  # for annotations only: the model layer imports this one
    from ._model import Model

UNCERTAINTY_KEYS = ("mean", "median", "std", "lower", "upper", "inclusion")


def uncertainty(model: Model) -> dict[str, Any] | None:
    """The ensemble summary of ``model`` as numpy arrays shaped like its coefficients
    (keys mean, median, std, lower, upper, inclusion; plus n_models and level), or None
    for a model that was not fitted as an ensemble."""
    rec = model.options.get("uncertainty")
    if not isinstance(rec, dict):
        return None
    out: dict[str, Any] = {k: v for k, v in rec.items() if k not in UNCERTAINTY_KEYS}
    for key in UNCERTAINTY_KEYS:
        arr = np.asarray(rec[key], dtype=np.float64)
        if arr.shape != model.coefficients.shape:
            raise ValueError(
                f"uncertainty {key!r} has shape {arr.shape}, expected {model.coefficients.shape}"
            )
        out[key] = arr
    return out


def equations_with_intervals(
    model: Model, digits: int = 3, *, min_inclusion: float = 0.0
) -> list[str]:
    """The equations with each coefficient's interval and inclusion probability, e.g.
    ``dx0/dt = -0.5 [-0.52, -0.48] (p=1.00)*x0 + ...``; terms included in fewer than
    ``min_inclusion`` of the fits are left out (default: every non-zero coefficient).
    Without ensemble information, plain equations."""
    unc = uncertainty(model)
    terms, prefs = model.terms, model.prefactors
    xi = model.coefficients
    lines = []
    for i, name in enumerate(model.names):
        parts = []
        for k, c in enumerate(xi[i]):
            if unc is None:
                if c == 0:
                    continue
                parts.append(f"{_fmt(c, digits)}*{sympy.sstr(terms[k])}")
                continue
            p = unc["inclusion"][i, k]
            if (c == 0 and p == 0) or p < min_inclusion:
                continue
            interval = f"[{_fmt(unc['lower'][i, k], digits)}, {_fmt(unc['upper'][i, k], digits)}]"
            term = "" if terms[k] == 1 else f"*{sympy.sstr(terms[k])}"
            parts.append(f"{_fmt(c, digits)} {interval} (p={p:.2f}){term}")
        body = " + ".join(parts) if parts else "0"
        if prefs[i] != 1:
            body = f"{sympy.sstr(prefs[i])}*({body})"
        lines.append(f"d{name}/dt = {body}")
    return lines


def _fmt(v: float, digits: int) -> str:
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    return f"{v:.{digits}g}"


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"dynafit.{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


def deprecated_uncertainty(model: Model) -> dict[str, Any] | None:
    """Deprecated: use ``model.uncertainty`` (the same summary: arrays shaped like the
    coefficients, keys mean, median, std, lower, upper, inclusion, n_models, level; None
    for a model not fitted as an ensemble)."""
    _deprecated("uncertainty(model)", "model.uncertainty")
    return model.uncertainty


def deprecated_equations_with_intervals(
    model: Model, digits: int = 3, *, min_inclusion: float = 0.0
) -> list[str]:
    """Deprecated: use ``model.equations_with_intervals(digits)`` (the same text, each
    coefficient with its interval and inclusion probability). Unlike the method, a model
    without ensemble information gives its plain equations as text."""
    _deprecated("equations_with_intervals(model)", "model.equations_with_intervals()")
    return equations_with_intervals(model, digits, min_inclusion=min_inclusion)
