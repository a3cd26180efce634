"""fit(): known sparse systems recovered; options; bad input."""

import numpy as np
import pandas as pd
import pytest
from _systems import linear_traj, lv_traj
from hypothesis import given, settings
from hypothesis import strategies as st

import dynafit


def support_errors(model, true):
    got, sup = model.coefficients != 0, true != 0
    return int((sup & ~got).sum()), int((~sup & got).sum())


def rel_errors(model, true):
    sup = true != 0
    return np.abs(model.coefficients - true)[sup] / np.abs(true[sup])


# (noise, max support errors, max of the median relative error, max relative error)
LINEAR_CASES = [(0.0, 0, 1e-3, 1e-2), (0.01, 0, 0.01, 0.05), (0.05, 2, 0.05, 0.2)]
LV_CASES = [(0.0, 0, 1e-2, 2e-2), (0.01, 0, 0.02, 0.1), (0.05, 2, 0.1, None)]
# 8 species at 1 % noise: one weak interaction is off by ~12 %
LV8_CASES = [(0.0, 0, 1e-2, 2e-2), (0.01, 0, 0.02, 0.2), (0.05, 2, 0.1, None)]
# the upper sizes, 30 variables (164 true of 930 linear terms) and 8 species (40
# true of 72 terms), take ~1 min together on 2 cores: second stage
SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "m, seed, noise, max_err, med_tol, max_tol",
    [(10, 0, *case) for case in LINEAR_CASES]
    + [pytest.param(30, 1, *case, marks=SLOW) for case in LINEAR_CASES],
)
def test_sparse_linear_recovered(m, seed, noise, max_err, med_tol, max_tol):
    traj, true = linear_traj(m, seed=seed, noise=noise)
    model = dynafit.fit(traj, "linear")
    missing, extra = support_errors(model, true)
    assert missing + extra <= max_err, (missing, extra)
    rel = rel_errors(model, true)[model.coefficients[true != 0] != 0]
    assert np.median(rel) < med_tol and rel.max() < max_tol
    if noise == 0:
        assert model.options["derivative"] == "centered"
    else:
        assert model.options["derivative"] == "smoothed"  # "auto" saw the noise


@pytest.mark.parametrize(
    "m, noise, max_err, med_tol, max_tol",
    [(4, *case) for case in LV_CASES] + [pytest.param(8, *case, marks=SLOW) for case in LV8_CASES],
)
def test_competitive_lv_recovered(m, noise, max_err, med_tol, max_tol):
    traj, true = lv_traj(m, seed=0, noise=noise)
    model = dynafit.fit(traj, "lotka_volterra")
    missing, extra = support_errors(model, true)
    assert missing + extra <= max_err, (missing, extra)
    rel = rel_errors(model, true)[model.coefficients[true != 0] != 0]
    assert np.median(rel) < med_tol
    if max_tol is not None:
        assert rel.max() < max_tol


def test_sweep_is_kept_and_consistent():
    traj, true = linear_traj(10, seed=0)
    model = dynafit.fit(traj, "linear")
    sweep = model.sweep
    assert isinstance(sweep, pd.DataFrame)
    for col in ("threshold", "n_terms", "heldout_error", "criterion", "aic", "bic", "selected"):
        assert col in sweep.columns
    assert sweep["selected"].sum() == 1
    assert np.all(np.diff(sweep["threshold"]) > 0)
    assert sweep["n_terms"].iloc[0] >= sweep["n_terms"].iloc[-1]
    picked = sweep.loc[sweep.selected].iloc[0]
    same = sweep.loc[sweep.n_terms == picked.n_terms, "threshold"]
    assert same.min() <= model.options["threshold"] <= same.max()  # middle of its plateau
    # picking a point by hand
    by_n = dynafit.fit(traj, "linear", n_terms=10)
    assert by_n.n_terms <= 10
    fixed = dynafit.fit(traj, "linear", threshold=model.options["threshold"])
    np.testing.assert_allclose(fixed.coefficients, model.coefficients)
    assert fixed.sweep is None
    bic = dynafit.fit(traj, "linear", criterion="bic")
    assert bic.sweep["selected"].sum() == 1


def test_threshold_means_the_same_at_any_scale():
    traj, true = linear_traj(10, seed=0)
    a = dynafit.fit(traj, "linear", threshold=0.05)
    scaled = dynafit.Trajectory(traj.t * 10.0, traj.x * 1000.0)
    b = dynafit.fit(scaled, "linear", threshold=0.05)
    np.testing.assert_array_equal(a.coefficients != 0, b.coefficients != 0)
    # dx/dt = A x + b -> d(1000x)/d(10t) = A/10 (1000x) + 100 b
    np.testing.assert_allclose(
        b.coefficients[:, 1:], a.coefficients[:, 1:] / 10, rtol=1e-6, atol=1e-12
    )
    np.testing.assert_allclose(
        b.coefficients[:, 0], a.coefficients[:, 0] * 100, rtol=1e-6, atol=1e-9
    )


