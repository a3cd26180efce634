"""Issue 3, "Quality", second bullet: on circle trajectories from the trainer, the default
linear fit over the first 1000 steps is not dominated by the paper's own method
(scikit-learn Lasso, alpha 0.01, on x[t+1] - x[t]), and its rollout stays finite and close
to the data.

Training plus the rollout compilations take ~30-60 s on two CPU cores: second stage.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow

P = 23  # 11 circles; p = 59 (29 circles) is the paper's size but ~3x slower to train
R2_MARGIN = 0.05  # "clearly higher" one-step R^2, for a model with more terms than Lasso
ROLLOUT_R2_MIN = 0.5  # "close to the data"


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def circle_case(request):
    from sklearn.linear_model import Lasso
    from sklearn.metrics import r2_score

    import dynafit
    from training import TrainConfig, train

    traj = train(TrainConfig(p=P, dim=128, steps=1000, dtype="float32"), [request.param])
    run = traj.run(0).window(0, 1000)
    model = dynafit.fit(run, family="linear")
    scores = model.score(run)

    x = np.asarray(run.x, dtype=np.float64)
    X, D = x[:-1], x[1:] - x[:-1]
    lasso = Lasso(alpha=0.01).fit(X, D)
    lasso_r2 = float(r2_score(D, lasso.predict(X)))  # uniform average over variables
    lasso_terms = int(np.count_nonzero(lasso.coef_) + np.count_nonzero(lasso.intercept_))
    return model, scores, lasso_r2, lasso_terms


def test_circle_rollout_stays_finite(circle_case):
    model, scores, _, _ = circle_case
    assert not scores["diverged"], model.sweep
    assert np.isfinite(scores["rollout_r2"])
    # the sweep shows which candidates integrate, and the chosen one does
    assert {"rollout_finite", "rollout_r2"} <= set(model.sweep)
    chosen = model.sweep.loc[model.sweep["selected"]].iloc[0]
    assert bool(chosen["rollout_finite"])
    # eligible: within the default slack (0.1) of the best candidate's rollout R^2
    best = model.sweep.loc[model.sweep["rollout_finite"], "rollout_r2"].max()
    assert chosen["rollout_r2"] >= best - 0.1


def test_circle_fit_not_dominated_by_paper_lasso(circle_case):
    model, scores, lasso_r2, lasso_terms = circle_case
    r2, terms = scores["onestep_r2"], int(scores["n_terms"])
    msg = f"dynafit: R^2 {r2:.4f}, {terms} terms; Lasso: R^2 {lasso_r2:.4f}, {lasso_terms} terms"
    assert r2 >= lasso_r2, msg
    assert terms <= lasso_terms or r2 >= lasso_r2 + R2_MARGIN, msg
    assert not scores["diverged"] and scores["rollout_r2"] >= ROLLOUT_R2_MIN, (
        f"{msg}; rollout R^2 {scores['rollout_r2']:.4f}"
    )
