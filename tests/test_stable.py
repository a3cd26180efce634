"""The stable linear fit: Hurwitz by construction, fits a stable system, forecasts."""

import numpy as np
import pytest
from _systems import add_noise, simulate

import dynafit


def _damped(noise=0.01, T=61, tmax=12.0):
    A = np.array(
        [
            [-0.2, 1.0, 0.0, 0.0],
            [-1.0, -0.2, 0.0, 0.3],
            [0.0, 0.0, -0.4, 0.0],
            [0.2, 0.0, 0.0, -0.3],
        ]
    )
    b = np.array([0.2, 0.0, 0.8, 0.1])
    t = np.linspace(0.0, tmax, T)
    X = simulate(lambda x: A @ x + b, np.array([[2.0, 0.0, 0.5, 1.0], [-1.0, 1.5, 3.0, 0.0]]), t)
    return dynafit.Trajectory(t, add_noise(X, noise, 0), ["a", "b", "c", "d"]), A


@pytest.fixture(scope="module")
def stable_model():
    traj, A = _damped()
    return dynafit.fit_stable(traj.window(0, 8), steps=30, horizons=[10, 20, 40]), traj, A


def test_stable_fit_is_hurwitz_and_fits(stable_model):
    model, traj, A = stable_model
    assert model.family.name == "linear" and model.options["variant"] == "stable"
    eig = np.linalg.eigvals(model.coefficients[:, 1:])
    assert eig.real.max() < 0
    assert model.options["stable"]["max_real_eigenvalue"] == pytest.approx(eig.real.max())
    scores = model.score(traj.window(0, 8))
    assert np.min(scores["rollout_r2"]) > 0.95
    # a forecast past the window beats holding the last value
    fc = model.score(traj, horizon=4.0)
    assert np.min(fc["forecast_skill"]) > 0.0


def test_stable_low_rank_and_bad_input(stable_model):
    _, traj, _ = stable_model
    low = dynafit.fit_stable(traj, rank=2, steps=0)
    A = low.coefficients[:, 1:]
    scale = np.abs(A).max()
    assert np.linalg.eigvals(A).real.max() < 1e-5 * scale  # Hurwitz on 2 components, 0 elsewhere
    assert np.linalg.matrix_rank(A, tol=1e-4 * scale) == 2
    for bad in (0, 5, 2.5):
        with pytest.raises(ValueError, match="rank"):
            dynafit.fit_stable(traj, rank=bad)
    with pytest.raises(ValueError, match="eps"):
        dynafit.fit_stable(traj, eps=0.0)
    with pytest.raises(ValueError, match="steps"):
        dynafit.fit_stable(traj, steps=-1)


def test_compare_adds_a_stable_linear_row():
    traj, _ = _damped()
    board = dynafit.compare(
        traj,
        ["linear"],
        stable=True,
        horizon=4.0,
        stable_options={"steps": 20, "horizons": [10, 20, 40]},
    )
    assert sorted(zip(board["family"], board["variant"])) == [
        ("linear", "sindy"),
        ("linear", "stable"),
    ]
    row = board[board["variant"] == "stable"].iloc[0]
    assert row["status"] == "ok" and not row["diverged"]
    A = row["model"].coefficients[:, 1:]
    assert np.linalg.eigvals(A).real.max() < 0
    # fitted before the horizon, forecast over it: skill against holding the last value
    assert np.isfinite(row["forecast_skill"]) and row["forecast_skill"] > 0.0
