"""survivors, survival_scores, fittest and fixed points on systems with known answers."""

import numpy as np
import pytest

import dynafit


def _linear_model(A, b, names=None, **options):
    m = len(b)
    xi = np.concatenate([np.asarray(b, float)[:, None], np.asarray(A, float)], axis=1)
    return dynafit.Model("linear", names or [f"S{k + 1}" for k in range(m)], xi, options)


def test_survivors_known_winners():
    # dx/dt = -(x - x*): every run ends at x*; threshold 2 (0 + 2 * 5.3) / 7 = 3.03
    target = np.array([5.0, 0.1, 0.2])
    model = _linear_model(-np.eye(3), target, t_range=[0.0, 10.0])
    x0 = np.array([0.5, 3.0, 2.0])
    assert dynafit.survivors(model, x0, 50.0) == ["S1"]
    assert dynafit.survivors(model, x0, 50.0, threshold=0.15) == ["S1", "S3"]
    # a large S_0 raises the paper's threshold above everything
    assert dynafit.survivors(model, x0, 50.0, s0=100.0) == []


def test_survivors_bad_input():
    model = _linear_model(-np.eye(2), [1.0, 1.0], t_range=[0.0, 100.0])
    with pytest.raises(ValueError, match="shorter than the fitted window"):
        dynafit.survivors(model, [1.0, 1.0], 10.0)
    with pytest.raises(ValueError, match="positive"):
        dynafit.survivors(model, [1.0, 1.0], -5.0)
    with pytest.raises(ValueError, match="shape"):
        dynafit.survivors(model, [1.0, 1.0, 1.0], 200.0)
    with pytest.raises(ValueError, match="NaN"):
        dynafit.survivors(model, [np.nan, 1.0], 200.0)


def test_survivors_of_a_diverging_model_is_a_result():
    # S1 grows without bound: it is the survivor, and nothing raises
    model = _linear_model(np.diag([0.5, -1.0]), [0.0, 0.1])
    assert dynafit.survivors(model, [1.0, 1.0], 200.0) == ["S1"]


def test_survival_scores_against_meta():
    # threshold 4 * 9.4 / 13 = 2.9: S1 and S3 end above it
    target = np.array([5.0, 0.1, 4.0, 0.1, 0.1, 0.1])
    model = _linear_model(-np.eye(6), target)
    names = [f"S{k + 1}" for k in range(6)]
    t = np.linspace(0, 5, 11)
    x = np.stack([np.full(6, 1.0) + 0.1 * k for k in range(11)])
    runs = [
        dynafit.Trajectory(t, x, names, {"survivors": ["S1", "S3"]}),
        dynafit.Trajectory(t, x, names, {"survivors": [0, 1]}),  # indices
    ]
    table = dynafit.survival_scores(model, dynafit.Trajectory.stack(runs), 30.0)
    assert list(table["predicted"]) == ["S1,S3", "S1,S3"]
    assert table["precision"].tolist() == [1.0, 0.5]
    assert table["recall"].tolist() == [1.0, 0.5]
    assert dynafit.actual_survivors(runs[1]) == [["S1", "S2"]]


def _fittest_runs(rule, n_runs=12, m=9, seed=0):
    """Runs whose survivors are the 2 largest by ``rule`` ("signal" or "gradient")."""
    rng = np.random.default_rng(seed)
    t = np.arange(8.0)
    runs = []
    for _ in range(n_runs):
        s0 = rng.uniform(1.0, 2.0, m)
        rate = rng.uniform(-0.05, 0.05, m)
        x = s0 * (1 + rate * t[:, None])
        grad = (x[4] - x[3]) / x[0]
        key = s0 if rule == "signal" else grad
        alive = [f"S{k + 1}" for k in np.argsort(-key)[:2]]
        runs.append(dynafit.Trajectory(t, x, [f"S{k + 1}" for k in range(m)], {"survivors": alive}))
    return dynafit.Trajectory.stack(runs)


