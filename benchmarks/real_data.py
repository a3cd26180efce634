"""Public real data of different kinds (issue 22): the law dynafit chooses, its signs and
rollout R^2, against a scipy trajectory-matching fit of the textbook model.

Data (CSV under ``benchmarks/data/``, each citing its source in its header):

- competition: Gause (1934), Paramecium caudatum and P. aurelia grown together (23 days);
  textbook model: competitive Lotka-Volterra, x_i' = x_i (r_i + a_i1 x_1 + a_i2 x_2);
- predator-prey: Hudson's Bay Company lynx and hare pelts 1900-1920 (21 years);
  textbook model: Lotka-Volterra, H' = H (a - b L), L' = L (-c + d H);
- epidemic: influenza in an English boarding school, 1978 (14 days, 763 boys; boys in bed
  B and convalescent C); textbook model: S' = -beta S B / N, B' = beta S B / N - g1 B,
  C' = g1 B - g2 C with S(0) = N - B(0), S unobserved (Keeling & Rohani's SIR with a
  convalescent stage). dynafit sees only B and C (family "polynomial").

The scipy fit: ``least_squares`` on the rollout (``solve_ivp``, LSODA) over the model's
rates and the initial state, residuals scaled by each variable's standard deviation.
Rollout R^2: scikit-learn's uniform average over variables, the model integrated from
its own initial state (dynafit: the first observation, or the fitted one when the choice
fitted it).

    python benchmarks/real_data.py
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp
from scipy.optimize import least_squares

os.environ.setdefault("JAX_PLATFORMS", "cpu")

DATA = Path(__file__).resolve().parent / "data"
#: boys at risk in the 1978 boarding-school outbreak
N_SCHOOL = 763.0


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    if not np.all(np.isfinite(yhat)) or yhat.shape != y.shape:
        return -np.inf
    sst = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - ((y - yhat) ** 2).sum(axis=0) / sst))


def trajectory_fit(rhs, p0, x0, t, y, observe=lambda z: z):
    """scipy least squares of ``observe(rollout)`` against ``y`` over rates and x0."""
    sd = y.std(axis=0)
    n = len(p0)

    bound = 100.0 * np.abs(y).max()

    def blowup(_, z):  # a trial rate that blows the state up ends the rollout
        return bound - np.abs(z).max()

    blowup.terminal = True

    def sim(q):
        sol = solve_ivp(
            lambda _, z: rhs(z, q[:n]),
            (t[0], t[-1]),
            q[n:],
            t_eval=t,
            method="LSODA",
            rtol=1e-8,
            atol=1e-10,
            events=blowup,
        )
        if not sol.success or sol.y.shape[1] != t.size:
            return None
        return observe(sol.y.T)

    def res(q):
        z = sim(q)
        return np.full(y.size, 1e3) if z is None else ((y - z) / sd).ravel()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = least_squares(res, np.r_[p0, x0], method="trf", max_nfev=1000)
    return sol.x[:n], sol.x[n:], r2(y, sim(sol.x))


def lv_rhs(z, q):
    m = z.size
    r, a = q[:m], q[m:].reshape(m, m)
    return z * (r + a @ z)


def pp_rhs(z, q):
    a, b, c, d = q
    return np.array([z[0] * (a - b * z[1]), z[1] * (-c + d * z[0])])


def sirc_rhs(z, q):
    beta, g1, g2 = q
    S, B, C = z
    inf = beta * S * B / N_SCHOOL
    return np.array([-inf, inf - g1 * B, g1 * B - g2 * C])


#: the textbook models: right-hand side, starting rates (several starts: the best rollout
#: fit is kept), the state's start from the first observation, what is observed, and how
#: the fitted rates print
TEXTBOOK = {
    "lv": (
        lv_rhs,
        [np.r_[1.0, 0.8, a, a, a, a] for a in (-0.002, -0.005, -0.01, -0.02)],
        lambda y0: y0,
        lambda z: z,
        lambda q: f"r={np.round(q[:2], 3).tolist()}, a={np.round(q[2:].reshape(2, 2), 4).tolist()}",
    ),
    "pp": (
        pp_rhs,
        [np.r_[0.5, 0.02, 0.8, 0.02]],
        lambda y0: y0,
        lambda z: z,
        lambda q: f"a={q[0]:.3f}, b={q[1]:.4f}, c={q[2]:.3f}, d={q[3]:.4f}",
    ),
    "sir": (
        sirc_rhs,
        [np.r_[1.7, 0.5, 0.5]],
        lambda y0: np.r_[N_SCHOOL - y0[0], y0],
        lambda z: z[:, 1:],
        lambda q: f"beta={q[0]:.3f}, g1={q[1]:.3f}, g2={q[2]:.3f}",
    ),
}


def fit_textbook(kind: str, t: np.ndarray, y: np.ndarray) -> tuple[str, float]:
    """The textbook model ``kind`` fitted by scipy trajectory matching from each of its
    starts; the fitted law (printed) and rollout R^2 of the best."""
    rhs, starts, state0, observe, law = TEXTBOOK[kind]
    fits = [trajectory_fit(rhs, p0, state0(y[0]), t, y, observe) for p0 in starts]
    q, _, s_r2 = max(fits, key=lambda f: f[2])
    return law(q), s_r2


def load_cases() -> list[tuple[str, np.ndarray, np.ndarray, str, str, list[str]]]:
    """(name, t, y, dynafit family, textbook model, variable names) of each data set."""
    spec = [
        (
            "competition (Gause 1934, Paramecium)",
            "gause_paramecium_mixture.csv",
            "day",
            ["caudatum", "aurelia"],
            "lotka_volterra",
            "lv",
        ),
        (
            "predator-prey (lynx-hare 1900-1920)",
            "lynx_hare_1900_1920.csv",
            "year",
            ["hare", "lynx"],
            "lotka_volterra",
            "pp",
        ),
        (
            "epidemic (boarding school 1978)",
            "boarding_school_influenza_1978.csv",
            "day",
            ["in_bed", "convalescent"],
            "polynomial",
            "sir",
        ),
    ]
    cases = []
    for name, file, time_col, cols, family, textbook in spec:
        df = pd.read_csv(DATA / file, comment="#")
        y = df[cols].to_numpy(float)
        names = ["B", "C"] if textbook == "sir" else cols
        cases.append((name, df[time_col].to_numpy(float), y, family, textbook, names))
    return cases


def main() -> None:
    import dynafit

    rows = []
    for name, t, y, family, textbook, names in load_cases():
        traj = dynafit.Trajectory(t, y, names)
        t0 = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = dynafit.fit(traj, family=family)
        secs = time.time() - t0
        print(f"{name}: dynafit {secs:.1f} s", flush=True)
        choice = model.options.get("choice", {})
        x0 = np.asarray(choice.get("initial_state", [y[0]]), dtype=float)[0]
        d_r2 = r2(y, model.simulate(t, x0))
        t0 = time.time()
        law, s_r2 = fit_textbook(textbook, t, y)
        s_secs = time.time() - t0
        eqs = "; ".join(str(e) for e in model.equations())
        signs = np.sign(model.coefficients).astype(int).tolist()
        rows.append(
            {
                "data": name,
                "family": family,
                "n": len(t),
                "dynafit law": eqs,
                "signs": signs,
                "dynafit R2": round(d_r2, 3),
                "runner-up": choice.get("runner_up"),
                "evidence ratio": None
                if choice.get("evidence_ratio") is None
                else round(choice["evidence_ratio"], 1),
                "close": choice.get("close"),
                "x0 fitted": "initial_state" in choice,
                "dynafit s": round(secs, 1),
                "textbook (scipy)": law,
                "textbook R2": round(s_r2, 3),
                "scipy s": round(s_secs, 2),
            }
        )
        print(rows[-1], flush=True)
    print(pd.DataFrame(rows).drop(columns=["dynafit law"]).to_string(index=False))
    for r in rows:
        print(f"- {r['data']}: {r['dynafit law']}")


if __name__ == "__main__":
    main()
