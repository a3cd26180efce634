"""The report folder of a fit: Markdown, equations (JSON and LaTeX), figures and tables.

Layout of ``OUT/``::

    report.md          the most readable model that rolls out, the leaderboard, the best
                       model's equations, links to the figures
    leaderboard.csv    the leaderboard without its model objects
    runs.csv           per-run table from ``fit_many`` (batches only)
    equations.json     per family and variant: names, terms, coefficients, LaTeX
    equations.tex      every model's equations as LaTeX ``align*`` blocks
    figures/*.png      rollouts, coefficient heatmaps, threshold sweeps, leaderboard
    manifest.json      what wrote the folder (config) and the files it owns

Every file is written atomically. A folder is written only when it is new or empty, or
was written by dynafit before (its ``manifest.json``); a different config is refused
unless ``overwrite``. Files dynafit does not own are never replaced or removed.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sympy

from .._board import READABLE_R2, most_readable
from .._io import OwnedFolder, atomic_write, claim_out_dir, save_json, to_jsonable
from .._postfit import plot_inclusion
from .._runs import plot_r2_vs_dim, summarize_runs
from .._score_names import BOARD_SCORES
from .._trajectory import Trajectory
from .._version import __version__
from . import _plot

MANIFEST_KIND = "dynafit.fit_report/1"


# --------------------------------------------------------------------------- safety
def check_out_dir(out: str | os.PathLike, config: Mapping[str, Any], overwrite: bool) -> set[str]:
    """Make sure ``out`` may take a report of ``config`` (``ValueError`` otherwise);
    returns the files dynafit owns there already."""
    return set(_claim(out, config, overwrite).owned)


def _claim(out: str | os.PathLike, config: Mapping[str, Any], overwrite: bool) -> OwnedFolder:
    """The one ``--out`` rule (:func:`dynafit._io.claim_out_dir`) for a report."""
    config = to_jsonable(dict(config))

    def differs(previous: dict[str, Any]) -> str | None:
        if previous.get("config") == config:
            return None
        return f"a report of a different fit (config {previous.get('config')})"

    return claim_out_dir(
        out, kind=MANIFEST_KIND, what="`dynafit fit`", differs=differs, overwrite=overwrite
    )


# --------------------------------------------------------------------------- content
def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [c for c in (columns or df.columns) if c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df[cols].iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def text_table(head: Sequence[str], rows: Sequence[Sequence[Any]], *, rule: bool = False) -> str:
    """A plain-text table for the terminal: columns padded to their widest cell, a
    ``---`` rule under the header if ``rule``. A row may be shorter than ``head`` (its
    last cell then runs on). The Markdown counterpart is :func:`markdown_table`."""
    table = [[str(c) for c in head]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    if rule:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table_for_csv(board: pd.DataFrame) -> pd.DataFrame:
    """A leaderboard or run table without its Model objects."""
    return board.drop(columns=["model"], errors="ignore")


def _label(row: Mapping[str, Any] | pd.Series) -> str:
    variant = row.get("variant", "sindy")
    return str(row["family"]) + ("" if variant in ("sindy", None) else f"_{variant}")


def model_record(model: Any) -> dict[str, Any]:
    """One model's equations as plain data: names, terms, coefficients, LaTeX."""
    eqs = list(model.equations())
    return {
        "names": list(model.names),
        "terms": [str(t) for t in model.terms],
        "terms_latex": [sympy.latex(t) for t in model.terms],
        "coefficients": np.asarray(model.coefficients, dtype=float).tolist(),
        "n_terms": int(np.count_nonzero(np.asarray(model.coefficients))),
        "equations": [f"{eq.lhs} = {eq.rhs}" for eq in eqs],
        "equations_latex": [sympy.latex(eq) for eq in eqs],
        "latex": model.latex(),
        **_uncertainty_record(model),
    }


def _uncertainty_record(model: Any) -> dict[str, Any]:
    """Ensemble intervals and inclusion probabilities, for models fitted as ensembles."""
    unc = model.uncertainty
    if unc is None:
        return {}
    keys = ("lower", "upper", "inclusion", "mean", "std")
    rec = {k: np.asarray(unc[k]).tolist() for k in keys if k in unc}
    rec.update({k: unc[k] for k in ("n_models", "level") if k in unc})
    return {"uncertainty": rec}


def _equations_json(board: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"schema": "dynafit.equations/1", "models": []}
    for _, row in board.iterrows():
        rec: dict[str, Any] = {
            "family": row["family"],
            "variant": row.get("variant", "sindy"),
            "rank": int(row["rank"]) if "rank" in row else None,
            "status": row.get("status", "ok"),
        }
        if row.get("model") is not None:
            rec.update(model_record(row["model"]))
        out["models"].append(rec)
    return to_jsonable(out)


def _align(eqs: Sequence[sympy.Eq]) -> str:
    lines = [f"  {sympy.latex(eq.lhs)} &= {sympy.latex(eq.rhs)}" for eq in eqs]
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}"


