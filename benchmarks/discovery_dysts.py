"""Equation discovery on systems nobody tuned dynafit for (issue 13).

The protocol: the chaotic flows of ``dysts`` 0.96 whose right-hand sides are quadratic
polynomials, 4,000 samples at 100 per period from each system's own initial condition,
``dynafit.fit(traj, family="polynomial")`` with no options, clean and with noise
(``level x each variable's std x N(0, 1)``, a fixed seed per system and level). Beside
it, in the same run and on the same data, plain pysindy:
``SINDy(feature_library=PolynomialLibrary(2), optimizer=STLSQ(0.1))``. Printed per
method and noise level: the number of systems whose support (which coefficients are
non-zero) is recovered exactly, the mean support F1, the median relative coefficient
error ||Xi - Xi_true||_F / ||Xi_true||_F, and seconds per system. Then the lynx-hare case
(Hudson's Bay Company pelts 1900-1920, Lotka-Volterra family, fit then refine) and a
Lorenz noise sweep (dt 0.002, t in 0..10, x0 (-8, 8, 27)).

Which systems qualify (decided by ``dysts_protocol.py``, not from a list, shared with
``discovery_beyond_polynomials.py``): every flow of
``dysts.systems.get_attractor_list()`` whose ``rhs`` is autonomous (the same at two
times) and is reproduced to within 1e-9 (relative, max norm) by a least-squares fit on
all monomials of degree <= 2 at 200 random states around its initial condition. That
fit's coefficients, with |c| < 1e-9 max |c| set to zero, are the true equations. On
dysts 0.96 this gives 67 systems.

    python benchmarks/discovery_dysts.py                      # everything
    python benchmarks/discovery_dysts.py --systems 10 --noise 0.01
    python benchmarks/discovery_dysts.py --skip-dysts          # lynx-hare and Lorenz only

Trajectories are cached under ``--data`` (default /work/data/dysts, or $DYNAFIT_DATA).
Needs the ``bench`` extra (``pip install -e .[bench]``: dysts).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from dysts_protocol import (
    N_SAMPLES,
    PTS_PER_PERIOD,
    add_noise,
    autonomous_flows,
    dysts_trajectory,
    support_scores,
)

os.environ.setdefault("JAX_PLATFORMS", "cpu")

LORENZ_X0 = (-8.0, 8.0, 27.0)

#: Hudson's Bay Company pelts (thousands), 1900-1920, as tabulated by Odum (1953) from
#: MacLulich (1937) and used in countless textbook fits of the Lotka-Volterra model
YEARS = np.arange(1900, 1921, dtype=float)
HARE = [30, 47.2, 70.2, 77.4, 36.3, 20.6, 18.1, 21.4, 22, 25.4, 27.1, 40.3, 57, 76.6, 52.3, 19.5]
HARE += [11.2, 7.6, 14.6, 16.2, 24.7]
LYNX = [4, 6.1, 9.8, 35.2, 59.4, 41.7, 19, 13, 8.3, 9.1, 7.4, 8, 12.3, 19.5, 45.7, 51.1, 29.7]
LYNX += [15.8, 9.7, 10.1, 8.6]


# ----------------------------------------------------------------------- systems and data
def quadratic_systems() -> dict[str, np.ndarray]:
    """name -> true coefficients (d, n_lib) on sklearn's degree-2 monomial order
    (1, x0, .., x0^2, x0 x1, ..), for every quadratic autonomous dysts flow."""
    return {name: coef for name, (_, coef) in autonomous_flows().items() if coef is not None}


# ----------------------------------------------------------------------- methods
def fit_dynafit(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, dict]:
    import dynafit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = dynafit.fit(dynafit.Trajectory(t, x), family="polynomial")
    return _reorder(model), model.options


def _reorder(model) -> np.ndarray:
    """The model's coefficients on sklearn's monomial order (checked by exponents)."""
    import sympy
    from sklearn.preprocessing import PolynomialFeatures

    syms = sympy.symbols(list(model.names))
    d = len(syms)
    powers = PolynomialFeatures(2).fit(np.zeros((1, d))).powers_
    index = {tuple(p): j for j, p in enumerate(powers.tolist())}
    out = np.zeros((d, len(powers)))
    for k, term in enumerate(model.terms):
        exps = tuple(int(sympy.degree(term, s)) for s in syms)
        out[:, index[exps]] = model.coefficients[:, k]
    return out


def fit_pysindy(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, dict]:
    import pysindy as ps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ps.SINDy(feature_library=ps.PolynomialLibrary(degree=2), optimizer=ps.STLSQ(0.1))
        model.fit(x, t=t)
    return np.asarray(model.coefficients()), {}


METHODS = {"dynafit": fit_dynafit, "pysindy": fit_pysindy}


# ----------------------------------------------------------------------- the three parts
def run_dysts(systems: dict, levels, methods, data_dir: Path, verbose: bool) -> dict:
    results = {}
    for level in levels:
        for method in methods:
            rows = []
            for name, true in systems.items():
                t, x = dysts_trajectory(name, data_dir)
                xn = add_noise(x, level, name)
                start = time.perf_counter()
                coef, opts = METHODS[method](t, xn)
                secs = time.perf_counter() - start
                exact, f1, err = support_scores(coef, true)
                rows.append((name, exact, f1, err, secs))
                if verbose:
                    extra = f" {opts.get('regression', '')}" if opts else ""
                    print(
                        f"  {method:8s} {level:5.2f} {name:20s} exact={int(exact)} f1={f1:.3f} "
                        f"err={err:.2e} nnz={np.count_nonzero(coef)}/{np.count_nonzero(true)} "
                        f"{secs:.2f}s{extra}",
                        flush=True,
                    )
            results[(level, method)] = rows
    return results


def print_dysts(results: dict, n: int) -> None:
    print(f"\ndysts quadratic flows: {n} systems, {N_SAMPLES} samples at {PTS_PER_PERIOD}/period")
    print(
        f"{'noise':>6} {'method':8} {'exact':>7} {'mean F1':>8} {'med coef err':>13} {'s/system':>9}"
    )
    for (level, method), rows in results.items():
        exact = sum(r[1] for r in rows)
        f1 = np.mean([r[2] for r in rows])
        err = np.median([r[3] for r in rows])
        secs = np.mean([r[4] for r in rows])
        print(
            f"{level * 100:5.0f}% {method:8} {exact:>3}/{len(rows):<3} {f1:8.3f} {err:13.2e} "
            f"{secs:9.2f}"
        )


def lynx_hare() -> None:
    import dynafit

    traj = dynafit.Trajectory(YEARS, np.stack([HARE, LYNX], axis=1), ["hare", "lynx"])
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = dynafit.fit(traj, family="lotka_volterra")
        fit_s = time.perf_counter() - start
        refined = dynafit.refine(model, traj)
        board = dynafit.compare(traj, ("linear", "lotka_volterra", "polynomial"), refine=True)
    total = time.perf_counter() - start
    print("\nlynx-hare 1900-1920 (21 yearly points), family lotka_volterra")
    for label, m in (("fit", model), ("refine", refined)):
        sc = m.score(traj)
        print(
            f"  {label:7s} n_terms={m.n_terms} rollout_r2={float(sc['rollout_r2']):.3f} "
            f"signs={_lv_signs(m)}  {m.options.get('regression', '')}"
        )
        for eq in m.equations():
            print(f"      {eq}")
    print(f"  fit {fit_s:.1f} s; fit + refine + compare(refine=True) {total:.1f} s")
    cols = ["rank", "family", "variant", "n_terms", "rollout_r2", "bic"]
    print(board[cols].to_string(index=False))


def _lv_signs(model) -> str:
    """'+r -a*lynx | -c +d*hare' style: the sign of each per-capita coefficient."""
    terms = [str(t) for t in model.terms]
    parts = []
    for row in model.coefficients:
        parts.append(
            " ".join(f"{'+' if c > 0 else '-'}{terms[k]}" for k, c in enumerate(row) if c != 0)
            or "0"
        )
    return " | ".join(parts)


def lorenz_sweep(levels=(0.0, 0.01, 0.05, 0.10)) -> None:
    from scipy.integrate import solve_ivp

    def f(_, s, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
        x, y, z = s
        return [sigma * (y - x), x * (rho - z) - y, x * y - beta * z]

    t = np.arange(0.0, 10.0 + 1e-9, 0.002)
    x = solve_ivp(f, (0, 10), LORENZ_X0, t_eval=t, method="LSODA", rtol=1e-12, atol=1e-12).y.T
    true = np.zeros((3, 10))
    true[0, [1, 2]] = [-10, 10]
    true[1, [1, 2, 6]] = [28, -1, -1]
    true[2, [3, 5]] = [-8 / 3, 1]
    print("\nLorenz (dt 0.002, t 0..10, x0 (-8, 8, 27)), polynomial family, defaults")
    print(f"{'noise':>6} {'method':8} {'exact':>6} {'F1':>6} {'terms':>6} {'coef err':>9} {'s':>6}")
    for level in levels:
        xn = add_noise(x, level, "Lorenz-sweep")
        for method in METHODS:
            start = time.perf_counter()
            coef, opts = METHODS[method](t, xn)
            secs = time.perf_counter() - start
            exact, f1, err = support_scores(coef, true)
            print(
                f"{level * 100:5.0f}% {method:8} {int(exact):>6} {f1:6.3f} "
                f"{np.count_nonzero(coef):>6} {err:9.2e} {secs:6.2f} {opts.get('regression', '')}"
            )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--systems", type=int, default=None, help="first N qualifying systems only")
    p.add_argument("--only", default=None, help="comma-separated system names")
    p.add_argument("--noise", default="0,0.01,0.05", help="comma-separated noise levels")
    p.add_argument("--methods", default="dynafit,pysindy")
    p.add_argument("--data", default=os.environ.get("DYNAFIT_DATA", "/work/data") + "/dysts")
    p.add_argument("--skip-dysts", action="store_true")
    p.add_argument("--skip-lynx", action="store_true")
    p.add_argument("--skip-lorenz", action="store_true")
    p.add_argument("--generate", action="store_true", help="only cache the trajectories")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per system")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message="Numba not installed")
    if not args.skip_dysts:
        systems = quadratic_systems()
        print(f"{len(systems)} quadratic autonomous dysts flows", flush=True)
        if args.only:
            keep = set(args.only.split(","))
            systems = {k: v for k, v in systems.items() if k in keep}
        if args.systems is not None:
            systems = dict(list(systems.items())[: args.systems])
        data_dir = Path(args.data)
        if args.generate:
            for name in systems:
                start = time.perf_counter()
                dysts_trajectory(name, data_dir)
                print(f"  {name} {time.perf_counter() - start:.1f} s", flush=True)
            return 0
        levels = [float(v) for v in args.noise.split(",")]
        methods = args.methods.split(",")
        results = run_dysts(systems, levels, methods, data_dir, args.verbose)
        print_dysts(results, len(systems))
    if not args.skip_lynx:
        lynx_hare()
    if not args.skip_lorenz:
        lorenz_sweep()
    return 0


if __name__ == "__main__":
    sys.exit(main())
