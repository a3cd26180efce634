"""The shared-rate families (mean-field and low-rank Lotka-Volterra, low-rank linear) and
survivors against the rank baselines."""

import functools
import json

import numpy as np
import pytest
import sympy
from scipy.integrate import solve_ivp

import dynafit
from dynafit.families import LowRankLinear, LowRankLV, MeanFieldLV, get_family

M = 6
NAMES = [f"S{i + 1}" for i in range(M)]


def _mean_field_truth():
    rng = np.random.default_rng(0)
    r = rng.uniform(0.5, 1.5, M)
    a = -rng.uniform(0.2, 0.5, M)
    b = -rng.uniform(0.1, 0.3, M)
    return r, a, b


def _simulate(rhs, x0s, t):
    return np.stack(
        [solve_ivp(rhs, (t[0], t[-1]), x0, t_eval=t, rtol=1e-10, atol=1e-12).y.T for x0 in x0s]
    )


@pytest.fixture(scope="module")
def mean_field_data():
    r, a, b = _mean_field_truth()
    t = np.linspace(0.0, 10.0, 201)
    x0s = np.random.default_rng(1).uniform(0.05, 0.5, (2, M))
    x = _simulate(lambda _, s: s * (r + a * s + b * s.sum()), x0s, t)
    return dynafit.Trajectory(t, x, names=NAMES), (r, a, b)


@pytest.fixture(scope="module")
def low_rank_data():
    """Lotka-Volterra whose competition runs through one weighted total."""
    r, a, b = _mean_field_truth()
    v = np.linspace(0.5, 1.5, M)
    t = np.linspace(0.0, 10.0, 201)
    x0s = np.random.default_rng(2).uniform(0.05, 0.5, (2, M))
    x = _simulate(lambda _, s: s * (r + a * s + b * (v @ s)), x0s, t)
    return dynafit.Trajectory(t, x, names=NAMES), (r, a, b, v)


def test_registered_and_instances():
    assert isinstance(get_family("mean_field_lv"), MeanFieldLV)
    assert get_family("low_rank_lv").rank == 1
    assert get_family(LowRankLinear(rank=3)).rank == 3
    assert MeanFieldLV().library_size(29) == 3  # columns an equation may use
    with pytest.raises(ValueError, match="rank"):
        LowRankLV(rank=0)
    with pytest.raises(ValueError, match="shape"):
        LowRankLV(rank=2, weights=np.ones((1, 4)))


def test_mean_field_recovers_coefficients(mean_field_data):
    traj, (r, a, b) = mean_field_data
    model = dynafit.fit(traj, "mean_field_lv", steps=0)
    xi = model.coefficients
    assert xi.shape == (M, 1 + M + 1)
    np.testing.assert_allclose(xi[:, 0], r, rtol=1e-4)
    np.testing.assert_allclose(xi[np.arange(M), 1 + np.arange(M)], a, rtol=1e-4)
    np.testing.assert_allclose(xi[:, -1], b, rtol=1e-4)
    # each equation uses only its own variable and the total: 3 coefficients each
    assert model.n_terms == 3 * M
    assert not np.any(xi[:, 1 : 1 + M][~np.eye(M, dtype=bool)])
    scores = model.score(traj)
    assert np.all(scores["rollout_r2"] > 0.999) and not np.any(scores["diverged"])


def test_compact_equations(mean_field_data):
    traj, _ = mean_field_data
    model = dynafit.fit(traj, MeanFieldLV(), steps=0)
    text = str(model).splitlines()
    assert text[0] == "T = " + " + ".join(NAMES)  # the shared term, named once
    assert len(text) == 1 + M
    S1, T = sympy.symbols("S1 T")
    rhs = model.equations()[0].rhs
    assert rhs.free_symbols == {S1, T}  # dS1/dt = S1 (r1 + a1 S1 + b1 T)
    assert sympy.expand(rhs).as_poly(S1, T).monoms() and len(sympy.Add.make_args(rhs.args[-1])) == 3
    assert model.shared[0].lhs == T
    assert r"T &= " in model.latex()
    # what is printed is what is integrated: the field equals the expanded equations
    x = traj.x[0, 50]
    subs = dict(zip(model.symbols, x.tolist()))
    subs[T] = float(x.sum())
    want = [float(eq.rhs.subs(subs)) for eq in model.equations()]
    np.testing.assert_allclose(np.asarray(model.rhs(0.0, x)), want, rtol=1e-5)


