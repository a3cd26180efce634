"""Fit throughput: dynafit's linear family against the paper's approach, like for like.

Per run of a batch (default 64 runs x 29 variables x 1000 steps, as the paper's setting):

- paper: scikit-learn ``Lasso(alpha=0.01)`` of x[t+1] - x[t] on x[t], then a Python-loop
  Euler rollout x[t+1] = x[t] + A x[t] + b from the first state, scored by R^2;
- dynafit linear: ``fit_many(traj, ["linear"], equations=False)``: per run, derivatives,
  the threshold sweep with held-out selection (and the rollout of every candidate) and
  the final sparse regression; then one vmapped, adaptive diffrax rollout (Tsit5) of all
  runs' models and every score. Like the paper's approach, it prints no equations; the
  cost of rendering them as text (sympy, ``equations=True``, the default) is reported
  on its own line;
- all three families (linear, lotka_volterra, polynomial) through ``fit_many``, reported
  beside it.

Each is timed cold (first call, JIT compilation included) and warm (the same call again).
Data: synthetic circle-like magnitudes (a competitive Lotka-Volterra system per run:
some signals rise, most decay, 1 % noise), or a trajectory file (``--data runs.npz``).

    python benchmarks/fit_throughput.py                      # the full setting
    python benchmarks/fit_throughput.py --runs 4 --vars 8 --steps 200 --families linear
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings

import numpy as np


def synth_circles(runs: int, m: int, steps: int, seed: int = 0) -> np.ndarray:
    """(runs, steps + 1, m) positive signals that rise and fall like circle magnitudes."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(-0.004, 0.012, (runs, m))
    a = -rng.uniform(0.0, 0.0012, (runs, m, m)) * (rng.random((runs, m, m)) < 0.5)
    a[:, np.arange(m), np.arange(m)] = -rng.uniform(0.002, 0.004, (runs, m))
    x = rng.uniform(0.5, 2.0, (runs, m))

    def f(y):
        return y * (r + np.einsum("rij,rj->ri", a, y))

    out = [x]
    for _ in range(steps):  # RK4 at dt = 1 step
        k1 = f(x)
        k2 = f(x + 0.5 * k1)
        k3 = f(x + 0.5 * k2)
        k4 = f(x + k3)
        x = x + (k1 + 2 * k2 + 2 * k3 + k4) / 6
        out.append(x)
    xs = 50.0 * np.stack(out, axis=1)  # the scale of S_k at p = 59, dim = 128
    noise = 0.01 * xs.std(axis=1, keepdims=True) * rng.standard_normal(xs.shape)
    return np.abs(xs + noise)


