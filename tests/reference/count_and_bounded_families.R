## Reference fits for poolwise's zero-inflated, hurdle, lognormal and beta families: brms 2.18 at
## its default priors, on poolwise's simulated franchises (export_data.py, SIMULATED).
## brms's zi / hu (the probability of a structural or hurdle zero) is 1 - Bambi's psi; the script
## writes psi beside them, computed from the same draws.
##
##   Rscript count_and_bounded_families.R DATADIR OUTDIR
##
## DATADIR holds signup_minutes.csv, class_share.csv and bookings_*.csv (export_data.py).
## Writes OUTDIR/brms_count_and_bounded.csv with the columns of brms.csv (see README.md).
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
if (length(args) != 2) stop("usage: Rscript count_and_bounded_families.R DATADIR OUTDIR")
datadir <- args[1]
outdir <- args[2]

read_data <- function(name) {
  d <- read.csv(file.path(datadir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  d$gymID <- factor(d$gymID)                          # yogaStretch stays 0/1 numeric
  d
}

bookings <- nClasses ~ yogaStretch + (yogaStretch || gymID)
models <- list(
  minutes_lognormal = list(data = read_data("signup_minutes"), family = lognormal(),
                           brms = minutes ~ yogaStretch + (yogaStretch || gymID)),
  share_beta = list(data = read_data("class_share"), family = Beta(),
                    brms = classShare ~ yogaStretch + (yogaStretch || gymID)),
  bookings_zip = list(data = read_data("bookings_zero_inflated"), family = zero_inflated_poisson(),
                      brms = bookings),
  bookings_zinb = list(data = read_data("bookings_zero_inflated_overdispersed"),
                       family = zero_inflated_negbinomial(), brms = bookings),
  bookings_hurdle_poisson = list(data = read_data("bookings_hurdle"), family = hurdle_poisson(),
                                 brms = bookings)
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
  tab <- do.call(rbind, out)
  ## Bambi's psi = 1 - zi (zero-inflated) or 1 - hu (hurdle), from the same draws.
  zero <- intersect(c("zi", "hu"), tab$parameter)
  if (length(zero) == 1) {
    psi <- 1 - as_draws_df(fit)[[zero]]
    tab <- rbind(tab, data.frame(model = model, parameter = "psi", estimate = mean(psi),
                                 est_error = sd(psi), lower = unname(quantile(psi, 0.025)),
                                 upper = unname(quantile(psi, 0.975)),
                                 rhat = tab$rhat[tab$parameter == zero],
                                 bulk_ess = tab$bulk_ess[tab$parameter == zero]))
  }
  tab
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
write.csv(tab, file.path(outdir, "brms_count_and_bounded.csv"), row.names = FALSE)
print(tab, digits = 4)

cat("R:", R.version.string, "\n")
for (p in c("brms", "rstan", "StanHeaders")) cat(p, ":", as.character(packageVersion(p)), "\n")
