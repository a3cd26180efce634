"""`dynafit fit`: the leaderboard and equations printed, the report folder written, bad
input answered with a message and exit code 2, and no user file ever clobbered."""

from __future__ import annotations

import json

import pytest
from _systems import lv_trajectory

from dynafit.cli import main as dynafit_main
from dynafit.cli._fit import default_out, main, parse_window


@pytest.fixture(scope="module")
def lv_file(tmp_path_factory):
    """A batch of 3 runs of a 4-species competitive LV system, 201 points in [0, 12]."""
    traj, _ = lv_trajectory(noise=0.0)
    path = tmp_path_factory.mktemp("data") / "runs.npz"
    traj.save(path)
    return path


def _no_traceback(capsys):
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return out


def test_parse_window():
    assert parse_window("0:1000") == (0.0, 1000.0)
    assert parse_window(":5") == (None, 5.0)
    assert parse_window("2.5:") == (2.5, None)
    assert parse_window(None) == (None, None)


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.npz"], "no such file"),
        (["{f}", "--window", "a:b"], "not a number"),
        (["{f}", "--window", "5:1"], "after its end"),
        (["{f}", "--window", "1:2:3"], "T0:T1"),
        (["{f}", "--window", "100:200"], "holds 0 time points"),
        (["{f}", "--families", "linear,nonesuch"], "unknown family"),
        (["{f}", "--families", ","], "empty"),
        (["{f}", "--ensemble", "1"], "N >= 2"),
        (["{f}", "--run", "7"], "holds 3 run"),
        (["{f}", "--horizon", "-1"], "must be > 0"),
        (["{f}", "--horizon", "11.99"], "points to fit on"),
        (["{f}", "--address", "auto"], "--backend ray"),
        (["{f}", "--backend", "slurm"], "invalid choice"),
        (["{f}", "--bogus"], "unrecognized arguments"),
        (["{f}", "--derivative", "magic"], "unknown derivative"),
        (["{f}", "--vars", "s0,zz"], "unknown variables"),
    ],
)
def test_bad_input_exit_2(lv_file, tmp_path, capsys, args, message):
    args = [a.format(f=lv_file) for a in args] + ["--out", str(tmp_path / "out")]
    assert main(args) == 2
    out = _no_traceback(capsys)
    assert message in out.err, out.err
    assert "dynafit fit: error:" in out.err
    assert not (tmp_path / "out").exists()


def test_not_a_trajectory_file(tmp_path, capsys):
    bogus = tmp_path / "notes.npz"
    bogus.write_text("hello")
    assert dynafit_main(["fit", str(bogus), "--out", str(tmp_path / "o")]) == 2
    assert "not a readable .npz" in _no_traceback(capsys).err


def test_refuses_to_clobber_user_file(lv_file, tmp_path, capsys):
    mine = tmp_path / "mine.txt"
    mine.write_text("precious")
    assert main([str(lv_file), "--out", str(mine)]) == 2
    assert "not a folder" in _no_traceback(capsys).err
    assert mine.read_text() == "precious"
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "report.md").write_text("my report")
    assert main([str(lv_file), "--out", str(folder)]) == 2
    assert "not written by `dynafit fit`" in _no_traceback(capsys).err
    assert (folder / "report.md").read_text() == "my report"
    assert sorted(p.name for p in folder.iterdir()) == ["report.md"]


def test_default_out_is_beside_the_input(tmp_path):
    f = tmp_path / "runs.npz"
    f.write_bytes(b"")
    assert default_out(f) == tmp_path.resolve() / "runs_fit"
    d = tmp_path / "sweep"
    d.mkdir()
    assert default_out(d) == tmp_path.resolve() / "sweep_fit"


def test_fit_writes_report_and_refuses_other_config(lv_file, tmp_path, capsys):
    out = tmp_path / "rep"
    args = [str(lv_file), "--families", "linear,lotka_volterra", "--window", "0:12"]
    assert main([*args, "--out", str(out)]) == 0
    printed = _no_traceback(capsys).out
    assert "3 runs x 201 times in [0, 12]" in printed  # both ends of the window included
    assert "leaderboard (by bic, pooled over runs" in printed
    assert "best model: lotka_volterra" in printed and "ds0/dt = " in printed
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
        "figures/sweep_linear.png",
    ):
        assert (out / f).is_file(), f
    eq = json.loads((out / "equations.json").read_text())
    assert [m["family"] for m in eq["models"]] == ["lotka_volterra", "linear"]
    assert len(eq["models"][0]["coefficients"]) == 4
    runs = (out / "runs.csv").read_text().splitlines()
    assert len(runs) == 1 + 3 * 2 and runs[0].startswith("run,seed,ic,family")
    # the same command again: rewritten; another config: refused, files untouched
    assert main([*args, "--out", str(out)]) == 0
    capsys.readouterr()
    before = (out / "report.md").read_text()
    assert main([*args[:2], "linear", "--out", str(out)]) == 2
    assert "different fit" in _no_traceback(capsys).err
    assert (out / "report.md").read_text() == before


def test_default_out_and_single_run(lv_file, tmp_path, capsys):
    import shutil

    f = tmp_path / "one.npz"
    shutil.copy(lv_file, f)
    assert main([str(f), "--run", "1", "--families", "lotka_volterra", "--no-figures"]) == 0
    printed = _no_traceback(capsys).out
    assert "201 times" in printed and "runs x" not in printed
    out = tmp_path / "one_fit"
    assert (out / "report.md").is_file() and not (out / "runs.csv").exists()
    assert not (out / "figures").exists()
    board = (out / "leaderboard.csv").read_text()
    assert board.splitlines()[1].split(",")[1] == "lotka_volterra"


def test_ensemble_and_refine_flags(lv_file, tmp_path, capsys):
    out = tmp_path / "rep"
    args = [str(lv_file), "--families", "lotka_volterra", "--ensemble", "3", "--refine"]
    assert main([*args, "--no-per-run", "--out", str(out)]) == 0
    printed = _no_traceback(capsys).out
    assert "refined" in printed
    assert (out / "figures" / "inclusion_lotka_volterra.png").is_file()
    md = (out / "report.md").read_text()
    assert "Ensemble of 3 fits" in md and "(p=" in md
    eq = json.loads((out / "equations.json").read_text())
    variants = {m["variant"] for m in eq["models"]}
    assert variants == {"sindy", "refined"}
    assert "inclusion" in next(m for m in eq["models"] if m["variant"] == "sindy")["uncertainty"]
