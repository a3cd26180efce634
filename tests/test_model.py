"""Model: equations, LaTeX, rhs, simulate (diffrax), save/load, fixed points."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy
from _systems import competitive_lv, lv_traj
from scipy.integrate import solve_ivp

import dynafit
import dynafit.families
from dynafit.families import MonomialFamily, Polynomial


@pytest.fixture(scope="module")
def lv():
    traj, true = lv_traj(3, seed=1)
    traj = dynafit.Trajectory(traj.t, traj.x, names=["fox", "hare", "lynx"])
    return traj, true, dynafit.fit(traj, "lotka_volterra")


def test_terms_coefficients_equations(lv):
    traj, true, model = lv
    fox, hare, lynx = sympy.symbols("fox hare lynx")
    assert model.terms == [1, fox, hare, lynx]
    assert model.coefficients.shape == (3, 4) and model.library_size == 4
    assert model.n_terms == np.count_nonzero(model.coefficients)
    with pytest.raises(ValueError):
        model.coefficients[0, 0] = 1.0  # read-only
    eqs = model.equations()
    assert len(eqs) == 3 and all(isinstance(e, sympy.Eq) for e in eqs)
    assert eqs[0].lhs == sympy.Derivative(fox, sympy.Symbol("t"))
    # Lotka-Volterra form: x_i (r_i + sum_j a_ij x_j), exactly the coefficients
    per_capita = sympy.simplify(eqs[1].rhs / hare)
    poly = sympy.Poly(per_capita, fox, hare, lynx)
    assert float(poly.coeff_monomial(1)) == model.coefficients[1, 0]
    assert float(poly.coeff_monomial(hare)) == model.coefficients[1, 2]
    text = str(model)
    assert text.splitlines()[0].startswith("dfox/dt = fox*(")
    tex = model.latex()
    assert r"\frac{d \mathrm{fox}}{dt}" in tex or r"\frac{d fox}{dt}" in tex
    assert tex.startswith("\\begin{aligned}")


def test_rhs_is_pure_jax_and_matches_equations(lv):
    traj, true, model = lv
    x = traj.x[0, :5]
    f = sympy.lambdify(sympy.symbols("fox hare lynx"), [e.rhs for e in model.equations()])
    want = np.stack([np.broadcast_to(v, 5) for v in f(*x.T)], -1)
    np.testing.assert_allclose(model.rhs(0.0, x), want, rtol=1e-5)
    jac = jax.jacfwd(lambda y: model.rhs(0.0, y))(jnp.asarray(x[0]))
    assert jac.shape == (3, 3)
    batched = jax.vmap(lambda y: model.rhs(0.0, y))(jnp.asarray(x))
    np.testing.assert_allclose(batched, want, rtol=1e-5)


def test_printed_equations_integrate_like_simulate(lv):
    traj, true, model = lv
    syms = sympy.symbols("fox hare lynx")
    f = sympy.lambdify(syms, [e.rhs for e in model.equations()], "numpy")
    x0 = traj.x[:2, 0]
    sol = np.stack(
        [
            solve_ivp(
                lambda _, y: np.array(f(*y), float),
                (traj.t[0], traj.t[-1]),
                x,
                t_eval=traj.t,
                rtol=1e-10,
                atol=1e-12,
            ).y.T
            for x in x0
        ]
    )
    sim = model.simulate(traj.t, x0)
    assert sim.shape == (2, traj.n_times, 3)
    np.testing.assert_allclose(sim, sol, rtol=1e-4, atol=1e-5)
    one = model.simulate(traj.t, x0[0])
    assert one.shape == (traj.n_times, 3)
    np.testing.assert_allclose(one, sol[0], rtol=1e-4, atol=1e-5)


def test_stiff_solver_and_fallback():
    # one small stiff system: x' = -1000 (x - cos t), y' = -y; Tsit5 runs out of steps
    fam = dynafit.families.MonomialFamily("stiff", [[0, 0], [1, 0], [0, 1]])
    model = dynafit.Model(fam, ["x", "y"], [[0.0, -1000.0, 0.0], [0.0, 0.0, -1.0]])
    t = np.linspace(0.0, 5.0, 11)
    want = np.stack([np.zeros_like(t), np.exp(-t)], 1)
    stiff = model.simulate(t, np.array([0.0, 1.0]), solver="kvaerno5")
    np.testing.assert_allclose(stiff, want, atol=1e-4)
    fallback = model.simulate(t, np.array([0.0, 1.0]), max_steps=64)  # Tsit5 -> Kvaerno5
    np.testing.assert_allclose(fallback, want, atol=1e-4)


def test_divergent_rollout_is_a_result_not_an_error(lv):
    traj, true, model = lv
    blow = model.with_coefficients(np.abs(model.coefficients) * 3)  # x' = x (r + a x), a > 0
    y = blow.simulate(traj.t, traj.x[:2, 0])
    assert y.shape == (2, traj.n_times, 3)
    assert np.isinf(y[:, -1]).all() and np.isfinite(y[:, 0]).all()
    assert not np.isnan(y).any()


def test_joint_rollout_agrees_with_one_solve_per_model():
    """The sweep's screen integrates its candidates as one stacked system: each model's
    rollout matches its own solve to the tolerance, a model that blows up is reported
    diverged without stopping the others, and a solve that runs out of steps says so."""
    from dynafit._field import vector_field
    from dynafit._integrate import rollout, rollout_joint

    field = vector_field(dynafit.families.get_family("linear"), 3)
    # x' = b + A x: three stable models on different time scales, one unstable
    A = np.array([[-0.5, 0.2, 0.0], [0.1, -0.3, 0.1], [0.0, 0.3, -0.8]])
    xi = np.concatenate([np.full((3, 1), 0.1), A], axis=1)
    unstable = xi + np.concatenate([np.zeros((3, 1)), 3.0 * np.eye(3)], axis=1)
    xis = np.stack([xi, 0.2 * xi, unstable, 3.0 * xi])
    x0 = np.tile([1.0, 2.0, 0.5], (4, 1))
    t = np.linspace(0.0, 10.0, 201)
    ys, ok = rollout_joint(field, xis, x0, t)
    ref, ref_ok = rollout(field, xis, x0, t)
    assert ok.tolist() == ref_ok.tolist() == [True, True, False, True]
    assert ys.shape == ref.shape == (4, 201, 3)
    np.testing.assert_allclose(ys[ok], ref[ok], atol=1e-4)
    assert rollout_joint(field, xis, x0, t, max_steps=4) is None


def test_simulate_bad_input(lv):
    traj, true, model = lv
    with pytest.raises(ValueError, match="x0 must have shape"):
        model.simulate(traj.t, np.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        model.simulate(traj.t, np.array([1.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="increasing"):
        model.simulate(traj.t[::-1], traj.x[0, 0])
    with pytest.raises(ValueError, match="unknown solver"):
        model.simulate(traj.t, traj.x[0, 0], solver="euler")


def test_one_compiled_field_per_family(lv):
    traj, true, model = lv
    other = model.with_coefficients(model.coefficients * 0.5)
    assert other.field is model.field
    lin = dynafit.Model("linear", model.names, model.coefficients)
    assert lin.field is not model.field


def test_save_load_round_trip(tmp_path, lv):
    traj, true, model = lv
    path = model.save(tmp_path / "m.json")
    data = json.loads(path.read_text())
    assert data["terms"] == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert data["prefactors"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    back = dynafit.load_model(path)
    assert back.family == model.family and back.names == model.names
    np.testing.assert_array_equal(back.coefficients, model.coefficients)
    assert back.equations() == model.equations()
    assert back.options == model.options
    assert back.sweep.shape == model.sweep.shape


def test_save_load_other_families(tmp_path):
    x, y = sympy.symbols("x y")
    cubic = dynafit.Model(Polynomial(degree=3), ["x", "y"], np.arange(20.0).reshape(2, 10) / 10)
    back = dynafit.load_model(cubic.save(tmp_path / "c.json"))
    assert back.family == Polynomial(degree=3) and back.equations() == cubic.equations()

    class Mine(dynafit.AbstractFamily):
        name = "mine"

        def terms(self, symbols):
            return (symbols[0] * symbols[1], symbols[1] ** 2)

    mine = dynafit.Model(Mine(), ["x", "y"], [[1.0, 0.0], [0.0, -2.0]])
    back = dynafit.load_model(mine.save(tmp_path / "mine.json"))
    assert isinstance(back.family, MonomialFamily) and back.terms == [x * y, y**2]
    assert back.equations() == mine.equations()

    class Trig(dynafit.AbstractFamily):
        name = "trig"

        def terms(self, symbols):
            return (sympy.sin(symbols[0]),)

    # issue 21: any term saves as a data tree; an unregistered family loads as a Library
    back = dynafit.load_model(dynafit.Model(Trig(), ["x"], [[1.0]]).save(tmp_path / "trig.json"))
    assert isinstance(back.family, dynafit.families.Library) and back.terms == [sympy.sin(x)]

    class Odd(dynafit.AbstractFamily):
        name = "odd"

        def terms(self, symbols):
            return (sympy.besselj(0, symbols[0]),)

    with pytest.raises(ValueError, match="besselj is not one of"):
        dynafit.Model(Odd(), ["x"], [[1.0]]).save(tmp_path / "odd.json")


def test_load_rejects_foreign_and_corrupt(tmp_path, lv):
    traj, true, model = lv
    good = model.to_dict()
    cases = {
        "notjson.json": "{not json",
        "list.json": "[1, 2]",
        "schema.json": json.dumps({**good, "schema": "other/1"}),
        "missing.json": json.dumps({k: v for k, v in good.items() if k != "terms"}),
        "code.json": json.dumps({**good, "terms": ["__import__('os')"] * 4}),
        "shape.json": json.dumps({**good, "coefficients": [[1.0, 2.0]]}),
        "nan.json": json.dumps({**good, "coefficients": [["a"] * 4] * 3}),
        "names.json": json.dumps({**good, "names": ["a b", "c", "d"]}),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError):
            dynafit.load_model(tmp_path / name)
    with pytest.raises(ValueError, match="no such file"):
        dynafit.load_model(tmp_path / "absent.json")


def test_model_constructor_checks():
    with pytest.raises(ValueError, match="shape"):
        dynafit.Model("linear", ["a", "b"], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        dynafit.Model("linear", ["a"], [[np.nan, 1.0]])
    with pytest.raises(ValueError, match="unknown family"):
        dynafit.Model("nope", ["a"], [[0.0, 1.0]])


def test_fixed_points():
    A = np.array([[-1.0, 0.5], [0.0, -2.0]])
    b = np.array([1.0, 2.0])
    lin = dynafit.Model("linear", ["u", "v"], np.concatenate([b[:, None], A], 1))
    (fp,) = lin.fixed_points()
    np.testing.assert_allclose(fp["x"], np.linalg.solve(A, -b))
    assert fp["stable"] and np.allclose(sorted(fp["eigenvalues"].real), [-2, -1])

    r, a = competitive_lv(3, seed=1)
    lvm = dynafit.Model("lotka_volterra", ["p", "q", "s"], np.concatenate([r[:, None], a], 1))
    fps = lvm.fixed_points()
    assert len(fps) == 8  # every subset of survivors (the origin included)
    interior = np.linalg.solve(a, -r)
    if np.all(interior > 0):
        assert any(np.allclose(f["x"], interior) for f in fps)
    origin = [f for f in fps if np.allclose(f["x"], 0)][0]
    assert not origin["stable"]  # r > 0: every species grows from zero
    stable = [f for f in fps if f["stable"] and f["feasible"]]
    assert len(stable) == 1
    # the long-run state of the simulated system is the stable feasible equilibrium
    end = lvm.simulate(np.linspace(0, 200, 201), np.full(3, 0.5))[
        -1
    ]  # shapes as above: no recompile
    np.testing.assert_allclose(end, stable[0]["x"], atol=1e-3)

    poly = dynafit.Model("polynomial", ["x"], [[1.0, 0.0, -1.0]])  # x' = 1 - x^2
    roots = sorted(float(f["x"][0]) for f in poly.fixed_points())
    np.testing.assert_allclose(roots, [-1.0, 1.0], atol=1e-5)
    assert [f["stable"] for f in sorted(poly.fixed_points(), key=lambda f: f["x"][0])] == [
        False,
        True,
    ]
