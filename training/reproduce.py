"""``dynafit reproduce``: train the paper's sweeps, analyse them, write figures and a report.

``dynafit reproduce --scale smoke|small|full --out DIR [--backend local|ray] [--address ...]``
runs the spec ``training/specs/reproduce_<scale>.toml`` through the sweep engine
(:func:`training.sweep.run_experiments`: progress bar, resumable, one ``.npz`` per block
under ``DIR/<experiment>/``), then the analyses of :mod:`training.analysis` (the same
functions notebook 03 calls), and writes into DIR:

- ``report.md``: each claim of the paper, the paper's statement, and our number;
- ``figures/*.png``: one figure per claim (plus a spectrum and the signal trajectories);
- ``summary.json``: every number of the report; ``circles.csv`` and ``linear_r2.csv``:
  the tables behind them; ``reproduce.json``: what was run.

The paper's other experiments (:mod:`training.experiments`: controlled fittest,
perturbation curve, two-circle construction, ablation, collaboration, circle panels,
frozen embedding, survivors against dim, p and weight decay) run from
``training/specs/paper/<scale>.toml`` into ``DIR/<name>/`` (one table, one figure, one
JSON each; their trainings in ``DIR/_runs/``). ``--only NAME,...`` picks experiments;
``claims`` is the report above.

Running the same command again resumes the sweep (finished blocks are skipped) and
redoes the analysis. ``smoke`` is the notebook's minute-long setting, ``small`` a few
minutes on 2 CPU cores, ``full`` the paper's scale for GPUs or a Ray cluster.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

import dynafit
from dynafit.internal import (
    add_backend_arguments,
    add_out_arguments,
    atomic_write,
    backend_options,
    check_backend_arguments,
    load_json,
    make_executor,
    save_json,
)

from . import analysis, experiments
from ._claims import FIGURES, claims_table, write_report
from .sweep import load_experiments, run_experiments

__all__ = ["SCALES", "analyse", "main", "reproduce", "spec_path", "write_report"]

SCALES = ("smoke", "small", "full")
SPECS = Path(__file__).resolve().parent / "specs"
RECORD = "reproduce.json"
RECORD_SCHEMA = "dynafit.reproduce/1"
PAPER = "arXiv 2405.17420 (Ding, Guo, Michaud, Liu, Tegmark 2024)"


def spec_path(scale: str) -> Path:
    """The shipped spec of a scale: ``training/specs/reproduce_<scale>.toml``."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    return SPECS / f"reproduce_{scale}.toml"


# ---------------------------------------------------------------------- running
def reproduce(
    scale: str = "small",
    out: str | Path = "reproduce_out",
    *,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    spec: str | Path | None = None,
    only: str | Sequence[str] | None = None,
    matmul_precision: str | None = None,
) -> dict[str, Any]:
    """Train the sweeps of ``scale`` into ``out`` (resuming), analyse, write the report.

    ``only`` (comma list or names) picks ``claims`` (the report) and experiments of
    :mod:`training.experiments`; all by default. ``matmul_precision`` overrides the
    paper experiments' trainer option. Returns the summary (the numbers of
    ``report.md``) with the experiments' headlines under ``"experiments"``. ``spec`` replaces the shipped
    spec of ``scale`` (a file with the same experiments). A failed block is a
    ``RuntimeError`` after the others finished (rerun to retry); bad arguments, a spec
    or folder the sweep engine refuses, are ``ValueError``s before anything trains.
    """
    spec = Path(spec) if spec is not None else spec_path(scale)
    out = Path(out)
    paper_spec = experiments.spec_path(scale)
    names = ["claims"] + list(experiments.load_paper_spec(paper_spec))
    chosen = experiments.select(names, only)
    _check_record(out, scale, spec, overwrite)
    summary: dict[str, Any] = {}
    if "claims" in chosen:
        summary = _claims(scale, out, spec, backend, address, workers, overwrite, progress)
    rest = [n for n in chosen if n != "claims"]
    if rest:
        if not (out / RECORD).is_file():
            save_json(
                out / RECORD,
                {"schema": RECORD_SCHEMA, "scale": scale, "spec": str(spec), "backend": backend},
            )
        summary["experiments"] = experiments.run(
            paper_spec, out, only=rest, matmul_precision=matmul_precision, progress=progress
        )
    return summary


