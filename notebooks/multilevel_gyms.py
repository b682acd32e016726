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
# # Yoga stretches and trial customers: the chapter, walked through with poolwise
#
# A franchise of twelve gyms offers a free trial. For each gym and month (period) we know how many
# trial customers came (`nTrialCustomers`) and how many of them signed up (`nSigned`). Some gyms
# started a yoga-stretch class (`yogaStretch = 1`) part of the way through, some never offered it,
# and one offered it from the start. The question: does yoga raise the sign-up rate, and what
# should the franchise expect if it rolls yoga out to gyms it has not opened yet?
#
# The notebook answers it three ways: one rate for all gyms (complete pooling), every gym on its
# own (no pooling), and gyms drawn from a shared population (partial pooling). All three come from
# one formula, typed once:
#
#     p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)
#
# `p(successes, trials)` is the binomial response: `nSigned` successes out of `nTrialCustomers`
# trials on each row. `yogaStretch` is the treatment, and `(yogaStretch||gymID)` says each gym gets
# its own intercept and its own yoga slope.
#
# The notebook reads its sampler settings from the environment: `POOLWISE_NB_DRAWS` (default
# 1000 draws and 1000 tuning steps, 4 chains; the test suite runs it with 200 and 2 chains).

# %%
# %matplotlib inline
import os
import warnings
from pathlib import Path

import pandas as pd

import poolwise as pw
from poolwise import plots

DRAWS = int(os.environ.get("POOLWISE_NB_DRAWS", "1000"))
SETTINGS = {"draws": DRAWS, "tune": DRAWS, "chains": 4 if DRAWS >= 500 else 2, "seed": 2024}
FORMULA = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"
pd.set_option("display.precision", 3)
pd.set_option("display.width", 120)
pd.set_option("display.max_colwidth", None)

# %% [markdown]
# ## The data
#
# The chapter's data live in `shared/data` beside the repository (`../../shared/data` seen from
# this folder); set `POOLWISE_DATA` to a folder holding `gym.csv` to read it from somewhere else.
# Without it, the notebook runs on the simulated franchise that ships with poolwise
# (`pw.load_dataset("franchise")`): same columns, different gyms, so the numbers then differ from
# the ones quoted in the text.

# %%
DATA = Path(os.environ.get("POOLWISE_DATA") or Path.cwd().resolve().parents[1] / "shared" / "data")
if (DATA / "gym.csv").is_file():
    gym = pw.read_data(DATA / "gym.csv")
else:
    print(
        f"Note: {DATA / 'gym.csv'} not found, so this notebook uses the bundled simulated franchise "
        "(pw.load_dataset('franchise')); its numbers differ from the chapter's."
    )
    gym = pw.load_dataset("franchise")
print(f"{len(gym)} rows, {gym['gymID'].nunique()} gyms, {gym['nTrialCustomers'].sum():,} trial customers")
gym.head()

# %% [markdown]
# One panel per gym: the light bar is the month's trial customers, the dark bar on top the ones who
# signed up, purple where the gym offered yoga. Two things stand out before any model is fitted.
# The gyms convert at very different rates, and they did not all run the same experiment: a few
# never offered yoga, one offered nothing else, and several have only one or two months of data.

# %%
plots.data_bars(plots.data_bars_table(gym, FORMULA))

# %% [markdown]
# ## Three models from one formula
#
# `pw.templates` shows the three Bambi formulas that the one formula implies, without fitting:
#
# * **complete pooling** drops the gym terms: one intercept and one yoga slope for every gym;
# * **no pooling** gives each gym its own intercept `C(gymID)` and its own slope
#   `C(gymID):yogaStretch`, each with a fixed prior, so no gym learns from any other;
# * **partial pooling** is the formula as written: each gym's intercept and slope are drawn from a
#   population whose mean and spread (the group-level sds) are estimated from all the gyms.

# %%
pd.Series(pw.templates(FORMULA), name="Bambi formula").to_frame()