def test_save_load_round_trip(tmp_path, mean_field_data, low_rank_data):
    for traj, family in ((mean_field_data[0], "mean_field_lv"), (low_rank_data[0], "low_rank_lv")):
        model = dynafit.fit(traj, family, steps=0)
        path = model.save(tmp_path / f"{family}.json")
        data = json.loads(path.read_text())
        assert data["shared"][0]["name"] == "T"
        back = dynafit.load_model(path)
        assert type(back.family) is type(model.family)
        np.testing.assert_array_equal(back.coefficients, model.coefficients)
        assert str(back) == str(model)
        t = traj.t[:50]
        np.testing.assert_allclose(
            back.simulate(t, traj.x[0, 0]), model.simulate(t, traj.x[0, 0]), rtol=1e-6
        )


def test_load_rejects_malformed_shared(tmp_path, mean_field_data):
    model = dynafit.fit(mean_field_data[0], "mean_field_lv", steps=0)
    data = model.to_dict()
    data["shared"][0]["polynomial"][0][0] = "__import__('os')"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="shared"):
        dynafit.load_model(path)


def test_unregistered_shared_family_loads_as_monomials(tmp_path, mean_field_data):
    model = dynafit.fit(mean_field_data[0], "mean_field_lv", steps=0)
    data = model.to_dict()
    data["family"] = "someone_elses"
    path = tmp_path / "other.json"
    path.write_text(json.dumps(data))
    back = dynafit.load_model(path)
    x0 = mean_field_data[0].x[0, 0]
    t = mean_field_data[0].t[:40]
    np.testing.assert_allclose(back.simulate(t, x0), model.simulate(t, x0), rtol=1e-6)


def test_low_rank_lv_recovers_weighted_total(low_rank_data):
    traj, (r, a, b, v) = low_rank_data
    model = dynafit.fit(traj, "low_rank_lv", steps=0)
    w = np.asarray(model.family.weights)[0]
    np.testing.assert_allclose(w, v / v.mean(), rtol=1e-3)  # normalised to mean 1
    xi = model.coefficients
    np.testing.assert_allclose(xi[:, 0], r, rtol=1e-3)
    np.testing.assert_allclose(xi[:, -1], b * v.mean(), rtol=1e-3)
    assert str(model).startswith("T = ")
    # the mean-field family cannot express the weights: a worse derivative fit
    mf = dynafit.fit(traj, "mean_field_lv", steps=0)
    assert model.score(traj)["deriv_r2"].mean() > mf.score(traj)["deriv_r2"].mean()


def test_low_rank_linear_fits_linear_system():
    rng = np.random.default_rng(3)
    m = 5
    d = -rng.uniform(0.5, 1.0, m)
    u = rng.normal(size=(m, 1)) * 0.2
    v = rng.uniform(0.5, 1.5, (1, m))
    A = np.diag(d) + u @ v
    t = np.linspace(0, 5, 201)
    x = _simulate(lambda _, s: A @ s + 0.3, rng.uniform(-1, 1, (2, m)), t)
    traj = dynafit.Trajectory(t, x)
    model = dynafit.fit(traj, LowRankLinear(rank=1), steps=0)
    xi = model.coefficients
    fitted_a = np.diag(xi[np.arange(m), 1 + np.arange(m)]) + xi[:, -1:] @ np.asarray(
        model.family.weights
    )
    np.testing.assert_allclose(fitted_a, A, atol=1e-3)
    assert str(model).splitlines()[0].startswith("y = ")


@pytest.mark.slow
def test_trajectory_matching_keeps_or_improves(mean_field_data):
    traj, _ = mean_field_data
    noisy = dynafit.Trajectory(
        traj.t, traj.x * (1 + 0.02 * np.random.default_rng(4).normal(size=traj.x.shape))
    )
    plain = dynafit.fit(noisy, "low_rank_lv", derivative="centered", steps=0)
    matched = dynafit.fit(noisy, "low_rank_lv", derivative="centered", steps=20)
    info = matched.options["refine"]
    assert info["steps_run"] == 20
    assert (
        matched.score(noisy)["rollout_r2"].mean() >= plain.score(noisy)["rollout_r2"].mean() - 1e-6
    )


