"""The public face: the core verbs at the top, the paper's analyses in ``dynafit.circles``,
figures in ``dynafit.plot``, one definition of the score names and their direction, and
``training/`` reaching dynafit only through public names or ``dynafit.internal``."""

from __future__ import annotations

import ast
import inspect
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest

import dynafit
import dynafit.internal
from dynafit._board import most_readable, rank
from dynafit._report._plot import shown_variables
from dynafit._report._write import _markdown
from dynafit._score_names import FORECAST_KEYS, SCORE_KEYS, SCORES, Better, better, higher_is_better
from dynafit.cli._fit import _print_results

REPO = Path(dynafit.__file__).resolve().parents[1]

#: the names of DESIGN.md's public API that now live in dynafit.circles (kept at the top)
DESIGN_CIRCLE_NAMES = ("survivors", "survival_threshold", "circle_signals")


# ------------------------------------------------------------------------- namespaces
def test_every_public_name_exists():
    for name in dynafit.__all__:
        assert hasattr(dynafit, name), name
    for name in ("Trajectory", "load", "fit", "compare", "fit_many", "refine", "Model"):
        assert name in dynafit.__all__
    assert "load_model" in dynafit.__all__ and "AbstractFamily" in dynafit.__all__
    # the private rooms are not part of the face
    assert not [n for n in dynafit.__all__ if n.startswith("_") and n != "__version__"]


def test_circles_namespace_and_the_old_names_are_the_same_functions():
    # __all__ lists every function the namespace holds, and nothing else
    held = {
        name
        for name, value in vars(dynafit.circles).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }
    assert held == set(dynafit.circles.__all__)
    assert set(DESIGN_CIRCLE_NAMES) <= held
    for name in dynafit.circles.__all__:
        assert callable(getattr(dynafit.circles, name)), name
        if hasattr(dynafit, name):  # kept at the top where DESIGN.md had it
            assert getattr(dynafit, name) is getattr(dynafit.circles, name), name
    for name in DESIGN_CIRCLE_NAMES:
        assert getattr(dynafit, name) is getattr(dynafit.circles, name)


def test_plot_namespace_holds_the_figures():
    assert dynafit.plot.inclusion is dynafit.plot_inclusion
    assert dynafit.plot.r2_vs_dim is dynafit.plot_r2_vs_dim
    for name in dynafit.plot.__all__:
        assert callable(getattr(dynafit.plot, name)), name


def test_r2_vs_dim_draws_from_a_runs_table():
    table = pd.DataFrame(
        {
            "family": ["linear"] * 4,
            "variant": ["sindy"] * 4,
            "dim": [8, 8, 16, 16],
            "onestep_r2": [0.5, 0.6, 0.8, 0.9],
        }
    )
    fig = dynafit.plot.r2_vs_dim(table)
    (ax,) = fig.axes
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [8, 16]
    assert np.allclose(line.get_ydata(), [0.55, 0.85])
    # on the caller's axes (a subfigure's too): the figure that holds them comes back
    top = matplotlib.figure.Figure()
    sub = top.add_subfigure(top.add_gridspec(1, 1)[0])
    target = sub.add_subplot()
    assert dynafit.plot.r2_vs_dim(table, ax=target) is top
    assert target.get_lines()
    with pytest.raises(ValueError, match="ax must be a matplotlib Axes"):
        dynafit.plot.r2_vs_dim(table, ax="left")


# ------------------------------------------------------------------- survival rule
def test_alive_is_the_papers_rule():
    # p = 7 (m = 3): threshold 2 (S0 + 2 sum S) / 7
    S = np.array([[1.0, 5.0, 0.1], [3.0, 3.0, 3.0]])
    thr = dynafit.circles.survival_threshold(S, s0=[0.0, 7.0])
    assert np.allclose(thr, [2 * 2 * 6.1 / 7, 2 * (7 + 18) / 7])
    assert dynafit.circles.alive(S, [0.0, 7.0]).tolist() == [
        [False, True, False],
        [False, False, False],
    ]
    with pytest.raises(ValueError, match="last axis"):
        dynafit.circles.alive(np.float64(1.0))


def test_survival_auc_pooled_and_per_run():
    auc = dynafit.circles.survival_auc
    assert auc([3.0, 2.0, 1.0, 0.0], [True, True, False, False]) == 1.0
    assert auc([0.0, 1.0, 2.0, 3.0], [True, True, False, False]) == 0.0
    assert math.isnan(auc([1.0, 2.0], [True, True]))  # one class: undefined
    # within each run perfect; pooled the scales of the two runs overlap
    score = [10.0, 9.0, 1.0, 0.5]
    survived = [True, False, True, False]
    assert auc(score, survived, runs=[0, 0, 1, 1]) == 1.0
    assert auc(score, survived) == 0.75
    with pytest.raises(ValueError, match="1-D of one length"):
        auc([1.0, 2.0], [True])


