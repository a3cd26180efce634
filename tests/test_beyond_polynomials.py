"""Laws beyond polynomials (issue 21): trigonometric, exponential, rational and user
libraries; their equations, integration and save/load (terms as data trees)."""

import json

import numpy as np
import pytest
import sympy
from scipy.integrate import solve_ivp

import dynafit
from dynafit.families import Exponential, Library, Rational, Trigonometric
from dynafit.families._tree import from_tree, to_tree


def _solve(f, x0, t, runs=None):
    xs = [
        solve_ivp(f, (t[0], t[-1]), x, t_eval=t, rtol=1e-11, atol=1e-12).y.T
        for x in ([x0] if runs is None else runs)
    ]
    return xs[0] if runs is None else np.stack(xs)


def _noisy(x, level, seed=0):
    rng = np.random.default_rng(seed)
    axes = tuple(range(x.ndim - 1))
    return x + level * x.std(axis=axes, keepdims=True) * rng.normal(size=x.shape)


def pendulum(level=0.0):
    """theta' = omega, omega' = -2 sin(theta) - 0.2 omega."""
    t = np.linspace(0, 20, 1001)
    x = _solve(lambda t, y: [y[1], -2.0 * np.sin(y[0]) - 0.2 * y[1]], [2.0, 0.0], t)
    return dynafit.Trajectory(t, _noisy(x, level, 1), names=["th", "om"])


def kuramoto():
    """theta_i' = w_i + (K/3) sum_j sin(theta_j - theta_i), K = 0.6."""
    w = np.array([1.0, 1.5, 2.2])

    def f(t, y):
        return w + 0.2 * np.sin(y[None, :] - y[:, None]).sum(1)

    t = np.linspace(0, 20, 1001)
    return dynafit.Trajectory(t, _solve(f, [0.0, 1.0, 2.0], t), names=["a", "b", "c"])


def michaelis_menten(level=0.0):
    """S' = -1.5 S / (0.5 + S) = -3 S / (1 + 2 S), three runs."""
    t = np.linspace(0, 4, 201)
    x = _solve(lambda t, y: [-1.5 * y[0] / (0.5 + y[0])], None, t, runs=[[4.0], [2.0], [1.0]])
    return dynafit.Trajectory(t, _noisy(x, level), names=["S"])


def _coef(model, eq, term):
    """Coefficient of ``term`` (a sympy expression over the model's names) in equation eq."""
    terms = model.terms
    k = next(i for i, e in enumerate(terms) if sympy.simplify(e - term) == 0 or e == term)
    return model.coefficients[eq, k]


@pytest.mark.parametrize("level", [0.0, 0.01])
def test_damped_pendulum_recovered_exactly(level):
    model = dynafit.fit(pendulum(level), family="trigonometric")
    th, om = sympy.symbols("th om")
    assert model.n_terms == 3, str(model)
    assert _coef(model, 0, om) == pytest.approx(1.0, rel=1e-2)
    assert _coef(model, 1, sympy.sin(th)) == pytest.approx(-2.0, rel=2e-2)
    assert _coef(model, 1, om) == pytest.approx(-0.2, rel=5e-2)
    # printed equations are what is integrated: the rollout reproduces the data
    assert model.score(pendulum())["rollout_r2"] > 0.99


def test_kuramoto_coupling_recovered():
    traj = kuramoto()
    model = dynafit.fit(traj, family=Trigonometric(degree=0))
    assert model.n_terms == 9, str(model)
    a, b, c = sympy.symbols("a b c")
    rhs = [sympy.expand(eq.rhs) for eq in model.equations()]
    want = [
        1.0 + 0.2 * sympy.sin(b - a) + 0.2 * sympy.sin(c - a),
        1.5 + 0.2 * sympy.sin(a - b) + 0.2 * sympy.sin(c - b),
        2.2 + 0.2 * sympy.sin(a - c) + 0.2 * sympy.sin(b - c),
    ]
    pts = traj.x[::97]
    for got, exp in zip(rhs, want):
        f_got = sympy.lambdify((a, b, c), got)
        f_exp = sympy.lambdify((a, b, c), exp)
        np.testing.assert_allclose(f_got(*pts.T), f_exp(*pts.T), atol=2e-3)


