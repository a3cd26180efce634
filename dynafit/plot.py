"""Every figure dynafit draws, in one place. Each function returns a matplotlib ``Figure``.

- :func:`rollouts`: the data against each model's rollout;
- :func:`coefficients`: the coefficient matrix of each model;
- :func:`sweep`: the threshold sweep behind a fit (its Pareto front);
- :func:`leaderboard`: a leaderboard's scores per family;
- :func:`inclusion`: how often an ensemble kept each term;
- :func:`r2_vs_dim`: R^2 against the embedding dimension over many runs
  (``dynafit.fit_many``'s table).
"""

from ._postfit import plot_inclusion as inclusion
from ._report._plot import plot_coefficients as coefficients
from ._report._plot import plot_leaderboard as leaderboard
from ._report._plot import plot_rollouts as rollouts
from ._report._plot import plot_sweep as sweep
from ._runs import plot_r2_vs_dim as r2_vs_dim

__all__ = ["coefficients", "inclusion", "leaderboard", "r2_vs_dim", "rollouts", "sweep"]
