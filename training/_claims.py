"""The report of ``dynafit reproduce``: the paper's claims beside our numbers
(:func:`claims_table`) and ``report.md`` (:func:`write_report`), from the summary of
:func:`training.reproduce.analyse`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dynafit.internal import atomic_write, markdown_table

#: The figures of the report, by key: file name under DIR/figures/.
FIGURES = {
    "spectrum": "spectrum.png",
    "trajectories": "trajectories.png",
    "survivors_vs_dim": "survivors_vs_dim.png",
    "fittest": "fittest.png",
    "intervention": "intervention.png",
    "r2_vs_dim": "r2_vs_dim.png",
}


def _f(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "n/a"
    return f"{x:.{digits}f}"


def _lib_check(summary: Mapping[str, Any], key: str) -> str:
    lib = summary.get("fittest_dynafit")
    if not lib or key not in lib:
        return ""
    return f" (dynafit.fittest: {_f(lib[key])})"


def claims_table(summary: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows (claim, paper, ours, figure) of the report's table."""
    s = summary["setup"]
    few = summary["few_survive"]
    rows = [
        (
            f"Only a few circles survive (p = {s['p']}, dim = {s['dim_default']})",
            "a few of the 29 circles survive training (qualitative; no count is quoted)",
            f"{_f(few['mean'], 1)} +- {_f(few['sd'], 1)} of {few['of']} survive "
            f"(min {few['min']}, max {few['max']}; {s['runs_default']} runs)",
            FIGURES["spectrum"],
        )
    ]
    by_dim = summary["survivors_by_dim"]
    dims_text = ", ".join(f"dim {int(r['dim'])}: {_f(r['mean'], 1)}" for r in by_dim)
    rows.append(
        (
            "More circles survive with a larger embedding",
            "the number of surviving circles grows with the embedding dimension "
            "(figure over dims 16-128; qualitative)",
            f"{dims_text} (Spearman rho {_f(summary['survivors_dim_spearman'])})",
            FIGURES["survivors_vs_dim"],
        )
    )
    fit = summary["fittest"]
    rows.append(
        (
            "The fittest survive: high initial signal",
            "circles with a higher initial signal are more likely to survive (qualitative)",
            f"ROC AUC {_f(fit['auc_signal'])} pooled ({fit['n_alive']} of {fit['n_circles']} "
            f"circles alive, {fit['n_runs']} runs), {_f(fit['auc_signal_per_run'])} within a run"
            + _lib_check(summary, "auc_signal"),
            FIGURES["fittest"],
        )
    )
    rows.append(
        (
            "The fittest survive: high initial gradient",
            "circles with a larger initial gradient are more likely to survive (qualitative)",
            f"ROC AUC {_f(fit['auc_gradient'])} pooled, {_f(fit['auc_gradient_per_run'])} "
            f"within a run; signal and gradient together {_f(fit['auc_both'])} (in-sample)"
            + _lib_check(summary, "auc_gradient"),
            FIGURES["fittest"],
        )
    )
    inter = summary.get("intervention")
    if inter:
        k = inter[0]["k"]
        text = ", ".join(
            f"x{_f(r['scale_factor'], 3).rstrip('0').rstrip('.')}: {r['survived']}/{r['runs']}"
            for r in inter
        )
        rows.append(
            (
                f"Scaling a circle's initial signal up makes it more likely to survive (k = {k})",
                "survival rate rises with the scale factor (factors 0.85-1.15; qualitative)",
                f"circle {k} survived in {text} runs",
                FIGURES["intervention"],
            )
        )
    r2 = summary["linear_r2_by_dim"]
    w = summary["linear_r2_window"]
    # every one-step R^2 with the same 3 decimals, so that none reads as a win it is not
    lasso = ", ".join(f"dim {int(r['dim'])}: {_f(r['lasso_r2_mean'], 3)}" for r in r2)
    extra = ""
    if r2 and "dynafit_onestep_r2_mean" in r2[0]:
        extra = "; dynafit's linear family (SINDy, threshold chosen by held-out error"
        if "dynafit_n_terms_mean" in r2[0]:
            m = int(summary["setup"]["circles"])
            terms = ", ".join(f"{_f(r['dynafit_n_terms_mean'], 0)}" for r in r2)
            extra += f"; {terms} of {m * (m + 1)} possible terms"
        extra += "): one-step R^2 " + ", ".join(
            f"{_f(r['dynafit_onestep_r2_mean'], 3)}" for r in r2
        )
        diverged = sum(int(r.get("dynafit_diverged_runs") or 0) for r in r2)
        total = sum(int(r.get("runs") or 0) for r in r2)
        extra += f", its rollout over the window diverged in {diverged} of {total} runs"
    lstsq = ", ".join(f"{_f(r['lstsq_r2_mean'], 3)}" for r in r2)
    extra += f"; plain least squares {lstsq}"
    rows.append(
        (
            f"A linear ODE describes the early dynamics (steps {w[0]:g}-{w[1]:g})",
            "high R^2 of a linear model of x[t+1] - x[t] over embedding sizes 4-95 "
            "(Lasso alpha 0.01; figure, no single number quoted)",
            f"Lasso R^2 {lasso}{extra}",
            FIGURES["r2_vs_dim"],
        )
    )
    return rows


