"""fit_recent: the fit's start chosen by a held-out forecast (issue 14)."""

import numpy as np
import pytest
from _systems import simulate

import dynafit

A_EARLY = np.array([[0.4, -1.0], [1.0, 0.4]])  # a growing spiral: the transient
A_LATE = np.array([[-0.3, -1.0], [1.0, -0.3]])  # the dynamics that go on
SWITCH = 3.0


def _regime_switch():
    """x' = A_EARLY x until t = 3, then x' = A_LATE x: the data before 3 follow dynamics
    no single linear model shares with the rest. Returns the window 0..8 and 8..12."""
    dt = 0.05
    early_t = np.arange(0.0, SWITCH + dt / 2, dt)
    early = simulate(lambda x: A_EARLY @ x, np.array([[1.0, 0.0]]), early_t)[0]
    late_t = np.arange(SWITCH, 12.0 + dt / 2, dt)
    late = simulate(lambda x: A_LATE @ x, early[-1:], late_t - SWITCH)[0]
    t = np.concatenate([early_t, late_t[1:]])
    x = np.concatenate([early, late[1:]])
    traj = dynafit.Trajectory(t, x, ["u", "v"])
    return traj.window(0.0, 8.0), traj.window(8.0, 12.0)


def _forecast_error(model, future):
    ys = model.simulate(future.t - future.t[0], future.x[0])
    return float(np.sqrt(np.mean((ys - future.x) ** 2)))


def test_fit_recent_skips_a_transient_and_forecasts_better(tmp_path):
    window, future = _regime_switch()
    whole = dynafit.fit(window, "linear", threshold=0.0)
    recent = dynafit.fit_recent(window, "linear", threshold=0.0)
    info = recent.options["recent"]
    assert info["start"] >= SWITCH  # a start after the transient was chosen
    assert recent.options["t_range"] == pytest.approx([info["start"], 8.0])
    assert info["holdout_start"] == pytest.approx(6.4)
    assert [c["start"] for c in info["candidates"]] == pytest.approx([0.0, 3.2, 4.8, 5.6])
    errs = [c["rel_rmse"] for c in info["candidates"]]
    assert errs[0] > 10 * min(errs[1:])  # the start at 0 forecast the held-out part worst
    # the late dynamics are recovered, and the forecast beyond the window is far closer
    np.testing.assert_allclose(recent.coefficients[:, 1:], A_LATE, atol=0.02)
    assert _forecast_error(recent, future) < 0.1 * _forecast_error(whole, future)
    # the record survives a save and load (JSON, no code)
    recent.save(tmp_path / "recent.json")
    assert dynafit.load_model(tmp_path / "recent.json").options["recent"] == info


def test_fit_recent_keeps_the_whole_window_when_nothing_is_off_model():
    window, _ = _regime_switch()
    late = window.window(SWITCH, 8.0)  # one regime throughout
    model = dynafit.fit_recent(late, "linear", threshold=0.0, starts=(0.0, 0.5))
    errs = [c["rel_rmse"] for c in model.options["recent"]["candidates"]]
    assert max(errs) < 1e-2  # both starts forecast the held-out part
    np.testing.assert_allclose(model.coefficients[:, 1:], A_LATE, atol=0.02)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"holdout": 0.0}, "holdout must be a fraction"),
        ({"holdout": 1.5}, "holdout must be a fraction"),
        ({"holdout": True}, "holdout must be a fraction"),
        ({"starts": ()}, "starts must be"),
        ({"starts": (0.0, 1.0)}, "starts must be"),
        ({"starts": "abc"}, "starts must be"),
    ],
)
def test_fit_recent_bad_input(kwargs, words):
    window, _ = _regime_switch()
    with pytest.raises(ValueError, match=words):
        dynafit.fit_recent(window, "linear", **kwargs)


def test_fit_recent_too_short_and_not_a_trajectory():
    window, _ = _regime_switch()
    with pytest.raises(ValueError, match="no candidate start leaves 10 samples"):
        dynafit.fit_recent(window.window(0.0, 0.4), "linear")
    with pytest.raises(ValueError, match="needs a dynafit.Trajectory"):
        dynafit.fit_recent(window.x, "linear")