def test_bad_input(mean_field_data):
    traj, _ = mean_field_data
    with pytest.raises(ValueError, match="unknown option"):
        dynafit.fit(traj, "mean_field_lv", bogus=1, steps=0)
    with pytest.raises(ValueError, match="threshold"):
        dynafit.fit(traj, "mean_field_lv", threshold=0.1, steps=0)
    with pytest.raises(ValueError, match="steps"):
        dynafit.fit(traj, "low_rank_lv", steps=-1)
    neg = dynafit.Trajectory(traj.t, traj.x - 0.2)
    with pytest.raises(ValueError, match="positive"):
        dynafit.fit(neg, "mean_field_lv", steps=0)
    board = dynafit.compare(neg, families=("linear", "mean_field_lv"))
    assert board.set_index("family").loc["mean_field_lv", "status"].startswith("not applicable")


@pytest.mark.slow
def test_compare_takes_structured_families(mean_field_data):
    traj, _ = mean_field_data
    board = dynafit.compare(traj.run(0), families=("linear", "mean_field_lv", LowRankLV()))
    assert set(board["family"]) == {"linear", "mean_field_lv", "low_rank_lv"}
    row = board.set_index("family").loc["mean_field_lv"]
    assert row["status"] == "ok" and row["rollout_r2"] > 0.999 and row["n_terms"] == 3 * M


# ------------------------------------------------------------------ survivors
@pytest.fixture(scope="module")
def competition():
    """Six species on one resource: the two fastest growers coexist, the rest die out."""
    r = np.array([1.0, 0.9, 0.5, 0.45, 0.4, 0.3])
    a = np.full(M, -0.5)
    b = np.full(M, -1.0)
    t = np.linspace(0.0, 60.0, 601)
    x0s = np.full((1, M), 0.05)
    x = _simulate(lambda _, s: s * (r + a * s + b * s.sum()), x0s, t)
    meta = {"runs": [{"survivors": ["S1", "S2"]}]}
    return dynafit.Trajectory(t, x, names=NAMES, meta=meta)


def test_survivors_count_predicted(competition):
    window = competition.window(0, 10)
    model = dynafit.fit(window, "mean_field_lv", steps=0)
    names = dynafit.survivors(model, window.x[0, -1], 50.0)
    assert names == ["S1", "S2"]  # the count (2) comes from the model


def test_compare_survivors_against_rank_baselines(competition):
    window = competition.window(0, 3)
    model = dynafit.fit(window, "mean_field_lv", steps=0)
    table = dynafit.compare_survivors(model, competition, 60.0)
    assert list(table["method"]) == [
        "model",
        "alive_at_t",
        "top_k_at_t",
        "top_k_model",
        "growth_top_k",
    ]
    by = table.set_index("method")
    assert by.loc["model", "count_error"] == 0 and by.loc["alive_at_t", "count_error"] == -1
    assert by.loc["model", "f1"] == 1.0 and by.loc["model", "n_predicted"] == 2
    assert by.loc["top_k_at_t", "n_predicted"] == 2  # told the count
    # at t = 3 only S1 is above the threshold yet: the data alone miscount
    assert by.loc["alive_at_t", "n_predicted"] == 1
    assert by.loc["alive_at_t", "f1"] < 1.0


def test_compare_survivors_bad_input(competition):
    model = dynafit.fit(competition.window(0, 10), "mean_field_lv", steps=0)
    with pytest.raises(ValueError, match="no time"):
        dynafit.compare_survivors(model, competition, 60.0, t=3.33)
    with pytest.raises(ValueError, match="after"):
        dynafit.compare_survivors(model, competition, 5.0)
    with pytest.raises(ValueError, match="start"):
        dynafit.compare_survivors(model, competition, 60.0, start="middle")
    with pytest.raises(ValueError, match="Trajectory"):
        dynafit.compare_survivors(model, competition.x, 60.0)