def test_fittest_auc_known_answer():
    by_signal = dynafit.fittest(_fittest_runs("signal"))
    # within a run the ranking is perfect; pooled over runs, scales overlap a little
    assert by_signal["auc_signal_per_run"] == 1.0 and by_signal["auc_signal"] > 0.85
    assert 0.2 < by_signal["auc_gradient"] < 0.8
    by_grad = dynafit.fittest(_fittest_runs("gradient"))
    assert by_grad["auc_gradient_per_run"] == 1.0 and by_grad["auc_gradient"] > 0.85
    assert 0.2 < by_grad["auc_signal"] < 0.8
    table = by_grad["table"]
    assert len(table) == 12 * 9 and by_grad["n_survivors"] == 24
    assert set(table.columns) >= {"run", "name", "initial_signal", "initial_gradient", "survived"}
    # the gradient is (S(4) - S(3)) / S(0) from the data itself
    first = table.iloc[0]
    run0 = _fittest_runs("gradient").run(0)
    assert first["initial_gradient"] == pytest.approx((run0.x[4, 0] - run0.x[3, 0]) / run0.x[0, 0])
    assert table.loc[table["run"] == 0, "rank_gradient"].min() == 1


def test_fittest_bad_input():
    runs = _fittest_runs("signal", n_runs=2)
    with pytest.raises(ValueError, match="survived"):
        dynafit.fittest(runs, survived=[["S1"]])
    short = dynafit.Trajectory(np.arange(3.0), np.ones((3, 2)))
    with pytest.raises(ValueError, match="no time"):
        dynafit.fittest(short)


def test_fixed_points_linear_stable_and_saddle():
    A = np.array([[-1.0, 0.5], [0.0, -2.0]])
    b = np.array([1.0, 4.0])
    (fp,) = _linear_model(A, b).fixed_points()
    np.testing.assert_allclose(fp["x"], np.linalg.solve(A, -b))
    np.testing.assert_allclose(sorted(fp["eigenvalues"].real), [-2.0, -1.0])
    assert fp["stable"]
    (saddle,) = _linear_model(np.diag([1.0, -1.0]), [1.0, 1.0]).fixed_points()
    np.testing.assert_allclose(saddle["x"], [-1.0, 1.0])
    assert not saddle["stable"] and not saddle["feasible"]


def test_fixed_points_lotka_volterra_interior_and_boundary():
    # weak competition: the interior equilibrium is stable, the boundary ones are not
    r = np.array([1.0, 1.0])
    a = np.array([[-1.0, -0.5], [-0.5, -1.0]])
    model = dynafit.Model("lotka_volterra", ["u", "v"], np.concatenate([r[:, None], a], 1))
    points = {tuple(np.round(p["x"], 6)): p for p in model.fixed_points()}
    assert set(points) == {(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (2 / 3, 2 / 3)} or set(points) == {
        (0.0, 0.0),
        (1.0, 0.0),
        (0.0, 1.0),
        (round(2 / 3, 6), round(2 / 3, 6)),
    }
    interior = points[(round(2 / 3, 6), round(2 / 3, 6))]
    assert interior["stable"] and interior["feasible"]
    assert not points[(1.0, 0.0)]["stable"] and not points[(0.0, 0.0)]["stable"]
    # strong competition: the interior point is a saddle, the boundary ones are stable
    a2 = np.array([[-1.0, -2.0], [-2.0, -1.0]])
    model2 = dynafit.Model("lotka_volterra", ["u", "v"], np.concatenate([r[:, None], a2], 1))
    pts2 = {tuple(np.round(p["x"], 6)): p["stable"] for p in model2.fixed_points()}
    assert pts2[(1.0, 0.0)] and pts2[(0.0, 1.0)] and not pts2[(round(1 / 3, 6), round(1 / 3, 6))]