def _claims(scale, out, spec, backend, address, workers, overwrite, progress) -> dict[str, Any]:
    """The claims report: train the sweeps of ``spec``, then :func:`analyse`."""
    t0 = time.perf_counter()
    results = run_experiments(
        spec,
        out,
        backend=backend,
        address=address,
        workers=workers,
        overwrite=overwrite,
        progress=progress,
    )
    train_s = time.perf_counter() - t0
    failed = [f"{name}/{b}" for name, r in results.items() for b in r.failed]
    if failed:
        raise RuntimeError(
            f"{len(failed)} block(s) failed ({', '.join(failed[:3])}); rerun the same command "
            "to retry them (finished blocks are kept)"
        )
    devices = sorted(
        {str(b.get("device")) for r in results.values() for b in r.blocks if b.get("device")}
    )
    save_json(
        out / RECORD,
        {
            "schema": RECORD_SCHEMA,
            "scale": scale,
            "spec": str(spec),
            "experiments": sorted(results),
            "backend": backend,
        },
    )
    run_info = {
        "scale": scale,
        "spec": spec.name,
        "backend": backend,
        "devices": devices,
        "train_wall_s": round(train_s, 1),
        "blocks_trained": sum(len(r.trained) for r in results.values()),
        "blocks_reused": sum(len(r.reused) for r in results.values()),
    }
    return analyse(
        out, spec=spec, run_info=run_info, backend=backend, address=address, workers=workers
    )


def _check_record(out: Path, scale: str, spec: Path, overwrite: bool) -> None:
    """Refuse a folder that holds another scale's reproduction (unless ``overwrite``)."""
    if overwrite or not out.exists():
        return
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    record = out / RECORD
    if record.is_file():
        try:
            old = load_json(record)
        except ValueError:
            old = None
        if not isinstance(old, dict) or old.get("schema") != RECORD_SCHEMA:
            raise ValueError(f"{record}: not a dynafit reproduce record; choose another --out")
        if old.get("scale") != scale or Path(old.get("spec", "")).name != spec.name:
            raise ValueError(
                f"--out {out} holds the {old.get('scale')!r} reproduction "
                f"({Path(old.get('spec', '')).name}); use another --out, or --overwrite"
            )
    elif (out / "report.md").exists():
        raise ValueError(
            f"--out {out} holds a report.md not written by dynafit reproduce; "
            "choose another --out, or --overwrite"
        )


# --------------------------------------------------------------------- analysis
def _experiment_dirs(out: Path, spec: Path) -> dict[str, Path]:
    names = load_experiments(spec)
    return {name: out / name if name else out for name in names}


def _default_runs(runs: Mapping[str, Any]) -> Any:
    """The paper's default setup (dim 128, no intervention): the ``default`` experiment,
    else the largest dimension of ``dims``."""
    if "default" in runs:
        return runs["default"]
    dims = runs["dims"]
    table = analysis.run_table(dims)
    pick = np.flatnonzero(table["dim"].to_numpy() == table["dim"].max())
    return _subset(dims, pick)


def _subset(traj: Any, idx: Sequence[int]) -> Any:
    return dynafit.Trajectory.stack([traj.run(int(i)) for i in idx])