def _circle_model_lines(cm: Mapping[str, Any]) -> list[str]:
    """The report's section on readable circle models (from ``circle_model_summary``)."""
    lines = [
        "## Circle models from the early window",
        "",
        f"Survivor F1 (mean over {cm['runs']} runs), each model fitted on steps 0..W and "
        "integrated to the end of the run from the state at W; the count is the model's "
        "own except where the baseline is told k (`dynafit.early_window_table`):",
        "",
        *_candidate_table(cm["survivor_f1"], [f"W = {w:g}" for w in cm["windows"]]),
    ]
    if cm.get("forecast_skill"):
        lines += [
            "",
            "Forecast skill against persistence (1 - RMSE / RMSE of holding the state at "
            "the forecast start), by horizon:",
            "",
            *_candidate_table(cm["forecast_skill"], [f"h = {h:g}" for h in cm["horizons"]]),
        ]
    return lines + [""]


def _candidate_table(values: Mapping[str, Sequence[Any]], columns: Sequence[str]) -> list[str]:
    """Markdown lines of a table with one row per candidate: ``values[name]`` under
    ``columns``."""
    lines = ["| candidate | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, vals in values.items():
        lines.append(f"| {name} | " + " | ".join(_f(v) for v in vals) + " |")
    return lines


def write_report(path: str | Path, summary: Mapping[str, Any]) -> Path:
    """``report.md``: setup, the claims table and notes, from :func:`analyse`'s summary."""
    s, run = summary["setup"], summary.get("run", {})
    lines = [
        "# Survival of the fittest representation: reproduction report",
        "",
        f"Paper: {summary['paper']}. Produced by `dynafit reproduce`"
        + (f" --scale {run['scale']}" if run.get("scale") else "")
        + (f" ({run['spec']})" if run.get("spec") else "")
        + ".",
        "",
        "## Setup",
        "",
        f"- p = {s['p']} ({s['circles']} circles), default dim = {s['dim_default']}, "
        f"{s['steps']} full-batch AdamW steps, {s['dtype']}",
        f"- runs: {s['runs_default']} at the default setup, {s['runs_dims']} over embedding "
        f"dimensions, {s['runs_scaling']} with the intervention",
        f"- mean final test accuracy at the default setup: {_f(s['mean_final_test_acc'], 3)}",
    ]
    if run.get("devices"):
        lines.append(
            f"- device: {', '.join(run['devices'])} ({run.get('backend', 'local')} backend)"
        )
    if run.get("train_wall_s") is not None:
        lines.append(
            f"- wall time: training {run['train_wall_s']} s ({run.get('blocks_trained', 0)} blocks "
            f"trained, {run.get('blocks_reused', 0)} reused), analysis "
            f"{run.get('analysis_wall_s', '-')} s"
        )
    lines += [
        "- survival: S_k above twice the final spectrum's mean (the reference code's rule); "
        "initial gradient: (S_k(4) - S_k(3)) / S_k(0)",
        "",
        "## Claims",
        "",
        markdown_table(
            pd.DataFrame(
                [(c, p, o, f"[{fig}](figures/{fig})") for c, p, o, fig in claims_table(summary)],
                columns=["claim", "paper", "ours", "figure"],
            )
        ),
        "",
        "The paper's column restates its claims; where it gives its result as a figure "
        "rather than a number, no number is quoted. Ours are measured on the runs above; "
        "at a reduced scale (fewer seeds and steps than the paper's 30,000) survival is "
        "judged at the end of the shorter run.",
        "",
    ]
    if summary.get("circle_models"):
        lines += _circle_model_lines(summary["circle_models"])
    lines += [
        "## Figures",
        "",
    ]
    figdir = Path(path).parent / "figures"
    for key, name in FIGURES.items():
        if (figdir / name).exists():
            lines.append(f"![{key}](figures/{name})")
    text = "\n".join(lines) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))