# ---------------------------------------------------------------- score directions
def test_every_score_has_a_direction():
    for name in ("deriv_r2", "rollout_r2", "forecast_r2", "forecast_skill"):
        assert better(name) is Better.HIGHER and higher_is_better(name)
    for name in ("rmse", "aic", "bic", "n_terms", "forecast_rmse"):
        assert better(name) is Better.LOWER and not higher_is_better(name)
    assert set(dynafit.internal.SCORES) == set(SCORES)
    with pytest.raises(ValueError, match="not a score"):
        better("divergd")
    assert better("my_column", default=Better.LOWER) is Better.LOWER


def _board(**scores):
    n = len(next(iter(scores.values())))
    base = {
        "family": [f"f{i}" for i in range(n)],
        "variant": ["sindy"] * n,
        "status": ["ok"] * n,
        "n_library": [3] * n,
        "n_terms": [2] * n,
        "diverged": [False] * n,
        "deriv_r2": [0.5] * n,
        "rollout_r2": [0.5] * n,
        "rmse": [1.0] * n,
        "aic": [0.0] * n,
        "bic": [0.0] * n,
    }
    base.update(scores)
    return pd.DataFrame(base)


RANKABLE = [n for n in (*SCORE_KEYS, *FORECAST_KEYS) if n in SCORES and n != "n_terms"]


@pytest.mark.parametrize("score", RANKABLE)
def test_the_leaderboard_ranks_by_the_scores_direction(score):
    board = _board(**{score: [0.2, 0.9, 0.5]}, n_terms=[2, 2, 2])
    ranked = rank(board, by=score, tolerance=0.0)
    best = "f1" if SCORES[score] is Better.HIGHER else "f0"
    assert ranked["family"].iloc[0] == best, ranked[["family", score]]


def test_run_summary_wins_follow_the_scores_direction():
    rows = []
    for run in range(3):
        for family, r2, rmse in (("a", 0.9, 2.0), ("b", 0.5, 1.0)):
            rows.append(
                {"run": run, "family": family, "variant": "sindy", "rollout_r2": r2, "rmse": rmse}
            )
    table = pd.DataFrame(rows)
    by_r2 = dynafit.summarize_runs(table, scores=["rollout_r2"], win_by="rollout_r2")
    assert by_r2.set_index("family")["wins"].to_dict() == {"a": 3, "b": 0}
    by_rmse = dynafit.summarize_runs(table, scores=["rmse"], win_by="rmse")
    assert by_rmse.set_index("family")["wins"].to_dict() == {"a": 0, "b": 3}


