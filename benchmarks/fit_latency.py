"""Fit latency (issue 23): how long a user waits, cold and warm, beside the alternative.

Each case runs in a fresh worker process twice: first with an empty persistent
compilation cache ("cold"), then again with the cache the first one filled ("cache warm").
Inside each worker the case is called twice: the first call is that process's cold
call, the second the "warm" one (everything compiled). The share of compilation is the
time JAX reports for tracing, lowering and compiling (jax.monitoring) during the call.
The alternative a user would otherwise run is timed in the same worker.

Cases:
- ``lynx``: 21 yearly lynx-hare points, ``fit(family="lotka_volterra")`` + ``refine``;
  alternative: scipy ``least_squares`` on the rollout of the same 4-parameter law
  (solve_ivp), from the same start.
- ``compare``: one circle run (29 circles x 1001 steps; ``--circle run.npz``, else one
  seed trained here at the paper's defaults), ``compare`` of linear, lotka_volterra,
  polynomial; alternative: the paper's Lasso + Euler rollout.
- ``refine29``: ``refine`` of a 29-variable linear model, 1001 points, 300 steps
  (``benchmarks/refine_speed.py``'s problem), adam and Levenberg-Marquardt.
- ``fit_many``: ``--runs`` synthetic circle-like runs (``fit_throughput.synth_circles``)
  through ``fit_many`` with three families.
- ``small``: 64 small systems (1-4 variables, 512 points: sparse linear and competitive
  Lotka-Volterra from ``tests/_systems.py``), ``fit(family="polynomial")`` each;
  alternative: plain pysindy ``STLSQ(0.1)`` on a degree-2 library.

    python benchmarks/fit_latency.py [--cases lynx,compare,refine29,fit_many,small]
        [--circle run.npz] [--runs 16]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASES = ("lynx", "compare", "refine29", "fit_many", "small")
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


# ----------------------------------------------------------------------------- worker
class _Clock:
    """Wall time of a call and the compilation time JAX reports during it: ``compile``
    (all of it), ``trace`` (Python tracing to a jaxpr, never cached across processes)."""

    def __init__(self):
        import jax.monitoring

        self.compile = 0.0
        self.trace = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._on)

    def _on(self, name, secs, **_):
        if name in _COMPILE_EVENTS:
            self.compile += secs
        if name == _COMPILE_EVENTS[0]:
            self.trace += secs

    def time(self, fn):
        c0, r0, t0 = self.compile, self.trace, time.perf_counter()
        out = fn()
        self.last_trace = self.trace - r0
        return out, time.perf_counter() - t0, self.compile - c0


def _lynx(clock):
    from scipy.integrate import solve_ivp
    from scipy.optimize import least_squares

    import dynafit
    from tests.test_discovery import HARE, LYNX, YEARS

    x = np.stack([HARE, LYNX], axis=1)
    traj = dynafit.Trajectory(YEARS, x, ["hare", "lynx"])

    def ours():
        m = dynafit.fit(traj, family="lotka_volterra")
        r = dynafit.refine(m, traj)
        return float(np.mean(r.score(traj)["rollout_r2"])), r.options["refine"]["optimizer"]

    def scipy_ls():
        # dx = x (a - b y), dy = y (-c + d x), from the same rough start as the LV law
        def rollout(p):
            a, b, c, d = p
            f = lambda _, s: [s[0] * (a - b * s[1]), s[1] * (-c + d * s[0])]  # noqa: E731
            sol = solve_ivp(f, (YEARS[0], YEARS[-1]), x[0], t_eval=YEARS, rtol=1e-6)
            return sol.y.T if sol.success else np.full_like(x, 1e6)

        res = least_squares(lambda p: (rollout(p) - x).ravel(), [0.5, 0.03, 0.8, 0.025])
        pred = rollout(res.x)
        return float(np.mean(1 - ((pred - x) ** 2).mean(0) / x.var(0)))

    out = {}
    for label in ("first", "warm"):
        (r2, opt), dt, comp = clock.time(ours)
        out[label] = {
            "seconds": dt,
            "compile": comp,
            "trace": clock.last_trace,
            "rollout_r2": r2,
            "optimizer": opt,
        }
    r2, dt, _ = clock.time(scipy_ls)
    out["alternative"] = {"name": "scipy least_squares", "seconds": dt, "rollout_r2": r2}
    return out


def _circle_run(path: str | None):
    import dynafit

    if path:
        traj = dynafit.load(path)
    else:
        import training
        from training.config import TrainConfig

        traj = training.train(TrainConfig(steps=1000), [0], progress=False)
    if traj.is_batch:
        traj = dynafit.Trajectory(traj.t, traj.x[0], traj.names)
    return traj.window(0, 1000)


def _paper(x):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fit_throughput import paper_baseline

    return paper_baseline(x)


def _compare(clock, circle):
    import dynafit

    traj = _circle_run(circle)
    fams = ("linear", "lotka_volterra", "polynomial")
    out = {"shape": list(traj.x.shape)}
    for label in ("first", "warm"):
        board, dt, comp = clock.time(lambda: dynafit.compare(traj, families=fams))
        out[label] = {
            "seconds": dt,
            "compile": comp,
            "trace": clock.last_trace,
            "board": board[["family", "status", "n_terms", "rollout_r2"]].to_dict("records"),
        }
    (secs, _, r2), dt, _ = clock.time(lambda: _paper(traj.x[None]))
    out["alternative"] = {"name": "Lasso + Euler", "seconds": dt, "rollout_r2": float(r2[0])}
    return out


def _refine29(clock):
    from scipy.integrate import solve_ivp

    import dynafit

    rng = np.random.default_rng(0)
    m = 29
    A = -np.diag(rng.uniform(2e-3, 8e-3, m)) + rng.normal(0, 1e-3, (m, m))
    A -= np.eye(m) * max(0.0, np.linalg.eigvals(A).real.max() + 1e-3)
    b = rng.uniform(0.0, 0.02, m)
    t = np.arange(1001.0)
    sol = solve_ivp(lambda _, x: A @ x + b, (0, 1000), rng.uniform(0.5, 3.0, m), t_eval=t)
    X = sol.y.T + 0.01 * sol.y.T.std(axis=0) * rng.normal(size=(1001, m))
    traj = dynafit.Trajectory(t, X, [f"S{k + 1}" for k in range(m)])
    model = dynafit.fit(traj, "linear", derivative="forward")
    out = {
        "n_terms": int(model.n_terms),
        "start_r2": float(np.mean(model.score(traj)["rollout_r2"])),
    }
    for opt in ("adam", "lm"):
        for label in ("first", "warm"):
            r, dt, comp = clock.time(
                lambda opt=opt: dynafit.refine(model, traj, steps=300, optimizer=opt)
            )
            out[f"{opt}_{label}"] = {
                "seconds": dt,
                "compile": comp,
                "trace": clock.last_trace,
                "rollout_r2": r.options["refine"]["rollout_r2"],
                "steps_run": r.options["refine"]["steps_run"],
            }
    return out


def _fit_many(clock, runs):
    import dynafit

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fit_throughput import synth_circles

    x = synth_circles(runs, 29, 1000, 0)
    traj = dynafit.Trajectory(
        np.arange(1001.0), x, [f"S{k}" for k in range(1, 30)], {"runs": [{}] * runs}
    )
    fams = ["linear", "lotka_volterra", "polynomial"]
    out = {"runs": runs}
    for label in ("first", "warm"):
        _, dt, comp = clock.time(lambda: dynafit.fit_many(traj, fams, equations=False))
        out[label] = {
            "seconds": dt,
            "compile": comp,
            "trace": clock.last_trace,
            "per_run": dt / runs,
        }
    (secs, _, _), dt, _ = clock.time(lambda: _paper(x))
    out["alternative"] = {"name": "Lasso + Euler (linear only)", "seconds": dt}
    return out


def small_systems(n_points: int = 512) -> list:
    """64 small systems (1-4 variables): sparse linear and competitive Lotka-Volterra."""
    from tests import _systems

    out = []
    for seed in range(8):
        for m in (1, 2, 3, 4):
            A, b = _systems.sparse_linear(m, seed)
            t = np.linspace(0.0, 6.0, n_points)
            x0 = np.random.default_rng(seed).normal(0.0, 2.0, (2, m))
            out.append((t, _systems.simulate(lambda x, A=A, b=b: A @ x + b, x0, t)))
            r, a = _systems.competitive_lv(m, seed)
            x0 = np.random.default_rng(seed).uniform(0.1, 1.0, (2, m))
            t = np.linspace(0.0, 8.0, n_points)
            out.append((t, _systems.simulate(lambda x, r=r, a=a: x * (r + a @ x), x0, t)))
    return out


def _small(clock):
    import pysindy as ps

    import dynafit

    systems = small_systems()

    def ours():
        terms = 0
        for t, x in systems:
            terms += dynafit.fit(dynafit.Trajectory(t, x), "polynomial").n_terms
        return terms

    def plain():
        terms = 0
        for t, x in systems:
            model = ps.SINDy(
                optimizer=ps.STLSQ(threshold=0.1), feature_library=ps.PolynomialLibrary(2)
            )
            model.fit(list(x), t=t)
            terms += int(np.count_nonzero(model.coefficients()))
        return terms

    out = {"systems": len(systems)}
    for label in ("first", "warm"):
        terms, dt, comp = clock.time(ours)
        out[label] = {"seconds": dt, "compile": comp, "trace": clock.last_trace, "terms": terms}
    terms, dt, _ = clock.time(plain)
    out["alternative"] = {"name": "pysindy STLSQ(0.1)", "seconds": dt, "terms": terms}
    return out


def worker(case: str, circle: str | None, runs: int) -> dict:
    sys.path.insert(0, str(ROOT))
    clock = _Clock()
    warnings.simplefilter("ignore")
    if case == "lynx":
        return _lynx(clock)
    if case == "compare":
        return _compare(clock, circle)
    if case == "refine29":
        return _refine29(clock)
    if case == "fit_many":
        return _fit_many(clock, runs)
    return _small(clock)


# ----------------------------------------------------------------------------- driver
def _spawn(case: str, cache: str, args) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["DYNAFIT_CACHE_DIR"] = cache
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, __file__, "--worker", case, "--runs", str(args.runs)]
    if args.circle:
        cmd += ["--circle", args.circle]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_seconds"] = time.perf_counter() - t0
    return res


def _du(path: str) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--circle", default=None, help="a trainer's run (.npz) for 'compare'")
    p.add_argument("--runs", type=int, default=16, help="runs for 'fit_many'")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help="write every figure to this file")
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.circle, args.runs), default=float))
        return 0
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        p.error(f"unknown cases {unknown}; choose from {list(CASES)}")
    print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)
    results = collections.OrderedDict()
    for case in cases:
        with tempfile.TemporaryDirectory() as cache:
            cold = _spawn(case, cache, args)
            size = _du(cache)
            warm_cache = _spawn(case, cache, args)
        results[case] = {"cold": cold, "cache_warm": warm_cache, "cache_bytes": size}
        _print(case, results[case])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    print(f"load average at end: {os.getloadavg()}")
    return 0


def _print(case: str, r: dict) -> None:
    cold, cw = r["cold"], r["cache_warm"]
    firsts = [k for k in cold if k.endswith("first")]
    print(f"\n== {case} (persistent cache: {r['cache_bytes'] / 1e6:.1f} MB)")
    for k in firsts:
        warm = k.replace("first", "warm")
        c, w, h = cold[k], cold[warm], cw[k]
        extra = {kk: v for kk, v in c.items() if kk not in ("seconds", "compile", "board")}
        print(
            f"  {k.replace('_first', '') if k != 'first' else 'dynafit'}: cold {c['seconds']:.2f} s "
            f"(compile {c['compile']:.2f}), cache warm {h['seconds']:.2f} s (compile "
            f"{h['compile']:.2f}), warm {w['seconds']:.2f} s (compile {w['compile']:.2f})  {extra}"
        )
    if "alternative" in cold:
        a = cold["alternative"]
        ratio = cold[firsts[0].replace("first", "warm")]["seconds"] / a["seconds"]
        print(f"  alternative {a}: warm ratio {ratio:.1f}x")
    print(
        f"  process wall: cold {cold['process_seconds']:.1f} s, cache warm {cw['process_seconds']:.1f} s"
    )
    if "board" in cold.get("warm", {}):
        for row in cold["warm"]["board"]:
            print(f"    {row}")


if __name__ == "__main__":
    sys.exit(main())
