"""``dynafit.fit``: from a Trajectory to a Model by sparse regression (pysindy).

Pipeline: derivatives (``_derivatives``) -> library theta(x) and targets
(dx_i/dt) / g_i(x) -> columns and targets scaled to unit RMS -> sparse regression
(pysindy's STLSQ, run for every threshold at once by :func:`stlsq_path`; pysindy's SR3
or ensemble optimiser) -> coefficients scaled back. With no ``threshold`` given, a
sweep over thresholds is fitted on the first part of every run and scored on the rest
(held-out derivative error); the sparsest model whose error is not meaningfully worse
than the best is chosen (see :func:`select`), and the sweep is kept on ``model.sweep``.
On noisy data the weak formulation (:mod:`dynafit._weak`) can replace the derivative
rows, and on short data the candidates are judged after trajectory matching
(:mod:`dynafit._discovery`).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pysindy as ps
import scipy.linalg
import sklearn
from threadpoolctl import ThreadpoolController

from ._derivatives import check_method, differentiate, resolve, white_noise_derivative
from ._discovery import ROLLOUT_INFORMATIVE, choose_formulation, choose_refined, is_short
from ._model import Model, VectorField, pow2_padding, rollout, rollout_joint, vector_field
from ._trajectory import Trajectory
from ._weak import MIN_WEAK_TIMES, test_function_width, weak_system
from .families._base import AbstractFamily, get_family

OPTIMIZERS = ("stlsq", "sr3", "ensemble")
#: evidence (BIC units per added term) for a denser candidate inside the held-out band:
#: twice the "very strong" level of 10, because derivative residuals are serially
#: correlated (smoothing, finite differences), which makes the plain BIC overconfident
BIC_STEP = 20.0
CRITERIA = ("holdout", "aic", "bic")
#: step budget of the stiff solver when the sweep screens candidates by their rollout. A
#: candidate the explicit solver cannot finish in its 4,096 steps is retried with
#: Kvaerno5; one that is merely stiff needs few implicit steps, while the dense Lotka-
#: Volterra candidates of circle data that exhaust Tsit5's budget did not finish within
#: 4,096 implicit steps either (measured: 0 of 22), which cost 8x as much, in lockstep
#: with the whole vmapped batch
SCREEN_STIFF_STEPS = 512

#: extra keyword options of :func:`fit` and their defaults
DEFAULT_OPTIONS: dict[str, Any] = {
    # finite-difference order ("centered", "smoothed"); None: 4 where derivative "auto"
    # finds clean data (centred differences), 2 otherwise
    "order": None,
    "window": None,  # Savitzky-Golay window for "smoothed" (default 11)
    "holdout": 0.2,  # fraction of every run's end held out for the sweep
    "n_thresholds": 24,  # size of the automatic threshold grid
    "thresholds": None,  # explicit grid (relative thresholds) instead
    "tolerance": None,  # fixed relative tolerance of the selection rule (None: adaptive)
    "abs_tolerance": 1e-6,  # errors below this fraction of the variance are equal
    "alpha": 1e-6,  # ridge strength (STLSQ), relative to the scaled library
    "max_iter": 20,
    "nu": 1.0,  # SR3 relaxation
    "n_models": 20,  # ensemble size
    "seed": 0,  # ensemble resampling
    # families with a prefactor g_i (lotka_volterra): "derivative" regresses dx_i/dt on
    # g_i(x) theta(x), equation by equation (noise stays additive); "per_capita" regresses
    # (dx_i/dt) / g_i(x) on theta(x) (noise is amplified where g_i is small)
    "weighting": "derivative",
    # holdout sweep: only candidates whose rollout over the fitted window (from every
    # run's first state) stays finite and whose rollout R^2 is within ``rollout_slack`` of
    # the best candidate's may be selected; recorded as sweep["rollout_finite"] and
    # sweep["rollout_r2"]
    "check_rollout": True,
    "rollout_slack": 0.1,
    # "derivative" (regress estimated dx/dt), "weak" (the integral formulation,
    # dynafit._weak) or None: "weak" where derivative "auto" finds the data noisy and
    # every run has at least MIN_WEAK_TIMES samples, else "derivative"
    "regression": None,
}
REGRESSIONS = ("derivative", "weak")


def fit(
    traj: Trajectory,
    family: str | AbstractFamily = "linear",
    *,
    derivative: str = "auto",
    optimizer: str = "stlsq",
    threshold: float | None = None,
    n_terms: int | None = None,
    criterion: str = "holdout",
    **options: Any,
) -> Model:
    """Fit one ODE model of ``family`` to ``traj`` (one run, or a batch pooled into one model).

    - ``derivative``: "auto" (default: "smoothed" when the data look noisy, else
      "centered" of order 4), "centered" (pysindy FiniteDifference, ``order=2``), "forward" (the
      paper's x[t+1] - x[t]), "smoothed" (Savitzky-Golay first), "finite_difference".
      The method used is recorded as ``model.options["derivative"]``.
    - ``optimizer``: "stlsq" (default), "sr3" (L0), "ensemble" (bagged STLSQ, median).
    - ``threshold``: a relative threshold (coefficients are measured on unit-RMS library
      columns against unit-RMS targets, so 0.05 drops terms contributing under ~5 % of a
      derivative's typical size). None: chosen from a sweep by ``criterion``
      ("holdout", default; or "aic", "bic").
    - ``n_terms``: instead of a threshold, the densest sweep point with at most this many
      non-zero coefficients (fitted on all data).
    - ``**options``: see ``DEFAULT_OPTIONS`` (order, window, holdout, n_thresholds,
      thresholds, tolerance, abs_tolerance, alpha, max_iter, nu, n_models, seed,
      weighting, check_rollout, rollout_slack, regression). With the held-out sweep, only
      candidates whose rollout over the window stays finite are eligible, and, when the
      best of them tracks the data (rollout R^2 >= 0.9), only those within
      ``rollout_slack`` (R^2) of it (``check_rollout=False`` turns this off).
    - ``regression``: "derivative" (regress the derivative estimate) or "weak" (the
      integral formulation, :mod:`dynafit._weak`: no derivative is estimated). None
      (default): on data that derivative "auto" finds noisy (and >= 100 samples per run)
      the derivative model when its rollout tracks the data, else the weak one
      (:func:`dynafit._discovery.choose_formulation`); "derivative" otherwise. Recorded as
      ``model.options["regression"]``.
    - Short data (< 100 samples per run): every support on the threshold path is refined
      by trajectory matching (:func:`dynafit.refine`) before the choice, the sparsest
      whose refined rollout is within 0.05 R^2 of the best wins, and the refined
      coefficients are returned (``options["selection"] == "refined candidates"``).
    """
    if not isinstance(traj, Trajectory):
        raise ValueError(f"fit needs a dynafit.Trajectory, got {type(traj).__name__}")
    fam = get_family(family)
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown}; valid options are derivative, optimizer, threshold, "
            f"n_terms, criterion and {sorted(DEFAULT_OPTIONS)}"
        )
    opts = {**DEFAULT_OPTIONS, **options}
    check_method(derivative)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {list(OPTIMIZERS)}")
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {list(CRITERIA)}")
    if threshold is not None and n_terms is not None:
        raise ValueError("give threshold or n_terms, not both")
    if threshold is not None and not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    if n_terms is not None and (not isinstance(n_terms, int) or n_terms < 1):
        raise ValueError(f"n_terms must be a positive int, got {n_terms!r}")
    if not 0 < opts["holdout"] < 1:
        raise ValueError(f"holdout must be in (0, 1), got {opts['holdout']!r}")
    slack = opts["rollout_slack"]
    if isinstance(slack, bool) or not isinstance(slack, (int, float)) or not slack >= 0:
        raise ValueError(f"rollout_slack must be a number >= 0 (R^2 units), got {slack!r}")
    if opts["weighting"] not in ("derivative", "per_capita"):
        raise ValueError(
            f"weighting must be 'derivative' or 'per_capita', got {opts['weighting']!r}"
        )
    if optimizer == "ensemble" and (not isinstance(opts["n_models"], int) or opts["n_models"] < 2):
        raise ValueError(f"n_models must be an int >= 2, got {opts['n_models']!r}")

    if opts["regression"] not in (None, *REGRESSIONS):
        raise ValueError(
            f"regression must be one of {list(REGRESSIONS)} or None, got {opts['regression']!r}"
        )

    fam.validate(traj.x, traj.names)
    requested = derivative
    derivative = resolve(derivative, traj.x, traj.t)
    regression = opts["regression"]
    if regression is None:
        noisy = requested == "auto" and derivative == "smoothed"
        regression = "weak" if noisy and traj.n_times >= MIN_WEAK_TIMES else "derivative"
        if regression == "weak" and threshold is None and n_terms is None:
            if criterion == "holdout" and opts["check_rollout"]:
                # noisy data: the derivative formulation when its model's rollout tracks
                # the data, else the weak one (dynafit._discovery.choose_formulation)
                return choose_formulation(
                    lambda reg, **extra: fit(
                        traj,
                        family,
                        derivative=requested,
                        optimizer=optimizer,
                        criterion=criterion,
                        **{**options, **extra, "regression": reg},
                    ),
                    lambda model: _rollout_quality(model.field, [model.coefficients], traj)[1][0],
                )
    if regression == "weak" and traj.n_times < MIN_WEAK_TIMES:
        raise ValueError(
            f"regression='weak' needs at least {MIN_WEAK_TIMES} samples per run, got {traj.n_times}"
        )
    if opts["order"] is None:
        # clean data: a fourth-order difference, whose truncation error is too small to
        # buy spurious terms (for a linear system the second-order error, h^2/6 A^3 x,
        # lies in the library's span and would densify A)
        clean = requested == "auto" and derivative == "centered" and traj.n_times >= 11
        opts["order"] = 4 if clean else 2
    data = (
        _Data.build_weak(traj, fam, opts)
        if regression == "weak"
        else _Data.build(traj, fam, derivative, opts)
    )

    record = {
        "regression": regression,
        **(data.weak or {}),
        "derivative": derivative,
        **({"derivative_requested": requested} if requested != derivative else {}),
        "optimizer": optimizer,
        "criterion": criterion,
        **{k: v for k, v in opts.items() if k in ("order", "holdout", "alpha", "max_iter")},
        **({"weighting": opts["weighting"]} if not vector_field(fam, traj.n_vars).g_is_one else {}),
        "n_runs": traj.n_runs,
        "t_range": [float(traj.t[0]), float(traj.t[-1])],
    }
    if derivative == "smoothed":
        record["window"] = opts["window"]
    if optimizer == "sr3":
        record["nu"] = opts["nu"]
    if optimizer == "ensemble":
        record.update(n_models=opts["n_models"], seed=opts["seed"])

    if threshold is not None:
        xi = data.regress(data.all, threshold, optimizer, opts)
        return Model(fam, traj.names, xi, {**record, "threshold": float(threshold)})

    grid = _grid(data, optimizer, opts)
    if n_terms is not None:
        fits = list(data.regress_path(data.all, grid, optimizer, opts))
        counts = np.array([np.count_nonzero(x) for x in fits])
        ok = np.flatnonzero(counts <= n_terms)
        pick = ok[np.argmax(counts[ok])] if ok.size else int(np.argmin(counts))
        sweep = pd.DataFrame({"threshold": grid, "n_terms": counts})
        sweep["selected"] = np.arange(len(grid)) == pick
        return Model(
            fam,
            traj.names,
            fits[pick],
            {**record, "threshold": float(grid[pick]), "n_terms_requested": n_terms},
            sweep,
        )

    if data.train.n_rows < data.n_lib or data.test.n_rows < 2:
        raise ValueError(
            f"too few points for a held-out threshold sweep ({data.train.n_rows} training rows "
            f"for {data.n_lib} library terms); give threshold= or more data"
        )
    xis = data.regress_path(data.train, grid, optimizer, opts)
    err, se = data.heldout_errors(xis)
    aic, bic = data.information(xis, data.train)
    sweep = pd.DataFrame(
        {
            "threshold": grid,
            "n_terms": np.count_nonzero(xis, axis=(1, 2)),
            "heldout_error": err,
            "heldout_se": se,
            "aic": aic,
            "bic": bic,
        }
    )
    check = criterion == "holdout" and bool(opts["check_rollout"])
    informative = False
    if criterion == "holdout":
        sweep["criterion"] = sweep["heldout_error"]
        eligible = np.ones(len(sweep), dtype=bool)
        if check:
            # a model whose own rollout blows up over the data it was fitted on, or
            # strays much further from them than the best candidate's, is no model of
            # those data, however well it fits derivatives: select among the candidates
            # that integrate (all of them when none does), judged on each threshold's
            # refit on all the data (the model returned)
            refits = list(data.regress_path(data.all, grid, optimizer, opts))
            finite, r2 = _rollout_quality(data.field, refits, traj)
            sweep["rollout_finite"], sweep["rollout_r2"] = finite, r2
            # informative only when some candidate with terms rolls out closer to the
            # data than dx/dt = 0 (a pooled model of runs with different dynamics may
            # not); otherwise only finiteness is asked
            empty = np.array([not np.any(xi) for xi in refits])
            with_terms = finite & ~empty
            informative = finite.any() and r2[finite].max() >= ROLLOUT_INFORMATIVE
            if (
                informative
                and with_terms.any()
                and (not (finite & empty).any() or r2[with_terms].max() > r2[finite & empty].max())
            ):
                eligible = finite & (r2 >= r2[finite].max() - float(opts["rollout_slack"]))
            elif finite.any():
                eligible = finite
        idx = np.flatnonzero(eligible)
        # the weak formulation's residuals are integrals over overlapping test functions:
        # neither the derivative-error floor nor a likelihood applies, the held-out band
        # alone decides (the sparsest candidate within one standard error of the best)
        columns = ["bic"] if regression == "weak" else []
        sub, tol = select(
            sweep.iloc[idx].drop(columns=columns).reset_index(drop=True),
            opts["tolerance"],
            opts["abs_tolerance"],
            data.floor,
        )
        pick = int(idx[sub])
        record["selection_tolerance"] = tol
        record["derivative_error_floor"] = data.floor
    else:
        sweep["criterion"] = sweep[criterion]
        pick = int(np.argmin(sweep[criterion].to_numpy()))
    sweep["selected"] = np.arange(len(sweep)) == pick
    thr = _plateau_middle(sweep, pick)
    xi = data.regress(data.all, thr, optimizer, opts)
    screened = check and any(
        np.array_equal(xi != 0, refits[j] != 0) for j in np.flatnonzero(eligible)
    )
    if check and sweep["rollout_finite"].iloc[pick] and thr != grid[pick] and not screened:
        # the refit at the plateau's middle must integrate as well; else the selected
        # threshold itself (whose refit does)
        finite, r2 = _rollout_quality(data.field, [xi], traj)
        close = r2[0] >= sweep["rollout_r2"].iloc[pick] - 1e-3 or not informative
        if not (finite[0] and close):
            thr = float(grid[pick])
            xi = refits[pick]
    if check and is_short(traj):
        # tens of samples: every support is judged by its rollout after trajectory
        # matching (dynafit._discovery), and the refined coefficients are returned
        pick, xi, sweep["refined_rollout_r2"] = choose_refined(
            lambda c: Model(fam, traj.names, c, record), refits, traj
        )
        sweep["selected"] = np.arange(len(sweep)) == pick
        thr = float(grid[pick])
        record["selection"] = "refined candidates"
    if not np.any(xi) and sweep["n_terms"].max() > 0:
        with_terms = sweep["n_terms"].to_numpy() > 0
        rolls_worse = check and bool(
            np.all(sweep["rollout_r2"].to_numpy()[with_terms] < sweep["rollout_r2"].iloc[pick])
        )
        why = (
            "every candidate with terms rolls out further from the data than dx/dt = 0"
            if rolls_worse
            else "no candidate with terms predicts held-out derivatives better, within their noise"
        )
        warnings.warn(
            f"family {fam.name!r}: the selected model has no terms (dx/dt = 0): {why}; "
            "model.sweep shows the candidates, fit(..., n_terms=...) picks one by hand",
            RuntimeWarning,
            stacklevel=2,
        )
    return Model(fam, traj.names, xi, {**record, "threshold": thr}, sweep)


def _rollout_quality(
    field: VectorField, fits: list[np.ndarray], traj: Trajectory
) -> tuple[np.ndarray, np.ndarray]:
    """Per coefficient matrix: does its rollout from every run's first state stay finite
    (and within the solver's blow-up bound) over the fitted window, and its rollout R^2
    (uniform over variables, averaged over runs; -inf where not finite)?

    Identical matrices are integrated once; all of them in ONE vmapped integration, padded
    to a power-of-two batch so that repeated calls reuse the compiled solver. The stiff
    retry gets ``SCREEN_STIFF_STEPS`` steps.
    """
    x = traj.x if traj.is_batch else traj.x[None]
    R = x.shape[0]
    keys: dict[bytes, int] = {}
    which = np.array([keys.setdefault(xi.tobytes(), len(keys)) for xi in fits])
    uniq = [None] * len(keys)
    for xi, k in zip(fits, which):
        uniq[k] = xi
    xis = np.repeat(np.stack(uniq), R, axis=0)  # (U * R, m, n)
    x0 = np.tile(x[:, 0, :], (len(uniq), 1))
    n = xis.shape[0]
    pad = pow2_padding(n)
    # a long series (thousands of samples over many oscillations) needs more steps than
    # the default budget: a step budget of 4 per sample, in powers of two (few compiles)
    steps = max(4096, 1 << int(np.ceil(np.log2(4 * traj.n_times))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = rollout_joint(field, xis[pad], x0[pad], traj.t)
        if out is None:  # a stiff candidate: one solve per candidate, with the stiff retry
            out = rollout(
                field,
                xis[pad],
                x0[pad],
                traj.t,
                max_steps=steps,
                stiff_max_steps=SCREEN_STIFF_STEPS,
            )
        ys, ok = out
    ys, ok = ys[:n].reshape(len(uniq), R, *x.shape[1:]), np.asarray(ok[:n]).reshape(len(uniq), R)
    data = np.asarray(x, dtype=np.float64)
    var = data.var(axis=1)  # (R, m)
    var = np.where(var > 0, var, 1.0)
    with np.errstate(all="ignore"):
        mse = ((ys - data[None]) ** 2).mean(axis=2)  # (U, R, m)
        r2 = (1.0 - mse / var).mean(axis=(1, 2))
    finite = ok.all(axis=1)
    r2 = np.where(finite & np.isfinite(r2), r2, -np.inf)
    return finite[which], r2[which]


def select(
    sweep: pd.DataFrame,
    tolerance: float | None = None,
    abs_tolerance: float = 1e-6,
    floor: float = 0.0,
):
    """Index of the sparsest sweep point whose held-out error is within a tolerance of the best.

    Errors are fractions of unexplained variance. Accepted: ``err <= best + tol`` with
    ``tol = max(abs_tolerance, se_best, tolerance * best)``, where ``se_best`` is the
    standard error of the best point's held-out error (from blocks of held-out samples)
    unless a fixed relative ``tolerance`` is given. The standard error tracks the noise:
    clean data gets the small absolute floor (finite-difference truncation error no
    longer buys terms), noisy data a band as wide as its own uncertainty. Among the
    accepted, fewest terms wins, then the lower error; a denser accepted candidate takes
    its place when its BIC (a ``"bic"`` column, floored at the derivative's own error) is
    lower by more than ``BIC_STEP`` per added term: a true term the band cannot resolve.
    Returns ``(index, tol)``.
    """
    err = sweep["heldout_error"].to_numpy()
    se = sweep["heldout_se"].to_numpy()
    counts = sweep["n_terms"].to_numpy()
    finite = np.isfinite(err)
    if not finite.any():
        return int(np.argmax(counts)), float("nan")
    best = int(np.nanargmin(np.where(finite, err, np.inf)))
    spread = se[best] if tolerance is None else tolerance * err[best]
    tol = float(max(abs_tolerance, spread, 2.0 * floor))
    ok = np.flatnonzero(finite & (err <= err[best] + tol))
    order = np.lexsort((err[ok], counts[ok]))
    pick = int(ok[order[0]])
    if "bic" in sweep:
        # held-out error cannot tell apart candidates inside its band; the (floored) BIC
        # can, where a term the sparsest one lacks is strongly supported: step to a
        # denser candidate of the band when it lowers BIC by more than BIC_STEP per term
        bic = sweep["bic"].to_numpy()
        for j in ok[order[1:]]:
            extra = counts[j] - counts[pick]
            if extra > 0 and bic[pick] - bic[j] > BIC_STEP * extra:
                pick = int(j)
    return pick, tol


def _plateau_middle(sweep: pd.DataFrame, pick: int) -> float:
    """The geometric middle of the run of thresholds around ``pick`` with its number of terms.

    Refitting on all the data at the plateau's edge can admit a term the held-out fits
    dropped; its middle is the most stable threshold for that support.
    """
    thr = sweep["threshold"].to_numpy()
    counts = sweep["n_terms"].to_numpy()
    lo = hi = pick
    while lo > 0 and counts[lo - 1] == counts[pick]:
        lo -= 1
    while hi < len(thr) - 1 and counts[hi + 1] == counts[pick]:
        hi += 1
    if thr[lo] <= 0:
        lo = min(lo + 1, hi)
    if thr[lo] <= 0:
        return float(thr[pick])
    return float(np.sqrt(thr[lo] * thr[hi]))


def _grid(data: _Data, optimizer: str, opts: dict[str, Any]) -> np.ndarray:
    if opts["thresholds"] is not None:
        grid = np.asarray(opts["thresholds"], dtype=float).ravel()
        if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
            raise ValueError("thresholds must be a non-empty list of finite numbers >= 0")
        return np.unique(grid)
    n = int(opts["n_thresholds"])
    if n < 2:
        raise ValueError(f"n_thresholds must be >= 2, got {n}")
    dense = data.regress(data.all, 0.0, "stlsq", opts, scaled=True)
    top = float(np.abs(dense).max())
    if not np.isfinite(top) or top <= 0:
        top = 1.0
    return np.concatenate([[0.0], np.geomspace(top * 1e-4, top * 1.01, n - 1)])


class _Rows:
    """Library rows, targets and derivatives of one part (all / train / test) of the data.

    ``features`` (N, m, n), when given, are equation i's regression columns (the weak
    formulation's integrals of g_i theta, :mod:`dynafit._weak`); otherwise they are
    g_i(x) theta(x) row by row.
    """

    def __init__(
        self,
        theta: np.ndarray,
        g: np.ndarray,
        dxdt: np.ndarray,
        blocks: np.ndarray,
        features: np.ndarray | None = None,
    ):
        self.theta, self.g, self.dxdt, self.blocks = theta, g, dxdt, blocks
        self.features = features
        self.y = dxdt / g
        self.n_rows = theta.shape[0]

    def column(self, i: int) -> np.ndarray:
        """Equation i's regression columns (N, n): g_i(x) theta(x), or its weak integrals."""
        if self.features is not None:
            return self.features[:, i, :]
        return self.theta * self.g[:, [i]]


class _Data:
    def __init__(
        self, field: VectorField, all_: _Rows, train: _Rows, test: _Rows, per_equation: bool
    ):
        self._qr: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        # STLSQ's small solves per part of the data (and ridge strength), by equation and
        # support: neighbouring thresholds share most of them (every threshold starts
        # from the full support), and the final fit on all the data repeats the refits'
        self._solves: dict[tuple, dict] = {}
        self.weak: dict[str, Any] | None = None  # the weak formulation's settings, if used
        self.floor = 0.0  # systematic derivative error, fraction of variance (selection)
        self.noise_var = 0.0  # derivative error variance (information criteria's floor)
        self.field = field
        self.all, self.train, self.test = all_, train, test
        self.n_lib = field.n_terms
        self.per_equation = per_equation
        m = all_.dxdt.shape[1]
        # scales from all the data, so sweep and final fit share one meaning of threshold:
        # Xi_scaled[i, k] = Xi[i, k] * col_scale[i, k] / y_scale[i]
        if per_equation:  # equation i regresses dx_i/dt on g_i(x) theta(x)
            self.col_scale = np.stack([_rms(all_.column(i)) for i in range(m)])
            self.y_scale = _rms(all_.dxdt)
        else:  # all equations regress (dx_i/dt) / g_i(x) on theta(x)
            self.col_scale = np.broadcast_to(_rms(all_.theta), (m, self.n_lib))
            self.y_scale = _rms(all_.y)

    @classmethod
    def build(cls, traj: Trajectory, fam: AbstractFamily, derivative: str, opts: dict) -> _Data:
        x = traj.x if traj.is_batch else traj.x[None]
        R, T, m = x.shape
        if opts.get("order") is None:
            opts = {**opts, "order": 2}
        field = vector_field(fam, m)
        dxdt = differentiate(x, traj.t, derivative, order=opts["order"], window=opts["window"])
        theta = field.theta_np(x)
        g = field.g_np(x)
        if np.any(g == 0):
            raise ValueError(
                f"family {fam.name!r}: a prefactor g_i(x) is zero somewhere in the data"
            )
        keep = np.arange(T - 1) if derivative == "forward" else np.arange(T)
        n = keep.size
        n_lib = field.n_terms
        if R * n < n_lib:
            raise ValueError(
                f"fewer points than terms: {R * n} data points for {n_lib} library terms of the "
                f"{fam.name!r} family on {m} variables; give more data or a smaller family"
            )
        # held out: contiguous blocks spread over each run (not only its tail, which for
        # decaying dynamics holds little signal); 20 blocks, every k-th one
        n_blocks = min(20, n)
        block = (np.arange(n) * n_blocks) // n
        is_test = _held_out(block, n_blocks, opts["holdout"], n)

        def part(idx: np.ndarray) -> _Rows:
            return _Rows(
                theta[:, keep[idx]].reshape(-1, n_lib),
                g[:, keep[idx]].reshape(-1, m),
                dxdt[:, keep[idx]].reshape(-1, m),
                (block[idx][None, :] + n_blocks * np.arange(R)[:, None]).reshape(-1),
            )

        all_ = part(np.arange(n))
        train = part(np.flatnonzero(~is_test))
        test = part(np.flatnonzero(is_test))
        per_equation = not field.g_is_one and opts["weighting"] == "derivative"
        data = cls(field, all_, train, test, per_equation)
        idx = keep[np.flatnonzero(is_test)]
        ref = reference_derivative(x, traj.t, derivative, opts["order"], opts["window"])
        data.floor = derivative_error_floor(x, traj.t, dxdt, derivative, opts, idx, ref)
        data.noise_var = float(
            np.mean(
                derivative_error_variance(
                    x, traj.t, derivative, opts["order"], opts["window"], dxdt=dxdt, ref=ref
                )
            )
        )
        return data

    @classmethod
    def build_weak(cls, traj: Trajectory, fam: AbstractFamily, opts: dict) -> _Data:
        """The weak formulation's rows (:mod:`dynafit._weak`): one per test function, the
        held-out blocks those whose test function is centred in them."""
        x = np.asarray(traj.x if traj.is_batch else traj.x[None], dtype=np.float64)
        R, T, m = x.shape
        field = vector_field(fam, m)
        theta, g = field.theta_np(x), field.g_np(x)
        n_lib = field.n_terms
        per_equation = not field.g_is_one
        columns = (
            (g[..., :, None] * theta[..., None, :]).reshape(R, T, -1) if per_equation else theta
        )
        width = test_function_width(traj.t, x)
        F, Y, centres = weak_system(traj.t, x, columns, width, int(opts["seed"]))
        N = F.shape[0]
        features = F.reshape(N, m, n_lib) if per_equation else None
        n_blocks = 20
        block = np.minimum((centres * n_blocks).astype(int), n_blocks - 1)
        runs = np.repeat(np.arange(R), N // R)
        is_test = _held_out(block, n_blocks, opts["holdout"], T)

        def part(idx: np.ndarray) -> _Rows:
            return _Rows(
                np.zeros((idx.size, n_lib)) if per_equation else F[idx],
                np.ones((idx.size, m)),
                Y[idx],
                block[idx] + n_blocks * runs[idx],
                None if features is None else features[idx],
            )

        all_ = part(np.arange(N))
        data = cls(
            field, all_, part(np.flatnonzero(~is_test)), part(np.flatnonzero(is_test)), per_equation
        )
        data.weak = {"test_function_width": width, "n_test_functions": N // R}
        return data

    def regress(
        self,
        rows: _Rows,
        threshold: float,
        optimizer: str,
        opts: dict,
        scaled: bool = False,
    ) -> np.ndarray:
        """Coefficients (m, n_lib) for one threshold (in scaled units when ``scaled``)."""
        return self.regress_path(rows, [threshold], optimizer, opts, scaled)[0]

    def regress_path(
        self,
        rows: _Rows,
        thresholds,
        optimizer: str,
        opts: dict,
        scaled: bool = False,
    ) -> np.ndarray:
        """Coefficients (n_thresholds, m, n_lib), one matrix per threshold (scaled units
        when ``scaled``). STLSQ fits every threshold at once (:func:`stlsq_path`); the
        other optimisers fit threshold by threshold."""
        thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
        # the data's own parts keep their factorisation and solves across calls
        part = next((n for n in ("all", "train", "test") if getattr(self, n) is rows), None)
        if self.per_equation:
            problems = [
                (
                    rows.column(i) / self.col_scale[i],
                    rows.dxdt[:, [i]] / self.y_scale[i],
                    (part, i) if part else None,
                )
                for i in range(rows.dxdt.shape[1])
            ]
        else:
            problems = [
                (
                    rows.theta / self.col_scale[0],
                    rows.y / self.y_scale,
                    (part, None) if part else None,
                )
            ]
        coef = np.concatenate(
            [self._solve(X, Y, thresholds, optimizer, opts, key) for X, Y, key in problems],
            axis=1,
        )
        if scaled:
            return coef
        return coef * self.y_scale[:, None] / self.col_scale

    def _reduced(self, X: np.ndarray, Y: np.ndarray, key: tuple | None):
        """(R, Q^T Y) of the thin QR factorisation X = Q R (cached for the data's own parts).

        ||Y - X W||^2 = ||Q^T Y - R W||^2 + const, so every least-squares, ridge and
        thresholding step of STLSQ gives the same coefficients on the n x n problem as on
        the N x n one; the sweep factorises each library once instead of regressing on
        all its rows at every threshold and iteration.
        """
        hit = self._qr.get(key) if key is not None else None
        if hit is None:
            Q, R = np.linalg.qr(X)
            hit = (np.ascontiguousarray(R), np.ascontiguousarray(Q.T @ Y))
            if key is not None:
                self._qr[key] = hit
        return hit

    def _solve(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        thresholds: np.ndarray,
        optimizer: str,
        opts: dict,
        key: tuple | None = None,
    ) -> np.ndarray:
        """Fits of Y (N, k) on X (N, n) for every threshold; coefficients (n_thr, k, n)."""
        alpha = opts["alpha"] * X.shape[0]
        finite = bool(np.all(np.isfinite(X)) and np.all(np.isfinite(Y)))
        if optimizer == "stlsq" and finite:
            if X.shape[0] > 2 * X.shape[1]:
                X, Y = self._reduced(X, Y, key)
            memo = None if key is None else self._solves.setdefault((key, alpha), {})
            with _threadpools().limit(limits=1 if X.size < 4_000_000 else None):
                coef = stlsq_path(X, Y, thresholds, alpha, int(opts["max_iter"]), memo)
            return np.where(np.isfinite(coef), coef, 0.0)
        return np.stack([self._pysindy(X, Y, float(thr), optimizer, opts) for thr in thresholds])

    def _pysindy(self, X: np.ndarray, Y: np.ndarray, threshold: float, optimizer: str, opts: dict):
        """One fit by a pysindy optimiser (SR3, the ensemble, or STLSQ on data that are
        not finite); coefficients (k, n)."""
        alpha = opts["alpha"] * X.shape[0]
        stlsq = dict(threshold=threshold, alpha=alpha, max_iter=opts["max_iter"])
        if optimizer == "sr3":
            nu = opts["nu"]
            opt = ps.SR3(
                reg_weight_lam=threshold**2 / (2 * nu),
                regularizer="L0",
                relax_coeff_nu=nu,
                max_iter=max(opts["max_iter"], 30),
                unbias=True,
            )
        elif optimizer == "ensemble":
            opt = ps.EnsembleOptimizer(ps.STLSQ(**stlsq), bagging=True, n_models=opts["n_models"])
        else:
            opt = ps.STLSQ(**stlsq)
        state = np.random.get_state()
        np.random.seed(opts["seed"])
        # small regressions run faster on one BLAS thread (and do not fight other work)
        threads = 1 if X.size < 4_000_000 else None
        try:
            # inputs are checked once on construction: sklearn need not re-validate the
            # arguments of every ridge and least-squares call inside the optimiser
            with (
                warnings.catch_warnings(),
                _threadpools().limit(limits=threads),
                sklearn.config_context(assume_finite=True, skip_parameter_validation=True),
            ):
                warnings.simplefilter("ignore")
                opt.fit(X, Y)
        finally:
            np.random.set_state(state)
        coef = np.asarray(opt.coef_, dtype=np.float64).reshape(Y.shape[1], X.shape[1])
        return np.where(np.isfinite(coef), coef, 0.0)

    def predict(self, xis: np.ndarray, rows: _Rows) -> np.ndarray:
        """dx/dt of every coefficient matrix in ``xis`` (K, m, n) on ``rows``: (K, rows, m)."""
        if rows.features is not None:
            return np.einsum("rmn,kmn->krm", rows.features, xis)
        return rows.g * (rows.theta @ xis.transpose(0, 2, 1))

    def heldout_error(self, xi: np.ndarray) -> tuple[float, float]:
        """Mean over variables of MSE / variance on the held-out rows, and its standard error."""
        err, se = self.heldout_errors(xi[None])
        return float(err[0]), float(se[0])

    def heldout_errors(self, xis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`heldout_error` of every coefficient matrix in ``xis`` (K, m, n) at once."""
        rows = self.test
        var = rows.dxdt.var(axis=0)
        var = np.where(var > 0, var, 1.0)
        e = ((rows.dxdt - self.predict(xis, rows)) ** 2 / var).mean(axis=2)  # (K, rows)
        blocks, which = np.unique(rows.blocks, return_inverse=True)
        counts = np.bincount(which, minlength=blocks.size)
        means = np.stack([np.bincount(which, ek, minlength=blocks.size) for ek in e]) / counts
        se = (
            means.std(axis=1, ddof=1) / np.sqrt(blocks.size)
            if blocks.size > 1
            else np.zeros(len(xis))
        )
        return e.mean(axis=1), se

    def information(self, xis: np.ndarray, rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
        """AIC and BIC (:func:`information_criteria`) of every matrix in ``xis`` (K, m, n)."""
        resid = rows.dxdt - self.predict(xis, rows)
        rss = np.einsum("krm,krm->k", resid, resid)
        k = np.count_nonzero(xis, axis=(1, 2))
        out = [_criteria(r, resid[0].size, int(j), self.noise_var) for r, j in zip(rss, k)]
        return np.array([a for a, _ in out]), np.array([b for _, b in out])


def _held_out(block: np.ndarray, n_blocks: int, holdout: float, n: int) -> np.ndarray:
    """Which rows are held out: every k-th of ``n_blocks`` contiguous blocks (a fraction
    ``holdout`` of them), spread over each run rather than only its tail, which for
    decaying dynamics holds little signal."""
    k_out = max(1, int(round(n_blocks * holdout)))
    held = np.round((np.arange(k_out) + 0.5) * n_blocks / k_out).astype(int) % n_blocks
    is_test = np.isin(block, held)
    if is_test.all() or not is_test.any():
        raise ValueError(f"too few points ({n} per run) for a held-out sweep; give threshold=")
    return is_test


def _reference(method: str, order: int) -> tuple[str, int]:
    """The higher-order derivative that ``method`` of ``order`` is compared with: smoothed
    data with a higher-order difference of the same smoothing, others centred."""
    ref_order = (2 if method == "forward" else int(order)) + 2
    return ("smoothed" if method == "smoothed" else "centered"), ref_order


def reference_derivative(
    x: np.ndarray, t: np.ndarray, method: str, order: int, window
) -> np.ndarray | None:
    """The reference derivative of :func:`_error_parts` (None where the series is too
    short to tell), for callers that estimate several error parts of the same data."""
    ref_method, ref_order = _reference(method, order)
    if x.shape[-2] < ref_order + 2 or x.shape[-2] < 8:
        return None
    return differentiate(x, t, ref_method, order=ref_order, window=window)


def _error_parts(
    x: np.ndarray,
    t: np.ndarray,
    dxdt: np.ndarray,
    method: str,
    order: int,
    window,
    rows,
    ref: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per variable: systematic error^2 of ``dxdt`` (truncation or smoothing), its noise
    error^2 (sigma^2 times the method's white-noise gain), and the variance of ``dxdt``,
    averaged over runs and ``rows``. None when the series is too short to tell. ``ref``:
    :func:`reference_derivative` of ``x`` when already computed."""
    R, T, m = x.shape
    ref_method, ref_order = _reference(method, order)
    if T < ref_order + 2 or T < 8:
        return None
    if ref is None:
        ref = differentiate(x, t, ref_method, order=ref_order, window=window)
    sq = ((dxdt - ref)[:, rows] ** 2).mean(axis=(0, 1))
    d4 = np.diff(x, n=4, axis=1)
    sigma2 = (d4**2).mean(axis=(0, 1)) / 70.0  # var(4th difference of white noise) = 70
    own = white_noise_derivative(t, method, order, window)
    diff = own - white_noise_derivative(t, ref_method, ref_order, window)
    gain_diff = float((diff[rows] ** 2).mean())
    gain_own = float((own[rows] ** 2).mean())
    systematic = np.maximum(sq - sigma2 * gain_diff, 0.0)
    return systematic, sigma2 * gain_own, dxdt[:, rows].var(axis=(0, 1))


def derivative_error_floor(
    x: np.ndarray,
    t: np.ndarray,
    dxdt: np.ndarray,
    method: str,
    opts: dict,
    rows: np.ndarray,
    ref: np.ndarray | None = None,
) -> float:
    """Estimated systematic error of the derivative estimate, as a fraction of variance.

    The estimate ``dxdt`` is compared with a higher-order centred difference; the part of
    their mean squared difference that white noise would explain (noise level from
    fourth differences of ``x``, gain from passing white noise through both estimators)
    is removed, leaving the truncation or smoothing error that a dense library can fit but
    a correct sparse model cannot. Averaged over variables on the held-out ``rows``.
    """
    parts = _error_parts(x, t, dxdt, method, int(opts["order"]), opts["window"], rows, ref)
    if parts is None:
        return 0.0
    systematic, _, var = parts
    var = np.where(var > 0, var, 1.0)
    return float(np.mean(systematic / var))


def derivative_error_variance(
    x: np.ndarray,
    t: np.ndarray,
    method: str,
    order: int = 2,
    window: int | None = None,
    dxdt: np.ndarray | None = None,
    ref: np.ndarray | None = None,
) -> np.ndarray:
    """The noise floor of derivative residuals: estimated mean squared error of the
    derivative estimate itself, per run (``x``: (T, m) -> scalar array, (R, T, m) -> (R,)).

    Systematic part (truncation or smoothing error, against a higher-order difference)
    plus noise part (measurement noise from fourth differences of ``x``, through the
    method's white-noise gain), averaged over variables. No model can be told apart from
    the truth by fitting the derivative estimate more closely than this: that is the
    variance below which :func:`information_criteria` grants no likelihood.
    """
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == 2
    x = x[None] if single else x
    R, T, m = x.shape
    if dxdt is None:
        dxdt = differentiate(x, t, method, order=order, window=window)
    rows = np.arange(T - 1) if method == "forward" else np.arange(T)
    out = np.zeros(R)
    for r in range(R):
        parts = _error_parts(
            x[r : r + 1],
            t,
            dxdt[r : r + 1],
            method,
            order,
            window,
            rows,
            None if ref is None else ref[r : r + 1],
        )
        if parts is not None:
            out[r] = float(np.mean(parts[0] + parts[1]))
    out = np.where(np.isfinite(out), out, 0.0)
    return out[0] if single else out


def information_criteria(residuals: np.ndarray, k: int, floor: float = 0.0) -> tuple[float, float]:
    """AIC and BIC of Gaussian residuals (n = residuals.size, k parameters).

    ``-2 log L = n (log(2 pi sigma^2) + 1)`` with ``sigma^2 = max(RSS / n, floor)``:
    ``floor`` is the variance of the derivative estimate's own error
    (:func:`derivative_error_variance`). Residuals smaller than the error of the data
    they are measured against carry no information, so terms that only fit below the
    floor earn no likelihood and still pay their ``2 k`` (AIC) or ``k log n`` (BIC). This
    is what keeps a dense library from winning on noise-free data, where the
    finite-difference truncation error is smooth and partly fittable; with
    ``floor = 0`` it is the plain Gaussian criterion.
    """
    rss = float(np.sum(np.asarray(residuals, dtype=np.float64) ** 2))
    return _criteria(rss, residuals.size, k, floor)


def _criteria(rss: float, n: int, k: int, floor: float) -> tuple[float, float]:
    """:func:`information_criteria` from the residual sum of squares of ``n`` residuals."""
    if not np.isfinite(rss):
        return float("inf"), float("inf")
    floor = float(floor) if np.isfinite(floor) and floor > 0 else 0.0
    rss = max(rss, np.finfo(np.float64).tiny * n, floor * n)
    nll2 = n * (np.log(2 * np.pi * rss / n) + 1)
    return float(nll2 + 2 * k), float(nll2 + k * np.log(n))


_CONTROLLER: list[ThreadpoolController] = []


def _threadpools() -> ThreadpoolController:
    """One threadpoolctl controller per process (finding the BLAS libraries costs ~ms)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def stlsq_path(
    X: np.ndarray,
    Y: np.ndarray,
    thresholds,
    alpha: float,
    max_iter: int = 20,
    memo: dict | None = None,
) -> np.ndarray:
    """pysindy's STLSQ, unbiased, for every threshold and every target at once.

    The algorithm is ``pysindy.STLSQ``'s, step for step: from the full support, ridge
    regression (strength ``alpha``) of each target on its support, drop the coefficients
    below the threshold, repeat until no support changes or ``max_iter`` iterations;
    then the unbias step, least squares of each target on its final support. pysindy
    iterates one threshold at a time and, inside, one target at a time, re-solving
    targets whose support has settled; here each iteration is one pass over the
    problems (threshold x target) still changing, a (target, support) pair shared by
    several of them (every threshold's first iteration; neighbouring thresholds) is
    solved once, and the distinct systems are solved together, batched by support size
    (:func:`_masked_solve`). ``memo`` keeps those solutions across calls on the same
    ``X`` and ``Y`` (a sweep, its refits and the final fit). ``tests/test_fit.py`` checks
    the coefficients against ``pysindy.STLSQ`` threshold by threshold.

    ``X`` (N, n), ``Y`` (N, k); returns coefficients (n_thresholds, k, n).
    """
    thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
    memo = {} if memo is None else memo
    n, k, T = X.shape[1], Y.shape[1], thresholds.size
    thr = np.repeat(thresholds, k)[:, None]  # problem p = threshold p // k, target p % k
    target = np.tile(np.arange(k), T)
    support = np.ones((T * k, n), dtype=bool)
    active = np.ones(T * k, dtype=bool)
    last = np.zeros((T * k, n))  # each problem's latest thresholded ridge coefficients

    @functools.cache
    def gram() -> tuple[np.ndarray, np.ndarray]:  # formed when the memo cannot answer
        return X.T @ X, X.T @ Y

    def ridge(sup: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        return _ridge(X, Y, sup, tgt, alpha, *gram())

    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        # pysindy skips a target with no terms left (its coefficients are zeros)
        w = _solved(memo, "ridge", support[idx], target[idx], ridge)
        new = (np.abs(w) >= thr[idx]) & support[idx].any(axis=1, keepdims=True)
        settled = np.all(new == support[idx], axis=1)
        support[idx] = new
        last[idx] = np.where(new, w, 0.0)
        active[idx[settled]] = False
    # unbiased on the terms STLSQ kept, less those its ridge step left at round-off level
    # (a threshold of 0 keeps every term, also the exactly absent ones of clean data)
    support &= np.abs(last) > 1e-14

    def lstsq(sup: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        return _unbiased(X, Y, sup, tgt, *gram())

    return _solved(memo, "lstsq", support, target, lstsq).reshape(T, k, n)


def _solved(memo: dict, kind: str, support: np.ndarray, target: np.ndarray, solve) -> np.ndarray:
    """Solutions (P, n) of P problems (a target and its support each; zeros off the
    support and for an empty support), from ``memo`` where known; the distinct others by
    one call ``solve(supports, targets)``."""
    tag = np.broadcast_to(np.frombuffer(kind.encode(), np.uint8), (len(target), len(kind)))
    rows = np.concatenate(
        [tag, target.astype("<u4")[:, None].view(np.uint8), np.packbits(support, axis=1)], axis=1
    )
    keys = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel().tolist()
    first: dict[bytes, int] = {}
    for p, (key, some) in enumerate(zip(keys, support.any(axis=1).tolist())):
        if some and key not in memo and key not in first:
            first[key] = p
    if first:
        p = np.fromiter(first.values(), dtype=np.intp, count=len(first))
        memo.update(zip(first, solve(support[p], target[p])))
    zero = np.zeros(support.shape[1])
    return np.array([memo.get(key, zero) for key in keys])


def _ridge(
    x: np.ndarray,
    y: np.ndarray,
    support: np.ndarray,
    targets: np.ndarray,
    alpha: float,
    xtx: np.ndarray,
    xty: np.ndarray,
) -> np.ndarray:
    """Ridge regressions, one per row of ``support`` (P, n): column ``targets[p]`` of ``y``
    on the columns ``support[p]`` of ``x``; (P, n) with zeros off each support.

    The solve scikit-learn's ``ridge_regression`` (pysindy's ridge step) makes with its
    "cholesky" solver, ``(x_S^T x_S + alpha I) w = x_S^T y``, for all P at once from the
    precomputed ``xtx`` and ``xty`` (:func:`_masked_solve`). Where a system is singular
    (``alpha = 0`` on a rank-deficient support) every problem takes scikit-learn's own
    fall-back, least squares.
    """
    try:
        return _masked_solve(xtx, xty[:, targets].T, support, alpha)[0]
    except np.linalg.LinAlgError:
        out = np.zeros(support.shape)
        _lstsq_rows(x, y, support, targets, np.arange(len(support)), out)
        return out


def _masked_solve(
    xtx: np.ndarray,
    rhs: np.ndarray,
    support: np.ndarray,
    alpha: float = 0.0,
    pivot_tol: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``(xtx[S, S] + alpha I) w_S = rhs[p, S]`` for every row p of ``support`` (P, n),
    S its support: one batched solve per support size, on the gathered s x s systems.

    Returns ``(w, ill)``: w (P, n), zeros off each support and for an empty one; ill (P,)
    marks the systems left unsolved (zeros) because their Cholesky factorisation failed
    or has a pivot below ``pivot_tol`` times the largest diagonal entry (numerically
    singular: collinear columns, fewer rows than columns). Without ``pivot_tol`` nothing
    is checked, and an exactly singular system raises ``LinAlgError``.
    """
    out = np.zeros(support.shape)
    ill = np.zeros(len(support), dtype=bool)
    sizes = support.sum(axis=1)
    for s in np.unique(sizes[sizes > 0]).tolist():
        rows = np.flatnonzero(sizes == s)
        cols = np.nonzero(support[rows])[1].reshape(rows.size, s)
        a = xtx[cols[:, :, None], cols[:, None, :]]
        a[:, np.arange(s), np.arange(s)] += alpha
        b = np.take_along_axis(rhs[rows], cols, axis=1)
        if pivot_tol is not None:
            try:
                pivots = np.diagonal(np.linalg.cholesky(a), axis1=1, axis2=2) ** 2
                bad = pivots.min(axis=1) < pivot_tol * np.diagonal(a, axis1=1, axis2=2).max(axis=1)
            except np.linalg.LinAlgError:  # not positive definite: somewhere in the group
                bad = np.ones(rows.size, dtype=bool)
            ill[rows[bad]] = True
            rows, cols, a, b = rows[~bad], cols[~bad], a[~bad], b[~bad]
            if rows.size == 0:
                continue
        out[rows[:, None], cols] = np.linalg.solve(a, b[..., None])[..., 0]
    return out, ill


def _unbiased(
    x: np.ndarray,
    y: np.ndarray,
    support: np.ndarray,
    targets: np.ndarray,
    xtx: np.ndarray,
    xty: np.ndarray,
) -> np.ndarray:
    """Least squares, one per row of ``support`` (P, n): column ``targets[p]`` of ``y`` on
    the columns ``support[p]`` of ``x`` (pysindy's unbias step); (P, n), zeros off each
    support.

    All at once by the normal equations with one step of iterative refinement against
    the residual of ``x`` itself (which makes their error that of a QR solution while
    cond(x_S)^2 eps << 1). A numerically singular support (collinear columns, fewer rows
    than columns), or one where the refinement still moved the solution, is solved by
    :func:`_lstsq` instead: its minimum-norm solution, as pysindy's.
    """
    with np.errstate(all="ignore"):
        w, ill = _masked_solve(xtx, xty[:, targets].T, support, pivot_tol=1e-12)
        resid = y[:, targets].T - w @ x.T
        step, _ = _masked_solve(xtx, resid @ x, support & ~ill[:, None])
        out = w + step
        moved = np.abs(step).max(axis=1) > 1e-8 * np.abs(out).max(axis=1)
        bad = ill | moved | ~np.all(np.isfinite(out), axis=1)
    _lstsq_rows(x, y, support, targets, np.flatnonzero(bad), out)
    return out


def _lstsq_rows(
    x: np.ndarray,
    y: np.ndarray,
    support: np.ndarray,
    targets: np.ndarray,
    rows: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[p]`` = :func:`_lstsq` of column ``targets[p]`` of ``y`` on the columns
    ``support[p]`` of ``x`` (zeros elsewhere), problem by problem, for every p in ``rows``."""
    for p in rows:
        cols = support[p]
        out[p] = 0.0
        out[p, cols] = _lstsq(x[:, cols], y[:, [targets[p]]])[:, 0]


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares of every column of ``b`` on ``a`` (pysindy's unbias step): Householder
    QR (LAPACK gels, ~5x faster than the SVD-based ``lstsq`` on these small problems)
    where R shows the columns well conditioned; otherwise ``lstsq``'s minimum-norm
    solution."""
    if a.shape[0] >= a.shape[1]:
        qr, out, info = scipy.linalg.lapack.dgels(a, b)
        r = np.abs(np.diag(qr[: a.shape[1]]))
        if info == 0 and r.min() > 1e-10 * r.max():
            return out[: a.shape[1]]
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _rms(a: np.ndarray) -> np.ndarray:
    s = np.sqrt(np.mean(np.asarray(a, dtype=np.float64) ** 2, axis=0))
    return np.where(s > 0, s, 1.0)
