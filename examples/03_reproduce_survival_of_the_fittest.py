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
# # 03 Reproduce "Survival of the Fittest Representation"
#
# The paper (arXiv 2405.17420) makes five claims about the circles of a network
# learning modular addition (p = 59): only a few survive; more survive with a larger
# embedding; the fittest (high initial signal and initial gradient) survive; scaling
# a circle's initial signal up makes it more likely to survive; and a linear ODE
# describes the early dynamics, with an R^2 that depends on the embedding dimension.
#
# `dynafit reproduce --only claims` trains the sweeps behind them and writes a report;
# this notebook calls the same functions (`training.reproduce`, `training.analysis`). The
# small setting is a smoke test (2 seeds per point, 600 steps: `reproduce_smoke.toml`);
# `full` is the paper's scale (`reproduce_full.toml`, GPU or Ray cluster). The paper's
# other experiments (controlled fittest, perturbation curve, two-circle construction,
# ablation, collaboration, circle panels, frozen embedding, survivors against dim, p and
# weight decay) are `dynafit reproduce --only NAME` (see the README).

# %%
import os

# The one switch: "small" runs in about a minute on 2 CPU cores (what the tests run);
# "full" is the paper's scale and wants a GPU. Or set DYNAFIT_NOTEBOOK_SCALE=full.
SCALE = os.environ.get("DYNAFIT_NOTEBOOK_SCALE", "small")
assert SCALE in ("small", "full"), SCALE

# %%
from pathlib import Path

REPRO_SCALE = {"small": "smoke", "full": "full"}[SCALE]
OUT = Path(os.environ.get("DYNAFIT_REPRODUCE_OUT", f"reproduce_{REPRO_SCALE}"))
REPRO_SCALE, OUT

# %%
import pandas as pd
from IPython.display import Markdown, display

import dynafit
from training import analysis
from training.reproduce import reproduce

# trains (resuming whatever is already in OUT), analyses, writes OUT/report.md
summary = reproduce(REPRO_SCALE, OUT, only="claims", progress=False)
summary["setup"]

# %%
display(Markdown((OUT / "report.md").read_text().split("## Figures")[0]))

# %% [markdown]
# ## The numbers behind each claim
#
# Every table below comes from the functions the report uses, on the trajectories
# the sweep saved in `OUT/<experiment>/`.

# %%
dims = analysis.load_experiment(OUT / "dims")
table = analysis.circle_table(dims)
table.head()

# %% [markdown]
# ### 1-2. Few circles survive, and more in larger embeddings

# %%
counts = analysis.survivor_counts(table)
display(analysis.survivors_by_dim(counts))
analysis.plot_survivors_vs_dim(counts)

# %%
analysis.plot_spectrum(dims, run=int(counts["run"][counts["dim"] == counts["dim"].max()].iloc[0]))

# %% [markdown]
# ### 3. The fittest survive
#
# ROC AUC of the initial signal S_k(0) and of the initial gradient
# (S_k(4) - S_k(3)) / S_k(0) as predictors of survival, at the largest dimension
# (0.5 is chance).

# %%
default = table[table["dim"] == table["dim"].max()]
auc = analysis.fittest_auc(default)
display(auc)
analysis.plot_fittest(default, auc)

# %% [markdown]
# ### 4. Scaling a circle's initial signal

# %%
inter = analysis.intervention_table(analysis.load_experiment(OUT / "scaling"))
display(inter)
analysis.plot_intervention(inter)

# %% [markdown]
# ### 5. A linear ODE for the early dynamics
#
# The paper's method (Lasso, alpha 0.01, on x[t+1] - x[t]) beside dynafit's linear
# family on the same window, per run.

# %%
r2 = pd.read_csv(OUT / "linear_r2.csv")
display(analysis.r2_by_dim(r2))
analysis.plot_r2_vs_dim(r2)

