"""The score names, defined once, each with the direction in which it is better.

Every table of scores (``Model.score``, the leaderboard of ``compare`` and ``fit_many``,
the run summaries and the reports) reads its column names and the sense of "best" from
here: a score is either :attr:`Better.HIGHER` (R^2, skill, survivor precision and recall)
or :attr:`Better.LOWER` (errors, information criteria, the number of terms). The
``diverged`` flags are not scores and have no direction.
"""

from __future__ import annotations

import enum


class Better(enum.Enum):
    """In which direction a score is better."""

    HIGHER = "higher"
    LOWER = "lower"


#: Every score dynafit writes, with its direction (the order in which tables show them).
SCORES: dict[str, Better] = {
    "deriv_r2": Better.HIGHER,
    "onestep_r2": Better.HIGHER,
    "rollout_r2": Better.HIGHER,
    "rmse": Better.LOWER,
    "n_terms": Better.LOWER,
    "aic": Better.LOWER,
    "bic": Better.LOWER,
    "rollout_aicc": Better.LOWER,
    "forecast_r2": Better.HIGHER,
    "forecast_rmse": Better.LOWER,
    "forecast_skill": Better.HIGHER,
    "survivor_precision": Better.HIGHER,
    "survivor_recall": Better.HIGHER,
}

#: What ``Model.score`` always returns, in order (``diverged``: a flag, not a score).
SCORE_KEYS = ("deriv_r2", "onestep_r2", "rollout_r2", "rmse", "n_terms", "aic", "bic", "diverged")
#: What ``Model.score`` adds when a forecast horizon is given.
FORECAST_KEYS = ("forecast_r2", "forecast_rmse", "forecast_skill", "forecast_diverged")
#: AICc of the rollout residuals (``dynafit._choice``): a leaderboard column that
#: ``compare`` adds when it ranks by it (the automatic choice's default), not a key of
#: ``Model.score``.
ROLLOUT_AICC = "rollout_aicc"
#: Information criteria: differences below the ranking tolerance mean "equally good".
INFORMATION_CRITERIA = frozenset({"aic", "bic", ROLLOUT_AICC})
#: The scores a table of many runs summarises by default (:func:`dynafit.summarize_runs`).
RUN_SUMMARY_SCORES = (
    "onestep_r2",
    "deriv_r2",
    "rollout_r2",
    "forecast_r2",
    "forecast_skill",
    "rmse",
    "n_terms",
    "bic",
    "survivor_precision",
    "survivor_recall",
)
#: The scores a report's and the terminal's leaderboard show, in order.
BOARD_SCORES = (
    "n_terms",
    "deriv_r2",
    "rollout_r2",
    "forecast_r2",
    "forecast_skill",
    "rmse",
    "aic",
    "bic",
    "diverged",
)


def better(name: str, default: Better | None = None) -> Better:
    """The direction in which the score ``name`` is better. A name that is not a score is
    ``default`` when one is given (a user's own column), else a ``ValueError`` naming the
    known scores."""
    if name in SCORES:
        return SCORES[name]
    if default is not None:
        return default
    raise ValueError(f"{name!r} is not a score; the scores are {sorted(SCORES)}")


def higher_is_better(name: str) -> bool:
    """True when a larger value of the score ``name`` is better (``ValueError`` for a name
    that is not a score)."""
    return better(name) is Better.HIGHER


def orientation(name: str, default: Better | None = None) -> float:
    """+1.0 for a score that is better high, -1.0 for one better low: multiplying a score
    by it makes "larger" mean "better". ``default`` as in :func:`better`."""
    return 1.0 if better(name, default) is Better.HIGHER else -1.0
