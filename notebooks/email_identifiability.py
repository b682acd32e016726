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
# # The leaking effect: when the priors, not the data, decide a coefficient
#
# An analyst compared the open rates of a trial e-mail and a control e-mail sent through three
# distribution channels, with one coefficient for every level of both factors:
#
#     logit(p) = b0 + tc_beta[trial_control] + dist_beta[distribution]
#
# The data were built so that the channel makes no difference: 20% of control e-mails and 30% of
# trial e-mails were opened in every channel. Yet the channel coefficients came out at about 0.1,
# not 0. Nothing was wrong with the sampler. The model has more coefficients than the data can
# pin down: add any constant to `b0` and take it off both trial/control levels (or move it between
# the trial/control levels and the channel levels) and every predicted rate stays the same. The
# likelihood is flat along those directions, so the priors choose where the posterior sits on
# them, and a tight prior on the intercept pushed a constant into the channel coefficients.
#
# This notebook reproduces the leak, shows how poolwise refuses such a model before fitting,
# what it reports when you force the fit anyway, and fits two models the data do identify.

# %%
import os
from pathlib import Path

import pandas as pd

import poolwise as pw

DRAWS = int(os.environ.get("POOLWISE_NB_DRAWS", "1000"))  # CI runs this notebook with ~200
SETTINGS = {"draws": DRAWS, "tune": DRAWS, "chains": 4, "seed": 2026}
# The shared data sit beside the repository (../shared/data from its root, so ../../shared/data
# from this folder); POOLWISE_DATA points elsewhere.
DATA = Path(os.environ.get("POOLWISE_DATA") or Path.cwd().resolve().parents[1] / "shared" / "data")
pd.set_option("display.float_format", "{:.3f}".format)
pd.set_option("display.max_colwidth", None)

email = pw.read_data(DATA / "email_opens.csv")
email.assign(rate=email["opens"] / email["sent"])

# %% [markdown]
# ## Writing the analyst's model as a formula
#
# formulae will not write this model for you. `C(x)` uses reference coding whenever the model
# has an intercept (one level is absorbed into it), and even `0 + C(trial_control) +
# C(distribution)` codes only the first factor in full. To get one coefficient per level of both
# factors *and* an intercept, give the data one 0/1 column per level and use those columns as
# terms. That is what the analyst's index notation `tc_beta[trial_control]` means.

# %%
LEVELS = ["trial_control_0", "trial_control_1", "distribution_0", "distribution_1", "distribution_2"]
indicators = email.join(pd.get_dummies(email[["trial_control", "distribution"]].astype(str), dtype=int))
OVER = "p(opens, sent) ~ " + " + ".join(LEVELS)
indicators[["trial_control", "distribution", *LEVELS]]

# %% [markdown]
# ## poolwise refuses it
#
# Before sampling, `fit` (and `compare`, and the CLI's `poolwise check`) computes the rank of the
# design matrix. Six columns of rank 4 leave two directions that the data cannot see. The error
# names the dependent terms, says why they are dependent and lists the fixes.

# %%
try:
    pw.fit(OVER, indicators, pooling="complete")
except pw.PoolwiseError as err:
    print(err)

# %% [markdown]
# `pw.check` runs the same checks without fitting and returns them as a table (the CLI's
# `poolwise check DATA FORMULA` prints it). The two invisible directions are the null space of
# the design: move the coefficients along either row and every linear predictor stays the same.

# %%
from poolwise.identify import design, null_space

pw.check(OVER, indicators)

# %%
found = design(OVER, indicators)
pd.DataFrame(null_space(found.matrix), columns=found.labels).round(2)

# %% [markdown]
# ## Forcing the fit reproduces the leak
#
# `allow_unidentified=True` fits it anyway. The analyst's priors were reasonable-looking: the
# control open rate is about 20% (intercept `Normal(-1.39, 0.1)` on the logit scale, tight) and
# each level coefficient `Normal(0, 0.5)`. With the intercept pinned near the control rate, the
# remaining constant is shared between the trial/control levels and the channel levels in
# proportion to their prior variances, and about 0.1 lands on every channel coefficient.
#
# `pw.contrasts` reports each raw coefficient next to the differences between levels, and marks
# which ones the data identify (from the design's null space). The raw coefficients carry the
# leak; the differences between levels do not: trial minus control is logit(0.3) - logit(0.2) =
# 0.54 and every channel difference is near 0.

# %%
ANALYST = {"Intercept": "Normal(mu=-1.39, sigma=0.1)", **dict.fromkeys(LEVELS, "Normal(mu=0, sigma=0.5)")}
over = pw.fit(OVER, indicators, pooling="complete", priors=ANALYST, allow_unidentified=True, **SETTINGS)
pw.contrasts(over)

# %% [markdown]
# The size and even the sign of the leak belong to the priors. Centre the same tight intercept
# prior at 0 instead of at the control rate and the channel coefficients leak the other way, by
# roughly four times as much.

# %%
centred = pw.fit(
    OVER,
    indicators,
    pooling="complete",
    allow_unidentified=True,
    priors=ANALYST | {"Intercept": "Normal(mu=0, sigma=0.1)"},
    **SETTINGS,
)
pw.contrasts(centred).query("kind == 'coefficient'")