# %% [markdown]
# `pw.compare` fits all three with NUTS (NumPyro's, through Bambi and PyMC) and compares them by
# leave-one-out cross validation. We look at the fits one by one below, in the order the chapter
# meets them.
#
# poolwise's warnings are collected and printed one per line. Those about gyms that never had both
# conditions and about Pareto k are part of the story and explained where they come up. Sampler
# warnings (a divergent transition, r_hat just above 1.01, a low ESS) may join them, more often
# with the small draw counts of a test run; each says what to raise.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", pw.PoolwiseWarning)
    study = pw.compare(FORMULA, gym, **SETTINGS)
for warning in caught:
    if issubclass(warning.category, pw.PoolwiseWarning):
        print(f"warning: {warning.message}")
complete, none, partial = (study.fits[name] for name in ("complete", "none", "partial"))

# %% [markdown]
# ## Complete pooling: one rate for every gym
#
# The simplest model ignores which gym a row comes from. Its posterior rates should then sit on
# the raw rates of all rows pooled: in the chapter's data 400 of 1,675 trial customers signed up
# without yoga (23.9%) and 219 of 630 with it (34.8%). With this much data the posterior is narrow
# and centred on them.

# %%
raw = gym.groupby("yogaStretch")[["nSigned", "nTrialCustomers"]].sum()
raw.index = ["rate_without", "rate_with"]
raw["raw rate"] = raw["nSigned"] / raw["nTrialCustomers"]
# Complete pooling gives every gym the same rates, so one gym's row holds them all.
shared = pw.coefficients(complete).drop_duplicates("quantity").set_index("quantity")
raw.join(shared.loc[raw.index, ["mean", "lower", "upper"]].add_prefix("posterior "))

# %% [markdown]
# That looks like a tidy answer: yoga adds about 11 points. But does the model describe the data
# it was fitted to? The cumulative posterior predictive check answers that. The black line is the
# empirical CDF of the observed sign-ups per row; each orange line is the same curve for a data set
# the fitted model simulates. The observed curve is far more spread out than every simulated one:
# it has more rows with only a few sign-ups and a long tail of rows with 30 to 45, while one shared
# rate can only produce the narrow spread of binomial noise around it. The gyms differ, and
# complete pooling cannot say so.

# %%
plots.ppc(plots.ppc_table(complete))

# %% [markdown]
# ## No pooling: every gym on its own
#
# The opposite extreme fits each gym's intercept α and yoga slope β separately. The forest plot
# shows both with 89% intervals (ArviZ's default: central intervals holding 89% of the posterior).
# The intercepts are clearly different from gym to gym, which is what complete pooling missed.
#
# The slopes of gyms 2, 8, 10, 11 and 12 have very wide intervals, and for a reason the data
# determine rather than the sampler: those gyms never had both conditions.
#
# * Gyms 2, 8, 11 and 12 never offered yoga. Their yoga columns in the design matrix are all
#   zero, so the likelihood does not depend on their slope at all: it is the prior, unchanged.
# * Gym 10 offered yoga in both of its months and never ran without it. The data fix the sum
#   α + β (its rate with yoga) but not how it splits into intercept and slope, so both are wide
#   and the prior decides the split.
#
# Gyms 11 and 12 also have a single month of data, so their intercepts are less certain than the
# others'. poolwise warns about both cases when it fits the no-pooling model (see the warnings
# above), and the table below finds them in the data.

# %%
conditions = gym.groupby("gymID")["yogaStretch"].agg(months="size", months_with_yoga="sum")
conditions["slope informed by data"] = (conditions["months_with_yoga"] > 0) & (
    conditions["months_with_yoga"] < conditions["months"]
)
slopes = pw.coefficients(none).query("quantity == 'beta'").set_index("group")[["mean", "sd", "lower", "upper"]]
slopes.index = slopes.index.astype(conditions.index.dtype)
conditions.join(slopes.add_prefix("slope "))

# %%
plots.forest(plots.forest_table(none))

# %% [markdown]
# ## Partial pooling: gyms from one population
#
# Partial pooling sits between the two. Each gym has its own intercept and slope, but they are
# drawn from a common normal distribution whose mean (the typical gym) and spread are estimated
# too. A gym with a lot of data keeps roughly its own estimate; a gym with little data, or none in
# one condition, is pulled towards the population. Overlaid on the no-pooling fit (grey), the
# partial-pooling estimates (purple) are narrower exactly where no pooling had nothing to go on:
# the slopes of gyms 2, 8, 10, 11 and 12 now come from the population (dashed line and band) rather
# than from the prior.