def test_inflow_term_recovered_and_printed():
    """dS_i/dt = e_i + S_i (r_i + a_i S_i + b_i T): losers settle on a floor e_i / |rate|."""
    r, a, b = _mean_field_truth()
    e = np.linspace(0.01, 0.06, M)
    t = np.linspace(0.0, 10.0, 201)
    x0s = np.random.default_rng(5).uniform(0.05, 0.5, (2, M))
    x = _simulate(lambda _, s: e + s * (r + a * s + b * s.sum()), x0s, t)
    traj = dynafit.Trajectory(t, x, names=NAMES)
    model = dynafit.fit(traj, MeanFieldLV(offset=True), steps=0)
    xi = model.coefficients
    idx = np.arange(M)
    np.testing.assert_allclose(xi[:, 0], e, rtol=1e-3)
    np.testing.assert_allclose(xi[idx, 1 + idx], r, rtol=1e-3)
    np.testing.assert_allclose(xi[idx, 1 + M + idx], a, rtol=1e-3)
    np.testing.assert_allclose(xi[idx, 1 + 2 * M + idx], b, rtol=1e-3)
    assert model.n_terms == 4 * M
    S1, T = sympy.symbols("S1 T")
    assert model.equations()[0].rhs.free_symbols == {S1, T}
    back = dynafit.Model.from_dict(model.to_dict())
    assert back.family == MeanFieldLV(offset=True) and str(back) == str(model)


def test_competitive_matching_keeps_signs(mean_field_data):
    traj, _ = mean_field_data
    model = dynafit.fit(traj.run(0), MeanFieldLV(offset=True), steps=15)
    xi = model.coefficients
    idx = np.arange(M)
    assert model.options["competitive"] is True
    assert np.all(xi[:, 0] >= 0)  # inflow
    assert np.all(xi[idx, 1 + M + idx] <= 0)  # self-limitation
    assert np.all(xi[idx, 1 + 2 * M + idx] <= 0)  # competition through T


@pytest.mark.slow
def test_early_window_table(competition):
    cands = {
        "mf": ("mean_field_lv", {"steps": 0}),
        "lsq": ("linear", {"threshold": 0.0}),
        # a candidate may be any function of the window's data that returns a Model
        "mf recent": functools.partial(dynafit.fit_recent, family="mean_field_lv", steps=0),
    }
    surv, fc = dynafit.early_window_table(
        competition, (10,), cands, forecast_window=10.0, horizons=(20,)
    )
    baselines = {"alive at W", "top-k at W (told k)", "growth top-k at W (told k)"}
    assert set(surv["candidate"]) == {"mf", "lsq", "mf recent"} | baselines
    assert len(surv) == 6
    # every row says how many circles it predicted against how many survived
    assert (surv["count_error"] == surv["n_predicted"] - surv["n_actual"]).all()
    recent = fc[fc["candidate"] == "mf recent"]
    assert len(recent) == 1 and float(recent["skill"].iloc[0]) > 0.9
    mf = surv[surv["candidate"] == "mf"].set_index("window")
    assert mf.loc[10.0, "f1"] == 1.0 and mf.loc[10.0, "params_per_variable"] == 3.0
    assert set(fc["horizon"]) == {20.0}
    per = fc[fc["candidate"] == "persistence"]
    assert np.all(per["skill"] == 0.0) and np.all(per["rel_rmse"] > 0)
    good = fc[(fc["candidate"] == "mf") & (fc["horizon"] == 20.0)]
    assert float(good["skill"].iloc[0]) > 0.9  # the true model family beats persistence
    with pytest.raises(ValueError, match="window end"):
        dynafit.early_window_table(competition, (3.33,), cands)


def test_early_window_table_refuses_a_malformed_candidate(competition):
    with pytest.raises(ValueError, match="candidate 'bad' must be"):
        dynafit.early_window_table(competition, (10,), {"bad": ("linear",)})


def test_fit_many_per_run_low_rank(low_rank_data):
    traj, _ = low_rank_data
    table = dynafit.fit_many(traj, families=("low_rank_lv",), steps=0)
    assert len(table) == 2 and (table["status"] == "ok").all()
    assert (table["rollout_r2"] > 0.99).all()
