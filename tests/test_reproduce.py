"""``dynafit reproduce`` and the analyses behind it (training.analysis).

The fast tests build small synthetic trainer-like folders with known answers; the slow
test runs ``dynafit reproduce --scale small`` end to end (second stage).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import dynafit
from training import analysis
from training.reproduce import analyse, main, spec_path
from training.sweep import load_experiments

M, T = 29, 41


def _runs(dims, factors=(1.0,), seeds=(0, 1), winners=(3, 7), scaled=()):
    """A batch of fake trainer runs: every circle starts near 1 and decays, except the
    ``winners`` (and, with a factor > 1, the scaled circles), which grow; the winners also
    start highest and grow fastest at first (so the fittest survive)."""
    xs, metas = [], []
    t = np.arange(T, dtype=float)
    rng = np.random.default_rng(0)
    for dim in dims:
        for factor in factors:
            for seed in seeds:
                s = np.exp(-0.02 * t)[:, None] * rng.uniform(0.9, 1.0, M)
                grow = list(winners[: 1 + dims.index(dim)])
                if factor > 1:
                    grow += [k - 1 for k in scaled]
                for i in grow:
                    s[:, i] = (1.05 + 0.01 * i) * np.exp(0.05 * t)
                for k in scaled:
                    s[:, k - 1] *= 1.0 if factor > 1 else 0.5
                xs.append(s)
                config = {
                    "p": 2 * M + 1,
                    "dim": dim,
                    "steps": T - 1,
                    "dtype": "float32",
                    "scale_freqs": list(scaled),
                    "scale_factor": factor,
                }
                metas.append(
                    {"config": config, "seed": seed, "embed_seed": seed, "final_test_acc": 1.0}
                )
    x = np.stack(xs)
    names = [f"S{k}" for k in range(1, M + 1)]
    return dynafit.Trajectory(t, x, names, {"runs": metas}, {"s0": np.zeros(x.shape[:2])})


def test_circle_table_and_claims():
    traj = _runs([16, 128])
    table = analysis.circle_table(traj)
    assert len(table) == traj.n_runs * M
    counts = analysis.survivor_counts(table)
    assert counts.groupby("dim")["n_alive"].mean().to_dict() == {16: 1, 128: 2}
    by_dim = analysis.survivors_by_dim(counts)
    assert list(by_dim["dim"]) == [16, 128] and list(by_dim["runs"]) == [2, 2]
    auc = analysis.fittest_auc(table)
    assert auc["auc_signal"] == 1.0 and auc["auc_gradient"] == 1.0
    assert auc["n_alive"] == int(table["alive"].sum())
    # initial gradient as the reference computes it
    row = table.iloc[3]
    x = traj.x[0, :, 3]
    assert row["init_gradient"] == pytest.approx((x[4] - x[3]) / x[0])


def test_intervention_table():
    traj = _runs([128], factors=(0.5, 2.0), scaled=(25,))
    inter = analysis.intervention_table(traj)
    assert list(inter["scale_factor"]) == [0.5, 2.0]
    assert list(inter["rate"]) == [0.0, 1.0]
    with pytest.raises(ValueError, match="no intervened"):
        analysis.intervention_table(_runs([128]))


def test_linear_r2_paper_method():
    traj = _runs([16, 128])
    r2 = analysis.linear_r2(traj, window=30, dynafit_fit=False)
    assert r2.attrs["window"] == (0.0, 30.0)
    assert np.isfinite(r2[["lasso_r2", "lstsq_r2"]].to_numpy()).all()
    assert set(analysis.r2_by_dim(r2)["dim"]) == {16, 128}


def _folder(tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "out"
    dims, scaling = _runs([16, 128]), _runs([128], factors=(0.5, 2.0), scaled=(25,))
    (out / "dims").mkdir(parents=True)
    (out / "scaling").mkdir()
    dims.save(out / "dims" / "a.npz")
    scaling.save(out / "scaling" / "b.npz")
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'p = 59\nseeds = "0-1"\n[experiments.dims.grid]\ndim = [16, 128]\n'
        "[experiments.scaling]\nscale_freqs = [25]\n[experiments.scaling.grid]\n"
        "scale_factor = [0.5, 2.0]\n"
    )
    return out, spec


def test_analyse_writes_report_and_figures(tmp_path):
    out, spec = _folder(tmp_path)
    summary = analyse(out, spec=spec, r2_window=30, dynafit_fit=False)
    report = (out / "report.md").read_text()
    assert "| claim | paper | ours | figure |" in report
    assert report.count("\n| ") >= 6
    for name in (
        "spectrum",
        "trajectories",
        "survivors_vs_dim",
        "fittest",
        "intervention",
        "r2_vs_dim",
    ):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    assert summary["few_survive"]["mean"] == 2.0  # default = the largest dim of "dims"
    assert json.loads((out / "summary.json").read_text())["fittest"]["auc_signal"] == 1.0


def test_shipped_specs_parse():
    for scale in ("smoke", "small", "full"):
        specs = load_experiments(spec_path(scale))
        assert "dims" in specs and "scaling" in specs
        for spec in specs.values():
            assert all(c.p == 59 for c in spec.configs())


def test_cli_refuses_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--scale", "huge", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--address", "auto"])  # --address needs ray
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "report.md").write_text("mine")
    assert main(["--scale", "smoke", "--out", str(foreign), "--quiet"]) == 2
    assert "not written by dynafit reproduce" in capsys.readouterr().err
    assert (foreign / "report.md").read_text() == "mine"


def _finite_numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _finite_numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _finite_numbers(v)
    elif isinstance(obj, float):
        yield obj


@pytest.mark.slow
def test_reproduce_small_end_to_end(tmp_path):
    out = tmp_path / "repro"
    # the claims report; the paper's other experiments have their own smoke test
    # (tests/test_experiments.py)
    assert main(["--scale", "small", "--out", str(out), "--only", "claims", "--quiet"]) == 0
    report = (out / "report.md").read_text()
    assert "| claim | paper | ours | figure |" in report
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figures == sorted(
        [
            "fittest.png",
            "intervention.png",
            "r2_vs_dim.png",
            "spectrum.png",
            "survivors_vs_dim.png",
            "trajectories.png",
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["setup"]["p"] == 59
    for key in ("mean", "sd"):
        assert math.isfinite(summary["few_survive"][key])
    for row in summary["linear_r2_by_dim"]:
        assert math.isfinite(row["lasso_r2_mean"]) and math.isfinite(row["dynafit_onestep_r2_mean"])
    assert all(math.isfinite(r["rate"]) for r in summary["intervention"])
    # the early-window table of readable circle models (issue 14)
    assert "mean_field_lv" in summary["circle_models"]["survivor_f1"]
    assert "## Circle models from the early window" in report
    assert (out / "circle_models_survivors.csv").is_file()
    assert "nan" not in report.split("## Claims")[1].split("## Figures")[0].lower().replace(
        "n/a", ""
    )
    # a second run resumes: nothing trains again
    assert main(["--scale", "small", "--out", str(out), "--only", "claims", "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["run"]["blocks_trained"] == 0
