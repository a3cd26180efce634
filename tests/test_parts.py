"""The parts of a fit (dynafit.parts): they validate, print what they are, the strings are
shorthands for them, pysindy objects are accepted as they are, and swapping a part
changes what it should."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pysindy as ps
import pytest
from _systems import linear_traj, lv_traj

import dynafit
from dynafit import parts
from dynafit._parts._shared_rate import _matching_field
from dynafit.families import Fitting, LowRankLinear, LowRankLV, MeanFieldLV, get_family


@pytest.fixture(scope="module")
def lin():
    traj, true = linear_traj(m=3, seed=0, T=101)
    return traj


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: parts.Centered(order=0), "order must be a positive int"),
        (lambda: parts.Smoothed(window=3), "window must be an int >= 5"),
        (lambda: parts.Auto(order=1.5), "order must be a positive int"),
        (lambda: parts.PySINDy("centered"), "pysindy differentiation object"),
        (lambda: parts.STLSQ(alpha=-1.0), "alpha must be a number >= 0"),
        (lambda: parts.STLSQ(formulation="strong"), "regression must be one of"),
        (lambda: parts.STLSQ(weighting="odd"), "weighting must be"),
        (lambda: parts.SR3(nu=0.0), "nu must be a number > 0"),
        (lambda: parts.Ensemble(n_models=1), "n_models must be an int >= 2"),
        (lambda: parts.SharedRate(als_iter=0), "als_iter must be an int >= 1"),
        (lambda: parts.HeldOut(fraction=1.5), "holdout must be in"),
        (lambda: parts.HeldOut(rollout_slack=-1), "rollout_slack must be"),
        (lambda: parts.HeldOut(thresholds=[]), "thresholds must be a non-empty"),
        (lambda: parts.HeldOut(n_thresholds=1), "n_thresholds must be >= 2"),
        (lambda: parts.InformationCriterion("cv"), "unknown criterion 'cv'"),
        (lambda: parts.Threshold(-0.1), "threshold must be a finite number >= 0"),
        (lambda: parts.Threshold(float("nan")), "threshold must be a finite number >= 0"),
        (lambda: parts.NTerms(0), "n_terms must be a positive int"),
        (lambda: parts.Matching(steps=-1), "steps must be a non-negative int"),
        (lambda: parts.Matching(lr=0.0), "lr must be a positive finite number"),
        (lambda: parts.Matching(optimizer="newton"), "unknown optimizer 'newton'"),
        (lambda: parts.Stages(regression=parts.SharedRate()), "selection=None"),
        (lambda: parts.Stages(selection=None), "needs a selection part"),
        (lambda: parts.Stages(derivative="centered"), "derivative must be a dynafit.parts"),
    ],
)
def test_parts_validate_on_construction(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_parts_are_frozen_and_say_what_they_are():
    part = parts.Smoothed(window=9)
    assert repr(part) == "Smoothed(window=9, order=2)"
    assert repr(parts.STLSQ()) == (
        "STLSQ(alpha=1e-06, max_iter=20, formulation=None, weighting='derivative', seed=0)"
    )
    assert repr(parts.Threshold(0.1)) == "Threshold(value=0.1, fraction=0.2)"
    assert "Matching(steps=400" in repr(parts.Stages())
    with pytest.raises(dataclasses.FrozenInstanceError):
        part.window = 11  # type: ignore[misc]
    # equal parameters, equal parts; replace gives a new, checked part
    assert parts.Centered(order=4) == parts.Centered(order=4) != parts.Centered()
    with pytest.raises(ValueError, match="order"):
        dataclasses.replace(part, order=0)


def _same(a, b):
    np.testing.assert_array_equal(a.coefficients, b.coefficients)
    assert a.options == b.options


@pytest.mark.parametrize(
    "short, part",
    [
        (dict(derivative="centered"), dict(derivative=parts.Centered())),
        (dict(derivative="forward"), dict(derivative=parts.Forward())),
        (dict(derivative="smoothed", window=9), dict(derivative=parts.Smoothed(window=9))),
        (dict(derivative="centered", order=4), dict(derivative=parts.Centered(order=4))),
        (dict(optimizer="sr3", nu=0.5), dict(optimizer=parts.SR3(nu=0.5))),
        (dict(criterion="bic"), dict(criterion=parts.InformationCriterion("bic"))),
        (dict(threshold=0.05), dict(criterion=parts.Threshold(0.05))),
        (dict(n_terms=5), dict(criterion=parts.NTerms(5))),
        (
            dict(holdout=0.3, rollout_slack=0.2),
            dict(criterion=parts.HeldOut(0.3, rollout_slack=0.2)),
        ),
    ],
)
def test_string_shorthand_equals_part(lin, short, part):
    _same(dynafit.fit(lin, "linear", **short), dynafit.fit(lin, "linear", **part))


def test_stages_bundle_equals_arguments(lin):
    stages = parts.Stages(
        derivative=parts.Centered(order=4),
        regression=parts.STLSQ(alpha=1e-5),
        selection=parts.InformationCriterion("aic"),
    )
    by_args = dynafit.fit(
        lin, "linear", derivative="centered", order=4, alpha=1e-5, criterion="aic"
    )
    _same(dynafit.fit(lin, "linear", stages=stages), by_args)
    with pytest.raises(ValueError, match="not beside it"):
        dynafit.fit(lin, "linear", stages=stages, order=2)
    with pytest.raises(ValueError, match="not beside it"):
        dynafit.fit(lin, "linear", derivative=parts.Centered(), order=4)
    with pytest.raises(ValueError, match="not beside it"):
        dynafit.fit(lin, "linear", criterion=parts.HeldOut(), threshold=0.1)
    with pytest.raises(ValueError, match="SharedRate"):
        dynafit.fit(lin, "mean_field_lv", stages=stages)
    with pytest.raises(ValueError, match="takes matching=Matching"):
        dynafit.fit(lin, "linear", matching=parts.Matching(steps=5))
    with pytest.raises(ValueError, match="not beside it"):
        dynafit.fit(lin, MeanFieldLV(), matching=parts.Matching(), steps=5)


def test_pysindy_differentiation_objects_as_they_are(lin):
    # pysindy's own FiniteDifference(order=2) is what the centred part computes
    own = dynafit.fit(lin, "linear", derivative=ps.FiniteDifference(order=2))
    plain = dynafit.fit(lin, "linear", derivative="centered")
    np.testing.assert_allclose(own.coefficients, plain.coefficients, rtol=1e-9, atol=1e-12)
    assert own.options["derivative"] == "pysindy:FiniteDifference"
    wrapped = dynafit.fit(lin, "linear", derivative=parts.PySINDy(ps.SmoothedFiniteDifference()))
    assert wrapped.options["derivative"] == "pysindy:SmoothedFiniteDifference"
    assert np.all(wrapped.score(lin)["deriv_r2"] > 0.99)


def test_swapping_a_part_changes_what_it_should(lin):
    base = dynafit.fit(lin, "linear")
    forward = dynafit.fit(lin, "linear", derivative=parts.Forward())
    assert forward.options["derivative"] == "forward"
    assert not np.allclose(forward.coefficients, base.coefficients)
    few = dynafit.fit(lin, "linear", criterion=parts.NTerms(3))
    assert np.count_nonzero(few.coefficients) <= 3 < np.count_nonzero(base.coefficients)
    assert "rollout_r2" in base.sweep
    unscreened = dynafit.fit(lin, "linear", criterion=parts.HeldOut(check_rollout=False))
    assert "rollout_r2" not in unscreened.sweep
    weak = dynafit.fit(lin, "linear", optimizer=parts.STLSQ(formulation="weak"))
    assert weak.options["regression"] == "weak" and "test_function_width" in weak.options


def test_matching_part_on_short_data(monkeypatch):
    """Short data: the matching stage refines the candidates (the real refinement is
    tested in test_discovery); matching=None leaves the held-out choice alone."""
    from dynafit._parts import _sparse

    calls = []

    def spy(model_of, fits, traj):
        calls.append(len(fits))
        return 0, fits[0], np.zeros(len(fits)), {"rule": "spy"}

    monkeypatch.setattr(_sparse, "choose_refined", spy)
    short, _ = lv_traj(m=2, seed=3, runs=2, T=30)
    matched = dynafit.fit(short, "lotka_volterra")
    assert calls == [len(matched.sweep)]
    assert matched.options["selection"] == "refined candidates"
    assert "refined_rollout_r2" in matched.sweep
    plain = dynafit.fit(short, "lotka_volterra", matching=None)
    assert calls == [len(matched.sweep)]  # not called again
    assert "selection" not in plain.options and "refined_rollout_r2" not in plain.sweep
    long, _ = lv_traj(m=2, seed=3, runs=2, T=120)
    dynafit.fit(long, "lotka_volterra")
    assert len(calls) == 1  # 120 samples are not short


def test_families_say_how_they_are_fitted():
    assert get_family("linear").fitting is Fitting.SPARSE
    assert MeanFieldLV().fitting is Fitting.SHARED_RATE
    assert LowRankLinear(rank=2).fitting is Fitting.SHARED_RATE
    import dynafit._fit as fit_module

    assert not hasattr(fit_module, "OWN_FITS") and not hasattr(fit_module, "CHOOSERS")


@pytest.mark.parametrize(
    "family", [MeanFieldLV(), MeanFieldLV(offset=True), LowRankLV(rank=2), LowRankLinear(rank=1)]
)
def test_matching_field_is_the_models_field(family):
    """What trajectory matching integrates is the Model's own vector field (generated
    from the same sympy terms), for any coefficients and weights."""
    m, K = 4, family.rank
    rng = np.random.default_rng(0)
    e, c, d = rng.normal(size=m), rng.normal(size=m), rng.normal(size=m)
    U, V = rng.normal(size=(m, K)), rng.uniform(0.5, 1.5, size=(K, m))
    if not family.offset:
        e = np.zeros(m)
    fitted = family.with_weights(V) if family.learn_weights else family
    V = fitted.weight_matrix(m)
    model = dynafit.Model(
        fitted, [f"x{i}" for i in range(m)], family.coefficient_matrix(e, c, d, U)
    )
    field = _matching_field(family, m)
    for x in rng.uniform(0.1, 2.0, size=(5, m)):
        got = field(jnp.asarray(x), tuple(jnp.asarray(a) for a in (e, c, d, U, V)))
        want = model.rhs(0.0, jnp.asarray(x))
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_shared_rate_matching_part(monkeypatch):
    """The Matching part's settings reach the optimiser; matching=None stops after least
    squares (the optimiser itself runs in test_structured_families)."""
    from dynafit._matching._rollout_opt import RolloutResult
    from dynafit._parts import _shared_rate

    seen = {}

    def spy(field, to_params, params0, t, x, **kw):
        seen.update(kw, field=field)
        return RolloutResult(params0, 1.0, 1.0, 0, kw["steps"], None, [], 0.0)

    monkeypatch.setattr(_shared_rate, "optimise_rollout", spy)
    traj, _ = lv_traj(m=3, seed=0, T=101)
    off = dynafit.fit(traj, MeanFieldLV(), matching=None)
    assert "refine" not in off.options and not seen
    on = dynafit.fit(traj, MeanFieldLV(), matching=parts.Matching(steps=7, lr=0.003, rtol=1e-4))
    assert (seen["steps"], seen["lr"], seen["rtol"]) == (7, 0.003, 1e-4)
    assert seen["field"] is _matching_field(MeanFieldLV(), 3)  # one compiled field per library
    assert on.options["refine"]["steps"] == 7 and on.options["variant"] == "matched"
    np.testing.assert_array_equal(on.coefficients, off.coefficients)  # nothing improved
    short = dynafit.fit(traj, MeanFieldLV(), steps=7, lr=0.003, rtol=1e-4)
    assert short.options["refine"]["steps"] == 7  # the keyword shorthand, the same part
    with pytest.raises(ValueError, match="do not apply"):
        dynafit.fit(traj, MeanFieldLV(), optimizer=parts.SR3())
