"""Time ``dynafit.refine`` on a 29-variable linear model over 1000 steps (issue target:
under a minute on 2 CPU cores).

The data: a stable 29-variable linear system (eigenvalues on the scale of the paper's
circle dynamics, t = 0..1000 steps), 1 % noise; the start: dynafit's plain SINDy fit with
the paper's forward differences. Prints the wall and CPU time (all threads; on a shared machine the CPU time divided
by the cores is the better guide) of the first call (compilation
included) and of a second call on the same shapes (compiled), with the rollout R^2 before
and after.

    python benchmarks/refine_speed.py [--steps 300] [--m 29] [--T 1001] [--x64]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--m", type=int, default=29)
    p.add_argument("--T", type=int, default=1001)
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--x64", action="store_true", help="float64 (default float32)")
    args = p.parse_args()
    if args.x64:
        import jax

        jax.config.update("jax_enable_x64", True)
    from scipy.integrate import solve_ivp

    import dynafit

    rng = np.random.default_rng(0)
    m = args.m
    A = -np.diag(rng.uniform(2e-3, 8e-3, m)) + rng.normal(0, 1e-3, (m, m))
    A -= np.eye(m) * max(0.0, np.linalg.eigvals(A).real.max() + 1e-3)
    b = rng.uniform(0.0, 0.02, m)
    t = np.arange(float(args.T))
    x0 = rng.uniform(0.5, 3.0, m)
    sol = solve_ivp(lambda _, x: A @ x + b, (t[0], t[-1]), x0, t_eval=t, rtol=1e-9, atol=1e-11)
    X = sol.y.T
    X = X + args.noise * X.std(axis=0) * rng.normal(size=X.shape)
    names = [f"S{k + 1}" for k in range(m)]
    traj = dynafit.Trajectory(t, X, names)
    model = dynafit.fit(traj, "linear", derivative="forward")
    r2_0 = model.score(traj)["rollout_r2"]

    results = []
    for label in ("first call (compiles)", "second call (compiled)"):
        t0, c0 = time.perf_counter(), time.process_time()
        refined = dynafit.refine(model, traj, steps=args.steps)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        info = refined.options["refine"]
        results.append(dt)
        print(
            f"{label}: {dt:6.1f} s wall, {cpu:6.1f} s CPU  steps {info['steps_run']}  rollout R^2 "
            f"{r2_0:.4f} -> {refined.score(traj)['rollout_r2']:.4f}  "
            f"(best step {info['best_step']}, {model.n_terms} terms)"
        )
    print(
        f"refine, {m} variables x {args.T} points, {args.steps} steps, "
        f"{'float64' if args.x64 else 'float32'}, {os.cpu_count()} CPUs: "
        f"{results[0]:.1f} s first call, {results[1]:.1f} s compiled"
    )


if __name__ == "__main__":
    main()