@pytest.mark.parametrize("level", [0.0, 0.01])
def test_michaelis_menten_recovered_as_rational(level):
    model = dynafit.fit(michaelis_menten(level), family="rational")
    S = sympy.Symbol("S")
    rhs = model.equations()[0].rhs
    num, den = sympy.fraction(sympy.together(rhs))
    # -3 S / (1 + 2 S), whatever the printed normalisation
    poly_n, poly_d = sympy.Poly(num, S), sympy.Poly(den, S)
    assert poly_n.degree() == 1 and poly_d.degree() == 1, str(model)
    assert float(poly_n.coeff_monomial(1)) == 0.0
    k = float(poly_d.coeff_monomial(1))
    ratio = float(poly_n.coeff_monomial(S)) / k
    assert ratio == pytest.approx(-3.0, rel=0.05)
    assert float(poly_d.coeff_monomial(S)) / k == pytest.approx(2.0, rel=0.1)
    back = dynafit.Model.from_dict(json.loads(json.dumps(model.to_dict())))
    assert isinstance(back.family, Rational) and back.equations() == model.equations()


def test_exponential_gompertz():
    """N' = 0.5 N log(10 / N) = 0.5 log(10) N - 0.5 N log N."""
    t = np.linspace(0, 10, 401)
    x = _solve(lambda t, y: [0.5 * y[0] * np.log(10.0 / y[0])], None, t, runs=[[0.5], [2.0]])
    traj = dynafit.Trajectory(t, x, names=["N"])
    model = dynafit.fit(traj, family=Exponential(exp=False))
    N = sympy.Symbol("N")
    assert model.n_terms == 2, str(model)
    assert _coef(model, 0, N * sympy.log(N)) == pytest.approx(-0.5, rel=1e-3)
    assert _coef(model, 0, N) == pytest.approx(0.5 * np.log(10.0), rel=1e-3)
    with pytest.raises(ValueError, match="strictly positive"):
        dynafit.fit(dynafit.Trajectory(t, x - 1.0, names=["N"]), family="exponential")


def test_user_library_fits_prints_and_saves(tmp_path):
    th, om = sympy.symbols("theta omega")
    lib = Library([om, sympy.sin(th), sympy.tanh(om)], variables=[th, om], name="my_pendulum")
    model = dynafit.fit(pendulum(), family=lib)
    assert model.n_terms == 3
    assert "sin(th)" in str(model)
    path = model.save(tmp_path / "m.json")
    back = dynafit.load_model(path)
    assert isinstance(back.family, Library) and back.family.name == "my_pendulum"
    assert back.terms == model.terms
    np.testing.assert_array_equal(back.coefficients, model.coefficients)
    np.testing.assert_allclose(
        back.simulate(np.linspace(0, 2, 5), [1.0, 0.0]),
        model.simulate(np.linspace(0, 2, 5), [1.0, 0.0]),
    )
    with pytest.raises(ValueError, match="not strings"):
        Library(["sin(x)"])
    with pytest.raises(ValueError, match="written for 2 variables"):
        dynafit.fit(kuramoto(), family=lib)


EVERY_TERM = [
    lambda x, y: sympy.sin(x - y),
    lambda x, y: sympy.cos(3 * x),
    lambda x, y: sympy.exp(-x),
    lambda x, y: x * sympy.log(y),
    lambda x, y: x / (1 + sympy.Rational(1, 2) * y**2),
    lambda x, y: sympy.tan(x) + sympy.atan(y) + sympy.Abs(x),
    lambda x, y: sympy.sqrt(x) * sympy.pi + sympy.E**y,
    lambda x, y: sympy.tanh(x) * sympy.sinh(y) / sympy.cosh(x),
    lambda x, y: sympy.asin(x / 4) + sympy.acos(y / 4) + sympy.Float(0.125) * x,
]


@pytest.mark.parametrize("k", range(len(EVERY_TERM)))
def test_term_tree_round_trip(k):
    x, y = sympy.symbols("x y")
    e = EVERY_TERM[k](x, y)
    tree = json.loads(json.dumps(to_tree(e, (x, y))))
    assert from_tree(tree, (x, y)) == e


@pytest.mark.parametrize(
    "family",
    [
        Trigonometric(degree=2, frequencies=(1, 2), products=True),
        Exponential(),
        Rational(degree=2, denominator_degree=1, denominators=[[0.5, 0.0], [0.0, 0.25]]),
        Library([sympy.Symbol("u") * sympy.exp(-sympy.Symbol("v"))], ["u", "v"]),
    ],
    ids=repr,
)
def test_model_save_load_every_family(family, tmp_path):
    x = sympy.symbols("p q")
    n = len(family.terms(x))
    xi = np.linspace(-1, 1, 2 * n).reshape(2, n)
    model = dynafit.Model(family, ["p", "q"], xi)
    back = dynafit.load_model(model.save(tmp_path / "m.json"))
    assert back.family == family or isinstance(back.family, Library)
    assert back.equations() == model.equations()
    pts = np.array([[0.3, 0.7], [1.1, 0.2]])
    np.testing.assert_allclose(back.rhs(0.0, pts), model.rhs(0.0, pts), rtol=1e-6)