def test_forward_derivative_and_other_optimizers():
    traj, true = lv_traj(3, seed=1)
    fwd = dynafit.fit(traj, "lotka_volterra", derivative="forward")
    assert fwd.options["derivative"] == "forward"
    assert support_errors(fwd, true) == (0, 0)
    for opt in ("sr3", "ensemble"):
        model = dynafit.fit(traj, "lotka_volterra", optimizer=opt, threshold=0.05, n_models=5)
        assert support_errors(model, true) == (0, 0), opt
        assert np.median(rel_errors(model, true)) < 0.02
    again = dynafit.fit(traj, "lotka_volterra", optimizer="ensemble", threshold=0.05, n_models=5)
    np.testing.assert_array_equal(model.coefficients, again.coefficients)  # seeded


def test_batch_is_one_pooled_model():
    traj, true = lv_traj(3, seed=1)
    assert traj.is_batch
    model = dynafit.fit(traj, "lotka_volterra")
    assert model.coefficients.shape == (3, 4)
    assert model.options["n_runs"] == traj.n_runs
    assert support_errors(model, true) == (0, 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(family="cubic"), "unknown family 'cubic'.*linear"),
        (dict(family=object()), "family must be"),
        (dict(smoothing=3), r"unknown option\(s\) \['smoothing'\]"),
        (dict(optimizer="lasso"), "unknown optimizer 'lasso'.*stlsq"),
        (dict(derivative="spectral"), "unknown derivative method 'spectral'.*forward"),
        (dict(criterion="cv"), "unknown criterion 'cv'"),
        (dict(threshold=-1.0), "threshold must be"),
        (dict(threshold=0.1, n_terms=3), "not both"),
        (dict(n_terms=0), "n_terms must be"),
        (dict(holdout=1.5), "holdout must be"),
        (dict(optimizer="ensemble", n_models=1), "n_models"),
        (dict(weighting="odd"), "weighting"),
        (dict(rollout_slack=-0.1), "rollout_slack must be"),
        (dict(rollout_slack="wide"), "rollout_slack must be"),
    ],
)
def test_bad_options(kwargs, match):
    t = np.linspace(0, 1, 50)
    traj = dynafit.Trajectory(t, np.stack([np.exp(-t), np.exp(t)], 1))
    with pytest.raises(ValueError, match=match):
        dynafit.fit(traj, **kwargs)


def test_bad_data():
    with pytest.raises(ValueError, match="Trajectory"):
        dynafit.fit(np.zeros((10, 2)))
    t = np.arange(5.0)
    few = dynafit.Trajectory(t, np.random.default_rng(0).uniform(1, 2, (5, 4)))
    with pytest.raises(ValueError, match="fewer points than terms"):
        dynafit.fit(few, "polynomial", threshold=0.1)
    neg = dynafit.Trajectory(
        np.arange(20.0), np.linspace(-1, 1, 40).reshape(20, 2), names=["u", "v"]
    )
    with pytest.raises(ValueError, match="'u'"):
        dynafit.fit(neg, "lotka_volterra")


def test_select_sparsest_in_band_unless_bic_strongly_prefers_denser():
    from dynafit._regression import BIC_STEP, select

    sweep = pd.DataFrame(
        {
            "n_terms": [20, 12, 11, 8],
            "heldout_error": [0.1630, 0.1604, 0.1639, 0.2300],
            "heldout_se": [0.012] * 4,
            "bic": [-8600.0, -8640.0, -8640.0 + 149.0, -7883.0],
        }
    )
    # the band (best 0.1604 + one standard error) holds 20, 12 and 11 terms; 11 lacks a
    # term worth 149 BIC: the 12-term candidate wins
    assert select(sweep)[0] == 1
    # weak evidence (under BIC_STEP per added term): the sparsest in the band
    weak = sweep.assign(bic=[-8600.0, -8640.0, -8640.0 + 0.5 * BIC_STEP, -7883.0])
    assert select(weak)[0] == 2
    # without a bic column: the sparsest in the band; 8 terms is outside it
    assert select(sweep.drop(columns="bic"))[0] == 2


def test_empty_selection_warns_and_says_why():
    rng = np.random.default_rng(0)
    traj = dynafit.Trajectory(np.arange(300.0), 5.0 + 0.1 * rng.normal(size=(300, 3)))
    with pytest.warns(RuntimeWarning, match="no terms.*held-out derivatives.*n_terms="):
        model = dynafit.fit(traj, "linear")
    assert model.n_terms == 0 and model.sweep["n_terms"].max() > 0


