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
# # 01 Discover the equations of circle dynamics
#
# A network learning (a + b) mod p keeps one *circle* per Fourier frequency k in its
# embedding; the circle's signal S_k(t) = || FFT_k(E(t)) || rises or falls during
# training, and only a few survive (arXiv 2405.17420). This notebook trains a handful
# of networks, looks at their circles, fits a linear ODE dS/dt = A S + b to the early
# window (steps 0-1000, as the paper does), prints the equations, rolls them out
# against the data, and reads the coefficient matrix: which circles suppress which.

# %%
import os

# The one switch: "small" runs in about a minute on 2 CPU cores (what the tests run);
# "full" is the paper's scale and wants a GPU. Or set DYNAFIT_NOTEBOOK_SCALE=full.
SCALE = os.environ.get("DYNAFIT_NOTEBOOK_SCALE", "small")
assert SCALE in ("small", "full"), SCALE

# %%
if SCALE == "full":
    os.environ.setdefault("JAX_ENABLE_X64", "1")  # the paper trains in float64
    SETTINGS = dict(seeds="0-63", steps=30000, dtype="float64")
else:
    SETTINGS = dict(seeds="0-2", steps=1500, dtype="float32")
WINDOW = (0, 1000)  # the paper's early window, both ends included
SETTINGS

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import dynafit
from training import TrainConfig, analysis, train

config = TrainConfig(p=59, dim=128, steps=SETTINGS["steps"], dtype=SETTINGS["dtype"])
traj = train(config, SETTINGS["seeds"], progress=False)
traj

# %% [markdown]
# ## The circles
#
# `traj.x` holds S_1..S_29 for every run and step; the run's meta records which
# circles survived (signal above twice the spectrum's mean at the end). At
# initialisation every circle has about the same signal; at the end a few stand out.

# %%
runs = analysis.survivor_counts(traj)
runs

# %%
analysis.plot_spectrum(traj, run=0)

# %%
analysis.plot_trajectories(traj, run=0)

# %% [markdown]
# ## A linear ODE for the early window
#
# `dynafit.fit` estimates dS/dt from the data (here the paper's forward difference
# S[t+1] - S[t]) and fits the linear family by sparse regression (pysindy). With no
# threshold given, it sweeps thresholds and keeps the sparsest model whose held-out
# error is close to the best. The model prints as sympy equations, and those same
# expressions are what `simulate` integrates (diffrax). Here: run 0, steps 0-1000.

# %%
run = traj.run(0)
early = run.window(*WINDOW)
survivors = run.meta["survivors"]
auto = dynafit.fit(early, family="linear", derivative="forward")
# a sparse model picked by hand from the same sweep: about 3 terms per equation
sparse = dynafit.fit(early, family="linear", derivative="forward", n_terms=3 * early.n_vars)


def summary(model):
    s = model.score(early)
    return {
        "n_terms": model.n_terms,
        "one-step R^2 (paper's)": analysis.euler_r2(model, early),
        "rollout R^2": s["rollout_r2"],
        "diverged": s["diverged"],
    }


pd.DataFrame({"auto (held-out selection)": summary(auto), "sparse (by hand)": summary(sparse)}).T

# %% [markdown]
# The paper's one-step R^2 does not say whether the equations can be integrated;
# the rollout R^2 does. The automatic fit chooses only among the sweep's candidates
# whose rollout stays close to the data (`auto.sweep["rollout_r2"]`), and then the
# sparsest within the held-out error's band. A sparse model picked by hand fits the
# next step worse and drifts away, or blows up, when integrated (dynafit then
# reports `diverged` and every R^2 as -inf, never a good score by accident). These
# dynamics are not sparse in the circle basis. The equations of the survivors, from
# the automatic fit:

# %%
model = auto
for eq in model.equations(digits=2):
    if str(eq.lhs.args[0]) in survivors[:2]:
        print(eq)
        print()

# %% [markdown]
# Rollouts from the first state against the data, for the survivors and a few others.

# %%
idx = list(dict.fromkeys([run.names.index(n) for n in survivors] + [0, 1, 2]))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, (label, m) in zip(axes, [("auto", auto), ("sparse (by hand)", sparse)]):
    sim = m.simulate(early.t, early.x[0])
    for j, i in enumerate(idx):
        ax.plot(early.t, early.x[:, i], ".", ms=2, color=f"C{j % 10}")
        ax.plot(early.t, sim[:, i], "-", color=f"C{j % 10}", label=run.names[i])
    ax.set_ylim(0, 1.2 * early.x.max())  # a diverging rollout leaves the plot
    ax.set_title(f"{label}: data (dots), rollout (lines)", fontsize=10)
    ax.set_xlabel("step")
axes[0].set_ylabel("$S_k$")
axes[1].legend(fontsize=7, ncol=3)
plt.show()

# %% [markdown]
# ## Reading the coefficient matrix
#
# Column j of A is how circle j's signal drives each circle's growth. A negative
# A[i, j] (i != j) means circle j suppresses circle i; a positive one means it helps.
# Early on the circles move together, so single coefficients are poorly determined
# (the columns of the library are nearly collinear): read patterns, not entries, and
# see notebook 04 for coefficient intervals (`dynafit.fit_ensemble`).

# %%
names = list(run.names)
terms = [str(t) for t in model.terms]
A = pd.DataFrame(model.coefficients, index=names, columns=terms)[names]
fig, ax = plt.subplots(figsize=(6, 5))
lim = np.abs(A.to_numpy()).max()
im = ax.imshow(A.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
ax.set_yticks(range(len(names)), names, fontsize=6)
ax.set_xlabel("driving circle j")
ax.set_ylabel("driven circle i")
fig.colorbar(im, ax=ax, label="A[i, j]")
plt.show()

# %%
rows = []
for s in survivors:
    off = A.loc[s].drop(s)
    rows.append(
        {
            "circle": s,
            "self": A.loc[s, s],
            "suppressed most by": ", ".join(off.nsmallest(3).index),
            "helped most by": ", ".join(off.nlargest(3).index),
        }
    )
pd.DataFrame(rows)
