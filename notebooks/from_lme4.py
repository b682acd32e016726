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
# # From lme4 to poolwise
#
# This notebook is for readers who would fit the gym data in R with lme4. It writes the same
# analysis both ways, maps lme4's accessors (`summary`, `fixef`, `ranef`, `coef`, `VarCorr`) onto
# poolwise's tables, and points out where a Bayesian multilevel model answers differently from the
# maximum-likelihood fit.
#
# In R, the chapter's model is:
#
# ```r
# library(lme4)
# gym <- read.csv("gym.csv")
# m <- glmer(cbind(nSigned, nTrialCustomers - nSigned) ~ yogaStretch + (yogaStretch | gymID),
#            data = gym, family = binomial)
# summary(m); fixef(m); ranef(m); coef(m); VarCorr(m)
# ```
#
# `cbind(successes, failures)` is R's way of giving a binomial response as counts. Each gym gets its
# own intercept and its own yoga slope, drawn from a population.

# %%
# %matplotlib inline
import os
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import poolwise as pw

DRAWS = int(os.environ.get("POOLWISE_NB_DRAWS", "1000"))  # the test suite runs this with 200
SETTINGS = {"draws": DRAWS, "tune": DRAWS, "chains": 4 if DRAWS >= 500 else 2, "seed": 2024}
pd.set_option("display.precision", 3)
pd.set_option("display.width", 120)
pd.set_option("display.max_colwidth", None)

# The chapter's data sit in shared/data beside the repository; POOLWISE_DATA points elsewhere.
DATA = Path(os.environ.get("POOLWISE_DATA") or Path.cwd().resolve().parents[1] / "shared" / "data")
if (DATA / "gym.csv").is_file():
    gym = pw.read_data(DATA / "gym.csv")
else:
    print(
        f"Note: {DATA / 'gym.csv'} not found, so this notebook uses the bundled simulated franchise "
        "(pw.load_dataset('franchise')); its numbers differ from the chapter's."
    )
    gym = pw.load_dataset("franchise")
gym.head()

# %% [markdown]
# ## The formula, both ways
#
# poolwise accepts lme4's response as typed, `cbind(k, n - k)`, and reads it as Bambi's
# `p(k, n)`: `k` successes out of `n` trials. Both lines below describe the same model.

# %%
LME4 = "cbind(nSigned, nTrialCustomers - nSigned) ~ yogaStretch + (yogaStretch||gymID)"
BAMBI = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"
print(pw.parse_formula(LME4).formula)
print(pw.parse_formula(LME4).formula == BAMBI)

# %% [markdown]
# From that one formula poolwise builds three models. In R they would be three calls:
#
# | poolwise pooling | R |
# |---|---|
# | `complete` | `glm(cbind(nSigned, nTrialCustomers - nSigned) ~ yogaStretch, family = binomial)` |
# | `none` | `glm(cbind(nSigned, nTrialCustomers - nSigned) ~ 0 + factor(gymID) + factor(gymID):yogaStretch, family = binomial)` |
# | `partial` | `glmer(cbind(nSigned, nTrialCustomers - nSigned) ~ yogaStretch + (yogaStretch \|\| gymID), family = binomial)` |
#
# Note the double bar in the last row; the section on correlations below explains it. The Bambi
# formulas poolwise fits:

# %%
pd.Series(pw.templates(LME4), name="Bambi formula").to_frame()

# %% [markdown]
# ## Fitting
#
# `glmer` maximises an approximate likelihood. `pw.fit` samples the posterior with NUTS; the
# default `pooling="partial"` is the multilevel model. Bambi's default priors are weakly
# informative, and poolwise keeps the predictor uncentred, so `Intercept` means what it means in
# lme4: the logit sign-up rate of a typical gym without yoga.

# %%
fit = pw.fit(LME4, gym, pooling="partial", **SETTINGS)

# %% [markdown]
# ## What lme4's accessors correspond to
#
# | lme4 | poolwise | what it holds |
# |---|---|---|
# | `summary(m)` | `pw.summary(fit)` | population effects, group-level sds, and the sampler's diagnostics (r_hat, ESS, divergences) in place of lme4's convergence messages |
# | `fixef(m)` | `pw.lme4_summary(fit).fixef` | population intercept and slope |
# | `VarCorr(m)` | `pw.lme4_summary(fit).varcorr` | the sd of the gyms' intercepts and of their slopes |
# | `ranef(m)` | `pw.lme4_summary(fit).ranef` | each gym's deviation from the population |
# | `coef(m)` | `pw.lme4_summary(fit).coef` | each gym's own coefficients: population + deviation |
#
# Where lme4 reports a point estimate and a standard error, poolwise reports the posterior mean
# (`estimate`) and posterior sd (`est_error`, brms's name), plus a central 89% interval (`lower`,
# `upper`; pass `prob=0.95` for 95%). There are no p-values: ask the posterior a question instead,
# for instance P(the slope > 0), as `pw.decide` does at the end.

# %%
summary = pw.summary(fit)
print(
    f"{summary.label}: {summary.n_rows} rows, {summary.n_groups} groups; {summary.divergences} divergences, "
    f"max r_hat {summary.max_r_hat:.3f}, min bulk ESS {summary.min_ess_bulk:.0f}"
)
pd.concat([summary.population, summary.group_sds])