@pytest.mark.parametrize(
    "tree, message",
    [
        ({"op": "eval", "args": [{"var": 0}]}, "unknown operator"),
        ({"op": "sin", "args": [{"var": 0}, {"var": 1}]}, "takes 1 arguments"),
        ({"op": "add", "args": [{"var": 0}]}, "at least 2"),
        ({"var": 7}, "'var' must be a variable index in 0..1"),
        ({"var": True}, "variable index"),
        ({"int": 1.5}, "'int' must be an integer"),
        ({"float": "nan"}, "finite number"),
        ({"rational": [1, 0]}, "q != 0"),
        ({"int": 1, "var": 0}, "malformed"),
        ("__import__('os')", "ints or term trees"),
        ({}, "non-empty object"),
        ({"const": "tau"}, "one of the constants"),
    ],
)
def test_malformed_saved_tree_is_value_error(tree, message, tmp_path):
    model = dynafit.Model(Trigonometric(degree=0, differences=False), ["p", "q"], np.ones((2, 5)))
    data = model.to_dict()
    data["terms"][1] = tree
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        dynafit.load_model(path)


def test_deep_tree_refused():
    node = {"var": 0}
    for _ in range(100):
        node = {"op": "sin", "args": [node]}
    with pytest.raises(ValueError, match="deeper"):
        from_tree(node, sympy.symbols("x y"))


def test_old_exponent_files_still_load():
    model = dynafit.Model("polynomial", ["a", "b"], np.arange(12.0).reshape(2, 6))
    data = model.to_dict()
    assert all(isinstance(r, list) for r in data["terms"])  # monomials stay exponent lists
    back = dynafit.Model.from_dict(data)
    assert back.family == model.family and back.equations() == model.equations()


def test_family_options_checked():
    with pytest.raises(ValueError, match="degree"):
        Trigonometric(degree=-1)
    with pytest.raises(ValueError, match="frequencies"):
        Trigonometric(frequencies=(0,))
    with pytest.raises(ValueError, match="denominators"):
        Rational(denominators=[[1.0]]).prefactors(sympy.symbols("p q"))
    with pytest.raises(ValueError, match="overflow"):
        Exponential(log=False).validate(np.array([[100.0]]), ["x"])


# ------------------------------------------------------------ automatic library choice
def test_fit_auto_picks_trigonometric_for_the_pendulum():
    traj = pendulum()
    model = dynafit.fit(traj, family="auto")
    assert isinstance(model.family, Trigonometric), model.options["auto_choice"]
    assert model.n_terms == 3
    board = model.options["auto_choice"]["board"]
    assert [r["family"] for r in board][0] == "trigonometric"
    # every candidate of the default set was tried, the inapplicable one ranked last
    assert {r["family"] for r in board} == {
        "linear",
        "lotka_volterra",
        "polynomial",
        "polynomial3",
        "trigonometric",
        "rational",
    }
    assert board[-1]["family"] == "lotka_volterra" and board[-1]["status"] != "ok"
    assert board[0]["general_r2"] > 0.99


@pytest.mark.slow
def test_fit_auto_picks_rational_for_michaelis_menten():
    model = dynafit.fit(michaelis_menten(0.01), family="auto")
    assert isinstance(model.family, Rational), model.options["auto_choice"]
    assert model.n_terms == 1


@pytest.mark.slow
def test_fit_auto_picks_trigonometric_for_kuramoto():
    model = dynafit.fit(kuramoto(), family="auto")
    assert isinstance(model.family, Trigonometric), model.options["auto_choice"]


def test_generalization_check_splits_runs_and_windows():
    from dynafit._generalize import folds

    single = pendulum()
    ((train, test),) = folds(single)
    assert train.t[-1] < test.t[0] and test.t[-1] == single.t[-1]
    assert test.n_times == pytest.approx(0.25 * single.n_times, abs=2)
    batch = michaelis_menten()
    pairs = folds(batch)
    assert len(pairs) == 3 and all(tr.n_runs == 2 for tr, _ in pairs)
    np.testing.assert_array_equal(pairs[1][1].x, batch.x[1])


