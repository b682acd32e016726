"""Benchmark the three-model comparison end to end and print a table.

Every run is a fresh process (imports and compilation included). "cold" points PyTensor's
compile cache at an empty folder; "warm" runs again with that same folder. Columns: wall time,
sampling time (summed over models, as the samplers report it), the rest (import, graph building,
compilation, LOO), the smallest bulk ESS over all parameters and models, ESS per wall second,
and peak resident memory of the process.

    python benchmarks/bench.py                 # gym data, poolwise and plain Bambi, nutpie and pymc
    python benchmarks/bench.py --groups 100 --kinds poolwise --backends nutpie
    python benchmarks/bench.py --groups 1000 --kinds partial --backends nutpie --no-gym
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(kind: str, backend: str, dataset: str, groups: int, compiledir: str) -> dict:
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={compiledir}")
    command = [sys.executable, str(HERE / "compare_once.py"), kind, backend, dataset, str(groups)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, env=env, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    models = result["models"].values()
    sampling = sum(m["sampling_s"] or 0 for m in models)
    ess = min(m["min_ess"] for m in models)
    return {"wall_s": wall, "import_s": result["import_s"], "sampling_s": sampling, "rest_s": wall - sampling,
            "min_ess": ess, "ess_per_s": ess / wall, "peak_mb": result["peak_mb"],
            "elpd": {name: round(m["elpd_loo"], 1) for name, m in result["models"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["nutpie", "pymc"])
    parser.add_argument("--kinds", nargs="+", default=["poolwise", "plain"])
    parser.add_argument("--groups", nargs="*", type=int, default=[], help="simulated franchise sizes to add")
    parser.add_argument("--no-gym", action="store_true", help="skip the gym data")
    args = parser.parse_args()
    cases = ([] if args.no_gym else [("gym", 0)]) + [("franchise", g) for g in args.groups]
    header = f"{'data':<16}{'tool':<10}{'backend':<9}{'cache':<6}{'wall s':>8}{'import s':>9}{'sample s':>9}{'rest s':>8}{'min ESS':>9}{'ESS/s':>7}{'peak MB':>9}  elpd_loo"
    print(header)
    print("-" * len(header))
    for dataset, groups in cases:
        for kind in args.kinds:
            for backend in args.backends:
                with tempfile.TemporaryDirectory() as compiledir:
                    for cache in ("cold", "warm"):
                        row = run(kind, backend, dataset, groups, compiledir)
                        label = dataset if not groups else f"{dataset}-{groups}"
                        if "error" in row:
                            print(f"{label:<16}{kind:<10}{backend:<9}{cache:<6}  {row['error']}")
                            continue
                        print(f"{label:<16}{kind:<10}{backend:<9}{cache:<6}{row['wall_s']:>8.1f}{row['import_s']:>9.1f}"
                              f"{row['sampling_s']:>9.1f}{row['rest_s']:>8.1f}{row['min_ess']:>9.0f}{row['ess_per_s']:>7.0f}"
                              f"{row['peak_mb']:>9.0f}  {row['elpd']}", flush=True)


if __name__ == "__main__":
    main()
