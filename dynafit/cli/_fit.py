"""``dynafit fit``: fit candidate ODE families to trajectories, print the leaderboard and
the best model's equations, and write a report folder.

Exit codes: 0 done; 2 bad arguments or input (a message, never a traceback).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .._board import READABLE_R2, most_readable
from .._compare import compare
from .._derivatives import DERIVATIVES, check_method
from .._executors import make_executor
from .._fit import OPTIMIZERS, fit
from .._fit_many import fit_many
from .._report import _fmt, check_out_dir, text_table, write_report
from .._score_names import BOARD_SCORES
from .._trajectory import Trajectory, load_runs
from ..families import get_family
from ._base import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
    UsageError,
    add_backend_arguments,
    add_out_arguments,
    check_backend_arguments,
)

DESCRIPTION = """\
Fit candidate ODE families (linear, lotka_volterra, polynomial) to a trajectory file or a
folder of them, rank them (best first by BIC; within 10 of the best, the smaller library
and then fewer terms win), print the leaderboard and the best model's equations, and write
a report folder (report.md, leaderboard.csv, equations.json/.tex, figures/*.png). A batch
(several runs) is fitted pooled for the leaderboard and run by run for runs.csv."""

EPILOG = """\
examples:
  dynafit fit runs.npz --families linear,lotka_volterra --window 0:1000
  dynafit fit sweep_dir/ --backend ray --out sweep_fit
  dynafit fit runs.npz --run 3 --window 0:1000 --horizon 1000 --derivative forward
  dynafit fit data.csv --time t --families auto
  dynafit fit run1.csv run2.csv --time day --vars prey,predator"""

#: the defaults of :func:`dynafit.fit`, read from its signature so that the help says
#: what a fit without the flag really does
_FIT_DEFAULTS = {
    name: param.default
    for name, param in inspect.signature(fit).parameters.items()
    if param.default is not inspect.Parameter.empty
}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="dynafit fit",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "input",
        nargs="+",
        help="a trajectory .npz, or a folder of them (one batch); or tables of "
        "measurements: .csv (or .parquet, with pyarrow) files, several files being runs "
        "that share their times",
    )
    p.add_argument(
        "--families",
        default="linear,lotka_volterra,polynomial",
        help="comma-separated families, or 'auto' (the automatic library choice: linear, "
        "lotka_volterra, polynomial of degree 2 and 3, trigonometric, rational, with the "
        "generalisation check) (default: %(default)s)",
    )
    p.add_argument(
        "--time",
        default=None,
        metavar="COLUMN",
        help="the time column of a .csv/.parquet input (default: t); every other numeric "
        "column is a variable unless --vars picks some",
    )
    p.add_argument(
        "--window",
        default=None,
        metavar="T0:T1",
        help="fit on t0 <= t <= t1, both ends included; either end may be empty",
    )
    p.add_argument(
        "--derivative",
        default=None,
        help=f"derivative estimate, one of {', '.join(DERIVATIVES)} (default "
        f"{_FIT_DEFAULTS['derivative']}: smoothed where the data look noisy, else centered; "
        "forward is the paper's x[t+1]-x[t])",
    )
    p.add_argument(
        "--optimizer",
        default=None,
        help=f"one of {', '.join(OPTIMIZERS)} (default {_FIT_DEFAULTS['optimizer']})",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="fixed sparsity threshold (default: chosen from a sweep)",
    )
    p.add_argument(
        "--by",
        default=None,
        help="ranking criterion (default: rollout_aicc with --families auto, else bic)",
    )
    add_out_arguments(p, help="report folder (default: INPUT_fit beside the input)")
    p.add_argument("--run", type=int, default=None, metavar="I", help="fit only run I of a batch")
    p.add_argument(
        "--vars",
        default=None,
        metavar="A,B,...",
        help="fit only these variables (comma-separated names)",
    )
    p.add_argument(
        "--horizon",
        type=float,
        default=None,
        metavar="N",
        help="forecast the N time units after the window and score it against the data "
        "there (forecast_r2, forecast_skill); without data after the window, its last N "
        "time units are held out instead",
    )
    add_backend_arguments(p)
    p.add_argument(
        "--refine",
        action="store_true",
        help="add rollout-refined variants of every model (dynafit.refine)",
    )
    p.add_argument(
        "--ensemble",
        type=int,
        default=None,
        metavar="N",
        help="fit every family as an ensemble of N bootstrap fits (N >= 2): coefficient "
        "intervals and inclusion probabilities in the report",
    )
    p.add_argument(
        "--no-per-run",
        action="store_true",
        help="for a batch, skip fitting each run separately (runs.csv)",
    )
    p.add_argument("--no-figures", action="store_true", help="write no figures")
    return p


def parse_window(text: str | None) -> tuple[float | None, float | None]:
    """``"T0:T1"`` -> (t0, t1); either side may be empty (open)."""
    if text is None:
        return None, None
    parts = text.split(":")
    if len(parts) != 2:
        raise UsageError(f"--window must look like T0:T1 (for example 0:1000), got {text!r}")
    out: list[float | None] = []
    for part in parts:
        part = part.strip()
        if not part:
            out.append(None)
            continue
        try:
            out.append(float(part))
        except ValueError:
            raise UsageError(f"--window: {part!r} is not a number (in {text!r})") from None
    t0, t1 = out
    if t0 is not None and t1 is not None and t0 > t1:
        raise UsageError(f"--window start {t0:g} is after its end {t1:g}")
    return t0, t1


def _families(text: str) -> list[str] | str:
    if text.strip().lower() == "auto":
        return "auto"
    names = [f.strip() for f in text.split(",") if f.strip()]
    if not names:
        raise UsageError("--families is empty")
    out = []
    for name in names:
        try:
            out.append(get_family(name).name)
        except ValueError as err:
            raise UsageError(f"--families: {err}") from None
    if len(set(out)) != len(out):
        raise UsageError(f"--families names a family twice: {names}")
    return out


def default_out(source: Path) -> Path:
    """``runs.npz`` -> ``runs_fit/``; ``dir/`` -> ``dir_fit/`` (beside the input)."""
    source = source.resolve()
    stem = source.stem if source.is_file() else source.name
    return source.parent / f"{stem}_fit"


def _fit_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if args.derivative is not None:
        try:
            check_method(args.derivative)
        except ValueError as err:
            raise UsageError(f"--derivative: {err}") from None
        opts["derivative"] = args.derivative
    if args.optimizer is not None:
        if args.optimizer not in OPTIMIZERS:
            raise UsageError(
                f"--optimizer: unknown optimizer {args.optimizer!r}; choose one of {list(OPTIMIZERS)}"
            )
        opts["optimizer"] = args.optimizer
    if args.threshold is not None:
        opts["threshold"] = args.threshold
    if args.ensemble is not None and args.ensemble < 2:
        raise UsageError(f"--ensemble needs N >= 2 models, got {args.ensemble}")
    return opts


def _executor(args: argparse.Namespace) -> Any:
    """An executor for the per-run fits (None: a loop in this process)."""
    if args.backend == "local" and not args.workers:
        return None
    kwargs: dict[str, Any] = {}
    if args.address is not None:
        kwargs["address"] = args.address
    if args.workers is not None:
        kwargs["workers"] = args.workers
    try:
        return make_executor(args.backend, **kwargs)
    except ImportError as err:
        raise UsageError(str(err)) from None


def _npz_files(folder: Path) -> list[Path]:
    """The trajectory files of a folder, in the order ``load_runs`` reads them."""
    return sorted(p for p in folder.glob("*.npz") if not p.name.startswith("."))


def _config(args: argparse.Namespace, source: Path) -> dict[str, Any]:
    """What the report records and compares on a re-run (not where it ran)."""
    keys = (
        "families",
        "window",
        "derivative",
        "optimizer",
        "threshold",
        "by",
        "run",
        "vars",
        "horizon",
        "refine",
        "ensemble",
        "no_per_run",
        "no_figures",
    )
    inputs = [str(Path(p).resolve()) for p in args.input]
    out: dict[str, Any] = {"input": inputs[0] if len(inputs) == 1 else inputs}
    out.update({k: getattr(args, k) for k in keys})
    if args.time is not None:
        out["time"] = args.time
    return out


def _print_board(board: Any, by: str) -> None:
    cols = [
        c
        # the report's board columns; the terminal leaves out aic (bic ranks by default)
        for c in ("rank", "family", "variant", *BOARD_SCORES)
        if c in board.columns and c != "aic"
    ]
    if by not in cols and by in board.columns:
        cols.append(by)
    rows = []
    for _, row in board.iterrows():
        cells = [_fmt(row[c]) for c in cols]
        if row.get("status", "ok") != "ok":
            cells = cells[:3] + [str(row["status"])[:70]]
        rows.append(cells)
    print(text_table(cols, rows))


#: a model with more terms per variable than this is named, not printed, after the
#: leaderboard when a readable model was printed first (its equations are in the report)
PRINT_TERMS_PER_VARIABLE = 4


def _print_model(title: str, row: Any) -> None:
    variant = "" if row["variant"] == "sindy" else f" ({row['variant']})"
    print(
        f"\n{title}: {row['family']}{variant}, {int(row['n_terms'])} terms "
        f"(rollout R^2 {float(row['rollout_r2']):.3f})"
    )
    print(str(row["model"]))


def _print_results(board: Any, by: str, note: str) -> None:
    """What a reader can use first: the most readable model that rolls out, then the
    leaderboard, then the best model by ``by`` (named only, when it is large and a
    readable one was printed: its equations are in the report's equations.tex)."""
    fitted = board[board["model"].notna()]
    readable = most_readable(board)
    if readable is not None:
        _print_model(f"most readable model that rolls out with R^2 >= {READABLE_R2}", readable)
    print(f"\nleaderboard ({note}):")
    _print_board(board, by)
    if not len(fitted):
        print("\nno family could be fitted to this data")
        return
    best = fitted.iloc[0]
    if readable is not None and readable.name == best.name:
        print(f"\nbest model: {best['family']}, the most readable one above")
        return
    n_vars = int(best["model"].n_vars)
    if readable is None or int(best["n_terms"]) <= PRINT_TERMS_PER_VARIABLE * n_vars:
        _print_model("best model", best)
        return
    variant = "" if best["variant"] == "sindy" else f" ({best['variant']})"
    print(
        f"\nbest model: {best['family']}{variant}, {int(best['n_terms'])} terms over {n_vars} "
        f"variables (rollout R^2 {float(best['rollout_r2']):.3f}); its equations are in the "
        "report (equations.tex)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dynafit fit``; returns the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        return _run(args)
    except UsageError as err:
        print(parser.format_usage().rstrip(), file=sys.stderr)
        print(f"dynafit fit: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as err:
        print(f"dynafit fit: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dynafit fit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


#: file suffixes read as tables of measurements (columns: time and variables)
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: Path, time: str | None, names: list[str] | None) -> Trajectory:
    """One run from a .csv (pandas) or .parquet (pandas + pyarrow) file: the ``time``
    column (default "t") against every other numeric column, or the ``names`` columns.
    Problems are a ``ValueError`` naming the file and the column."""
    try:
        if path.suffix.lower() == ".csv":
            df = pd.read_csv(path)
        else:
            df = pd.read_parquet(path)
    except ImportError as err:
        raise UsageError(
            f"{path}: reading Parquet needs pyarrow ({err}); or save it as .csv"
        ) from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: not a readable table ({err})") from None
    time = "t" if time is None else time
    if time not in df.columns:
        raise ValueError(
            f"{path}: no time column {time!r} (columns: {list(df.columns)}); name it with --time"
        )
    if names is None:
        names = [c for c in df.columns if c != time and pd.api.types.is_numeric_dtype(df[c])]
        if not names:
            raise ValueError(f"{path}: no numeric column besides the time column {time!r}")
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: unknown variables {missing} (columns: {list(df.columns)})")
    bad = [c for c in [time, *names] if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise ValueError(f"{path}: column(s) {bad} are not numeric")
    ident = [str(c) if str(c).isidentifier() else _identifier(str(c)) for c in names]
    df = df.sort_values(time, kind="stable")
    meta = {"source": str(path), **({"columns": list(map(str, names))} if ident != names else {})}
    return Trajectory(df[time].to_numpy(float), df[names].to_numpy(float), ident, meta)


def _identifier(name: str) -> str:
    """A column name as a variable name: other characters become '_'."""
    out = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name.strip())
    return out if out.isidentifier() else f"v_{out}"


def _var_list(text: str | None) -> list[str] | None:
    """``--vars a,b,c`` as names (None when not given)."""
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


def _check_exist(inputs: Sequence[str]) -> None:
    for src in inputs:
        if not Path(src).exists():
            raise UsageError(f"{src}: no such file or folder")


def _load_inputs(args: argparse.Namespace) -> tuple[Trajectory, list[str] | None, bool]:
    """The data of the command's inputs as one trajectory (a batch for several runs), the
    file each run came from (None for one file), and whether they were tables (whose
    ``--vars`` are picked on reading)."""
    _check_exist(args.input)
    sources = [Path(p) for p in args.input]
    tables = [s.suffix.lower() in TABLE_SUFFIXES for s in sources]
    if any(tables) and not all(tables):
        raise UsageError("give .npz trajectories or tables (.csv, .parquet), not both")
    if all(tables):
        return (*_load_tables(sources, args.time, _var_list(args.vars)), True)
    if args.time is not None:
        raise UsageError("--time applies to .csv/.parquet inputs only")
    if len(sources) > 1:
        raise UsageError("give one .npz file or one folder (several .csv files are runs)")
    return (*_load_npz(sources[0]), False)


def _load_tables(
    sources: list[Path], time: str | None, names: list[str] | None
) -> tuple[Trajectory, list[str] | None]:
    """Tables as one trajectory (one run per file) and each run's file (None for one)."""
    runs = [read_table(s, time, names) for s in sources]
    try:
        full = runs[0] if len(runs) == 1 else Trajectory.stack(runs)
    except ValueError as err:
        raise ValueError(
            f"the tables cannot form one batch ({err}); every file must have the same "
            "times and columns"
        ) from None
    return full, ([s.name for s in sources] if len(runs) > 1 else None)


def _load_npz(source: Path) -> tuple[Trajectory, list[str] | None]:
    """A trajectory file or a folder of them as one trajectory, and the file of each run
    (None for one file)."""
    files = load_runs(source)
    try:
        full = files[0] if len(files) == 1 else Trajectory.stack(files)
    except ValueError as err:
        raise ValueError(
            f"{source}: its files cannot form one batch ({err}); fit them one by one"
        ) from None
    if not source.is_dir():
        return full, None
    return full, [p.name for p, tr in zip(_npz_files(source), files) for _ in range(tr.n_runs)]


def _forecast_split(
    full: Trajectory, traj: Trajectory, horizon: float | None
) -> tuple[Trajectory | None, float | None, str]:
    """What ``--horizon`` scores: the data after the window where there are at least two
    points (a forecast), else the window's last ``horizon`` time units held out; and a
    note saying which."""
    if horizon is None:
        return None, None, ""
    end = float(traj.t[-1])
    after = (full.t > end) & (full.t <= end + horizon)
    if after.sum() >= 2:
        forecast = Trajectory(full.t[after], full.x[..., after, :], full.names)
        return forecast, None, f"; forecast over ({end:g}, {full.t[after][-1]:g}]"
    return None, horizon, f"; last {horizon:g} time units held out for the forecast"


def _run(args: argparse.Namespace) -> int:
    source = Path(args.input[0])
    _check_exist(args.input)
    families = _families(args.families)
    t0, t1 = parse_window(args.window)
    if args.horizon is not None and not args.horizon > 0:
        raise UsageError(f"--horizon must be > 0, got {args.horizon:g}")
    if args.run is not None and args.run < 0:
        raise UsageError(f"--run must be >= 0, got {args.run}")
    check_backend_arguments(build_parser(), args)
    options = _fit_options(args)
    out = Path(args.out) if args.out else default_out(source)
    config = _config(args, source)

    check_out_dir(out, config, args.overwrite)  # refuse early, before any fitting

    full, file_of_run, tables = _load_inputs(args)
    if args.run is not None:
        if args.run >= full.n_runs:
            raise UsageError(f"--run {args.run}: {source} holds {full.n_runs} run(s)")
        full = full.run(args.run)
    if args.vars and not tables:
        full = full.select(_var_list(args.vars) or [])
    traj = full.window(t0, t1) if (t0 is not None or t1 is not None) else full
    forecast, horizon, note = _forecast_split(full, traj, args.horizon)

    what = f"{traj.n_runs} runs x " if traj.is_batch else ""
    print(
        f"dynafit fit: {source}: {what}{traj.n_times} times in [{traj.t[0]:g}, {traj.t[-1]:g}], "
        f"{traj.n_vars} variables; families "
        f"{families if isinstance(families, str) else ', '.join(families)}{note}"
    )
    start = time.perf_counter()
    board = compare(
        traj,
        families,
        by=args.by,
        refine=args.refine,
        horizon=horizon,
        forecast=forecast,
        ensemble=args.ensemble,
        **options,
    )
    runs_table = None
    if traj.is_batch and not args.no_per_run and families == "auto":
        print("(per-run fits skipped with --families auto: the pooled choice is reported)")
    elif traj.is_batch and not args.no_per_run:
        executor = _executor(args)
        try:
            runs_table = fit_many(
                traj,
                families,
                executor=executor,
                horizon=horizon,
                forecast=forecast,
                ensemble=args.ensemble,
                **options,
            )
        finally:
            if executor is not None:
                executor.close()
        if file_of_run is not None and args.run is None:
            runs_table.insert(1, "file", [file_of_run[r] for r in runs_table["run"]])
    elapsed = time.perf_counter() - start
    pooled = ", pooled over runs" if traj.is_batch else ""
    by = board.attrs["by"]
    _print_results(board, by, f"by {by}{pooled}; {elapsed:.1f} s")
    report = write_report(
        out,
        traj,
        board,
        runs=runs_table,
        config=config,
        overwrite=args.overwrite,
        figures=not args.no_figures,
        source=str(source),
    )
    print(f"\nreport: {report}")
    return 0
