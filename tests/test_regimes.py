"""The regime benchmark (issue 22, ``benchmarks/regimes.py``): its generator produces the
laws it documents, its scores score a known answer as one, and its cache never mixes
results of two versions of dynafit's code."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import regimes  # noqa: E402

PLAIN_KINDS = [k for k in regimes.KINDS if not k.startswith("dysts_")]


def _dysts_available() -> bool:
    try:
        regimes.dysts_flow(regimes.DYSTS_FLOWS[0])
    except regimes.MissingDependency:
        return False
    return True


def _kind_params():
    out = [pytest.param(k) for k in PLAIN_KINDS]
    skip = pytest.mark.skipif(not _dysts_available(), reason="dysts is not installed")
    out += [pytest.param(f"dysts_{n}", marks=skip) for n in regimes.DYSTS_FLOWS[:1]]
    return out


# ------------------------------------------------------------------ the generator
def _in_family(coef: np.ndarray, family: str) -> bool:
    exps = regimes.poly_exponents(coef.shape[0])
    for i, row in enumerate(coef):
        for e, c in zip(exps, row):
            if c == 0:
                continue
            if family == "linear" and sum(e) > 1:
                return False
            if family == "lotka_volterra" and e[i] == 0:
                return False
    return True


@pytest.mark.parametrize("kind", _kind_params())
def test_each_kind_is_its_documented_law(kind):
    """Draw 1 at 2,000 clean samples: the data follow the law (finite differences match the
    right-hand side), the law lies in its family and in no smaller one, and the true
    coefficients score as exact with F1 1 and R^2 ~ 1 on the data and from the unseen
    start (for a chaotic flow over one period)."""
    system, t, noisy, clean, unseen = regimes.make_case(kind, 2000, 0.0, 1)
    np.testing.assert_array_equal(noisy, clean)
    for run in clean:
        fd = np.gradient(run, t, axis=0)[2:-2]
        rhs = np.array([system.rhs(x) for x in run])[2:-2]
        assert np.linalg.norm(fd - rhs) < 0.02 * np.linalg.norm(rhs)
    order = ["linear", "lotka_volterra", "polynomial"]
    assert _in_family(system.coef, system.family)
    # the right family is the smallest library holding the law
    assert not any(_in_family(system.coef, f) for f in order[: order.index(system.family)])
    s = regimes.score_coef(system.coef, system, t, noisy, clean, unseen)
    assert s["exact"] and s["f1"] == 1.0 and s["coef_err"] == 0.0
    assert s["own_r2"] > 0.999 and s["new_r2"] > 0.999


def test_documented_laws_by_hand():
    """Coefficients of a few kinds against their definitions: chemistry conserves B + C,
    SEIR's S + E + I falls at gamma I, the food chain's top predator eats only the
    middle one."""
    rng = np.random.default_rng(5)
    chem = regimes.chemistry(rng)
    x = np.array([0.7, 0.4, 0.9])
    dA, dB, dC = chem.rhs(x)
    assert dB + dC == pytest.approx(0.0, abs=1e-12) and dA < dB
    seir = regimes.seir(rng)
    gamma = -seir.coef[2, regimes._index(3)[(0, 0, 1)]]
    assert seir.rhs(x).sum() == pytest.approx(-gamma * x[2])
    chain = regimes.food_chain(rng)
    idx = regimes._index(3)
    top = {e for e, c in zip(regimes.poly_exponents(3), chain.coef[2]) if c}
    assert top == {(0, 0, 1), (0, 1, 1)} and chain.coef[2, idx[(0, 1, 1)]] > 0


def test_noise_is_multiplicative_at_its_level_and_draws_repeat():
    system, _, noisy, clean, _ = regimes.make_case("lv2", 1000, 0.05, 3)
    rel = noisy / clean - 1.0
    assert rel.std() == pytest.approx(0.05, rel=0.1) and abs(rel.mean()) < 0.01
    again = regimes.make_case("lv2", 1000, 0.05, 3)
    np.testing.assert_array_equal(noisy, again[2])
    other = regimes.make_case("lv2", 1000, 0.05, 4)
    assert not np.allclose(system.coef, other[0].coef)
    multi = regimes.make_case("lv4_multi", 20, 0.0, 1)
    assert multi[2].shape == (4, 20, 4)  # four short runs from different starts
    assert not np.allclose(multi[2][0, 0], multi[2][1, 0])


# ------------------------------------------------------------------ the scores
def test_support_scores_count_missing_and_extra_terms():
    true = np.zeros((2, 6))
    true[0, [1, 4]] = [1.0, -0.5]
    true[1, [2, 4]] = [-1.0, 0.5]
    s = regimes.support_scores(true.copy(), true)
    assert s["exact"] and s["f1"] == 1.0 and s["coef_err"] == 0.0
    extra = true.copy()
    extra[0, 0] = 0.1  # one spurious term: F1 = 2 * 4 / (5 + 4)
    s = regimes.support_scores(extra, true)
    assert not s["exact"] and s["f1"] == pytest.approx(8 / 9)
    missing = true.copy()
    missing[1, 4] = 0.0  # one dropped term: F1 = 2 * 3 / (3 + 4)
    s = regimes.support_scores(missing, true)
    assert not s["exact"] and s["f1"] == pytest.approx(6 / 7)
    assert s["coef_err"] == pytest.approx(0.5 / np.linalg.norm(true))


def test_scores_of_a_wrong_or_diverging_law():
    system, t, noisy, clean, unseen = regimes.make_case("predprey", 100, 0.0, 1)
    wrong = system.coef.copy()
    wrong[0, wrong[0] != 0] *= -1.0  # prey that dies and is fed by its predator
    s = regimes.score_coef(wrong, system, t, noisy, clean, unseen)
    # the support is exact (signs are the coefficient error's business), the law is not
    assert s["exact"] and s["f1"] == 1.0 and s["coef_err"] > 1.0
    assert s["own_r2"] < 0.5 and s["new_r2"] < 0.5
    blowup = np.zeros_like(system.coef)
    blowup[:, 3] = 50.0  # x0^2 growth: finite-time blow-up (clipped or failed: no score)
    s = regimes.score_coef(blowup, system, t, noisy, clean, unseen)
    assert s["own_r2"] < -100 and s["new_r2"] < -100


# ------------------------------------------------------------------ the cache
def test_code_key_changes_with_dynafit_code(tmp_path):
    real = Path(importlib.util.find_spec("dynafit").origin).parent
    copy = tmp_path / "dynafit"
    shutil.copytree(real, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert regimes.code_key(copy) == regimes.code_key(real) == regimes.code_key()
    with open(copy / "_choice.py", "a") as f:
        f.write("\n# another rule\n")
    assert regimes.code_key(copy) != regimes.code_key(real)


def _fake_case(calls):
    def run_case(kind, size, noise, draw, compare):
        calls.append((kind, size, noise, draw))
        return {"kind": kind, "size": size, "noise": noise, "draw": draw, "dynafit": {}}

    return run_case


def test_stale_records_are_recomputed_and_left_out_of_the_table(tmp_path, monkeypatch):
    monkeypatch.setattr(regimes, "RESULTS", tmp_path)
    calls: list = []
    monkeypatch.setattr(regimes, "run_case", _fake_case(calls))
    key = regimes.code_key()
    stale = regimes.cell_path("lv2", 20, 0.0, 0)
    stale.write_text(json.dumps({"kind": "lv2", "draw": 0, "dynafit": {}}))  # no key
    other = regimes.cell_path("lv2", 20, 0.0, 1)
    other.write_text(json.dumps({"kind": "lv2", "draw": 1, "key": "0" * 16}))
    fresh = regimes.cell_path("lv2", 20, 0.0, 2)
    regimes.write_record({"kind": "lv2", "draw": 2, "dynafit": {}}, fresh, key)
    recs, n_stale = regimes.load_records()
    assert [r["draw"] for r in recs] == [2] and n_stale == 2
    args = ["--kinds", "lv2", "--sizes", "20", "--noise", "0", "--draws", "3"]
    regimes.main(args)
    assert sorted(c[3] for c in calls) == [0, 1]  # the fresh draw 2 is reused
    recs, n_stale = regimes.load_records()
    assert n_stale == 0 and all(r["key"] == key for r in recs)
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_dysts_skips_its_cells_with_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(regimes, "RESULTS", tmp_path)
    monkeypatch.setattr(regimes, "DYSTS_SITE", str(tmp_path / "absent"))
    find = importlib.util.find_spec
    monkeypatch.setattr(
        regimes.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "dysts" else find(name, *a),
    )
    regimes.dysts_flow.cache_clear()
    try:
        regimes.main(["--kinds", "dysts_Rossler", "--sizes", "20", "--noise", "0"])
    finally:
        regimes.dysts_flow.cache_clear()
    out = capsys.readouterr().out
    assert "skipping dysts_Rossler: dysts is not installed" in out
    assert not list(tmp_path.glob("*.json"))
    with pytest.raises(ValueError, match="unknown kinds"):
        regimes.main(["--kinds", "lv3"])


# ------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_small_sweep_end_to_end(tmp_path, monkeypatch, capsys):
    """One odd draw of the predator-prey cell at 100 clean samples, run and tabled: dynafit
    and the oracle find the exact law, it generalises, and ``compare`` ranks the
    Lotka-Volterra family first."""
    monkeypatch.setattr(regimes, "RESULTS", tmp_path)
    args = ["--kinds", "predprey", "--sizes", "100", "--noise", "0"]
    regimes.main([*args, "--first-draw", "1", "--draws", "2"])
    recs, n_stale = regimes.load_records()
    assert len(recs) == 1 and n_stale == 0
    (row,) = regimes.table(recs, "odd")
    assert row["dynafit_exact"] == 1 and row["oracle_exact"] == 1
    assert row["dynafit_gen"] == 1 and row["family_first"] == row["n_compare"] == 1
    regimes.main(["--table"])
    assert "total fits 1" in capsys.readouterr().out


def test_a_case_past_its_time_is_recorded_as_timed_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(regimes, "RESULTS", tmp_path)
    calls: list = []
    fast = _fake_case(calls)

    def slow(*a):
        time.sleep(5.0)

    monkeypatch.setattr(regimes, "run_case", slow)
    args = ["--kinds", "lv2", "--sizes", "20", "--noise", "0", "--first-draw", "1"]
    regimes.main([*args, "--case-timeout", "0.2"])
    (rec,), _ = regimes.load_records()
    assert rec["timed_out"] == 0.2 and rec["draw"] == 1
    assert regimes.table([rec]) == []  # not scored
    regimes.main(["--table"])
    assert (
        "timed out after 0.2 s (not scored): lv2 T=20 noise=0.0 draw 1" in capsys.readouterr().out
    )
    monkeypatch.setattr(regimes, "run_case", fast)
    regimes.main(args)  # kept without --retry-timeouts
    assert calls == []
    regimes.main([*args, "--retry-timeouts"])
    assert calls == [("lv2", 20, 0.0, 1)]