def analyse(
    out: str | Path,
    *,
    spec: str | Path | None = None,
    run_info: Mapping[str, Any] | None = None,
    r2_window: float = 1000.0,
    dynafit_fit: bool = True,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """The analyses of :mod:`training.analysis` on a reproduce folder; writes the report.

    ``out`` holds the experiments of ``spec`` (default: the one recorded in
    ``out/reproduce.json``): ``dims`` (required), ``default`` and ``scaling``
    (optional). Returns the summary dict that ``report.md`` shows. The per-run linear
    fits run on ``backend`` (``address``, ``workers`` as for the sweep).
    """
    out = Path(out)
    if spec is None:
        record = out / RECORD
        if not record.is_file():
            raise ValueError(f"{out}: no {RECORD}; give spec= (the reproduce spec used)")
        spec = load_json(record)["spec"]
    spec = Path(spec)
    dirs = _experiment_dirs(out, spec)
    if "dims" not in dirs:
        raise ValueError(f"{spec}: a reproduce spec needs a 'dims' experiment")
    t0 = time.perf_counter()
    runs = {name: analysis.load_experiment(d) for name, d in dirs.items()}
    default = _default_runs(runs)
    default_tab = analysis.circle_table(default)
    dims_tab = analysis.circle_table(runs["dims"])
    counts_default = analysis.survivor_counts(default_tab)
    counts_dims = analysis.survivor_counts(dims_tab)
    by_dim = analysis.survivors_by_dim(counts_dims)
    fittest = analysis.fittest_auc(default_tab)
    fittest_lib = {k: v for k, v in dynafit.circles.fittest(default).items() if k != "table"}
    inter = analysis.intervention_table(runs["scaling"]) if "scaling" in runs else None
    if dynafit_fit:
        with make_executor(backend, address=address, workers=workers) as executor:
            r2 = analysis.linear_r2(runs["dims"], r2_window, executor=executor)
    else:
        r2 = analysis.linear_r2(runs["dims"], r2_window, dynafit_fit=False)
    r2_stats = analysis.r2_by_dim(r2)

    cfg = analysis.run_table(default).iloc[0]
    m = default.n_vars
    rho = _spearman(counts_dims["dim"], counts_dims["n_alive"])
    summary: dict[str, Any] = {
        "paper": PAPER,
        "run": dict(run_info or {}),
        "setup": {
            "p": int(cfg["p"]),
            "dim_default": int(cfg["dim"]),
            "steps": int(cfg["steps"]),
            "dtype": str(cfg["dtype"]),
            "circles": m,
            "runs_default": int(default.n_runs),
            "runs_dims": int(runs["dims"].n_runs),
            "runs_scaling": int(runs["scaling"].n_runs) if "scaling" in runs else 0,
            "mean_final_test_acc": float(analysis.run_table(default)["final_test_acc"].mean()),
        },
        "few_survive": {
            "mean": float(counts_default["n_alive"].mean()),
            "sd": float(counts_default["n_alive"].std(ddof=1)) if len(counts_default) > 1 else 0.0,
            "min": int(counts_default["n_alive"].min()),
            "max": int(counts_default["n_alive"].max()),
            "of": m,
        },
        "survivors_by_dim": _records(by_dim),
        "survivors_dim_spearman": rho,
        "fittest": fittest,
        "fittest_dynafit": fittest_lib,
        "intervention": _records(inter) if inter is not None else None,
        "linear_r2_by_dim": _records(r2_stats),
        "linear_r2_window": list(r2.attrs["window"]),
    }
    if dynafit_fit:
        surv, fc = analysis.circle_models(default)
        summary["circle_models"] = circle_model_summary(surv, fc)
        _save_csv(out / "circle_models_survivors.csv", surv)
        _save_csv(out / "circle_models_forecast.csv", fc)
    summary["run"]["analysis_wall_s"] = round(time.perf_counter() - t0, 1)

    figs = out / "figures"
    _save_figure(figs / FIGURES["spectrum"], analysis.plot_spectrum(default, 0))
    _save_figure(figs / FIGURES["trajectories"], analysis.plot_trajectories(default, 0))
    _save_figure(figs / FIGURES["survivors_vs_dim"], analysis.plot_survivors_vs_dim(counts_dims))
    _save_figure(figs / FIGURES["fittest"], analysis.plot_fittest(default_tab, fittest))
    if inter is not None:
        _save_figure(figs / FIGURES["intervention"], analysis.plot_intervention(inter))
    _save_figure(figs / FIGURES["r2_vs_dim"], analysis.plot_r2_vs_dim(r2))
    _save_csv(
        out / "circles.csv",
        pd.concat(
            [dims_tab.assign(experiment="dims"), default_tab.assign(experiment="default")]
            + (
                [analysis.circle_table(runs["scaling"]).assign(experiment="scaling")]
                if "scaling" in runs
                else []
            ),
            ignore_index=True,
        ),
    )
    _save_csv(out / "linear_r2.csv", r2)
    save_json(out / "summary.json", summary)
    write_report(out / "report.md", summary)
    return summary


def circle_model_summary(surv: pd.DataFrame, fc: pd.DataFrame) -> dict[str, Any]:
    """The early-window tables as JSON data: survivor F1 (mean over runs) by candidate
    and window, forecast skill (mean over runs) by candidate and horizon."""
    if surv.empty:
        return {"runs": 0, "windows": [], "survivor_f1": {}}
    f1 = surv.pivot_table(index="candidate", columns="window", values="f1", aggfunc="mean")
    out: dict[str, Any] = {
        "runs": int(surv["run"].nunique()) if len(surv) else 0,
        "windows": [float(w) for w in f1.columns],
        "survivor_f1": {
            str(c): [None if pd.isna(v) else float(v) for v in row] for c, row in f1.iterrows()
        },
    }
    if len(fc):
        sk = fc.pivot_table(index="candidate", columns="horizon", values="skill", aggfunc="mean")
        out["horizons"] = [float(h) for h in sk.columns]
        out["forecast_skill"] = {
            str(c): [None if pd.isna(v) else float(v) for v in row] for c, row in sk.iterrows()
        }
    return out


def _spearman(a: Any, b: Any) -> float:
    a, b = pd.Series(np.asarray(a, float)), pd.Series(np.asarray(b, float))
    if a.nunique() < 2 or b.nunique() < 2:
        return math.nan
    return float(scipy.stats.spearmanr(a, b, nan_policy="omit").statistic)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records"))


def _save_figure(path: Path, fig: Any) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def _save_csv(path: Path, df: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


# -------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``dynafit reproduce --scale small|full --out DIR [--backend local|ray] ...``."""
    parser = argparse.ArgumentParser(
        prog="dynafit reproduce",
        description="Reproduce the findings of 'Survival of the Fittest Representation' "
        "(arXiv 2405.17420): train the sweeps of training/specs/reproduce_<scale>.toml, "
        "then write figures and DIR/report.md. Rerunning the same command resumes.",
    )
    parser.add_argument(
        "--scale",
        choices=SCALES,
        default="small",
        help="small: a few minutes on 2 CPU cores; full: the paper's scale (GPU or Ray "
        "cluster); smoke: about a minute (the notebook's setting)",
    )
    add_out_arguments(parser, required=True, help="output folder")
    add_backend_arguments(parser)
    parser.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--only",
        default=None,
        metavar="NAME,...",
        help="run only these: 'claims' (the report) and/or experiments of "
        "training/specs/paper/<scale>.toml (fittest_controlled, perturbation, construction, "
        "ablation, collaboration, circle_panels, frozen_embedding, survivors_dim, "
        "survivors_p, survivors_wd)",
    )
    parser.add_argument(
        "--matmul-precision",
        default=None,
        help="JAX default matmul precision for the experiments' trainings (default: the "
        "spec's, 'highest'); 'tensorfloat32' is TF32 on a GPU",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    check_backend_arguments(parser, args)
    try:
        summary = reproduce(
            args.scale,
            args.out,
            **backend_options(args),
            overwrite=args.overwrite,
            progress=not args.quiet,
            spec=args.spec,
            only=args.only,
            matmul_precision=args.matmul_precision,
        )
    except (ValueError, ImportError) as err:
        print(f"dynafit reproduce: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        print(f"dynafit reproduce: {err}", file=sys.stderr)
        return 1
    print()
    if "setup" in summary:
        for claim, _, ours, _ in claims_table(summary):
            print(f"- {claim}: {ours}")
        print(f"\nreport: {Path(args.out) / 'report.md'}")
    for name, headline in summary.get("experiments", {}).items():
        print(f"- {name}: {json.dumps(headline)}")
        print(f"  {Path(args.out) / name / name}.csv, .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
