"""Scores: keys, known answers, divergence, batches (vmapped), forecasts, family choice."""

import numpy as np
import pytest
from _systems import linear_traj, lv_traj
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import r2_score

import dynafit
from dynafit._derivatives import derivative_error_variance, differentiate
from dynafit._regression import information_criteria
from dynafit._score import SCORE_KEYS, r2, score_many


@pytest.fixture(scope="module")
def lv():
    traj, true = lv_traj(3, seed=1)
    exact = dynafit.Model("lotka_volterra", traj.names, true, {"derivative": "centered"})
    return traj, true, exact


def test_keys_and_exact_model(lv):
    traj, true, exact = lv
    s = exact.score(traj.run(0))
    assert set(SCORE_KEYS) <= set(s)
    assert isinstance(s["diverged"], bool) and not s["diverged"]
    assert s["deriv_r2"] > 0.999 and s["rollout_r2"] > 0.9999 and s["onestep_r2"] > 0.99
    assert s["rmse"] < 1e-3 and s["n_terms"] == np.count_nonzero(true)
    assert np.isfinite(s["aic"]) and s["bic"] > s["aic"]  # log(n) > 2


def test_r2_is_sklearns():
    rng = np.random.default_rng(0)
    y, yhat = rng.normal(size=(3, 40, 4)), rng.normal(size=(3, 40, 4))
    y[1, :, 2] = 1.0  # a constant column: sklearn's force_finite convention
    want = [r2_score(y[i], yhat[i]) for i in range(3)]
    np.testing.assert_allclose(r2(y, yhat), want)
    assert r2(y[1:2], y[1:2])[0] == 1.0


def test_onestep_is_the_papers_euler_step(lv):
    traj, true, exact = lv
    run = traj.run(0)
    x, t = run.x, run.t
    f = np.asarray(exact.rhs(0.0, x[:-1]))
    want = r2_score(np.diff(x, axis=0), f * np.diff(t)[:, None])
    assert exact.score(run)["onestep_r2"] == pytest.approx(want, rel=1e-5)


def test_batch_scores_are_per_run_and_match_single(lv):
    traj, true, exact = lv
    model = dynafit.fit(traj, "lotka_volterra")
    batch = model.score(traj)
    assert all(np.shape(batch[k]) == (traj.n_runs,) for k in SCORE_KEYS)
    single = model.score(traj.run(2))
    for key in ("deriv_r2", "onestep_r2", "rollout_r2", "rmse", "aic", "bic"):
        assert batch[key][2] == pytest.approx(single[key], rel=1e-4, abs=1e-9), key
    # one model per run, vmapped over the coefficient matrices
    many = score_many([exact, model, exact, model], traj)
    assert many["rollout_r2"][0] == pytest.approx(exact.score(traj)["rollout_r2"][0], rel=1e-6)
    assert many["n_terms"].tolist() == [exact.n_terms, model.n_terms] * 2
    with pytest.raises(ValueError, match="one model per run"):
        score_many([exact], traj)


def test_diverged_model_scores_worst_never_nan(lv):
    traj, true, exact = lv
    growth = np.zeros_like(true)
    growth[:, 0] = 8.0  # x_i' = 8 x_i: passes the blow-up bound within the window
    blow = exact.with_coefficients(growth)
    for s in (blow.score(traj.run(0)),):
        assert np.all(s["diverged"])
        for key in ("deriv_r2", "onestep_r2", "rollout_r2"):
            assert np.all(s[key] == -np.inf), key
        for key in ("rmse", "aic", "bic"):
            assert np.all(s[key] == np.inf), key
    s = blow.score(traj.run(0), horizon=2.0)
    assert s["forecast_r2"] == -np.inf and s["forecast_skill"] == -np.inf
    assert not any(np.isnan(v) for v in s.values() if isinstance(v, float))