# %% [markdown]
# ## What the posterior shows: correlations
#
# A direction the data cannot see shows up as coefficients that move together in the posterior.
# `pw.correlated_pairs` lists the pairs whose posterior correlation exceeds 0.9 in magnitude, and
# says whether the two are identified anyway (more on that below). Here they are not.

# %%
pw.correlated_pairs(over)

# %% [markdown]
# ## Prior sensitivity: what moves when the intercept's prior is made flat
#
# The analyst's eventual fix was to replace the intercept's prior by a flat one. `pw.sensitivity`
# does that refit and reports, for every estimate, how far its mean moved in units of its
# original posterior sd (`shift`; `moved` when more than 0.25). The channel coefficients drop to
# about 0 (the flat intercept takes the constant back), while every contrast stays where it was.
#
# The last two columns are ArviZ's power-scaling diagnostic (`arviz_stats.psense`), computed on
# the original fit without refitting: the sensitivity of each estimate to scaling the whole prior
# and the whole likelihood by a power near 1. Above 0.05 for the prior and below it for the
# likelihood reads as "the prior, not the data, decides this". It separates the raw coefficients
# from the contrasts just as the refit does. It cannot replace the refit, because it perturbs the
# priors by about 1%: it says *that* the raw coefficients hang on the priors, not *where* they go
# when a prior is made flat.

# %%
moved = pw.sensitivity(over, terms=["Intercept"], widen="flat")
moved

# %% [markdown]
# ## Models the data identify
#
# Two standard ways to let the data decide every coefficient:
#
# * **Reference coding.** `trial_control + C(distribution)`: the intercept is the control rate in
#   channel 0, `trial_control` the trial/control contrast and `C(distribution)[1]`,
#   `C(distribution)[2]` the differences of channels 1 and 2 from channel 0.
#   (`C(distribution, Sum)` would give sum-to-zero coding instead.)
# * **Partial pooling over channels.** `trial_control + (1|distribution)`: each channel gets a
#   deviation from the intercept drawn from a common normal distribution whose sd is estimated.
#   The deviations and the intercept are identified through that shared distribution.
#
# Both pass the checks, and both give channel effects near 0, with intervals that cover 0, and
# the same trial/control contrast of 0.54.

# %%
REFERENCE = "p(opens, sent) ~ trial_control + C(distribution)"
GROUPED = "p(opens, sent) ~ trial_control + (1|distribution)"
pd.concat([pw.check(formula, email).assign(formula=formula) for formula in (REFERENCE, GROUPED)], ignore_index=True)

# %%
reference = pw.fit(REFERENCE, email, pooling="complete", **SETTINGS)
pw.contrasts(reference)

# %%
grouped = pw.fit(GROUPED, email, pooling="partial", **SETTINGS)
pw.contrasts(grouped)

# %% [markdown]
# The sampler complains about the partially pooled fit, and rightly: three channels that do not
# differ squeeze the group sd against 0, and the posterior near sd = 0 is a funnel that NUTS
# explores badly (divergent transitions). Bambi's default non-centred parameterisation suits weak
# data per group; here every channel has hundreds to tens of thousands of e-mails, which favours
# the centred one. A centred term (`noncentered=False` in its prior string) with a tighter sd
# prior reduces the trouble without removing it. The warnings concern the group sd; the channel
# effects and the contrast come out the same either way.

# %%
CENTRED = {"1|distribution": "Normal(mu=0, sigma=HalfNormal(sigma=0.25), noncentered=False)"}
grouped_centred = pw.fit(GROUPED, email, pooling="partial", priors=CENTRED, **SETTINGS)
pd.concat(
    [
        pw.contrasts(grouped).assign(prior="Bambi default, non-centred"),
        pw.contrasts(grouped_centred).assign(prior="HalfNormal(0.25) sd, centred"),
    ]
).query("kind == 'contrast'")

# %% [markdown]
# Correlation alone is not proof of trouble. In the reference-coded model the intercept is the
# rate in channel 0, which saw only 600 of the 66,600 e-mails, so the intercept and the two channel
# differences (both measured from channel 0) share most of their uncertainty and correlate above
# 0.9. The data still decide each of them, which is what `identified` says. The partially pooled
# model has no such pairs at all.

# %%
pd.concat(
    [
        pw.correlated_pairs(reference).assign(model="reference coding"),
        pw.correlated_pairs(grouped).assign(model="partial pooling"),
    ]
)

# %% [markdown]
# ## Side by side
#
# The channel effect each model reports (the mean of its channel coefficients, raw) and the
# trial/control contrast. Only the over-parameterised fits disagree about the channels, and only
# by what their priors chose.


# %%
def summary_row(name: str, fit) -> dict:
    table = pw.contrasts(fit)
    channel = table[table["set"].str.contains("distribution") & (table["kind"] == "coefficient")]
    trial = table[(table["set"] == "trial_control") & (table["kind"] == "contrast")].iloc[0]
    return {
        "model": name,
        "channel coefficients (mean)": channel["mean"].mean(),
        "channel coefficients identified": bool(channel["identified"].all()),
        "trial - control": trial["mean"],
        "trial - control sd": trial["sd"],
    }


pd.DataFrame(
    [
        summary_row("one coefficient per level, intercept Normal(-1.39, 0.1)", over),
        summary_row("one coefficient per level, intercept Normal(0, 0.1)", centred),
        summary_row("reference coding: trial_control + C(distribution)", reference),
        summary_row("partial pooling: trial_control + (1|distribution)", grouped),
    ]
)
