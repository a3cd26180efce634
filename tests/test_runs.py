"""Tables of many runs (dynafit._runs): per-family summaries, win counts, R^2 against dimension."""

import numpy as np
import pandas as pd
import pytest

import dynafit


def _table():
    rows = []
    for dim in (16, 32, 64):
        for seed in range(3):
            for family, r2, bic in (("linear", 0.9, 10.0), ("polynomial", 0.95, 50.0)):
                rows.append(
                    {
                        "run": seed,
                        "dim": dim,
                        "seed": seed,
                        "family": family,
                        "variant": "sindy",
                        "onestep_r2": r2 - 0.001 * dim + 0.01 * seed,
                        "rollout_r2": r2,
                        "bic": bic + seed,
                        "diverged": False,
                    }
                )
    rows.append(
        {
            "run": 0,
            "dim": 16,
            "seed": 0,
            "family": "lotka_volterra",
            "variant": "sindy",
            "onestep_r2": -np.inf,
            "rollout_r2": -np.inf,
            "bic": np.inf,
            "diverged": True,
        }
    )
    return pd.DataFrame(rows)


def test_summarize_runs_wins_and_spread():
    summary = dynafit.summarize_runs(_table())
    by = summary.set_index("family")
    assert list(summary["family"])[0] == "linear"  # lowest BIC in every run
    assert by.loc["linear", "wins"] == 9 and by.loc["polynomial", "wins"] == 0
    assert by.loc["linear", "win_rate"] == 1.0
    assert by.loc["lotka_volterra", "n_diverged"] == 1
    assert np.isnan(by.loc["lotka_volterra", "rollout_r2_mean"])  # no finite runs
    assert by.loc["polynomial", "rollout_r2_mean"] == pytest.approx(0.95)
    # by R^2 instead, the polynomial family wins every run
    by_r2 = dynafit.summarize_runs(_table(), win_by="rollout_r2").set_index("family")
    assert by_r2.loc["polynomial", "wins"] == 9


def test_summarize_runs_bad_input():
    with pytest.raises(ValueError, match="empty"):
        dynafit.summarize_runs(pd.DataFrame())
    with pytest.raises(ValueError, match="win_by"):
        dynafit.summarize_runs(_table(), win_by="nope")


def test_plot_r2_vs_dim(tmp_path):
    fig = dynafit.plot_r2_vs_dim(_table())
    fig.savefig(tmp_path / "r2_dim.png")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "onestep r2" and len(ax.get_lines()) == 2  # LV has no finite R^2
    with pytest.raises(ValueError, match="dim"):
        dynafit.plot_r2_vs_dim(_table().drop(columns="dim"))
