"""Laws beyond quadratic polynomials (issue 21): dysts flows and textbook cases.

Part 1, the continuous ``dysts`` 0.96 flows whose right-hand sides are NOT quadratic
polynomials (the complement of ``discovery_dysts.py``'s set: every autonomous flow that a
degree-2 least-squares fit at 200 states does not reproduce to 1e-9). Same protocol:
4,000 samples at 100 per period from the system's own initial condition, noise 0 / 1 /
5 % of each variable's std (a fixed seed per system and level). Methods, on the same
data in the same run:

- ``dynafit``: ``dynafit.fit(traj, family="auto")`` (the automatic library choice), no
  other options;
- ``pysindy``: ``SINDy(feature_library=PolynomialLibrary(3) + FourierLibrary(),
  optimizer=STLSQ(0.1))``; ``ps.SINDyPI`` (rational laws) needs cvxpy, which is not
  installed here, so it is not run.

Scores: **exact support** where the true law lies in the method's library (decided per
model: a least-squares fit of the true right-hand side on the model's own library at
200 states near the attractor reproduces it to 1e-9; coefficients below 1e-9 of the
largest are zero), and **short-horizon R^2 > 0.9 over one period** (100 samples) of the
model's integration against the clean data, from the first state (reconstruction) and
from the state of the attractor farthest from it (generalisation). These flows are
chaotic: longer rollouts diverge even under the true law.

Part 2, textbook laws (not chaotic), scored over their whole span from their first
state and from a second initial condition: a damped pendulum, three Kuramoto
oscillators, Michaelis-Menten kinetics (three runs), SIR with saturating incidence
(S and I), Gompertz growth (two runs). Part 3: real data (public), with the chosen law.

    python benchmarks/discovery_beyond_polynomials.py --systems 6 --noise 0,0.01 -v
    python benchmarks/discovery_beyond_polynomials.py --skip-dysts

Needs dysts 0.96 (``pip install -e .[bench]``). Which flows qualify, their trajectories
and noise: ``dysts_protocol.py``, shared with ``discovery_dysts.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dysts_protocol import (  # noqa: E402
    add_noise,
    autonomous_flows,
    dysts_trajectory,
    support_scores,
    true_coefficients,
)

os.environ.setdefault("JAX_PLATFORMS", "cpu")

HORIZON = 100  # one period
GOOD_R2 = 0.9


# ----------------------------------------------------------------------- dysts systems
def beyond_quadratic_systems() -> dict[str, object]:
    """name -> dysts model, for every autonomous continuous flow whose rhs is not a
    quadratic polynomial (and is finite at the test states)."""
    return {name: model for name, (model, coef) in autonomous_flows().items() if coef is None}


# ----------------------------------------------------------------------- methods
class Fitted:
    """What a method returns: rollout(t, x0) -> (len(t), m), library(X) -> (N, n) with
    prefactor-free columns (None when the law is not linear in its coefficients), the
    coefficients (m, n), a label and the seconds taken."""

    def __init__(self, rollout, library, coef, label, seconds):
        self.rollout, self.library, self.coef = rollout, library, coef
        self.label, self.seconds = label, seconds


def fit_dynafit(t, x, names=None) -> Fitted:
    import dynafit

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = dynafit.fit(dynafit.Trajectory(t, x, names), family="auto")
    secs = time.perf_counter() - start
    field = model.field
    library = field.theta_np if field.g_is_one else None

    def rollout(tt, x0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.simulate(tt, x0)

    return Fitted(rollout, library, np.asarray(model.coefficients), model.family.name, secs)


def fit_pysindy(t, x, names=None) -> Fitted:
    import pysindy as ps
    from scipy.integrate import solve_ivp

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = ps.PolynomialLibrary(degree=3) + ps.FourierLibrary()
        model = ps.SINDy(feature_library=lib, optimizer=ps.STLSQ(0.1))
        if x.ndim == 3:
            model.fit(list(x), t=t)
        else:
            model.fit(x, t=t)
    secs = time.perf_counter() - start
    coef = np.asarray(model.coefficients())

    def rollout(tt, x0):
        def f(_, s):
            return model.predict(s[None])[0]

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                sol = solve_ivp(f, (tt[0], tt[-1]), x0, t_eval=tt, rtol=1e-8, atol=1e-10)
            except Exception:  # noqa: BLE001  (a blown-up rollout is a failure)
                return np.full((len(tt), len(x0)), np.inf)
        out = np.full((len(tt), len(x0)), np.inf)
        if sol.y.size:
            out[: sol.y.shape[1]] = sol.y.T
        return out

    def library(X):
        return np.asarray(model.feature_library.transform(X))

    return Fitted(rollout, library, coef, "poly3+fourier", secs)


METHODS = {"dynafit": fit_dynafit, "pysindy": fit_pysindy}


# ----------------------------------------------------------------------- scores
def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        num = np.sum((y - yhat) ** 2, axis=0)
        den = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
        per = 1.0 - num / np.where(den > 0, den, 1.0)
    out = float(np.mean(per))
    return out if np.isfinite(out) else -np.inf


def exact_support(fitted: Fitted, rhs, X: np.ndarray) -> bool | None:
    """Whether the model's support is the true law's in the model's own library; None
    when the true law is not in that library (or the library is not linear)."""
    if fitted.library is None:
        return None
    with np.errstate(all="ignore"):
        theta = fitted.library(X)
        f = np.array([rhs(s) for s in X], dtype=float)
    true = true_coefficients(theta, f)
    return None if true is None else support_scores(fitted.coef, true)[0]


def far_start(x: np.ndarray, horizon: int) -> int:
    """Index of the state farthest from x[0] that leaves ``horizon`` samples after it."""
    d = np.linalg.norm((x[: len(x) - horizon] - x[0]) / x.std(axis=0), axis=1)
    return int(np.argmax(d))


def run_dysts(systems, levels, methods, data_dir, verbose) -> dict:
    results = {}
    for level in levels:
        for method in methods:
            rows = []
            for name, model in systems.items():
                t, x = dysts_trajectory(name, data_dir)
                xn = add_noise(x, level, name)
                rng = np.random.default_rng(1)
                X = x[rng.integers(0, len(x), 200)] + 0.05 * x.std(0) * rng.normal(
                    size=(200, x.shape[1])
                )
                try:
                    fitted = METHODS[method](t, xn)
                except Exception as err:  # noqa: BLE001  (a method failing is a result)
                    rows.append((name, None, -np.inf, -np.inf, 0.0, f"failed: {err}"[:60]))
                    continue
                exact = exact_support(fitted, lambda s, mo=model: mo.rhs(s, 0.0), X)
                rec = r2(x[:HORIZON], fitted.rollout(t[:HORIZON], x[0]))
                j = far_start(x, HORIZON)
                gen = r2(x[j : j + HORIZON], fitted.rollout(t[j : j + HORIZON], x[j]))
                rows.append((name, exact, rec, gen, fitted.seconds, fitted.label))
                if verbose:
                    print(
                        f"  {method:8s} {level:5.2f} {name:22s} exact={exact} "
                        f"rec={rec:7.3f} gen={gen:7.3f} {fitted.seconds:6.1f}s {fitted.label}",
                        flush=True,
                    )
            results[(level, method)] = rows
    return results


def print_table(title: str, results: dict, n: int) -> None:
    print(f"\n{title}: {n} systems")
    print(
        f"{'noise':>6} {'method':8} {'exact':>9} {'truth in lib':>12} "
        f"{'rec R2>0.9':>10} {'gen R2>0.9':>10} {'s/system':>9}"
    )
    for (level, method), rows in results.items():
        known = [r for r in rows if r[1] is not None]
        exact = sum(bool(r[1]) for r in known)
        rec = sum(r[2] > GOOD_R2 for r in rows)
        gen = sum(r[3] > GOOD_R2 for r in rows)
        secs = np.mean([r[4] for r in rows])
        print(
            f"{level * 100:5.0f}% {method:8} {exact:>4}/{len(known):<4} {len(known):>12} "
            f"{rec:>4}/{len(rows):<5} {gen:>4}/{len(rows):<5} {secs:9.1f}"
        )


# ----------------------------------------------------------------------- textbook laws
def _solve(f, t, x0s):
    from scipy.integrate import solve_ivp

    return np.stack(
        [solve_ivp(f, (t[0], t[-1]), x0, t_eval=t, rtol=1e-11, atol=1e-12).y.T for x0 in x0s]
    )


def textbook() -> dict[str, tuple]:
    """name -> (rhs(state) -> dstate, t, fitting initial states, second initial state, names)."""
    w = np.array([1.0, 1.5, 2.2])
    return {
        "pendulum": (
            lambda s: np.array([s[1], -2.0 * np.sin(s[0]) - 0.2 * s[1]]),
            np.linspace(0, 20, 1001), [[2.0, 0.0]], [1.0, 1.5], ["th", "om"],
        ),
        "kuramoto": (
            lambda s: w + 0.2 * np.sin(s[None, :] - s[:, None]).sum(1),
            np.linspace(0, 20, 1001), [[0.0, 1.0, 2.0]], [2.0, 0.5, -1.0], ["a", "b", "c"],
        ),
        "michaelis_menten": (
            lambda s: np.array([-1.5 * s[0] / (0.5 + s[0])]),
            np.linspace(0, 4, 201), [[4.0], [2.0], [1.0]], [3.0], ["S"],
        ),
        "sir_saturating": (
            lambda s: np.array(
                [-0.5 * s[0] * s[1] / (1 + 2.0 * s[1]),
                 0.5 * s[0] * s[1] / (1 + 2.0 * s[1]) - 0.1 * s[1]]
            ),
            np.linspace(0, 60, 601), [[0.99, 0.01], [0.9, 0.1]], [0.7, 0.05], ["S", "I"],
        ),
        "gompertz": (
            lambda s: np.array([0.5 * s[0] * np.log(10.0 / s[0])]),
            np.linspace(0, 10, 401), [[0.5], [2.0]], [5.0], ["N"],
        ),
    }  # fmt: skip


def run_textbook(levels, methods, verbose) -> dict:
    results = {}
    for level in levels:
        for method in methods:
            rows = []
            for name, (rhs, t, x0s, x0_new, names) in textbook().items():
                x = _solve(lambda _, s, f=rhs: f(s), t, x0s)
                xn = add_noise(x, level, name)
                data = xn if len(x0s) > 1 else xn[0]
                X = x.reshape(-1, x.shape[-1])
                X = X[np.random.default_rng(1).integers(0, len(X), 200)]
                try:
                    fitted = METHODS[method](t, data, names)
                except Exception as err:  # noqa: BLE001
                    rows.append((name, None, -np.inf, -np.inf, 0.0, f"failed: {err}"[:60]))
                    continue
                exact = exact_support(fitted, rhs, X)
                rec = np.mean([r2(xr, fitted.rollout(t, xr[0])) for xr in x])
                truth_new = _solve(lambda _, s, f=rhs: f(s), t, [x0_new])[0]
                gen = r2(truth_new, fitted.rollout(t, truth_new[0]))
                rows.append((name, exact, rec, gen, fitted.seconds, fitted.label))
                if verbose:
                    print(
                        f"  {method:8s} {level:5.2f} {name:18s} exact={exact} rec={rec:7.3f} "
                        f"gen={gen:7.3f} {fitted.seconds:6.1f}s {fitted.label}",
                        flush=True,
                    )
            results[(level, method)] = rows
    return results


# ----------------------------------------------------------------------- real data
def real_data() -> None:
    """Public data, fitted with family="auto"."""
    from discovery_dysts import HARE, LYNX, YEARS

    import dynafit

    traj = dynafit.Trajectory(YEARS, np.stack([HARE, LYNX], axis=1), ["hare", "lynx"])
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = dynafit.fit(traj, family="auto")
    secs = time.perf_counter() - start
    board = model.options["auto_choice"]["board"]
    print(
        "\nreal data: Hudson's Bay Company lynx and hare pelts 1900-1920 (Odum 1953, from "
        f"MacLulich 1937), family='auto' ({secs:.1f} s)"
    )
    for r in board:
        print(
            f"  {r['family']:15s} {str(r['status'])[:40]:40s} n_terms={r.get('n_terms')} "
            f"rollout_r2={r.get('rollout_r2')} general_r2={r.get('general_r2')}"
        )
    print(f"  chosen: {model.family.name}")
    for line in str(model).splitlines():
        print(f"    {line}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--systems", type=int, default=None, help="first N qualifying systems only")
    p.add_argument("--only", default=None, help="comma-separated system names")
    p.add_argument("--noise", default="0,0.01,0.05", help="comma-separated noise levels")
    p.add_argument("--methods", default="dynafit,pysindy")
    p.add_argument("--data", default=os.environ.get("DYNAFIT_DATA", "/work/data") + "/dysts")
    p.add_argument("--skip-dysts", action="store_true")
    p.add_argument("--skip-textbook", action="store_true")
    p.add_argument("--skip-real", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per system")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    levels = [float(v) for v in args.noise.split(",")]
    methods = args.methods.split(",")
    if not args.skip_textbook:
        res = run_textbook(levels, methods, args.verbose)
        print_table("textbook laws (whole span; rec: own start, gen: a second start)", res, 5)
    if not args.skip_dysts:
        systems = beyond_quadratic_systems()
        print(f"\n{len(systems)} non-quadratic autonomous dysts flows", flush=True)
        if args.only:
            keep = set(args.only.split(","))
            systems = {k: v for k, v in systems.items() if k in keep}
        if args.systems is not None:
            systems = dict(list(systems.items())[: args.systems])
        res = run_dysts(systems, levels, methods, Path(args.data), args.verbose)
        print_table("dysts non-quadratic flows (one period, 100 samples)", res, len(systems))
    if not args.skip_real:
        real_data()
    return 0


if __name__ == "__main__":
    sys.exit(main())
