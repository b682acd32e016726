## Reference fit for poolwise's hurdle negative binomial: brms 2.18's hurdle_negbinomial() at its
## default priors, on poolwise's simulated overdispersed class bookings (export_data.py,
## SIMULATED). brms's hu (the probability of a zero) is 1 - Bambi's psi; the script writes psi
## beside it, computed from the same draws.
##
##   Rscript hurdle_negative_binomial.R DATADIR OUTDIR
##
## DATADIR holds bookings_hurdle_overdispersed.csv (export_data.py).
## Writes OUTDIR/brms_hurdle_negbinomial.csv with the columns of brms.csv (see README.md).
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
if (length(args) != 2) stop("usage: Rscript hurdle_negative_binomial.R DATADIR OUTDIR")
datadir <- args[1]
outdir <- args[2]

bookings <- read.csv(file.path(datadir, "bookings_hurdle_overdispersed.csv"), stringsAsFactors = FALSE)
bookings$gymID <- factor(bookings$gymID)                 # yogaStretch stays 0/1 numeric

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
  psi <- 1 - as_draws_df(fit)$hu
  out[[length(out) + 1]] <- data.frame(model = model, parameter = "psi", estimate = mean(psi),
                                       est_error = sd(psi), lower = unname(quantile(psi, 0.025)),
                                       upper = unname(quantile(psi, 0.975)), rhat = NA, bulk_ess = NA)
  do.call(rbind, out)
}

name <- "bookings_hurdle_negbinomial"
cat("\n", strrep("=", 100), "\n", "MODEL: ", name, "\n", strrep("=", 100), "\n", sep = "")
t0 <- Sys.time()
fit <- brm(nClasses ~ yogaStretch + (yogaStretch || gymID), data = bookings, family = hurdle_negbinomial(),
           chains = 4, iter = 2000, warmup = 1000, seed = 2026, cores = 1,
           backend = "rstan", refresh = 0, silent = 2)
print(prior_summary(fit))
print(summary(fit))
np <- nuts_params(fit)
cat("divergent transitions after warmup:", sum(np$Value[np$Parameter == "divergent__"]), "\n")
cat("brms time (compile + sample):", format(round(difftime(Sys.time(), t0, units = "secs"), 1)), "\n")

tab <- brms_rows(name, fit)
rownames(tab) <- NULL
for (j in which(vapply(tab, is.numeric, logical(1)))) tab[[j]] <- signif(tab[[j]], 7)
write.csv(tab, file.path(outdir, "brms_hurdle_negbinomial.csv"), row.names = FALSE)
print(tab, digits = 4)

cat("R:", R.version.string, "\n")
for (p in c("brms", "rstan", "StanHeaders")) cat(p, ":", as.character(packageVersion(p)), "\n")