def _equations_tex(board: pd.DataFrame) -> str:
    parts = ["% Equations written by `dynafit fit`; one align* block per model, best first."]
    for _, row in board.iterrows():
        if row.get("model") is None:
            continue
        parts.append(f"% rank {row.get('rank', '')}: {_label(row)}")
        parts.append(_align(row["model"].equations()))
    return "\n\n".join(parts) + "\n"


def runs_summary(table: pd.DataFrame, by: str = "bic") -> pd.DataFrame:
    """Per family and variant: the scores' spread over runs and how often it won a run
    (``dynafit.summarize_runs``), without the per-score medians to keep the table short."""
    scores = [
        c
        for c in ("onestep_r2", "deriv_r2", "rollout_r2", "forecast_skill", "n_terms")
        if c in table.columns
    ]
    summary = summarize_runs(table, scores=scores, win_by=by)
    return summary[[c for c in summary.columns if not c.endswith("_median")]]


# --------------------------------------------------------------------------- writer
def write_report(
    out: str | os.PathLike,
    traj: Trajectory,
    board: pd.DataFrame,
    *,
    runs: pd.DataFrame | None = None,
    config: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    figures: bool = True,
    title: str = "dynafit fit report",
    source: str | None = None,
) -> Path:
    """Write the report folder for a leaderboard from ``compare`` (and, for a batch, the
    per-run table from ``fit_many``); returns the path of ``report.md``.

    ``config`` records what produced the report (the command's options): re-running the
    same config rewrites the folder, a different one is refused unless ``overwrite``.
    """
    out = Path(out)
    config = dict(to_jsonable(dict(config or {})))
    folder = _claim(out, config, overwrite)
    owned = set(folder.owned)
    by = board.attrs.get("by", "bic")

    files: dict[str, Any] = {}  # relative path -> writer(tmp)
    figure_links: list[tuple[str, str]] = []
    if figures:
        for rel, caption, make in _figures(traj, board, runs):
            files[rel] = _figure_writer(make)
            figure_links.append((caption, rel))
    csv = table_for_csv(board).to_csv(index=False)
    files["leaderboard.csv"] = _text_writer(csv)
    if runs is not None:
        files["runs.csv"] = _text_writer(table_for_csv(runs).to_csv(index=False))
    eq_json = _equations_json(board)
    files["equations.json"] = lambda tmp: save_json_to(tmp, eq_json)
    files["equations.tex"] = _text_writer(_equations_tex(board))
    md = _markdown(traj, board, runs, by, figure_links, title, source, config)
    files["report.md"] = _text_writer(md)

    folder.check_free(files)
    # The manifest first lists every file dynafit may own here (old and new), so an
    # interrupted write leaves nothing unaccounted for; then the files; then the final one.
    save_json(
        out / "manifest.json",
        {
            "kind": MANIFEST_KIND,
            "status": "writing",
            "config": config,
            "files": sorted(owned | set(files)),
        },
    )
    for rel, write in files.items():
        atomic_write(out / rel, write)
    for stale in sorted(owned - set(files)):
        path = out / stale
        if path.is_file():
            path.unlink()
    save_json(
        out / "manifest.json",
        {
            "kind": MANIFEST_KIND,
            "status": "complete",
            "config": config,
            "dynafit_version": __version__,
            "files": sorted(files),
        },
    )
    return out / "report.md"


def save_json_to(tmp: Path, obj: Any) -> None:
    tmp.write_text(json.dumps(obj, indent=2) + "\n")


def _text_writer(text: str):
    def write(tmp: Path) -> None:
        tmp.write_text(text)

    return write


def _figure_writer(make):
    def write(tmp: Path) -> None:
        fig = make()
        try:
            fig.savefig(tmp, format="png", dpi=110)
        finally:
            if "matplotlib.pyplot" in sys.modules:  # figures made through pyplot
                sys.modules["matplotlib.pyplot"].close(fig)

    return write


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _figures(traj: Trajectory, board: pd.DataFrame, runs: pd.DataFrame | None = None):
    """(relative path, caption, factory) for each figure; factories run at write time."""
    ok = board[board["model"].notna()] if "model" in board else board.iloc[:0]
    out = [("figures/leaderboard.png", "Leaderboard", lambda: _plot.plot_leaderboard(board))]
    if len(ok):
        out.append(
            (
                "figures/rollouts.png",
                "Data against each model's rollout",
                lambda: _plot.plot_rollouts(traj, ok),
            )
        )
    for _, row in ok.iterrows():
        model, name = row["model"], _label(row)
        label = _safe(name)
        out.append(
            (
                f"figures/coefficients_{label}.png",
                f"Coefficients: {name}",
                functools.partial(_plot.plot_coefficients, model, title=f"{name}: coefficients"),
            )
        )
        sweep = getattr(model, "sweep", None)
        if sweep is not None and len(sweep) > 0:
            out.append(
                (
                    f"figures/sweep_{label}.png",
                    f"Threshold sweep: {name}",
                    functools.partial(_plot.plot_sweep, model, title=f"{name}: threshold sweep"),
                )
            )
        if model.uncertainty is not None:
            out.append(
                (
                    f"figures/inclusion_{label}.png",
                    f"Inclusion probabilities: {name}",
                    functools.partial(plot_inclusion, model),
                )
            )
    if runs is not None and "dim" in runs.columns and runs["dim"].nunique() > 1:
        out.append(
            (
                "figures/r2_vs_dim.png",
                "R^2 against embedding dimension (runs fitted one by one)",
                functools.partial(plot_r2_vs_dim, runs),
            )
        )
    return out


