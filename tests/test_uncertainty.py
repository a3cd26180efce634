"""Ensemble fits: inclusion probabilities, intervals, figure, save/load, bad input."""

import numpy as np
import pytest
import sympy
from _systems import linear_traj

import dynafit


@pytest.fixture(scope="module")
def ensemble():
    traj, xi_true = linear_traj(m=5, seed=2, noise=0.005, runs=6, T=151)
    return dynafit.fit_ensemble(traj, "linear", n_models=8, seed=1), xi_true


def test_inclusion_high_on_true_terms_low_on_absent(ensemble):
    model, xi_true = ensemble
    unc = model.uncertainty
    true = xi_true != 0
    assert unc["inclusion"].shape == model.coefficients.shape
    assert unc["inclusion"][true].min() >= 0.9
    assert unc["inclusion"][~true].mean() <= 0.1
    # the interval holds the true coefficient and the ensemble median is close to it
    inside = (unc["lower"] - 0.05 <= xi_true) & (xi_true <= unc["upper"] + 0.05)
    assert inside[true].all()
    np.testing.assert_allclose(model.coefficients[true], xi_true[true], rtol=0.1, atol=0.02)
    assert model.options["variant"] == "ensemble" and unc["n_models"] == 8
    # the deprecated top-level name warns and gives the same summary
    with pytest.warns(DeprecationWarning, match="model.uncertainty"):
        old = dynafit.uncertainty(model)
    np.testing.assert_array_equal(old["upper"], unc["upper"])


def test_intervals_in_equations_figure_and_save_load(ensemble, tmp_path):
    model, _ = ensemble
    lines = model.equations_with_intervals()
    assert len(lines) == model.n_vars and "[" in lines[0] and "p=" in lines[0]
    fig = dynafit.plot_inclusion(model)
    fig.savefig(tmp_path / "inclusion.png")
    assert (tmp_path / "inclusion.png").stat().st_size > 0
    back = dynafit.load_model(model.save(tmp_path / "m.json"))
    np.testing.assert_array_equal(back.uncertainty["inclusion"], model.uncertainty["inclusion"])
    plain = dynafit.Model("linear", model.names, model.coefficients)
    assert plain.uncertainty is None
    # the deprecated top-level name warns and gives the Model's text
    with pytest.warns(DeprecationWarning, match="model.equations_with_intervals"):
        assert dynafit.equations_with_intervals(model, 2) == model.equations_with_intervals(2)
    with pytest.warns(DeprecationWarning):
        assert dynafit.equations_with_intervals(plain)[0].startswith("dx0/dt = ")
    with pytest.raises(ValueError, match="no coefficient intervals.*fit_ensemble"):
        plain.equations_with_intervals()
    # equations() has one return type: sympy equations, ensemble or not
    assert all(isinstance(eq, sympy.Eq) for eq in model.equations())


def test_ensemble_bad_input():
    traj, _ = linear_traj(m=3, seed=0, runs=2, T=41)
    for n in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="n_models|at least 2"):
            dynafit.fit_ensemble(traj, n_models=n)
    with pytest.raises(ValueError, match="level"):
        dynafit.fit_ensemble(traj, n_models=4, level=1.5)
    with pytest.raises(ValueError, match="drop_terms"):
        dynafit.fit_ensemble(traj, n_models=4, drop_terms=-1)
    with pytest.raises(ValueError, match="aggregate"):
        dynafit.fit_ensemble(traj, n_models=4, aggregate="mode")


def test_ensemble_members_use_the_fits_own_derivative():
    # "auto" on clean data is a fourth-order centred difference: the members must be
    # regressed on that same estimate, not on a second-order one (whose h^2 error biases
    # every coefficient by ~1e-4 here)
    traj, xi_true = linear_traj(m=3, seed=1, runs=4, T=101)
    base = dynafit.fit(traj, "linear")
    ens = dynafit.fit_ensemble(traj, "linear", n_models=3, member_threshold=False)
    assert base.options["order"] == 4 and ens.options["order"] == 4
    assert np.abs(base.coefficients - xi_true).max() < 1e-5
    assert np.abs(ens.coefficients - xi_true).max() < 1e-5