# %%
lme4 = pw.lme4_summary(fit)
lme4.fixef

# %%
lme4.varcorr

# %%
lme4.ranef.head(6)

# %%
lme4.coef.head(6)

# %% [markdown]
# As in lme4, `coef` is `fixef` plus `ranef`, term by term. For posterior means that holds exactly:

# %%
check = lme4.coef.merge(lme4.ranef, on=["group", "term"], suffixes=("_coef", "_ranef"))
check["fixef"] = check["term"].map(lme4.fixef.set_index("term")["estimate"])
(check["estimate_coef"] - check["estimate_ranef"] - check["fixef"]).abs().max()

# %% [markdown]
# ## Where the Bayesian fit differs from lme4
#
# ### 1. `|` and `||`: correlated or independent group effects
#
# In lme4, `(yogaStretch | gymID)` estimates a 2×2 covariance: the sd of the intercepts, the sd of
# the slopes, and their correlation; `(yogaStretch || gymID)` estimates the two sds alone. poolwise
# reads both as lme4 does (Bambi has only independent effects; poolwise adds the correlation to the
# model it builds, with brms's LKJ(1) prior). The chapter's model has independent intercepts and
# slopes, which is why this notebook writes `||`; the note says which form a fit has:

# %%
print(lme4.note)

# %% [markdown]
# With the correlation, VarCorr gains a `cor(Intercept,yogaStretch)` row. Twelve gyms say little
# about it (lme4's own fit is singular, with a correlation of exactly +1), and poolwise warns so:

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", pw.PoolwiseWarning)
    correlated = pw.fit(BAMBI.replace("||", "|"), gym, **SETTINGS)
print(*[str(w.message) for w in caught if "barely inform" in str(w.message)], sep="\n")
pw.lme4_summary(correlated).varcorr

# %% [markdown]
# ### 2. Singular fits
#
# With twelve gyms, there is little information about how much the gyms' yoga slopes vary. lme4's
# maximum-likelihood estimate of such a variance often lands on the boundary, exactly 0 (or, with
# the correlated form, a correlation of exactly ±1), and lme4 reports `boundary (singular) fit: see
# help('isSingular')`. The fit then claims that every gym has the same slope, with no uncertainty
# about that claim, and `ranef` for that term is zero for every gym.
#
# The posterior has no boundary problem. The sd of the slopes is a distribution: it has mass near
# 0 but also a long tail, and every gym's slope is pooled towards the population by an amount
# averaged over that whole distribution. The histograms show the posterior of both group-level sds.
# With this little data the prior on the sd (Bambi's default is a half-normal) shapes that tail
# too, so it is worth refitting with another prior (`priors=` in `pw.fit`) before leaning on it.

# %%
posterior = fit.posterior
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True, layout="constrained")
for ax, (name, title) in zip(
    axes, [("1|gymID_sigma", "sd of the gyms' intercepts"), ("yogaStretch|gymID_sigma", "sd of the gyms' yoga slopes")]
):
    draws = posterior[name].values.ravel()
    ax.hist(draws, bins=40, color="#762A83", alpha=0.7)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_title(f"{title}: P(sd < 0.1) = {(draws < 0.1).mean():.2f}", fontsize="medium")
    ax.set_xlabel("logit scale")
axes[0].set_ylabel("posterior draws")
fig.suptitle("Group-level sds: a distribution, not a point on the boundary")

# %% [markdown]
# ### 3. Intervals for each gym
#
# lme4's `ranef(m, condVar = TRUE)` gives each deviation a conditional variance, but one computed
# as if the fixed effects and the variance parameters were known exactly; `coef(m)` comes without
# any standard errors, and intervals for a gym's *rate* need a bootstrap (`bootMer`). The posterior
# has all of them directly, and they include the uncertainty about the population.
#
# The table holds each gym's sign-up rate without and with yoga on the probability scale, with 89%
# intervals. Gyms that never ran with yoga (2, 8, 11 and 12 in the chapter's data) and the gym
# that never ran without it (10) still get both rates: their missing condition is borrowed from the
# population, and the intervals show how little is known there.

# %%
tidy = pw.coefficients(fit).query("quantity in ['rate_without', 'rate_with']")
rates = tidy.pivot(index="group", columns="quantity", values=["mean", "lower", "upper"])
rates.swaplevel(axis=1)[["rate_without", "rate_with"]].reindex(pd.unique(tidy["group"]))

# %% [markdown]
# ### 4. A typical gym and a new gym
#
# In lme4, `predict(m, newdata, re.form = NA)` gives the typical gym (all random effects at 0), and
# `allow.new.levels = TRUE` does the same for an unseen gym. That treats a new gym as if it were
# exactly the typical one. `pw.decide` keeps the two apart: the typical gym uses the population
# intercept and slope, while a new gym draws its own from the population, so the variation between
# gyms enters its uncertainty.

# %%
decision = pw.decide(fit, treatment="yogaStretch", trials=50, groups=100, seed=1)
pd.concat([decision.typical, decision.new_group]).query("quantity == 'difference'").set_index("group").drop(
    columns="source"
)

# %%
print(decision.verdict())
