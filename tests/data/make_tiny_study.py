"""Regenerate tests/data/tiny_study: the three models on the bundled franchise with tiny draws.

Fast tests load these saved fits instead of sampling. Run from the repository root:

    .venv/bin/python tests/data/make_tiny_study.py
"""

import warnings
from pathlib import Path

import poolwise as pw
from poolwise.io import save_study

FORMULA = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"

if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        study = pw.compare(FORMULA, pw.load_dataset("franchise"), draws=40, tune=60, chains=2, seed=5)
    print(save_study(study, Path(__file__).parent / "tiny_study", force=True))
