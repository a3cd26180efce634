"""One rule for choosing among trajectory-matched candidates: AICc on rollout residuals.

Short data (tens of samples) cannot vouch for a model through held-out derivatives; the
candidates are refined by trajectory matching (:func:`dynafit.refine`) and compared by
the second-order Akaike information criterion of their rollout residuals.

Rollout residuals are serially correlated even for the right law (observation noise
seen through a trajectory fitted to it; on clean data, the smooth error of the
integration and the matching), so the likelihood is that of a first-order
autoregressive Gaussian error, one variance and one lag-1 correlation per variable (the
exact AR(1) likelihood, correlation by conditional least squares, within +-0.99):

    -2 log L_i = n log(S_i / n) - R log(1 - rho_i^2),
    S_i = sum_runs [(1 - rho_i^2) r_0^2 + sum_t (r_t - rho_i r_{t-1})^2],
    AICc = sum_i -2 log L_i + 2 K + 2 K (K + 1) / (N - K - 1),

with ``K`` the fitted coefficients (plus fitted initial states, when fitted) plus the
2 m noise parameters, and ``N`` all residuals. A candidate with ``K >= N - 1`` has more
parameters than the data can support and scores +inf.

The chosen candidate has the least AICc; the runner-up's difference ``delta`` and
evidence ratio exp(delta / 2) are recorded with the model (``options["choice"]``), and
candidates within ``CLOSE`` (an evidence ratio under e, Burnham & Anderson's
"substantial support") are reported as close. With ``tie`` > 0 the sparsest candidate
within ``tie`` of the least wins (the default, 0, is what the tuning half of the regime
benchmark supports; see ``benchmarks/regimes.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: AICc differences below this are "close" (evidence ratio below e); Burnham & Anderson
CLOSE = 2.0
#: bound on the residuals' lag-1 correlation (keeps log(1 - rho^2) finite)
MAX_RHO = 0.99


def lag1_autocorrelation(res: np.ndarray) -> np.ndarray:
    """Per variable, the lag-1 correlation of residuals (R, T, m) by conditional least
    squares, pooled over runs, within +-``MAX_RHO``."""
    r = np.asarray(res, dtype=np.float64)
    num = np.sum(r[:, 1:] * r[:, :-1], axis=(0, 1))
    den = np.sum(r[:, :-1] ** 2, axis=(0, 1))
    with np.errstate(all="ignore"):
        rho = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.clip(np.nan_to_num(rho), -MAX_RHO, MAX_RHO)


def ar1_deviance(res: np.ndarray) -> tuple[float, np.ndarray]:
    """-2 log-likelihood (up to a constant) of residuals (R, T, m) under an AR(1)
    Gaussian error per variable, variance and correlation at their estimates; and the
    correlations."""
    r = np.asarray(res, dtype=np.float64)
    R, T, m = r.shape
    rho = lag1_autocorrelation(r)
    one = 1.0 - rho**2
    S = np.sum(one * r[:, 0] ** 2, axis=0) + np.sum((r[:, 1:] - rho * r[:, :-1]) ** 2, axis=(0, 1))
    n = R * T
    S = np.maximum(S / n, np.finfo(np.float64).tiny)
    return float(np.sum(n * np.log(S) - R * np.log(one))), rho


def aicc(res: np.ndarray, k: int) -> float:
    """AICc of residuals ``res`` (R, T, m) of a candidate with ``k`` fitted parameters
    (the AR(1) noise's 2 m parameters are added here)."""
    res = np.asarray(res, dtype=np.float64)
    if res.ndim != 3 or not np.all(np.isfinite(res)):
        return np.inf
    N = res.size
    K = int(k) + 2 * res.shape[-1]
    if K >= N - 1:
        return np.inf
    dev, _ = ar1_deviance(res)
    return float(dev + 2 * K + 2 * K * (K + 1) / (N - K - 1))


@dataclass(frozen=True)
class Choice:
    """The outcome of :func:`choose`: ``pick`` indexes the candidates."""

    pick: int
    scores: np.ndarray  # AICc per candidate (+inf: not supported, diverged)
    best: int  # least AICc (the pick unless a sparser one is within ``tie``)
    runner_up: int | None
    delta: float | None  # AICc(runner-up) - AICc(pick)
    close: bool
    rho: np.ndarray  # lag-1 correlation of the chosen candidate's residuals, per variable

    def record(self, labels: list | None = None) -> dict:
        """What the choice rested on, for ``model.options["choice"]``."""

        def label(j):
            return j if labels is None else labels[j]

        out = {
            "rule": "AICc of trajectory-matched (rollout) residuals under an AR(1) Gaussian "
            "error per variable",
            "aicc": _finite(self.scores[self.pick]),
            "residual_lag1_correlation": [round(float(v), 4) for v in self.rho],
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
    scores = np.array(
        [np.inf if r is None else aicc(np.asarray(r), int(k)) for r, k in zip(residuals, n_params)]
    )

    def rho_of(j):
        r = residuals[j]
        return np.zeros(0) if r is None else lag1_autocorrelation(np.asarray(r))

    if not np.isfinite(scores).any():
        # nothing the data can support: the candidate of fewest parameters
        pick = int(np.argmin(n_params))
        return Choice(pick, scores, pick, None, None, False, rho_of(pick))
    best = int(np.argmin(scores))
    pick = best
    if tie > 0:
        near = np.flatnonzero(scores <= scores[best] + tie)
        counts = np.asarray(n_params)[near]
        fewest = near[counts == counts.min()]
        pick = int(fewest[np.argmin(scores[fewest])])
    others = [j for j in range(len(scores)) if j != pick and np.isfinite(scores[j])]
    if not others:
        return Choice(pick, scores, best, None, None, False, rho_of(pick))
    runner = min(others, key=lambda j: (scores[j], n_params[j]))
    delta = float(scores[runner] - scores[pick])
    return Choice(pick, scores, best, runner, delta, abs(delta) < CLOSE, rho_of(pick))


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None