def test_stlsq_path_matches_pysindy_threshold_by_threshold():
    """dynafit's STLSQ path (every threshold and target at once, solves shared and
    memoised) gives pysindy's stock STLSQ, unbias step included, at every threshold of
    a sweep, also on a rank-deficient library; a memo filled by one call answers the
    next with the same coefficients."""
    import pysindy as ps

    from dynafit._regression import stlsq_path

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 12))
    X[:, 11] = X[:, 3] - 0.5 * X[:, 7]  # an exactly collinear column
    W = rng.normal(size=(12, 5)) * (rng.random((12, 5)) < 0.4)
    Y = X @ W + 0.01 * rng.normal(size=(200, 5))
    grid = np.concatenate([[0.0], np.geomspace(1e-3, 3.0, 15)])
    memo: dict = {}
    got = stlsq_path(X, Y, grid, alpha=1e-3, max_iter=20, memo=memo)
    assert got.shape == (grid.size, 5, 12)
    counts = {int(np.count_nonzero(c)) for c in got}
    assert len(counts) > 5  # the grid spans dense to empty models
    for thr, coef in zip(grid, got):
        ref = ps.STLSQ(threshold=thr, alpha=1e-3, max_iter=20).fit(X, Y).coef_
        np.testing.assert_array_equal(coef != 0, ref != 0)
        np.testing.assert_allclose(coef, ref, rtol=1e-7, atol=1e-9)
    again = stlsq_path(X, Y, grid[::-1], alpha=1e-3, max_iter=20, memo=memo)
    np.testing.assert_array_equal(again[::-1], got)


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    n_rows=st.integers(8, 120),
    n_cols=st.integers(1, 14),
    n_targets=st.integers(1, 6),
    density=st.floats(0.1, 0.9),
    noise=st.sampled_from([0.0, 0.01, 0.3]),
    alpha=st.sampled_from([1e-6, 1e-3, 0.1]),
    collinear=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_stlsq_path_matches_pysindy_on_random_problems(
    n_rows, n_cols, n_targets, density, noise, alpha, collinear, seed
):
    """Random sparse problems (also fewer rows than columns, a collinear column, single
    columns and targets): every threshold of a sweep gives pysindy's STLSQ support and
    coefficients."""
    import pysindy as ps

    from dynafit._regression import stlsq_path

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_cols)) * rng.uniform(0.2, 5.0, n_cols)
    if collinear and n_cols >= 3:
        X[:, -1] = X[:, 0] - 0.5 * X[:, 1]
    W = rng.normal(size=(n_cols, n_targets)) * (rng.random((n_cols, n_targets)) < density)
    Y = X @ W + noise * rng.normal(size=(n_rows, n_targets))
    grid = np.concatenate([[0.0], np.geomspace(1e-3, 10.0, 9)])
    got = stlsq_path(X, Y, grid, alpha=alpha, max_iter=20)
    for thr, coef in zip(grid, got):
        ref = ps.STLSQ(threshold=thr, alpha=alpha, max_iter=20).fit(X, Y).coef_
        # terms above round-off (clean data leave absent terms at ~1e-17 in both)
        np.testing.assert_array_equal(
            np.abs(coef) > 1e-12, np.abs(ref) > 1e-12, err_msg=f"threshold {thr}"
        )
        np.testing.assert_allclose(coef, ref, rtol=1e-6, atol=1e-8, err_msg=f"threshold {thr}")


def test_unbias_matches_least_squares_also_on_collinear_supports():
    """The unbias step (QR where the support is well conditioned) gives the minimum-norm
    least-squares solution of each target on its support, collinear columns included."""
    import scipy.linalg

    from dynafit._regression._stlsq import _lstsq

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 8))
    X[:, 7] = 2.0 * X[:, 1]  # exactly collinear with column 1
    Y = rng.normal(size=(40, 3))
    support = np.array(
        [[1, 1, 0, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 1], [1, 1, 0, 1, 0, 0, 0, 0]], bool
    )
    for i, row in enumerate(support):
        got = _lstsq(X[:, row], Y[:, [i]])[:, 0]
        ref = scipy.linalg.lstsq(X[:, row], Y[:, i])[0]
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


def test_unexpected_warnings_inside_fit_reach_the_caller(monkeypatch):
    # fit silences only the warnings it expects (pysindy's "eliminated all coefficients"
    # on the sweep's high thresholds); any other warning raised inside reaches the caller
    import pysindy as ps

    class Custom(UserWarning):
        pass

    original = ps.SR3.fit

    def noisy_fit(self, *args, **kwargs):
        import warnings

        warnings.warn("something the user should see", Custom, stacklevel=1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ps.SR3, "fit", noisy_fit)
    traj, _ = linear_traj(m=3, seed=0, runs=2, T=81)
    with pytest.warns(Custom, match="the user should see"):
        dynafit.fit(traj, "linear", optimizer="sr3", threshold=0.05)