def paper_baseline(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Lasso(alpha=0.01) on x[t+1]-x[t] plus a Python-loop Euler rollout, per run.

    Returns (seconds, one-step R^2 per run, rollout R^2 per run).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso
    from sklearn.metrics import r2_score

    start = time.perf_counter()
    one_step, rollout = [], []
    for xr in x:
        dx = xr[1:] - xr[:-1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lasso = Lasso(alpha=0.01).fit(xr[:-1], dx)
        A, b = lasso.coef_, lasso.intercept_
        one_step.append(r2_score(dx, lasso.predict(xr[:-1])))
        pred = np.empty_like(xr)
        pred[0] = xr[0]
        state = xr[0].copy()
        with np.errstate(all="ignore"):
            for t in range(1, xr.shape[0]):
                state = state + A @ state + b
                pred[t] = state
        ok = np.all(np.isfinite(pred))
        rollout.append(r2_score(xr, pred) if ok else -np.inf)
    return time.perf_counter() - start, np.array(one_step), np.array(rollout)


def time_fit_many(traj, families, repeat: int, executor=None, equations=False):
    import dynafit

    times, table = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        table = dynafit.fit_many(traj, families, executor=executor, equations=equations)
        times.append(time.perf_counter() - start)
    return times, table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=64)
    p.add_argument("--vars", type=int, default=29)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument(
        "--data", default=None, help="a trajectory .npz or folder instead of synthetic data"
    )
    p.add_argument(
        "--families",
        default="linear,lotka_volterra,polynomial",
        help="families for the 'all families' line ('' to skip it)",
    )
    p.add_argument("--repeat", type=int, default=2, help="timed calls (the first is cold)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also time the linear fits with the regressions in this many local worker "
        "processes (fit_many's executor); 1 to skip",
    )
    args = p.parse_args(argv)

    import jax

    import dynafit

    if args.data:
        traj = dynafit.load(args.data)
        if not traj.is_batch:
            traj = dynafit.Trajectory.stack([traj])
        traj = traj.window(traj.t[0], traj.t[0] + args.steps)
        source = args.data
    else:
        x = synth_circles(args.runs, args.vars, args.steps, args.seed)
        names = [f"S{k}" for k in range(1, args.vars + 1)]
        meta = {"runs": [{"seed": i} for i in range(args.runs)]}
        traj = dynafit.Trajectory(np.arange(args.steps + 1.0), x, names, meta)
        source = "synthetic circle-like (competitive LV, 1 % noise)"
    R, T, m = traj.x.shape
    print(f"fit throughput: {R} runs x {m} variables x {T} time points ({source})")
    print(
        f"machine: {platform.processor() or platform.machine()}, jax {jax.__version__} "
        f"on {jax.default_backend()}, python {platform.python_version()}"
    )

    base_s, base_r2, base_roll = paper_baseline(traj.x)
    print(
        f"\npaper (Lasso 0.01 + Python Euler loop): {base_s:.2f} s, "
        f"{1e3 * base_s / R:.1f} ms/run; one-step R^2 median {np.median(base_r2):.3f}, "
        f"rollout R^2 median {np.median(base_roll):.3f}"
    )

    times, table = time_fit_many(traj, ["linear"], args.repeat)
    warm = min(times[1:]) if len(times) > 1 else times[0]
    print(
        f"dynafit linear (sweep + fit + vmapped diffrax rollout + scores): cold {times[0]:.2f} s, "
        f"warm {warm:.2f} s = {1e3 * warm / R:.1f} ms/run; deriv R^2 median "
        f"{table['deriv_r2'].median():.3f}, rollout R^2 median {table['rollout_r2'].median():.3f}, "
        f"median terms {table['n_terms'].median():.0f} of {m * (m + 1)}"
    )
    print(
        f"ratio paper / dynafit linear (warm, per run): {base_s / warm:.2f}x "
        f"({'dynafit faster' if warm < base_s else 'paper faster'}); cold: {base_s / times[0]:.2f}x"
    )

    times_eq, _ = time_fit_many(traj, ["linear"], 1, equations=True)
    print(
        f"  with the equations rendered as text (fit_many's default): {times_eq[0]:.2f} s = "
        f"{1e3 * times_eq[0] / R:.1f} ms/run, of which text {1e3 * (times_eq[0] - warm) / R:.1f} "
        "ms/run"
    )

    if args.workers > 1:
        from dynafit.internal import make_executor

        with make_executor("local", workers=args.workers) as executor:
            times_p, _ = time_fit_many(traj, ["linear"], args.repeat, executor)
        warm_p = min(times_p[1:]) if len(times_p) > 1 else times_p[0]
        print(
            f"dynafit linear, regressions in {args.workers} worker processes: cold "
            f"{times_p[0]:.2f} s, warm {warm_p:.2f} s = {1e3 * warm_p / R:.1f} ms/run; ratio "
            f"paper / dynafit {base_s / warm_p:.2f}x"
        )

    families = [f for f in args.families.split(",") if f.strip()]
    if families:
        times3, table3 = time_fit_many(traj, families, args.repeat)
        warm3 = min(times3[1:]) if len(times3) > 1 else times3[0]
        print(
            f"dynafit all families ({', '.join(families)}): cold {times3[0]:.2f} s, warm "
            f"{warm3:.2f} s = {1e3 * warm3 / R:.1f} ms/run"
        )
        ok = table3[table3["status"] == "ok"]
        for family, grp in ok.groupby("family", sort=False):
            print(
                f"  {family:15s} rollout R^2 median {grp['rollout_r2'].median():.3f}, "
                f"diverged {int(grp['diverged'].sum())}/{len(grp)}, median terms "
                f"{grp['n_terms'].median():.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
