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

Which systems qualify (decided here, not from a list): every flow of
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
import zlib
from pathlib import Path

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")

N_SAMPLES = 4000
PTS_PER_PERIOD = 100
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
    import dysts.flows as flows
    from dysts.systems import get_attractor_list

    out = {}
    for name in get_attractor_list():
        coef = quadratic_coef(getattr(flows, name)())
        if coef is not None:
            out[name] = coef
    return out


def quadratic_coef(model) -> np.ndarray | None:
    """A dysts flow's right-hand side as coefficients (d, n_lib) on the degree-2
    monomials, or None when it is not an autonomous quadratic polynomial (least squares
    on 200 states around its initial condition, checked to 1e-9)."""
    from sklearn.preprocessing import PolynomialFeatures

    if not hasattr(model, "rhs"):  # delay equations
        return None
    ic = np.asarray(model.ic, dtype=float)
    X = ic + np.random.default_rng(0).normal(size=(200, ic.size)) * (np.abs(ic) + 1)
    with np.errstate(all="ignore"):
        f0 = np.array([model.rhs(x, 0.0) for x in X], dtype=float)
        f1 = np.array([model.rhs(x, 1.2345) for x in X], dtype=float)
    if not np.all(np.isfinite(f0)) or not np.allclose(f0, f1, rtol=1e-12, atol=1e-12):
        return None
    P = PolynomialFeatures(2).fit_transform(X)
    coef = np.linalg.lstsq(P, f0, rcond=None)[0].T  # (d, n_lib)
    if np.abs(coef @ P.T - f0.T).max() > 1e-9 * np.abs(f0).max():
        return None
    coef[np.abs(coef) < 1e-9 * np.abs(coef).max()] = 0.0
    return coef


def dysts_trajectory(name: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(t, x) of ``name``: 4,000 samples at 100 per period from its own initial condition
    (no post-processing; dysts' ``make_trajectory`` with DOP853 at rtol = atol = 1e-10
    instead of its default Radau at 1e-12, which without numba takes minutes per
    system); cached as .npz."""
    path = data_dir / f"{name}_n{N_SAMPLES}_ppp{PTS_PER_PERIOD}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            return f["t"], f["x"]
    import dysts.flows as flows

    model = getattr(flows, name)()
    t, x = model.make_trajectory(
        N_SAMPLES, pts_per_period=PTS_PER_PERIOD, resample=True, return_times=True,
        postprocess=False, method="DOP853", rtol=1e-10, atol=1e-10,
    )  # fmt: skip
    t, x = np.asarray(t, dtype=float), np.asarray(x, dtype=float)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, t=t, x=x)
    tmp.replace(path)
    return t, x


def add_noise(x: np.ndarray, level: float, key: str) -> np.ndarray:
    if level == 0:
        return x
    seed = zlib.crc32(f"{key}:{level}".encode())
    return x + level * x.std(axis=0) * np.random.default_rng(seed).standard_normal(x.shape)


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


def support_scores(coef: np.ndarray, true: np.ndarray) -> tuple[bool, float, float]:
    """(exact support, support F1, relative coefficient error)."""
    est, tru = coef != 0, true != 0
    tp = int(np.sum(est & tru))
    f1 = 2 * tp / (est.sum() + tru.sum()) if est.sum() + tru.sum() else 1.0
    err = float(np.linalg.norm(coef - true) / np.linalg.norm(true))
    return bool(np.array_equal(est, tru)), float(f1), err


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
        board = dynafit.compare(traj, refine=True)
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