# ------------------------------------------------------ training/ uses only the face
def _private_dynafit_imports(root: Path) -> list[str]:
    """Imports of ``dynafit._x``, ``dynafit.y._x`` (any private module of dynafit) under
    ``root``, and attribute uses of a private member such as ``traj._save``; ``dynafit``,
    its public submodules and ``dynafit.internal`` are allowed."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module] + [
                    f"{node.module}.{a.name}" for a in node.names if node.module == "dynafit"
                ]
            else:
                continue
            for mod in mods:
                parts = mod.split(".")
                if parts[0] == "dynafit" and any(p.startswith("_") for p in parts[1:]):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {mod}")
    return found


def test_training_imports_no_private_dynafit_module():
    found = _private_dynafit_imports(REPO / "training")
    assert not found, found


def test_the_scan_sees_a_private_import(tmp_path):
    pkg = tmp_path / "client"
    pkg.mkdir()
    (pkg / "a.py").write_text("from dynafit._io import save_json\nimport dynafit.cli._base\n")
    (pkg / "b.py").write_text("from dynafit import _structured\nfrom dynafit import fit\n")
    (pkg / "c.py").write_text("from dynafit.internal import save_json\nimport dynafit.circles\n")
    found = _private_dynafit_imports(pkg)
    assert len(found) == 3 and all("c.py" not in f for f in found), found


def test_internal_save_trajectory_writes_extra_arrays(tmp_path):
    traj = dynafit.Trajectory(np.arange(4.0), np.ones((4, 2)))
    path = dynafit.internal.save_trajectory(traj, tmp_path / "r.npz", {"extra__w": np.eye(2)})
    back = dynafit.load(path)
    assert np.array_equal(back.x, traj.x)
    with np.load(path, allow_pickle=False) as z:
        assert np.array_equal(z["extra__w"], np.eye(2))


# ------------------------------------------------------------- what a new user sees
def test_python_m_dynafit_runs_the_command(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "dynafit", "fit", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: dynafit fit" in proc.stdout
    # the help states fit's real default derivative
    help_text = " ".join(proc.stdout.split())
    default = inspect.signature(dynafit.fit).parameters["derivative"].default
    assert f"(default {default}:" in help_text and default == "auto"


class _FakeModel:
    def __init__(self, text: str, n_vars: int):
        self.text, self.n_vars = text, n_vars

    def __str__(self) -> str:
        return self.text


def _cli_board():
    dense = _FakeModel("dS1/dt = " + " + ".join(f"{i}*S{i}" for i in range(30)), 3)
    small = _FakeModel("dS1/dt = 0.5*S1", 3)
    return pd.DataFrame(
        {
            "rank": [1, 2],
            "family": ["linear", "mean_field_lv"],
            "variant": ["sindy", "sindy"],
            "status": ["ok", "ok"],
            "n_terms": [90, 6],
            "rollout_r2": [0.99, 0.95],
            "bic": [-100.0, -50.0],
            "diverged": [False, False],
            "model": [dense, small],
        }
    )


def test_fit_output_leads_with_the_readable_model(capsys):
    _print_results(_cli_board(), "bic", "by bic")
    out = capsys.readouterr().out
    readable, board, best = (
        out.index("most readable model"),
        out.index("leaderboard (by bic)"),
        out.index("best model: linear"),
    )
    assert readable < board < best
    assert "mean_field_lv, 6 terms" in out and "dS1/dt = 0.5*S1" in out
    # the 90-term model is named, not printed line by line
    assert "29*S29" not in out and "equations.tex" in out


def test_fit_output_without_a_readable_model_prints_the_best(capsys):
    board = _cli_board()
    board["rollout_r2"] = [0.5, 0.4]
    _print_results(board, "bic", "by bic")
    out = capsys.readouterr().out
    assert "most readable" not in out
    assert out.index("leaderboard") < out.index("best model: linear") < out.index("29*S29")


def test_rollout_figure_shows_the_survivors_and_a_sample_of_the_rest():
    names = [f"S{k}" for k in range(1, 30)]
    survivors = ["S7", "S8", "S11", "S13", "S25"]
    run = dynafit.Trajectory(np.arange(5.0), np.ones((5, 29)), names, {"survivors": survivors})
    shown, caption = shown_variables(run, 12)
    assert len(shown) == 12 and set(survivors) <= set(shown)
    assert shown == [n for n in names if n in shown]  # in the variables' order
    others = [n for n in shown if n not in survivors]
    assert others[0] == "S1" and others[-1] == "S29"  # spread over all, not the first 12
    assert "5 survivors and 7 of the other 24" in caption
    plain = dynafit.Trajectory(np.arange(5.0), np.ones((5, 29)), names)
    shown, caption = shown_variables(plain, 12)
    assert len(shown) == 12 and shown[0] == "S1" and shown[-1] == "S29"
    few = dynafit.Trajectory(np.arange(5.0), np.ones((5, 3)))
    assert shown_variables(few, 12) == (list(few.names), "")
    # a selection of variables keeps the run's record of all survivors: only those held count
    picked = run.select(names[:20])
    shown, caption = shown_variables(picked, 12)
    assert {"S7", "S8", "S11", "S13"} <= set(shown) and "4 survivors" in caption
    fig = dynafit.plot.rollouts(picked, {})
    assert "S7 (survivor)" in [ax.get_title() for ax in fig.axes]


def _model_board():
    """A leaderboard of real Models: a dense best-by-BIC one and a sparse one that rolls out."""
    names = ["a", "b"]
    dense = dynafit.Model("linear", names, np.array([[0.1, -1.0, 0.2], [0.3, 0.4, -1.0]]))
    sparse = dynafit.Model("linear", names, np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]))
    return pd.DataFrame(
        {
            "rank": [1, 2],
            "family": ["linear", "linear"],
            "variant": ["sindy", "refined"],
            "status": ["ok", "ok"],
            "n_library": [3, 3],
            "n_terms": [6, 2],
            "rollout_r2": [0.99, 0.93],
            "bic": [-10.0, -5.0],
            "diverged": [False, False],
            "model": [dense, sparse],
        }
    )


def test_most_readable_is_the_sparsest_that_rolls_out():
    board = _model_board()
    assert most_readable(board)["variant"] == "refined"
    board.loc[1, "rollout_r2"] = 0.5  # no longer rolls out: the dense one is the readable one
    assert most_readable(board)["variant"] == "sindy"
    board.loc[0, "diverged"] = True
    assert most_readable(board) is None


def test_report_leads_with_the_readable_model():
    traj = dynafit.Trajectory(np.arange(5.0), np.ones((5, 2)), ["a", "b"])
    md = _markdown(traj, _model_board(), None, "bic", [], "t", None, {})
    readable = md.index("## Most readable model that rolls out: linear_refined")
    assert readable < md.index("## Leaderboard") < md.index("## Best model: linear")
    assert "0.930" in md[readable : md.index("## Leaderboard")]