# %%
plots.forest(plots.forest_table({"none": none, "partial": partial}))

# %% [markdown]
# The population's parameters on the logit scale: `Intercept` and `yogaStretch` are the typical
# gym, and the group-level sds say how much gyms vary around it. The intercept sd is large (about
# 1 on the logit scale in the chapter's data), which is why one rate for all gyms failed.

# %%
summary = pw.summary(partial)
pd.concat([summary.population, summary.group_sds])[["mean", "sd", "lower", "upper", "r_hat", "ess_bulk"]]

# %% [markdown]
# The same posterior predictive check, now for all three models side by side. Complete pooling
# misses as before; the black observed curve sits inside the bundle of simulated curves for both
# models that let gyms differ.

# %%
plots.ppc(plots.ppc_table(study))

# %% [markdown]
# ## Shrinkage
#
# Another view of the same pull, on the probability scale. For each gym and condition, the arrow
# runs from its no-pooling rate (grey circle, area proportional to its trial customers) to its
# partial-pooling rate (purple diamond), and the dashed line is the typical gym. Large gyms barely
# move; small ones move further towards the population. Hollow circles mark a gym with no data in
# that condition: its no-pooling rate there was the prior's, and partial pooling replaces it with
# what the population suggests for a gym with its intercept.

# %%
plots.shrinkage(plots.shrinkage_table(study))

# %% [markdown]
# ## Which model predicts best: LOO
#
# Leave-one-out cross-validation (PSIS-LOO, from ArviZ) estimates how well each model would predict
# a row it had not seen: `elpd_loo` is the expected log predictive density (higher is better),
# `elpd_diff` the difference from the best model and `dse` the standard error of that difference.
# In the chapter's data complete pooling is worse by about 170 with a standard error near 30, and
# partial and no pooling are within noise of each other.
#
# `n_bad_k` counts rows whose Pareto k exceeds 0.7. Each gym has at most five rows, so leaving one
# out removes a large share of that gym's information, and LOO's importance-sampling shortcut
# becomes unreliable for those rows. poolwise warns about it above; grouped cross-validation
# (`pw.compare(..., cv="group")`, leaving whole gyms out) is the sturdier check and the
# question a new-gym decision really asks.

# %%
print(study.verdict())
study.table[["elpd", "se", "elpd_diff", "dse", "p", "weight", "n_bad_k", "n_refitted", "n_obs"]]

# %%
plots.comparison(plots.comparison_table(study))

# %% [markdown]
# ## The decision: does yoga help, and what should the franchise expect?
#
# `pw.decide` turns the partial-pooling posterior into answers on the probability scale:
#
# * **a typical gym**: the population intercept and slope (the median gym);
# * **a new gym**: its own intercept and slope drawn from the population, so gym-to-gym variation
#   is part of its uncertainty;
# * **100 new gyms with 50 trial customers each**: the total sign-ups without and with yoga, as
#   posterior predictive intervals.
#
# `p_helps` is the posterior probability that the rate (or the total) is higher with yoga. The
# `seed` fixes the simulated new gyms, so a rerun prints the same numbers.

# %%
decision = pw.decide(partial, treatment="yogaStretch", trials=50, groups=100, seed=1)
print(decision.verdict())

# %%
pd.concat([decision.typical, decision.new_group]).drop(columns="source")

# %%
decision.expected.drop(columns="source")

# %% [markdown]
# A typical gym gains with high probability. A single new gym is much less certain to, because the
# gyms differ so much that a new one may well sit where yoga does little. Across 100 new gyms those
# differences average out and the total gain is clear again. The densities below show the first
# two cases side by side: the shaded area of the dashed difference curve is P(helps).

# %%
plots.rate_densities(plots.rate_density_table(partial, seed=1))

# %% [markdown]
# Per gym, the difference with its interval, and the typical and new gym below them. Hollow dots
# are the gyms whose own data cannot inform their difference (2, 8, 10, 11 and 12 in the chapter's
# data). Partial pooling gives them the population's slope, with its uncertainty, applied at the
# gym's own rate: a gym that converts few customers (2, 12) gains only a few points from it.

# %%
plots.difference_forest(plots.difference_forest_table(decision))
