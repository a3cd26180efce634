"""Scores of a Model on a Trajectory: derivative, one-step, rollout and forecast quality.

Keys (docs/guide/fitting.md, "The model"):

- ``deriv_r2``: scikit-learn ``r2_score`` (uniform average over variables) of the model's
  right-hand side against the derivative estimate used for fitting (the model's own
  ``derivative``/``order`` options unless ``derivative=`` is given).
- ``onestep_r2``: the paper's one-step R^2: the Euler step f(x_t) (t_{k+1} - t_k)
  against x[t+1] - x[t].
- ``rollout_r2``: R^2 on states, integrating from the first state over the window;
  ``rmse``: that rollout's RMSE over all variables.
- ``n_terms``: non-zero coefficients; ``aic``, ``bic``: Gaussian likelihood of the
  derivative residuals, n = T * m (times runs in a pooled fit), k = n_terms, with the
  variance floored at the derivative estimate's own error variance
  (``dynafit._derivatives.derivative_error_variance``: truncation or smoothing error plus
  measurement noise): fitting the derivative estimate more closely than it is known
  earns no likelihood, so on clean data a dense library's extra terms only cost.
- ``diverged``: the rollout failed or left the finite numbers.
- With ``horizon=`` (the last ``horizon`` time units of ``traj`` are held out) or
  ``forecast=`` (a Trajectory continuing ``traj``): ``forecast_r2``, ``forecast_rmse``,
  ``forecast_skill`` = 1 - RMSE_model / RMSE_persistence (holding the last in-window
  state), and ``forecast_diverged``. The forecast starts from the last in-window state.

A diverged model has every R^2 = -inf and rmse, aic, bic = +inf, never NaN (likewise
the forecast keys when the forecast diverges).

One run: a dict of Python scalars. A batch of R runs: a dict of numpy arrays of shape
``(R,)`` (``pandas.DataFrame(scores)`` gives one row per run), computed with ONE vmapped
integration over the runs. :func:`score_many` scores R models (one per run, same family)
on a batch the same way, vmapped over their coefficient matrices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from ._derivatives import derivative_error_variance, differentiate, recorded_method
from ._integrate import rollout
from ._regression import information_criteria
from ._score_names import FORECAST_KEYS as FORECAST_KEYS
from ._score_names import SCORE_KEYS as SCORE_KEYS
from ._trajectory import Trajectory

if TYPE_CHECKING:
    from ._model import Model


class ScoreOptions(TypedDict, total=False):
    """The options of ``Model.score`` and :func:`score_many`: ``horizon`` or ``forecast``
    (the held-out future, see the module doc), ``derivative`` (the method of the
    derivative estimate; default: the model's own), and the rollouts' ``solver``
    ("tsit5"), ``rtol`` (1e-6) and ``atol`` (1e-8)."""

    horizon: float | None
    forecast: Trajectory | None
    derivative: str | None
    solver: str
    rtol: float
    atol: float


def score_many(
    models: Sequence[Model],
    traj: Trajectory,
    *,
    horizon: float | None = None,
    forecast: Trajectory | None = None,
    derivative: str | None = None,
    solver: str = "tsit5",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    _broadcast: bool = False,
) -> dict[str, Any]:
    """Score model i on run i of ``traj`` for R models of one family: one vmapped rollout.

    Returns a dict of numpy arrays of shape ``(R,)`` (or scalars for one model on one run).
    """
    models = list(models)
    traj = _checked_models(models, traj, _broadcast)
    traj, future = _held_out(traj, horizon, forecast, models[0].names)
    X = traj.x if traj.is_batch else traj.x[None]  # (R, T, m)
    xi = np.stack([mod.coefficients for mod in models])  # (M, m, n)
    if _broadcast:
        xi = np.broadcast_to(xi[0], (X.shape[0], *xi.shape[1:]))
    solve = {"solver": solver, "rtol": rtol, "atol": atol}
    out = _window_scores(models[0], X, traj.t, xi, derivative, solve)
    if future is not None:
        out.update(_forecast_scores(models[0].field, X, traj.t[-1:], future, xi, solve))
    if not traj.is_batch and len(models) == 1:
        return {k: _scalar(v[0]) for k, v in out.items()}
    return {k: np.asarray(v) for k, v in out.items()}


def _checked_models(models: list[Model], traj: Trajectory, broadcast: bool) -> Trajectory:
    """``traj`` with its variables in the models' order, after checking that the models
    are of one family on the same variables, one per run (or one for all, ``broadcast``)."""
    if not models or not all(_is_model(m) for m in models):
        raise ValueError("score needs dynafit Models")
    if not isinstance(traj, Trajectory):
        raise ValueError(f"score needs a dynafit.Trajectory, got {type(traj).__name__}")
    first = models[0]
    for m in models[1:]:
        if m.family != first.family or m.names != first.names:
            raise ValueError("score_many needs models of one family on the same variables")
    traj = _match_names(traj, first.names, "traj")
    if not broadcast and len(models) != traj.n_runs:
        raise ValueError(f"{len(models)} models for {traj.n_runs} runs; give one model per run")
    return traj


_Future = tuple[np.ndarray, np.ndarray]


def _held_out(
    traj: Trajectory, horizon: float | None, forecast: Trajectory | None, names: tuple[str, ...]
) -> tuple[Trajectory, _Future | None]:
    """The window scored and the held-out future ``(t, x)``: the last ``horizon`` time
    units of ``traj``, or ``forecast`` (a continuation of ``traj``), or None."""
    if horizon is not None and forecast is not None:
        raise ValueError("give horizon= or forecast=, not both")
    if horizon is not None:
        if not (np.isfinite(horizon) and horizon > 0):
            raise ValueError(f"horizon must be a positive number of time units, got {horizon!r}")
        split = traj.t[-1] - horizon
        n_in = int(np.searchsorted(traj.t, split, side="right"))
        if n_in < 3 or n_in >= traj.n_times:
            raise ValueError(
                f"horizon {horizon} leaves {n_in} in-window and {traj.n_times - n_in} held-out "
                "points; need at least 3 in the window and 1 held out"
            )
        future = (traj.t[n_in:], traj.x[..., n_in:, :])
        return traj._replace(
            t=traj.t[:n_in],
            x=traj.x[..., :n_in, :],
            aux={k: v[..., :n_in] for k, v in traj.aux.items()},
        ), future
    if forecast is None:
        return traj, None
    if not isinstance(forecast, Trajectory):
        raise ValueError("forecast must be a dynafit.Trajectory continuing traj")
    forecast = _match_names(forecast, names, "forecast")
    if forecast.t[0] <= traj.t[-1]:
        raise ValueError(
            f"forecast must start after traj ends ({forecast.t[0]:g} <= {traj.t[-1]:g})"
        )
    if forecast.n_runs != traj.n_runs or forecast.is_batch != traj.is_batch:
        raise ValueError(f"forecast has {forecast.n_runs} runs, traj {traj.n_runs}")
    return traj, (forecast.t, forecast.x)


def _derivative_of(model: Model, derivative: str | None = None) -> tuple[str, int, Any]:
    """The derivative estimate a model was fitted with: method, order, window."""
    method = derivative or recorded_method(model.options.get("derivative", "centered"))
    return method, int(model.options.get("order", 2)), model.options.get("window")


def _window_scores(
    first: Model,
    X: np.ndarray,
    t: np.ndarray,
    xi: np.ndarray,
    derivative: str | None,
    solve: dict[str, Any],
) -> dict[str, Any]:
    """The derivative, one-step, information and rollout scores over the window, each
    an array over runs (``X``: (R, T, m), ``xi``: (R, m, n)); a diverged run's R^2 are
    -inf and its rmse, aic, bic +inf."""
    R, T, _ = X.shape
    n_terms = np.count_nonzero(xi, axis=(1, 2))
    field = first.field
    method, order, window = _derivative_of(first, derivative)
    with np.errstate(all="ignore"):
        dxdt = differentiate(X, t, method, order=order, window=window)
        f = field_np(field, X, xi)
    rows = slice(0, T - 1) if method == "forward" else slice(0, T)
    resid = dxdt[:, rows] - f[:, rows]
    with np.errstate(all="ignore"):
        floors = derivative_error_variance(X, t, method, order, window, dxdt=dxdt)
    ics = [information_criteria(resid[r], int(n_terms[r]), floors[r]) for r in range(R)]

    # rollout over the window: one vmapped integration over runs
    ys, ok = rollout(field, xi, X[:, 0], t, **solve)
    diverged = ~ok | ~np.isfinite(ys).all(axis=(1, 2)) | ~np.isfinite(f).all(axis=(1, 2))
    with np.errstate(all="ignore"):
        rmse = np.sqrt(np.mean((ys - X) ** 2, axis=(1, 2)))
    out: dict[str, Any] = {
        "deriv_r2": r2(dxdt[:, rows], f[:, rows]),
        "onestep_r2": r2(np.diff(X, axis=1), f[:, :-1] * np.diff(t)[None, :, None]),
        "rollout_r2": _r2_quiet(X, ys),
        "rmse": rmse,
        "n_terms": n_terms,
        "aic": np.array([a for a, _ in ics]),
        "bic": np.array([b for _, b in ics]),
        "diverged": diverged,
    }
    for key in ("deriv_r2", "onestep_r2", "rollout_r2"):
        out[key] = np.where(diverged | ~np.isfinite(out[key]), -np.inf, out[key])
    for key in ("rmse", "aic", "bic"):
        out[key] = np.where(diverged | ~np.isfinite(out[key]), np.inf, out[key])
    return out


def _r2_quiet(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return r2(x, y)


def _forecast_scores(
    field: Any,
    X: np.ndarray,
    t_last: np.ndarray,
    future: _Future,
    xi: np.ndarray,
    solve: dict[str, Any],
) -> dict[str, Any]:
    """Forecast R^2, RMSE and skill against persistence over the held-out ``future``,
    integrating from the window's last state (at ``t_last``, shape (1,)); a diverged forecast is -inf (R^2, skill)
    and +inf (RMSE)."""
    tf, Xf = future
    Xf = Xf if Xf.ndim == 3 else Xf[None]
    t_all = np.concatenate([t_last, tf])
    yf, okf = rollout(field, xi, X[:, -1], t_all, **solve)
    yf = yf[:, 1:]
    f_div = ~okf | ~np.isfinite(yf).all(axis=(1, 2))
    with np.errstate(all="ignore"):
        f_r2 = r2(Xf, yf)
        f_rmse = np.sqrt(np.mean((yf - Xf) ** 2, axis=(1, 2)))
        p_rmse = np.sqrt(np.mean((X[:, -1:] - Xf) ** 2, axis=(1, 2)))
        skill = np.where(
            p_rmse > 0,
            1.0 - f_rmse / np.where(p_rmse > 0, p_rmse, 1.0),
            np.where(f_rmse > 0, -np.inf, 0.0),
        )
    return {
        "forecast_r2": np.where(f_div | ~np.isfinite(f_r2), -np.inf, f_r2),
        "forecast_rmse": np.where(f_div | ~np.isfinite(f_rmse), np.inf, f_rmse),
        "forecast_skill": np.where(f_div | ~np.isfinite(skill), -np.inf, skill),
        "forecast_diverged": f_div,
    }


def field_np(field: Any, x: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """The vector field in numpy float64, from the same lambdified terms as the solver's:
    ``x`` (R, T, m), ``xi`` (R, m, n) or (m, n) -> (R, T, m)."""
    return field.g_np(x) * (field.theta_np(x) @ np.swapaxes(xi, -1, -2))


def pooled_information(model: Model, traj: Trajectory) -> tuple[float, float]:
    """AIC and BIC of the derivative residuals of every run of ``traj`` together, in
    float64 as :func:`score_many` computes them per run (the fit's own derivative
    estimate; n = runs x rows x m), the variance floored at the mean over runs of the
    derivative estimate's error variance."""
    method, order, window = _derivative_of(model)
    x = np.asarray(traj.x, dtype=np.float64)
    x = x if x.ndim == 3 else x[None]
    with np.errstate(all="ignore"):
        dxdt = differentiate(x, traj.t, method, order=order, window=window)
        f = field_np(model.field, x, model.coefficients)
    rows = slice(0, traj.n_times - 1) if method == "forward" else slice(None)
    resid = dxdt[:, rows] - f[:, rows]
    if not np.all(np.isfinite(resid)):
        return float("inf"), float("inf")
    with np.errstate(all="ignore"):
        floor = float(np.mean(derivative_error_variance(x, traj.t, method, order, window, dxdt)))
    return information_criteria(resid, model.n_terms, floor)


def onestep_r2(model: Model, run: Trajectory) -> float:
    """The paper's one-step R^2 of ``model`` on one run: the Euler step f(x_t) (t_{k+1} -
    t_k) against x[t+1] - x[t], in float64; finite also where the rollout diverges
    (unlike ``score``'s, which a diverged rollout sets to -inf)."""
    x = np.asarray(run.x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("onestep_r2 scores one run; pick one with traj.run(i)")
    with np.errstate(all="ignore"):
        f = field_np(model.field, x[None], model.coefficients)[0]
    step = f[:-1] * np.diff(run.t)[:, None]
    if not np.all(np.isfinite(step)):
        return float("-inf")
    return float(r2(np.diff(x, axis=0)[None], step[None])[0])


def r2(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """scikit-learn's ``r2_score`` (uniform average, force_finite) per leading index.

    ``y``, ``yhat``: ``(R, N, m)`` -> ``(R,)``. A constant variable scores 1 when predicted
    exactly and 0 otherwise, as in scikit-learn; non-finite predictions give -inf.
    """
    y = np.asarray(y, dtype=np.float64)
    yhat = np.asarray(yhat, dtype=np.float64)
    with np.errstate(all="ignore"):
        num = np.sum((y - yhat) ** 2, axis=1)
        den = np.sum((y - y.mean(axis=1, keepdims=True)) ** 2, axis=1)
        per = np.where(
            den > 0, 1.0 - num / np.where(den > 0, den, 1.0), np.where(num == 0, 1.0, 0.0)
        )
    per = np.where(np.isfinite(num), per, -np.inf)
    return per.mean(axis=-1)


def _is_model(obj: Any) -> bool:
    """A dynafit Model (by its interface: this module sits below ``_model``)."""
    return all(hasattr(obj, a) for a in ("family", "names", "coefficients", "field", "options"))


def _match_names(traj: Trajectory, names: tuple[str, ...], what: str) -> Trajectory:
    if traj.names == names:
        return traj
    missing = [n for n in names if n not in traj.names]
    if missing:
        raise ValueError(f"{what} lacks the model's variables {missing} (it has {traj.names})")
    return traj.select(list(names))


def _scalar(v: Any) -> Any:
    v = np.asarray(v)
    if v.dtype == bool:
        return bool(v)
    if np.issubdtype(v.dtype, np.integer):
        return int(v)
    return float(v)
