"""refine: never worse, better where SINDy's rollout is poor, errors for bad input."""

import warnings

import numpy as np
import pytest
from _systems import add_noise, simulate

import dynafit

HORIZONS = [10, 25, 50]  # one shape for every test here: one compilation


def _coarse_linear(noise=0.02, seed=0):
    """A 3-variable damped oscillator sampled coarsely: forward differences bias SINDy."""
    A = np.array([[-0.3, 1.0, 0.0], [-1.0, -0.3, 0.2], [0.0, 0.0, -0.5]])
    b = np.array([0.5, 0.0, 1.0])
    t = np.linspace(0.0, 10.0, 51)
    x0s = np.array([[2.0, 0.0, 0.5], [-1.0, 1.5, 3.0]])
    X = simulate(lambda x: A @ x + b, x0s, t)
    if noise:
        X = add_noise(X, noise, seed)
    return dynafit.Trajectory(t, X, ["u", "v", "w"]), np.concatenate([b[:, None], A], 1)


@pytest.fixture(scope="module")
def data():
    traj, xi_true = _coarse_linear()
    # a fixed threshold: the automatic choice on data this short already matches
    # trajectories (it refines its candidates), which would leave refine nothing to do
    model = dynafit.fit(traj, "linear", derivative="forward", threshold=0.05)
    return traj, model


def _r2(model, traj):
    return float(np.mean(model.score(traj)["rollout_r2"]))


def test_refine_improves_a_poor_rollout_and_keeps_support(data):
    traj, model = data
    refined = dynafit.refine(model, traj, steps=60, horizons=HORIZONS, lr=0.05)
    before, after = _r2(model, traj), _r2(refined, traj)
    assert after >= before
    assert after > before + 0.02 or after > 0.99, (before, after)
    np.testing.assert_array_equal(refined.coefficients == 0, model.coefficients == 0)
    info = refined.options["refine"]
    assert refined.options["variant"] == "refined" and info["improved"]
    assert info["rollout_r2"] == pytest.approx(after, abs=1e-6)
    assert refined.family == model.family and refined.names == model.names


def test_refine_never_worse_even_with_a_wild_learning_rate(data):
    traj, model = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        refined = dynafit.refine(model, traj, steps=20, horizons=HORIZONS, lr=1e3)
    assert _r2(refined, traj) >= _r2(model, traj)
    assert np.all(np.isfinite(refined.coefficients))


def test_refine_diverged_model_starts_short_and_does_not_raise(data):
    traj, model = data
    xi = model.coefficients.copy()
    xi[:, 1:] += 3.0 * np.eye(3)  # push every eigenvalue to the right: the rollout blows up
    bad = model.with_coefficients(xi)
    assert np.all(bad.score(traj)["diverged"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        refined = dynafit.refine(bad, traj, steps=30, horizons=HORIZONS, lr=0.05)
    assert np.all(np.isfinite(refined.coefficients))
    assert _r2(refined, traj) >= _r2(bad, traj)


def test_refine_bad_input(data):
    traj, model = data
    with pytest.raises(ValueError, match="longer than the window"):
        dynafit.refine(model, traj, horizons=[10, 500])
    with pytest.raises(ValueError, match="steps"):
        dynafit.refine(model, traj, steps=-1)
    with pytest.raises(ValueError, match="lr"):
        dynafit.refine(model, traj, lr=0.0)
    with pytest.raises(ValueError, match="adjoint"):
        dynafit.refine(model, traj, adjoint="magic")
    with pytest.raises(ValueError, match="variables"):
        dynafit.refine(model, traj.select(["u", "v"]))
    with pytest.raises(ValueError, match="Trajectory"):
        dynafit.refine(model, traj.x)
    with pytest.raises(ValueError, match="NaN or inf"):  # a model cannot hold them at all
        model.with_coefficients(np.full_like(model.coefficients, np.nan))


def test_refine_lm_as_good_as_adam_in_fewer_steps(data):
    """Levenberg-Marquardt (optimistix) on the rollout residuals: at least adam's rollout
    R^2 on the same support, in far fewer iterations (issue 23)."""
    traj, model = data
    adam = dynafit.refine(model, traj, steps=60, horizons=HORIZONS, lr=0.05)
    lm = dynafit.refine(model, traj, steps=60, horizons=HORIZONS, optimizer="lm")
    assert _r2(lm, traj) >= _r2(adam, traj) - 1e-3, (_r2(lm, traj), _r2(adam, traj))
    np.testing.assert_array_equal(lm.coefficients == 0, model.coefficients == 0)
    info = lm.options["refine"]
    assert info["optimizer"] == "lm" and info["improved"]
    assert info["steps_run"] <= 60


def test_refine_lm_diverged_start_does_not_raise(data):
    traj, model = data
    xi = model.coefficients.copy()
    xi[:, 1:] += 3.0 * np.eye(3)
    bad = model.with_coefficients(xi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        refined = dynafit.refine(bad, traj, steps=30, horizons=HORIZONS, optimizer="lm")
    assert np.all(np.isfinite(refined.coefficients))
    assert _r2(refined, traj) >= _r2(bad, traj)


def test_refine_fit_initial_state_recovers_a_corrupted_first_point():
    """The first observation is off by a lot: fitting the initial state moves the rollout's
    start back near the true one, and the record has x0, rss and n_params."""
    traj, xi_true = _coarse_linear(noise=0.0)
    x = traj.x.copy()
    true_x0 = x[:, 0].copy()
    x[:, 0] += np.array([1.5, -1.0, 0.8])
    bad_start = dynafit.Trajectory(traj.t, x, traj.names)
    model = dynafit.fit(traj, "linear", threshold=0.05).with_coefficients(xi_true)
    out = dynafit.refine(
        model, bad_start, steps=30, horizons=HORIZONS, optimizer="lm", fit_initial_state=True
    )
    info = out.options["refine"]
    x0 = np.asarray(info["x0"])
    assert x0.shape == (2, 3)
    assert np.abs(x0 - true_x0).max() < 0.4, (x0, true_x0)  # corrupted by up to 1.5
    assert info["n_params"] == np.count_nonzero(xi_true) + 6
    assert info["rss"] is not None and info["rss"] >= 0
    plain = dynafit.refine(model, bad_start, steps=30, horizons=HORIZONS, optimizer="lm")
    assert "x0" not in plain.options["refine"]
    with pytest.raises(ValueError, match="fit_initial_state"):
        dynafit.refine(model, traj, fit_initial_state="yes")
