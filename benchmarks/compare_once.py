"""One end-to-end comparison in this (fresh) process; prints a JSON line of timings.

Run by bench.py in a subprocess so import and compilation are included:
``python compare_once.py poolwise|partial|plain BACKEND DATASET [GROUPS]``.
"""

import json
import resource
import sys
import time
import warnings

START = time.perf_counter()

FORMULA = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)"
PLAIN = {
    "complete": "p(nSigned, nTrialCustomers) ~ yogaStretch",
    "none": "p(nSigned, nTrialCustomers) ~ 0 + C(gymID) + C(gymID):yogaStretch",
    "partial": "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)",
}


def data(name: str, groups: int):
    import poolwise as pw

    if name == "gym":
        return pw.load_dataset("gym")
    return pw.simulate_franchise(groups=groups, periods=12, seed=1)[0]


def min_ess(idata) -> float:
    import arviz as az

    return float(az.ess(idata["posterior"].to_dataset()).to_array().min())


def run_poolwise(backend: str, frame) -> dict:
    import poolwise as pw

    study = pw.compare(FORMULA, frame, seed=1, backend=backend)
    return {name: {"sampling_s": fit.idata["posterior"].attrs.get("sampling_time"), "min_ess": min_ess(fit.idata),
                   "elpd_loo": float(study.table.loc[name, "elpd_loo"])} for name, fit in study.fits.items()}


def run_partial(backend: str, frame) -> dict:
    """Partial pooling alone: the model the scale benchmark (1,000 groups) is about."""
    import poolwise as pw

    fit = pw.fit(FORMULA, frame, seed=1, backend=backend)
    return {"partial": {"sampling_s": fit.idata["posterior"].attrs.get("sampling_time"), "min_ess": min_ess(fit.idata),
                        "elpd_loo": float("nan")}}


def run_plain(backend: str, frame) -> dict:
    """The script an analyst writes without poolwise: three Bambi models and arviz.compare."""
    import arviz as az
    import bambi as bmb

    fits = {}
    for name, formula in PLAIN.items():
        model = bmb.Model(formula, frame, family="binomial")
        fits[name] = model.fit(random_seed=1, inference_method=backend, progressbar=False)
        model.compute_log_likelihood(fits[name])
    table = az.compare(fits)
    return {name: {"sampling_s": fit["posterior"].attrs.get("sampling_time"), "min_ess": min_ess(fit),
                   "elpd_loo": float(table.loc[name, "elpd"])} for name, fit in fits.items()}


def main() -> None:
    kind, backend, dataset = sys.argv[1:4]
    groups = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    warnings.filterwarnings("ignore")
    frame = data(dataset, groups)
    imported = time.perf_counter() - START
    models = {"poolwise": run_poolwise, "partial": run_partial, "plain": run_plain}[kind](backend, frame)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"import_s": imported, "models": models, "peak_mb": peak_mb}))


if __name__ == "__main__":
    main()