def test_forecast_horizon_and_persistence(lv):
    traj, true, exact = lv
    run = traj.run(1)
    s = exact.score(run, horizon=2.0)
    for key in ("forecast_r2", "forecast_rmse", "forecast_skill", "forecast_diverged"):
        assert key in s
    assert s["forecast_skill"] > 0.95 and not s["forecast_diverged"]
    # the same with an explicit continuation
    inside, after = run.window(None, run.t[-1] - 2.0), run.window(run.t[-1] - 2.0 + 1e-9, None)
    s2 = exact.score(inside, forecast=after)
    assert s2["forecast_skill"] == pytest.approx(s["forecast_skill"], rel=1e-4)
    assert s2["rollout_r2"] == pytest.approx(s["rollout_r2"], rel=1e-6)
    # a model that does nothing is persistence: skill 0
    still = exact.with_coefficients(np.zeros_like(true))
    assert still.score(run, horizon=2.0)["forecast_skill"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="horizon"):
        exact.score(run, horizon=100.0)
    with pytest.raises(ValueError, match="not both"):
        exact.score(inside, horizon=1.0, forecast=after)
    with pytest.raises(ValueError, match="start after"):
        exact.score(run, forecast=after)


def test_score_bad_input(lv):
    traj, true, exact = lv
    other = dynafit.Trajectory(traj.t, traj.x[0], names=["a", "b", "c"])
    with pytest.raises(ValueError, match="lacks the model's variables"):
        exact.score(other)
    with pytest.raises(ValueError, match="Trajectory"):
        exact.score(traj.x)


def derivative_bic(model, traj):
    """BIC of the derivative residuals, pooled over runs (as score's bic, without rollouts)."""
    method, order = model.options["derivative"], model.options["order"]
    dxdt = differentiate(traj.x, traj.t, method, order=order)
    resid = dxdt - np.asarray(model.rhs(0.0, traj.x), dtype=float)
    floor = derivative_error_variance(traj.x, traj.t, method, order).mean()
    return information_criteria(resid, model.n_terms, floor)[1]


def test_information_criteria_floor():
    rng = np.random.default_rng(0)
    small = 1e-3 * rng.normal(size=(200, 3))
    tiny = 1e-5 * rng.normal(size=(200, 3))
    n = small.size
    # without a floor, the smaller residual wins by far
    assert information_criteria(tiny, 8)[1] < information_criteria(small, 4)[1] - 1000
    # below the floor, residuals carry no likelihood: equal fit, so more terms lose
    floor = 1e-6
    a4, b4 = information_criteria(small, 4, floor)
    a8, b8 = information_criteria(tiny, 8, floor)
    assert b8 - b4 == pytest.approx(4 * np.log(n)) and a8 - a4 == pytest.approx(8)
    # above the floor it is the plain Gaussian criterion
    assert information_criteria(small, 4, 1e-9) == information_criteria(small, 4)
    # the floor estimate: finite differences of clean data have a small truncation error;
    # noise of standard deviation s raises it by about s^2 times the difference's gain
    t = np.linspace(0, 10, 401)
    x = np.stack([np.sin(t), np.cos(0.5 * t)], axis=1)
    clean = derivative_error_variance(x, t, "centered", 2)
    noisy = derivative_error_variance(x + 1e-3 * rng.normal(size=x.shape), t, "centered", 2)
    assert 0 <= clean < 1e-4 and noisy > 10 * clean


def test_right_family_has_the_best_bic():
    # compare-free version of "the right family wins": BIC of each family's own fit;
    # within 10 of the best, the smaller library wins (linear = lotka_volterra < polynomial)
    # with 1 % noise and without (the variance floor keeps polynomial from buying
    # finite-difference truncation error with extra terms on clean data)
    cases = []
    for noise in (0.0, 0.01):
        lin, _ = linear_traj(4, seed=2, noise=noise)
        lvt, _ = lv_traj(3, seed=1, noise=noise)
        shift = dynafit.Trajectory(lin.t, lin.x - lin.x.min() + 1.0)  # positive, for LV
        cases += [(shift, "linear"), (lvt, "lotka_volterra")]
    for traj, right in cases:
        families = ("linear", "lotka_volterra", "polynomial")
        bic = {fam: derivative_bic(dynafit.fit(traj, fam), traj) for fam in families}
        best = min(bic.values())
        close = [f for f in families if bic[f] <= best + 10]
        assert right in close and (close[0] == right or bic[right] == best), bic


@settings(
    max_examples=3, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(m=st.integers(3, 6), seed=st.integers(0, 10_000))
def test_random_sparse_linear_systems(m, seed):
    traj, true = linear_traj(m, seed=seed, runs=4, T=101)
    model = dynafit.fit(traj, "linear")
    np.testing.assert_array_equal(model.coefficients != 0, true != 0)
    sup = true != 0
    assert np.max(np.abs(model.coefficients - true)[sup] / np.abs(true[sup])) < 0.02
