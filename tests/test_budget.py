"""The shared-budget family (budget_share): a synthetic competition whose law and
survivor count are recovered from its transient; its stable state; bad input."""

from __future__ import annotations

import numpy as np
import pytest

import dynafit
from dynafit.families import BudgetShare

NAMES = [f"S{i}" for i in range(1, 9)]
W_TRUE = np.array([3.0, 2.6, 2.4, 1.2, 1.0, 0.8, 0.5, 0.3])
W_TRUE = W_TRUE / W_TRUE.mean()
BUDGET, DECAY, GAMMA = 3.0, 0.01, 0.75


@pytest.fixture(scope="module")
def truth():
    fam = BudgetShare(GAMMA, W_TRUE)
    return dynafit.Model(fam, NAMES, fam.coefficient_matrix(BUDGET, DECAY, len(NAMES)))


@pytest.fixture(scope="module")
def transient(truth):
    """200 time units from a start far from equilibrium (all circles of similar size,
    shrinking): the survivors are not yet apart; float32 like the trainer's data."""
    t = np.arange(0.0, 201.0)
    x0 = np.random.default_rng(1).uniform(60.0, 80.0, len(NAMES))
    ys = truth.simulate(t, x0)
    return dynafit.Trajectory(t, ys.astype(np.float32), NAMES)


def test_law_and_count_recovered_from_the_transient(truth, transient):
    model = dynafit.fit(transient, BudgetShare(GAMMA))
    np.testing.assert_allclose(model.family.weights, W_TRUE, rtol=2e-2)
    got, want = dynafit.budget_state(model), dynafit.budget_state(truth)
    assert got["decay"] == pytest.approx(DECAY, rel=2e-2)
    assert got["budget"] == pytest.approx(BUDGET, rel=2e-2)
    # the law's own count: shares w^(1/(1-g)) / sum = .49, .28, .20, ... against the
    # paper's threshold, 4 / p = .235 of the total: 2 of 8
    assert want["survivors"] == ["S1", "S2"] and want["count"] == 2
    assert got["survivors"] == want["survivors"]
    # against the run's own end (20,000 time units): names and count right
    table = dynafit.compare_survivors(model, _long(truth, transient), t=200.0)
    by = table.set_index("method")
    assert by.loc["model", "f1"] == 1.0 and by.loc["model", "count_error"] == 0
    # fitted on the recent half of the window: the record says so
    assert model.options["t_range"] == [100.0, 200.0]


def _long(truth, transient):
    t = np.arange(0.0, 20001.0, 25.0)
    ys = truth.simulate(t, transient.x[0].astype(np.float64))
    return dynafit.Trajectory(t, ys, NAMES)


def test_stable_state_is_where_the_law_settles(truth, transient):
    st = dynafit.budget_state(truth)
    assert st["total"] == pytest.approx(BUDGET / DECAY)
    assert st["state"].sum() == pytest.approx(BUDGET / DECAY)
    end = truth.simulate(np.linspace(0.0, 20000.0, 50), transient.x[-1].astype(np.float64))[-1]
    np.testing.assert_allclose(end, st["state"], rtol=1e-3, atol=1e-3)
    # rollout and stable state name the same survivors
    run = _long(truth, transient)
    by_roll = dynafit.compare_survivors(truth, run, t=200.0, model_state="rollout")
    by_state = dynafit.compare_survivors(truth, run, t=200.0, model_state="equilibrium")
    assert list(by_roll["predicted"]) == list(by_state["predicted"])


def test_saved_model_round_trips(truth, transient, tmp_path):
    model = dynafit.fit(transient, BudgetShare(GAMMA))
    path = model.save(tmp_path / "budget.json")
    assert "pickle" not in path.read_text()
    back = dynafit.load_model(path)
    assert isinstance(back.family, BudgetShare) and back.family == model.family
    np.testing.assert_array_equal(back.coefficients, model.coefficients)
    assert str(back) == str(model) and back.options == model.options
    assert dynafit.budget_state(back)["survivors"] == ["S1", "S2"]
    np.testing.assert_allclose(
        back.simulate(transient.t, transient.x[0]), model.simulate(transient.t, transient.x[0])
    )
    # a tampered shared quantity no longer matches the family: refused, not guessed
    data = model.to_dict()
    data["family_params"]["gamma"] = 0.5
    with pytest.raises(ValueError, match="shared quantities"):
        dynafit.Model.from_dict(data)
    data = model.to_dict()
    data["shared"][0]["tree"] = {"op": "eval", "args": []}
    with pytest.raises(ValueError, match="unknown operator"):
        dynafit.Model.from_dict(data)


def test_fixed_points_give_the_stable_state(truth, transient):
    (point,) = truth.fixed_points()
    np.testing.assert_allclose(point["x"], dynafit.budget_state(truth)["state"])
    assert point["stable"] and point["feasible"] and point["method"] == "budget_share"
    np.testing.assert_allclose(truth.rhs(0.0, point["x"]), 0.0, atol=1e-4)
    scores = truth.score(transient)
    assert not scores["diverged"] and scores["rollout_r2"] > 0.999


def test_fit_dispatches_through_the_parts(transient):
    from dynafit import parts

    stages = parts.Stages(
        derivative=parts.Centered(order=4),
        regression=parts.BudgetLeastSquares(start=0.5),
        selection=None,
        matching=None,
    )
    by_parts = dynafit.fit(transient, BudgetShare(GAMMA), stages=stages)
    by_names = dynafit.fit(transient, BudgetShare(GAMMA), derivative="centered", order=4)
    np.testing.assert_allclose(by_parts.coefficients, by_names.coefficients)
    assert by_parts.options["derivative"] == "centered"
    with pytest.raises(ValueError, match="BudgetLeastSquares"):
        dynafit.fit(transient, BudgetShare(GAMMA), stages=parts.Stages())
    with pytest.raises(ValueError, match="do not apply"):
        dynafit.fit(transient, BudgetShare(GAMMA), threshold=0.1)
    with pytest.raises(ValueError, match="matching"):
        parts.Stages(regression=parts.BudgetLeastSquares(), selection=None)


def test_equations_name_the_budget_once(truth):
    text = str(truth)
    assert "Z = " in text and "S1**(3/4)/Z" in text


def test_bad_input():
    with pytest.raises(ValueError, match="gamma"):
        BudgetShare(1.0)
    with pytest.raises(ValueError, match="gamma"):
        BudgetShare("0.5")
    t = np.arange(20.0)
    x = np.ones((20, 3))
    x[4, 1] = -1.0
    with pytest.raises(ValueError, match="positive"):
        dynafit.fit(dynafit.Trajectory(t, x, ["a", "b", "c"]), BudgetShare())
    ok = dynafit.Trajectory(t, np.ones((20, 3)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="unknown option"):
        dynafit.fit(ok, BudgetShare(), steps=10)
    with pytest.raises(ValueError, match="start"):
        dynafit.fit(ok, BudgetShare(), start=1.0)
    with pytest.raises(ValueError, match="at least 5"):
        dynafit.fit(ok.window(0, 6), BudgetShare(), start=0.5)
    lin = dynafit.fit(ok, "linear")
    with pytest.raises(ValueError, match="budget_share"):
        dynafit.budget_state(lin)
    with pytest.raises(ValueError, match="equilibrium"):
        dynafit.compare_survivors(lin, ok, t=10.0, model_state="equilibrium")
