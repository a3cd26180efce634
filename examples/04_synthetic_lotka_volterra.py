# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 Equation discovery on a system with known equations
#
# A competitive Lotka-Volterra system of three species,
# dx_i/dt = x_i (r_i + sum_j a_ij x_j), with some interactions absent. We simulate
# it from several initial states, add noise, and ask dynafit which family and which
# terms generated the data, and how sure it is (an ensemble of fits).

# %%
import os

# The one switch: "small" runs in about a minute on 2 CPU cores (what the tests run);
# "full" is the paper's scale and wants a GPU. Or set DYNAFIT_NOTEBOOK_SCALE=full.
SCALE = os.environ.get("DYNAFIT_NOTEBOOK_SCALE", "small")
assert SCALE in ("small", "full"), SCALE

# %%
if SCALE == "full":
    SETTINGS = dict(n_initial=24, n_times=400, noise_levels=(0.0, 0.01, 0.02, 0.05), n_boot=200)
else:
    SETTINGS = dict(n_initial=6, n_times=200, noise_levels=(0.0, 0.01, 0.05), n_boot=10)
SETTINGS

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

import dynafit

NAMES = ["x", "y", "z"]
r = np.array([1.0, 0.8, 1.2])
a = np.array([[-1.0, -0.6, 0.0], [0.0, -1.0, -0.5], [-0.4, 0.0, -1.0]])


def true_rhs(t, x):
    return x * (r + a @ x)


rng = np.random.default_rng(0)
t = np.linspace(0.0, 10.0, SETTINGS["n_times"])
x0s = rng.uniform(0.1, 1.5, size=(SETTINGS["n_initial"], 3))
clean = np.stack(
    [solve_ivp(true_rhs, (t[0], t[-1]), x0, t_eval=t, rtol=1e-10, atol=1e-12).y.T for x0 in x0s]
)


def noisy(level, seed=1):
    noise = np.random.default_rng(seed).standard_normal(clean.shape)
    scale = clean.reshape(-1, 3).std(axis=0)
    return np.clip(clean + level * scale * noise, 1e-6, None)  # abundances stay positive


truth = pd.DataFrame(np.column_stack([r, a]), index=NAMES, columns=["1", *NAMES])
truth

# %% [markdown]
# ## Which family generated the data?
#
# All runs pooled into one fit per family (1 % noise); the leaderboard ranks by BIC
# and prefers the smaller library among equally good fits.

# %%
data = dynafit.Trajectory(t, noisy(0.01), NAMES)
board = dynafit.compare(data, families=("linear", "lotka_volterra", "polynomial"))
board[["family", "variant", "status", "n_terms", "deriv_r2", "rollout_r2", "bic"]]

# %%
lv = board.set_index("family").loc["lotka_volterra", "model"]
for eq in lv.equations(digits=3):
    print(eq)


# %% [markdown]
# ## What is recovered at each noise level
#
# The Lotka-Volterra fit's per-capita coefficients (r_i and a_ij) against the truth:
# the support (which terms are non-zero) and the largest relative error.


# %%
def per_capita(model):
    coef = pd.DataFrame(model.coefficients, index=NAMES, columns=[str(s) for s in model.terms])
    return coef.reindex(columns=["1", *NAMES]).fillna(0.0)


rows = []
for level in SETTINGS["noise_levels"]:
    m = dynafit.fit(dynafit.Trajectory(t, noisy(level), NAMES), family="lotka_volterra")
    est = per_capita(m)
    support_ok = ((est.to_numpy() != 0) == (truth.to_numpy() != 0)).all()
    nz = truth.to_numpy() != 0
    rel = np.abs(est.to_numpy()[nz] - truth.to_numpy()[nz]) / np.abs(truth.to_numpy()[nz])
    rows.append(
        {
            "noise": level,
            "support recovered": bool(support_ok),
            "n_terms": m.n_terms,
            "max relative error": rel.max(),
        }
    )
pd.DataFrame(rows)

# %% [markdown]
# ## How sure is it? An ensemble of fits
#
# `dynafit.fit_ensemble` refits the model on bootstrap resamples of the time samples
# (5 % noise here): each coefficient gets a median, a 90 % interval and an inclusion
# probability (how often it is non-zero). `equations_with_intervals()` prints them.

# %%
level = SETTINGS["noise_levels"][-1]
noisy_data = dynafit.Trajectory(t, noisy(level), NAMES)
ens = dynafit.fit_ensemble(noisy_data, family="lotka_volterra", n_models=SETTINGS["n_boot"])
for line in ens.equations_with_intervals():
    print(line)

# %%
unc = ens.uncertainty
cols = [str(s) for s in ens.terms]
summary = pd.DataFrame(
    {
        "true": truth.reindex(columns=cols).to_numpy().ravel(),
        "median": unc["median"].ravel(),
        "lower": unc["lower"].ravel(),
        "upper": unc["upper"].ravel(),
        "inclusion": unc["inclusion"].ravel(),
    },
    index=[f"d{i}/dt / {i}: {c}" for i in NAMES for c in cols],
)
summary.round(3)

# %%
fig = dynafit.plot_inclusion(ens)
plt.show()

# %% [markdown]
# Read the intervals with care: resampling measures how much the fit varies
# with the data, not how biased it is. Noise in the states biases the estimated
# derivatives, so at high noise an interval can miss the true value while the
# support (which terms are in) is still recovered with inclusion 1 or 0.

# %% [markdown]
# ## Rollout of the recovered model against the data

# %%
sim = lv.simulate(t, data.x[0, 0])
fig, ax = plt.subplots(figsize=(6, 3.4))
for i, n in enumerate(NAMES):
    ax.plot(t, data.x[0, :, i], ".", ms=2, color=f"C{i}")
    ax.plot(t, sim[:, i], "-", color=f"C{i}", label=n)
ax.set_xlabel("t")
ax.legend()
ax.set_title("data (dots) and the fitted model (lines)")
plt.show()

# %% [markdown]
# The model also says where it settles: its equilibria and their stability
# (`model.fixed_points()`), against the true interior equilibrium.

# %%
points = pd.DataFrame(
    [
        {
            **{n: v for n, v in zip(NAMES, fp["x"])},
            "stable": fp["stable"],
            "max Re(eigenvalue)": float(np.max(np.real(fp["eigenvalues"]))),
        }
        for fp in lv.fixed_points()
    ]
)
print("true interior equilibrium:", np.round(np.linalg.solve(a, -r), 4))
points.round(4)