_BOARD_COLUMNS = ("rank", "family", "variant", "status", "n_library", *BOARD_SCORES)


def _data_line(traj: Trajectory, source: str | None) -> str:
    shape = f"{traj.n_runs} runs x " if traj.is_batch else ""
    return (
        f"Data: {source + ', ' if source else ''}{shape}{traj.n_times} time points in "
        f"[{traj.t[0]:g}, {traj.t[-1]:g}], {traj.n_vars} variables "
        f"({', '.join(traj.names[:8])}{', ...' if traj.n_vars > 8 else ''})."
    )


def _leaderboard_lines(board: pd.DataFrame, by: str) -> list[str]:
    """The leaderboard, how it ranks, and the families that could not apply."""
    lines = ["", f"## Leaderboard (by {by})", ""]
    lines.append(
        f"Best first. Rows within 10 of the best {by.upper()} count as equally good and the "
        "smaller library (n_library), then fewer terms, wins among them; diverged rollouts "
        "rank after finite ones; families that cannot apply to the data rank last."
        if by in ("aic", "bic")
        else f"Best first by {by}."
    )
    lines += ["", markdown_table(board, _BOARD_COLUMNS), ""]
    na = board[board["status"] != "ok"] if "status" in board else board.iloc[:0]
    for _, row in na.iterrows():
        lines.append(f"- {_label(row)}: {row['status']}")
    if len(na):
        lines.append("")
    return lines


def _best_model_lines(row: pd.Series, readable: pd.Series | None) -> list[str]:
    """The best model's equations (unless it is the most readable one, shown above) and,
    for an ensemble, its coefficients with intervals."""
    lines = [f"## Best model: {_label(row)}", ""]
    if bool(row.get("diverged", False)):
        lines += ["**Warning:** every fitted model's rollout diverged.", ""]
    if readable is not None and readable.name == row.name:
        lines += ["The most readable model above.", ""]
    else:
        lines += ["$$", _align(row["model"].equations()), "$$", ""]
    unc = row["model"].uncertainty
    if unc is not None:
        lines += [
            f"Ensemble of {unc.get('n_models', '?')} fits: median coefficients with "
            f"{100 * float(unc.get('level', 0.9)):.0f} % intervals and inclusion "
            "probabilities:",
            "",
            "```",
            *row["model"].equations_with_intervals(),
            "```",
            "",
        ]
    return lines + [
        "All models' equations: [equations.tex](equations.tex), "
        "[equations.json](equations.json); scores: [leaderboard.csv](leaderboard.csv).",
        "",
    ]


def _markdown(
    traj: Trajectory,
    board: pd.DataFrame,
    runs: pd.DataFrame | None,
    by: str,
    figure_links: Sequence[tuple[str, str]],
    title: str,
    source: str | None,
    config: Mapping[str, Any],
) -> str:
    readable = most_readable(board)
    lines = [f"# {title}", "", _data_line(traj, source)]
    if traj.is_batch:
        lines.append("The leaderboard fits one pooled model per family over all runs.")
    if readable is not None:
        lines += [
            "",
            f"## Most readable model that rolls out: {_label(readable)}",
            "",
            f"The fewest terms ({int(readable['n_terms'])}) among the models whose rollout "
            f"R^2 is at least {READABLE_R2} (here {float(readable['rollout_r2']):.3f}).",
            "",
            "$$",
            _align(readable["model"].equations()),
            "$$",
        ]
    lines += _leaderboard_lines(board, by)
    best = board[board["model"].notna()] if "model" in board else board.iloc[:0]
    if len(best):
        lines += _best_model_lines(best.iloc[0], readable)
    if runs is not None:
        lines += ["## Runs fitted one by one", ""]
        lines.append(
            f"{runs['run'].nunique()} runs, each fitted separately; full table in "
            "[runs.csv](runs.csv). Per family (mean and spread over runs; wins = runs "
            f"where the family ranked first by {by}):"
        )
        lines += ["", markdown_table(runs_summary(runs, by)), ""]
    if figure_links:
        lines += ["## Figures", ""]
        for caption, rel in figure_links:
            lines += [f"### {caption}", "", f"![{caption}]({rel})", ""]
    if config:
        lines += ["## Settings", "", "```", *(f"{k}: {v}" for k, v in config.items()), "```", ""]
    return "\n".join(lines)
