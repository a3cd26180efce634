"""One rule for choosing among trajectory-matched candidates: AICc on rollout residuals.

Short data (tens of samples) cannot vouch for a model through held-out derivatives; the
candidates are refined by trajectory matching (:func:`dynafit.refine`) and compared by
the second-order Akaike information criterion of their rollout residuals,

    AICc = sum_i n_eff_i log(RSS_i / n_i) + 2 k + 2 k (k + 1) / (N_eff - k - 1),

with ``k`` the number of fitted coefficients (plus fitted initial states, when they are
fitted), one Gaussian variance per variable, and ``N_eff = sum_i n_eff_i``. Rollout
residuals are serially correlated even for the right law (observation noise seen
through a trajectory that was fitted to it), so the sample size is the effective one of
an AR(1) series, ``n_eff = n (1 - rho) / (1 + rho)``, with ``rho`` the lag-1
autocorrelation of the residuals of the best-fitting candidate (the one whose residuals
are closest to noise); one ``n_eff`` for every candidate, so the criteria stay
comparable. A candidate with ``k >= N_eff - 1`` has more parameters than the data can
support and scores +inf.

The chosen candidate has the least AICc; candidates within ``CLOSE`` of it (an
evidence ratio under e, Burnham & Anderson's "substantial support") are reported as
close, and the evidence ratio exp(delta / 2) to the runner-up is recorded with the
model (``options["choice"]``). Among close candidates the sparsest is kept (``tie``;
the default is fitted on the tuning half of the regime benchmark, see
``benchmarks/regimes.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: AICc differences below this are "close" (evidence ratio below e); Burnham & Anderson
CLOSE = 2.0


def lag1_autocorrelation(res: np.ndarray) -> float:
    """Pooled lag-1 autocorrelation of residuals (R, T, m) over runs and variables,
    clipped to [0, 0.99] (negative correlation does not raise the sample size)."""
    r = res - res.mean(axis=1, keepdims=True)
    num = float(np.sum(r[:, 1:] * r[:, :-1]))
    den = float(np.sum(r * r))
    if not np.isfinite(num) or den <= 0:
        return 0.0
    return float(np.clip(num / den, 0.0, 0.99))


def effective_fraction(rho: float) -> float:
    """n_eff / n of an AR(1) series with lag-1 correlation ``rho``."""
    return (1.0 - rho) / (1.0 + rho)


def aicc(res: np.ndarray, k: int, fraction: float) -> float:
    """AICc of residuals ``res`` (R, T, m) with ``k`` fitted parameters, one Gaussian
    variance per variable, and ``fraction`` of the samples counted as independent."""
    res = np.asarray(res, dtype=np.float64)
    if not np.all(np.isfinite(res)):
        return np.inf
    m = res.shape[-1]
    flat = res.reshape(-1, m)
    n = flat.shape[0]
    mse = np.mean(flat**2, axis=0)
    mse = np.maximum(mse, np.finfo(np.float64).tiny)
    n_eff = fraction * n * m
    if k >= n_eff - 1:
        return np.inf
    return float(fraction * n * np.sum(np.log(mse)) + 2 * k + 2 * k * (k + 1) / (n_eff - k - 1))


@dataclass(frozen=True)
class Choice:
    """The outcome of :func:`choose`: ``pick`` indexes the candidates."""

    pick: int
    scores: np.ndarray  # AICc per candidate (+inf: not supported, diverged)
    best: int  # least AICc (the pick unless a sparser one is within ``tie``)
    runner_up: int | None
    delta: float | None  # AICc(runner-up) - AICc(pick)
    close: bool
    rho: float
    fraction: float

    def record(self, labels: list | None = None) -> dict:
        """What the choice rested on, for ``model.options["choice"]``."""

        def label(j):
            return j if labels is None else labels[j]

        out = {
            "rule": "AICc of trajectory-matched (rollout) residuals, effective sample size "
            "from their lag-1 autocorrelation",
            "aicc": _finite(self.scores[self.pick]),
            "residual_lag1_correlation": round(self.rho, 4),
            "effective_fraction": round(self.fraction, 4),
            "runner_up": None if self.runner_up is None else label(self.runner_up),
            "runner_up_aicc": None
            if self.runner_up is None
            else _finite(self.scores[self.runner_up]),
            "evidence_ratio": None
            if self.delta is None
            else _finite(float(np.exp(min(self.delta, 1400.0) / 2.0))),
            "close": self.close,
        }
        if self.best != self.pick:
            out["least_aicc"] = label(self.best)
        return out


def choose(residuals: list[np.ndarray | None], n_params: list[int], *, tie: float = 0.0) -> Choice:
    """Choose among candidates by AICc of their rollout residuals.

    ``residuals[j]`` is candidate j's data minus rollout (R, T, m), or None where it
    diverged; ``n_params[j]`` its number of fitted parameters. The least AICc wins;
    with ``tie`` > 0, the candidate with fewest parameters among those within ``tie``
    of the least does. The runner-up is the best other candidate, its evidence ratio
    exp(delta / 2), and ``close`` says delta < ``CLOSE``.
    """
    if len(residuals) != len(n_params) or not residuals:
        raise ValueError("choose needs one parameter count per candidate, and candidates")
    sse = np.array(
        [
            np.inf if r is None or not np.all(np.isfinite(r)) else float(np.sum(r**2))
            for r in residuals
        ]
    )
    ref = int(np.argmin(sse)) if np.isfinite(sse).any() else None
    rho = 0.0 if ref is None else lag1_autocorrelation(np.asarray(residuals[ref]))
    frac = effective_fraction(rho)
    scores = np.array(
        [
            np.inf if r is None else aicc(np.asarray(r), int(k), frac)
            for r, k in zip(residuals, n_params)
        ]
    )
    if not np.isfinite(scores).any():
        # nothing the data can support: the candidate of fewest parameters
        pick = int(np.argmin(n_params))
        return Choice(pick, scores, pick, None, None, False, rho, frac)
    best = int(np.argmin(scores))
    pick = best
    if tie > 0:
        near = np.flatnonzero(scores <= scores[best] + tie)
        counts = np.asarray(n_params)[near]
        fewest = near[counts == counts.min()]
        pick = int(fewest[np.argmin(scores[fewest])])
    others = [j for j in range(len(scores)) if j != pick and np.isfinite(scores[j])]
    if not others:
        return Choice(pick, scores, best, None, None, False, rho, frac)
    runner = min(others, key=lambda j: (scores[j], n_params[j]))
    delta = float(scores[runner] - scores[pick])
    return Choice(pick, scores, best, runner, delta, abs(delta) < CLOSE, rho, frac)


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None
