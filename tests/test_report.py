"""The report folder and the figures: files written, atomic, never clobbering a user's file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import dynafit
from dynafit._board import rank
from dynafit._report import _plot, check_out_dir, markdown_table, write_report


def _lv_model():
    # dx0 = x0 (1 - x0 - 0.3 x1), dx1 = x1 (0.8 - 0.2 x0 - x1)
    xi = np.array([[1.0, -1.0, -0.3], [0.8, -0.2, -1.0]])
    sweep = pd.DataFrame(
        {
            "threshold": [0.0, 0.1, 0.3, 1.0],
            "n_terms": [6, 6, 4, 1],
            "heldout_error": [0.010, 0.010, 0.5, 0.9],
            "selected": [False, True, False, False],
        }
    )
    return dynafit.Model("lotka_volterra", ["a", "b"], xi, {}, sweep)


def _linear_model():
    xi = np.array([[0.5, -1.0, 0.0], [0.2, 0.0, -0.7]])
    return dynafit.Model("linear", ["a", "b"], xi)


def _traj():
    t = np.linspace(0.0, 5.0, 51)
    x = _lv_model().simulate(t, np.array([0.2, 0.3]))
    return dynafit.Trajectory(t, x, ["a", "b"])


def _board():
    rows = []
    for family, model, bic, div in (
        ("lotka_volterra", _lv_model(), -900.0, False),
        ("linear", _linear_model(), -300.0, False),
    ):
        rows.append(
            {
                "family": family,
                "variant": "sindy",
                "status": "ok",
                "n_library": 3,
                "deriv_r2": 0.99,
                "rollout_r2": 0.9,
                "rmse": 0.01,
                "n_terms": model.n_terms,
                "aic": bic,
                "bic": bic,
                "diverged": div,
                "equations": str(model),
                "model": model,
            }
        )
    rows.append(
        {
            "family": "polynomial",
            "variant": "sindy",
            "status": "not applicable: because",
            "n_library": 6,
            "diverged": False,
            "equations": "",
            "model": None,
        }
    )
    board = rank(pd.DataFrame(rows), "bic")
    board.attrs["by"] = "bic"
    return board


def test_figures_are_agg_figures():
    traj, board = _traj(), _board()
    model = _lv_model()
    for fig in (
        _plot.plot_rollouts(traj, board),
        _plot.plot_rollouts(traj, {"lv": model}),
        _plot.plot_coefficients(model),
        _plot.plot_sweep(model),
        _plot.plot_leaderboard(board),
    ):
        assert isinstance(fig, Figure)
        fig.canvas.draw()  # renders headless
    heat = _plot.plot_coefficients(model)
    labels = [t.get_text() for t in heat.axes[0].get_yticklabels()]
    assert labels == ["1", "a", "b"]
    assert [t.get_text() for t in heat.axes[0].get_xticklabels()] == ["da/dt", "db/dt"]


def test_sweep_figure_marks_pareto_and_choice():
    fig = _plot.plot_sweep(_lv_model())
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert {"threshold sweep", "Pareto front", "chosen"} <= set(labels)
    chosen = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == "chosen")
    assert chosen.get_xdata()[0] == 6
    assert list(_plot._pareto(np.array([6, 6, 4, 1.0]), np.array([0.01, 0.01, 0.5, 0.9]))) == [
        3,
        2,
        0,
    ]


def test_model_without_sweep_is_a_clear_error():
    with pytest.raises(ValueError, match="no threshold sweep"):
        _plot.plot_sweep(_linear_model())


def test_write_report_files(tmp_path):
    out = tmp_path / "rep"
    runs = pd.DataFrame(
        {
            "run": [0, 0, 1, 1],
            "seed": [1, 1, 2, 2],
            "family": ["linear", "lotka_volterra"] * 2,
            "variant": ["sindy"] * 4,
            "status": ["ok"] * 4,
            "n_library": [3] * 4,
            "n_terms": [4, 6, 4, 6],
            "deriv_r2": [0.9, 0.99, 0.8, 0.98],
            "rollout_r2": [0.5, 0.9, 0.4, 0.95],
            "rmse": [0.1] * 4,
            "aic": [1.0, -50, 2, -40],
            "bic": [1.0, -50, 2, -40],
            "diverged": [False] * 4,
        }
    )
    report = write_report(out, _traj(), _board(), runs=runs, config={"a": 1})
    assert report == out / "report.md"
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    for f in (
        "report.md",
        "equations.json",
        "equations.tex",
        "leaderboard.csv",
        "runs.csv",
        "manifest.json",
        "figures/rollouts.png",
        "figures/leaderboard.png",
        "figures/coefficients_lotka_volterra.png",
        "figures/coefficients_linear.png",
        "figures/sweep_lotka_volterra.png",
    ):
        assert f in names, f
    assert not any(n.endswith(".tmp") for n in names)
    for png in out.glob("figures/*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = report.read_text()
    assert "| rank | family |" in md
    assert "lotka_volterra" in md.split("## Best model")[1].splitlines()[0]
    assert (
        "\\begin{align*}" in md and "figures/rollouts.png" in md and "not applicable: because" in md
    )
    eq = json.loads((out / "equations.json").read_text())
    first = eq["models"][0]
    assert first["family"] == "lotka_volterra" and first["names"] == ["a", "b"]
    assert first["terms"] == ["1", "a", "b"]
    assert np.allclose(first["coefficients"], _lv_model().coefficients)
    assert "\\frac" in first["latex"] and len(first["equations_latex"]) == 2
    assert eq["models"][2]["status"].startswith("not applicable")
    tex = (out / "equations.tex").read_text()
    assert tex.count("\\begin{align*}") == 2
    board = pd.read_csv(out / "leaderboard.csv")
    assert list(board["family"]) == ["lotka_volterra", "linear", "polynomial"]
    assert "model" not in board.columns
    summary = md.split("## Runs fitted one by one")[1]
    assert "wins" in summary


def test_report_never_clobbers_user_files(tmp_path):
    traj, board = _traj(), _board()
    # a file where the folder should be
    target = tmp_path / "taken"
    target.write_text("mine")
    with pytest.raises(ValueError, match="not a folder"):
        write_report(target, traj, board, figures=False)
    assert target.read_text() == "mine"
    # a folder of the user's
    user = tmp_path / "user"
    user.mkdir()
    (user / "report.md").write_text("my notes")
    with pytest.raises(ValueError, match="not written by `dynafit fit`"):
        write_report(user, traj, board, figures=False)
    with pytest.raises(ValueError, match="refusing to replace"):
        write_report(user, traj, board, figures=False, overwrite=True)
    assert (user / "report.md").read_text() == "my notes"
    assert sorted(p.name for p in user.iterdir()) == ["report.md"]
    # beside unrelated user files, with --overwrite: added, user's file untouched
    (user / "report.md").rename(user / "notes.md")
    write_report(user, traj, board, figures=False, overwrite=True)
    assert (user / "notes.md").read_text() == "my notes"
    assert (user / "report.md").exists()


def test_rerun_and_different_config(tmp_path):
    traj, board = _traj(), _board()
    out = tmp_path / "rep"
    write_report(out, traj, board, config={"families": "a"})
    write_report(out, traj, board, config={"families": "a"})  # same config: rewritten
    with pytest.raises(ValueError, match="different fit"):
        write_report(out, traj, board, config={"families": "b"})
    # --overwrite replaces dynafit's files only; stale figures of the old run go away
    (out / "mine.txt").write_text("keep")
    write_report(out, traj, board.iloc[:1], config={"families": "b"}, overwrite=True)
    assert (out / "mine.txt").read_text() == "keep"
    assert not (out / "figures" / "coefficients_linear.png").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["config"] == {"families": "b"}
    assert check_out_dir(out, {"families": "b"}, False) == set(manifest["files"])


def test_markdown_table_formats():
    df = pd.DataFrame(
        {"a": [1.0, np.inf, np.nan], "b": ["x|y", "z", None], "c": [True, False, True]}
    )
    text = markdown_table(df)
    assert text.splitlines()[0] == "| a | b | c |"
    assert "| inf |" in text and "x\\|y" in text and "| yes |" in text


def test_single_model_is_labelled_by_its_family():
    model = _lv_model()
    assert list(_plot._models_from(model)) == ["lotka_volterra"]
