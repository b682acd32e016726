# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Visits per member-month: a Poisson rate per exposure
#
# The gym chapter counts successes out of trials. Many business questions count events over an
# exposure instead: visits per member-month, claims per policy-year, defects per thousand units.
# An lme4 user writes them as a Poisson model with an offset:
#
# ```r
# glmer(nVisits ~ yogaStretch + offset(log(memberMonths)) + (yogaStretch | gymID),
#       data = visits, family = poisson)
# ```
#
# poolwise reads the same formula. `offset(log(memberMonths))` makes the mean
# `memberMonths * exp(alpha_j + beta_j * yogaStretch)`, so the intercept and slope are on the
# log scale of *visits per member-month*, and every table, decision and figure speaks of that rate.
#
# The data are poolwise's own simulation (`poolwise simulate --family poisson`, bundled as
# `visits`), so we can check the answers against the truth they were drawn from.

# %%
# %matplotlib inline
import json
import os
import warnings

import numpy as np

import poolwise as pw
from poolwise import plots
from poolwise.data import example_path

DRAWS = int(os.environ.get("POOLWISE_NB_DRAWS", 1000))
CHAINS = 2 if DRAWS < 1000 else 4
visits = pw.load_dataset("visits")
truth = json.loads(example_path("visits").with_name("visits_truth.json").read_text())
formula = truth["formula"]
print(formula)
visits.head()

# %% [markdown]
# Without `family=`, poolwise decides as lme4 users expect: an offset means a Poisson rate. (A
# count outcome *without* an offset would be refused with a one-line question: poisson, negative
# binomial or gaussian?)

# %%
spec = pw.parse_formula(formula, visits)
print(spec.family, spec.exposure)
pw.templates(spec)

# %% [markdown]
# ## The three pooling models

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore", pw.PoolwiseWarning)
    study = pw.compare(formula, visits, draws=DRAWS, chains=CHAINS, tune=DRAWS, seed=1)
print(study.verdict())
study.table[["elpd", "se", "elpd_diff", "dse", "n_bad_k", "n_refitted"]]

# %% [markdown]
# The default priors were resolved from these data and are stored with each fit, so a refit (or
# grouped cross-validation) uses exactly these:

# %%
study.fits["partial"].priors

# %% [markdown]
# ## Does yoga stretch raise visits per member-month?
#
# A typical gym, a new gym, and 100 new gyms with 50 member-months each. "Helps" means more visits.

# %%
decision = pw.decide(study.fits["partial"], trials=50, groups=100, seed=1)
print(decision.verdict())
decision.typical

# %% [markdown]
# Against the truth the data were simulated from (population log rates):

# %%
population = pw.population_draws(study.fits["partial"])
for name in ("alpha", "beta", "sigma_alpha", "sigma_beta"):
    values = population[name].values.ravel()
    low, high = np.quantile(values, [0.055, 0.945])
    print(
        f"{name:12s} truth {truth['population'][name]:6.2f}   estimate {values.mean():6.2f}  (89% interval {low:.2f} to {high:.2f})"
    )

# %% [markdown]
# ## Figures
# Counts by gym and period (exposure differs from row to row, so the shrinkage and posterior
# predictive figures show rates per member-month), the curve through the inverse link, and
# shrinkage toward the population.

# %%
plots.data_bars(plots.data_bars_table(visits, formula))

# %%
plots.logistic(plots.logistic_table(study.fits["partial"]))

# %%
plots.shrinkage(plots.shrinkage_table(study))

# %%
plots.ppc(plots.ppc_table(study, scale="rate"))