# %% [markdown]
# ### 6. Readable models: survivors and forecasts from the early window
#
# Each candidate is fitted on steps 0..W of the default runs and integrated to the end
# of the run: survivor F1 with the count predicted by the model, beside the rank
# baselines at W ("alive at W": above the survival threshold at W; "top-k at W (told
# k)": the k largest, told the true k). Then a forecast from the middle of the run,
# against holding the state (persistence, skill 0). `mean_field_lv` is
# dS_i/dt = S_i (r_i + a_i S_i + b_i T) with T the total of all circles; "+inflow
# (start validated)" adds a constant inflow e_i and is fitted by `dynafit.fit_recent`,
# which starts the fit where a forecast of the window's held-out last fifth is closest
# (skipping the optimiser's initial transient)
# (`dynafit.early_window_table`, written by `dynafit reproduce` as
# `circle_models_*.csv`).

# %%
surv = pd.read_csv(OUT / "circle_models_survivors.csv")
display(surv.pivot_table(index="candidate", columns="window", values="f1").round(2))
fc = pd.read_csv(OUT / "circle_models_forecast.csv")
display(fc.pivot_table(index="candidate", columns="horizon", values="skill").round(2))

# %% [markdown]
# ### 7. How many survive: a shared budget, on one run
#
# At the end of a short window every circle still shrinks, so the sign of its growth
# says nothing about how many survive. `budget_share` is a law with a shared
# constraint: weight decay shrinks every circle at one rate lam, and one inflow budget
# E (the optimiser's step, whose size is fixed) is divided among the circles in
# proportion to w_i S_i^g, so a larger circle draws more (g = 0.75, tuned on even
# seeds, see benchmarks/RESULTS.md, issue 24). Its stable state is explicit,
# S_i* = (E / lam) w_i^(1/(1-g)) / sum_j w_j^(1/(1-g)): the weights w_i decide which
# circles win, and how sharply the budget favours the largest decides how many end
# above the paper's threshold. Fitted on the second half of steps 0..W of one run of
# the largest embedding, against the data at the run's end.

# %%
import numpy as np

from dynafit.families import BudgetShare

dims = analysis.load_experiment(OUT / "dims")
run = dims.run(int(np.argmax(analysis.run_table(dims)["dim"].to_numpy())))
W = 200.0
law = dynafit.fit(run.window(0, W), BudgetShare(0.75))
state = dynafit.budget_state(law)
print(law)
print(f"stable state: {state['count']} circles above the threshold: {state['survivors']}")

# %%
iW = int(np.flatnonzero(np.isclose(run.t, W))[0])
terms = pd.DataFrame(
    {
        "w_i (draw on the budget)": law.family.weights,
        "share at the stable state": state["share"],
        "S_k at W": run.x[iW],
        "growth W-10..W (per step)": (run.x[iW] - run.x[iW - 10]) / run.x[iW - 10] / 10,
        "S_k at the end": run.x[-1],
    },
    index=run.names,
).sort_values("share at the stable state", ascending=False)
terms["survives (data)"] = terms.index.isin(dynafit.actual_survivors(run)[0])
terms["survives (law)"] = terms.index.isin(state["survivors"])
display(terms.head(10).round(4))
display(dynafit.compare_survivors(law, run, t=W))

# %%
import matplotlib.pyplot as plt

top = list(terms.index[:6])
pick = [run.names.index(n) for n in top]
ahead = run.t[iW:] - W
ys = law.simulate(ahead, run.x[iW])
fig, ax = plt.subplots(figsize=(7, 4))
for j, n in zip(pick, top):
    (line,) = ax.plot(run.t, run.x[:, j], lw=1, label=n)
    ax.plot(run.t[iW:], ys[:, j], "--", color=line.get_color(), lw=1)
ax.axvline(W, color="grey", lw=0.5)
ax.set(xlabel="step", ylabel="S_k", title="data (solid) and the budget law from W (dashed)")
ax.legend(fontsize=7, ncol=2)

# %%
sorted(p.name for p in (OUT / "figures").glob("*.png"))
