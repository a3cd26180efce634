import numpy as np
import pytest
import sympy

import dynafit
from dynafit.families import LotkaVolterra, Polynomial, get_family


def test_libraries():
    x = sympy.symbols("a b c")
    lin = get_family("linear")
    assert lin.terms(x) == (1, *x)
    assert lin.prefactors(x) == (1, 1, 1)
    assert LotkaVolterra().prefactors(x) == x
    poly = Polynomial().terms(x)
    assert len(poly) == 10 and poly[0] == 1 and x[0] * x[1] in poly and x[2] ** 2 in poly
    assert lin.library_size(29) == 30 == LotkaVolterra().library_size(29)
    assert Polynomial().library_size(29) == 465


def test_lv_rejects_non_positive_naming_variable():
    x = np.ones((10, 3))
    x[4, 1] = 0.0
    with pytest.raises(ValueError, match="'b'"):
        LotkaVolterra().validate(x, ("a", "b", "c"))
    traj = dynafit.Trajectory(np.arange(10.0), x, names=("a", "b", "c"))
    with pytest.raises(ValueError, match="positive"):
        dynafit.fit(traj, "lotka_volterra", threshold=0.1)


def test_unknown_family():
    with pytest.raises(ValueError, match="linear"):
        get_family("cubic")
    with pytest.raises(ValueError):
        get_family(3)


def test_user_family_plugs_in():
    class Cubic(dynafit.AbstractFamily):
        name = "cubic_diag"

        def terms(self, symbols):
            return (sympy.Integer(1), *symbols, *(s**3 for s in symbols))

    t = np.linspace(0, 2, 101)
    x = np.stack([np.exp(-t), 2 * np.exp(-2 * t)], 1)
    model = dynafit.fit(dynafit.Trajectory(t, x), Cubic(), threshold=0.05)
    assert model.family.name == "cubic_diag"
    assert model.coefficients.shape == (2, 5)
    np.testing.assert_allclose(model.coefficients[:, 1:3], [[-1, 0], [0, -2]], atol=1e-2)
