"""The pysindy adapter: one fit by a pysindy optimiser (SR3, the bagged ensemble, or
STLSQ on data that are not finite), its expected warnings silenced and nothing else."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pysindy as ps
import scipy.linalg
import sklearn
from sklearn.exceptions import ConvergenceWarning

from ._stlsq import ONE_THREAD_SIZE, threadpools


def pysindy_fit(X: np.ndarray, Y: np.ndarray, threshold: float, optimizer: str, opts: dict):
    """One fit by a pysindy optimiser (SR3, the ensemble, or STLSQ on data that are
    not finite); coefficients (k, n)."""
    alpha = opts["alpha"] * X.shape[0]
    stlsq: dict[str, Any] = dict(threshold=threshold, alpha=alpha, max_iter=opts["max_iter"])
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
    threads = 1 if X.size < ONE_THREAD_SIZE else None
    try:
        # inputs are checked once on construction: sklearn need not re-validate the
        # arguments of every ridge and least-squares call inside the optimiser
        with (
            warnings.catch_warnings(),
            threadpools().limit(limits=threads),
            sklearn.config_context(assume_finite=True, skip_parameter_validation=True),
        ):
            _ignore_expected_warnings()
            opt.fit(X, Y)
    finally:
        np.random.set_state(state)
    coef = np.asarray(opt.coef_, dtype=np.float64).reshape(Y.shape[1], X.shape[1])
    return np.where(np.isfinite(coef), coef, 0.0)


def _ignore_expected_warnings() -> None:
    """Inside a ``warnings.catch_warnings()`` block: silence what pysindy's optimisers say
    on a threshold sweep by design (its high thresholds eliminate every term; the capped
    iterations of STLSQ and SR3; scikit-learn's ridge falling back to least squares on a
    singular system), and nothing else."""
    warnings.filterwarnings("ignore", "Sparsity parameter is too big", UserWarning)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", "Singular matrix in solving dual problem", UserWarning)
    warnings.filterwarnings("ignore", category=scipy.linalg.LinAlgWarning)