def test_rank_generalizing_puts_laws_first():
    import pandas as pd

    from dynafit._board import rank_generalizing

    board = pd.DataFrame(
        {
            "family": ["small", "big", "broken"],
            "variant": "sindy",
            "status": ["ok", "ok", "not applicable: no"],
            "n_library": [3, 20, 3],
            "n_terms": [2, 9, None],
            "bic": [-100.0, -500.0, None],
            "rollout_r2": [0.95, 0.99, None],
            "diverged": [False, False, False],
            "general_r2": [0.9, 0.2, None],
        }
    )
    ranked = rank_generalizing(board)
    # "big" fits the data better (BIC) but fails from a state it did not see
    assert list(ranked["family"]) == ["small", "big", "broken"]


def test_rank_generalizing_prefers_a_stable_support():
    import pandas as pd

    from dynafit._board import STABLE_SUPPORT, rank_generalizing

    board = pd.DataFrame(
        {
            "family": ["small", "big", "unchecked", "bad"],
            "variant": "sindy",
            "status": "ok",
            "n_library": [3, 20, 30, 2],
            "n_terms": [2, 3, 4, 1],
            "bic": [-500.0, -495.0, -490.0, -600.0],
            "rollout_r2": [0.99, 0.99, 0.99, 0.99],
            "diverged": False,
            "general_r2": [0.99, 0.98, 0.97, 0.5],
            "support_stability": [STABLE_SUPPORT - 0.2, 1.0, np.nan, 1.0],
        }
    )
    ranked = rank_generalizing(board)
    # all but "bad" generalise and tie on BIC: the smaller library would win, but its
    # terms change from window to window; a row without the check (NaN) counts as stable
    assert list(ranked["family"]) == ["big", "unchecked", "small", "bad"]
    assert list(ranked["rank"]) == [1, 2, 3, 4]
    board["support_stability"] = STABLE_SUPPORT
    assert list(rank_generalizing(board)["family"])[:3] == ["small", "big", "unchecked"]


# ---------------------------------------------------------------- command line tables
def test_cli_fit_csv_end_to_end(tmp_path, capsys):
    from dynafit.cli import main as dynafit_main

    traj = pendulum()
    df = traj.to_dataframe().rename(columns={"t": "time"})
    df["label"] = "x"  # a text column is not a variable
    df.to_csv(tmp_path / "pend.csv", index=False)
    out = tmp_path / "out"
    code = dynafit_main(
        [
            "fit",
            str(tmp_path / "pend.csv"),
            "--time",
            "time",
            "--families",
            "linear,trigonometric",
            "--out",
            str(out),
            "--no-figures",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "2 variables" in text and "best model: trigonometric" in text
    assert "sin(th)" in text
    assert (out / "report.md").exists() and (out / "leaderboard.csv").exists()
    # two CSV files are two runs; --vars picks the columns; a bad time column exits 2
    half = df.iloc[:500]
    half.to_csv(tmp_path / "a.csv", index=False)
    half.assign(th=half["th"] * 0.5).to_csv(tmp_path / "b.csv", index=False)
    code = dynafit_main(
        [
            "fit",
            str(tmp_path / "a.csv"),
            str(tmp_path / "b.csv"),
            "--time",
            "time",
            "--vars",
            "th,om",
            "--families",
            "linear",
            "--out",
            str(tmp_path / "o2"),
            "--no-figures",
            "--no-per-run",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "2 runs x 500 times" in text
    assert dynafit_main(["fit", str(tmp_path / "a.csv"), "--out", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err
    assert "no time column 't'" in err and "Traceback" not in err


def test_cli_fit_parquet(tmp_path, capsys):
    """Parquet tables (pyarrow, the parquet extra) read as CSV ones; a column name that is
    not an identifier becomes one; a corrupt file is a clear error, exit 2."""
    from dynafit.cli import main as dynafit_main

    df = pendulum().to_dataframe().iloc[:300]
    df = df.rename(columns={"t": "time", "th": "theta (rad)"})
    df["label"] = "x"
    df.to_parquet(tmp_path / "pend.parquet")
    args = ["--time", "time", "--families", "linear", "--no-figures"]
    code = dynafit_main(
        ["fit", str(tmp_path / "pend.parquet"), *args, "--out", str(tmp_path / "o")]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "300 times" in text and "2 variables" in text and "theta__rad_" in text
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really parquet")
    code = dynafit_main(["fit", str(tmp_path / "bad.parquet"), *args, "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "not a readable table" in err and "Traceback" not in err
